"""The ``zones:`` and ``exposure:`` policy sections: validation (before any
connection) and how the engine judges a probe matrix."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetscan.errors import ConfigError
from fleetscan.exposure import ProbeSettings, check_probe_config
from fleetscan.model import Listener, ProbeResult, Severity, Target
from fleetscan.policy import evaluate

from .builders import NOW, listener, make_policy, scan

ZONES = """
version: 1
zones:
  office: {probe_hosts: [jump-office]}
  internet: {probe_hosts: [edge-probe, edge-probe-2]}
"""


def _error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        make_policy(tmp_path, text)
    return info.value


@pytest.mark.parametrize(
    ("body", "line", "needle"),
    [
        (
            "exposure:\n  - id: r\n    ports: [5432]\n    reachable_from: [ofice]\n",
            8,
            "unknown zone 'ofice' (declared: scanner, office, internet) (did you mean 'office'?)",
        ),
        ("exposure:\n  - id: r\n    ports: [5432]\n", 6, "needs 'reachable_from' and/or"),
        (
            "exposure:\n  - id: r\n    reachable_from: [office]\n    not_reachable_from: office\n",
            6,
            "zone 'office' is both in",
        ),
        (
            "exposure:\n  - id: r\n    reachable_from: [office]\n    sevrity: high\n",
            8,
            "unknown field 'sevrity'",
        ),
        (
            "exposure:\n  - id: r\n    proto: udp\n    reachable_from: [office]\n",
            7,
            "'tcp' or 'any'",
        ),
    ],
)
def test_bad_exposure_rule_names_file_line_and_problem(
    tmp_path: Path, body: str, line: int, needle: str
) -> None:
    err = _error(tmp_path, ZONES + body)
    assert err.file and err.file.endswith("policy.yaml")
    assert err.line == line and needle in err.detail, str(err)


def test_scanner_zone_cannot_be_declared(tmp_path: Path) -> None:
    err = _error(tmp_path, "version: 1\nzones:\n  scanner: {probe_hosts: [x]}\n")
    assert (err.line, err.field) == (3, "zones.scanner")
    assert "always the machine fleetscan runs on" in err.detail


def test_zone_needs_probe_hosts(tmp_path: Path) -> None:
    err = _error(tmp_path, "version: 1\nzones:\n  office: {address_var: office_ip}\n")
    assert err.line == 3 and "needs 'probe_hosts'" in err.detail


def test_zone_declared_twice_differently_is_rejected(tmp_path: Path) -> None:
    make_policy(tmp_path, ZONES, "a.yaml")
    with pytest.raises(ConfigError) as info:
        from fleetscan.policy import load_policies

        (tmp_path / "b.yaml").write_text("version: 1\nzones:\n  office: {probe_hosts: [other]}\n")
        load_policies([tmp_path / "a.yaml", tmp_path / "b.yaml"])
    assert "conflicts with its declaration at" in str(info.value)


def test_probe_config_is_checked_against_the_inventory_before_connecting(tmp_path: Path) -> None:
    policy = make_policy(tmp_path, ZONES)
    targets = [Target("jump-office", "10.0.0.1"), Target("web", "10.0.0.2")]
    check_probe_config(policy, ProbeSettings(zones=("scanner", "office")), targets)
    with pytest.raises(ConfigError) as info:
        check_probe_config(policy, ProbeSettings(zones=("internet",)), targets)
    assert "zone 'internet': probe host 'edge-probe' is not in the inventory" in str(info.value)
    assert info.value.line == 4 and (info.value.file or "").endswith("policy.yaml")
    with pytest.raises(ConfigError) as info:
        check_probe_config(policy, ProbeSettings(zones=("ofice",)), targets)
    assert info.value.field == "--probe-zones" and "did you mean 'office'" in str(info.value)


# --- the engine on a probe matrix ----------------------------------------------------------

RULES = (
    ZONES
    + """
exposure:
  - id: db-only-from-office
    ports: [5432]
    reachable_from: [office]
    severity: high
  - id: nothing-from-internet
    except_ports: [80, 443]
    not_reachable_from: [internet]
    severity: critical
waivers:
  - id: w1
    rule: nothing-from-internet
    hosts: [legacy]
    justification: being moved
    owner: ops
    expires: 2099-01-01
"""
)


def _cells(host: str, lst: Listener, **by_zone: str) -> list[ProbeResult]:
    return [ProbeResult(host, lst, z, host, r) for z, r in by_zone.items()]  # type: ignore[arg-type]


def test_open_from_a_zone_the_policy_does_not_allow_is_a_finding(tmp_path: Path) -> None:
    pg = listener("tcp", "0.0.0.0:5432", "postgres")
    findings = evaluate(
        make_policy(tmp_path, RULES),
        [scan("db", listeners=[pg])],
        now=NOW,
        exposure=_cells("db", pg, scanner="open", office="open", internet="filtered"),
    )
    assert [(f.rule_id, f.severity) for f in findings] == [("db-only-from-office", Severity.HIGH)]
    assert "reachable from zone scanner" in findings[0].message


def test_blocked_from_a_required_zone_is_a_finding_and_not_probed_proves_nothing(
    tmp_path: Path,
) -> None:
    pg = listener("tcp", "10.0.0.5:5432", "postgres")
    policy = make_policy(tmp_path, RULES)
    for result in ("refused", "filtered", "unreachable"):
        (f,) = evaluate(
            policy, [scan("db", listeners=[pg])], now=NOW, exposure=_cells("db", pg, office=result)
        )
        assert f.rule_id == "db-only-from-office"
        assert f"not reachable from zone office ({result}" in f.message
    assert not evaluate(
        policy,
        [scan("db", listeners=[pg])],
        now=NOW,
        exposure=_cells("db", pg, office="not_probed", internet="not_probed"),
    )


def test_forbidden_zone_finding_respects_except_ports_and_waivers(tmp_path: Path) -> None:
    web = listener("tcp", "0.0.0.0:443", "nginx")
    admin = listener("tcp", "10.0.0.7:8443", "nginx")
    policy = make_policy(tmp_path, RULES)
    got = evaluate(
        policy,
        [scan("web", listeners=[web, admin]), scan("legacy", listeners=[admin])],
        now=NOW,
        exposure=[
            *_cells("web", web, internet="open"),
            *_cells("web", admin, internet="open"),
            *_cells("legacy", admin, internet="open"),
        ],
    )
    assert [(f.host, f.rule_id, f.listener.port if f.listener else 0, f.waived) for f in got] == [
        ("legacy", "nothing-from-internet", 8443, True),
        ("web", "nothing-from-internet", 8443, False),
    ]


def test_wide_bind_filtered_everywhere_probed_is_informational(tmp_path: Path) -> None:
    redis = listener("tcp", "0.0.0.0:6379", "redis-server")
    specific = listener("tcp", "10.0.0.5:6380", "redis-server")
    policy = make_policy(tmp_path, "version: 1\n")
    (f,) = evaluate(
        policy,
        [scan("cache", listeners=[redis, specific])],
        now=NOW,
        exposure=[
            *_cells("cache", redis, scanner="filtered", office="refused", lab="not_probed"),
            *_cells("cache", specific, scanner="filtered"),
        ],
    )
    assert (f.rule_id, f.severity, f.listener) == (
        "exposure-wide-bind-filtered",
        Severity.INFO,
        redis,
    )
    # reachable from one zone: the wide bind is not compensated
    assert not evaluate(
        policy,
        [scan("cache", listeners=[redis])],
        now=NOW,
        exposure=_cells("cache", redis, scanner="filtered", office="open"),
    )
    # nothing probed at all: nothing to say
    assert not evaluate(
        policy,
        [scan("cache", listeners=[redis])],
        now=NOW,
        exposure=_cells("cache", redis, scanner="not_probed"),
    )
