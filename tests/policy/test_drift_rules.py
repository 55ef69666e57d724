"""Drift rules: changes since a host's reference scan become findings with a
severity — scoped, waivable and gating like every other rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetscan.drift import host_changes
from fleetscan.errors import ConfigError
from fleetscan.model import Change, Severity
from fleetscan.policy import evaluate
from fleetscan.reports.summary import is_gating

from .builders import NOW, listener, make_policy, scan

SSH = listener("tcp", "0.0.0.0:22", ("sshd", 1, "root"))
PG_LO = listener("tcp", "127.0.0.1:5432", ("postgres", 2, "postgres"))
PG_ANY = listener("tcp", "0.0.0.0:5432", ("postgres", 3, "postgres"))
NC = listener("tcp", "0.0.0.0:4444", ("nc", 4, "www"))

RULES = """
version: 1
drift:
  - id: new-service-on-critical
    when: [new, owner_changed, widened]
    groups: [critical]
    severity: high
  - id: anything-gone
    when: gone
    severity: low
    ports: ["1-1024"]
"""


def changes(host: str, before: list, after: list) -> tuple[Change, ...]:  # type: ignore[type-arg]
    return tuple(host_changes(host, before, after, "R1"))


def test_changes_matching_a_rule_are_findings_on_that_host(tmp_path: Path) -> None:
    policy = make_policy(tmp_path, RULES)
    db = scan("db-01", ["critical"], [SSH, PG_ANY, NC])
    web = scan("web-01", ["web"], [NC])
    found = evaluate(
        policy,
        [db, web],
        now=NOW,
        changes=changes("db-01", [SSH, PG_LO], [SSH, PG_ANY, NC]) + changes("web-01", [SSH], [NC]),
    )
    got = sorted((f.host, f.rule_id, f.listener.port, str(f.severity), f.kind) for f in found)  # type: ignore[union-attr]
    assert got == [
        ("db-01", "new-service-on-critical", 4444, "high", "drift"),
        ("db-01", "new-service-on-critical", 5432, "high", "drift"),
        ("web-01", "anything-gone", 22, "low", "drift"),  # web is not critical: its new nc is not
    ]
    widened = next(f for f in found if f.listener and f.listener.port == 5432)
    assert "bind widened since run R1" in widened.message and "127.0.0.1:5432" in widened.message
    assert all(is_gating(f, Severity.HIGH) for f in found if f.host == "db-01")


def test_drift_findings_are_waivable(tmp_path: Path) -> None:
    policy = make_policy(
        tmp_path,
        RULES
        + """
waivers:
  - id: W-nc
    rule: new-service-on-critical
    hosts: [db-01]
    ports: [4444]
    justification: honeypot being tested
    owner: secops
    expires: 2099-12-31
""",
    )
    found = evaluate(
        policy,
        [scan("db-01", ["critical"], [SSH, NC])],
        now=NOW,
        changes=changes("db-01", [SSH], [SSH, NC]),
    )
    (f,) = found
    assert f.waived and f.waiver is not None and f.waiver.id == "W-nc"
    assert not is_gating(f, Severity.HIGH)


def test_no_changes_no_drift_findings(tmp_path: Path) -> None:
    policy = make_policy(tmp_path, RULES)
    assert evaluate(policy, [scan("db-01", ["critical"], [SSH])], now=NOW) == ()


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ("    when: [appeared]\n", "drift[0].when[0]"),
        ("    when: []\n", "drift[0].when"),
        ("    severity: high\n", "drift[0].when"),
    ],
)
def test_bad_drift_rules_are_config_errors(tmp_path: Path, rule: str, field: str) -> None:
    text = "version: 1\ndrift:\n  - id: d1\n" + rule
    with pytest.raises(ConfigError) as err:
        make_policy(tmp_path, text)
    assert field in str(err.value)
