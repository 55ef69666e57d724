"""What a valid policy file means once parsed: normalised ports, severities,
bind specs, defaults, and the merged Policy of several files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetscan.model import Severity
from fleetscan.policy import load_policies, parse_policy_text
from fleetscan.policy.schema import PortRange


def forbidden_ports(spec: str) -> list[tuple[int, int]]:
    parsed = parse_policy_text(f"version: 1\nforbidden:\n  - id: r\n    ports: {spec}\n")
    return [(r.lo, r.hi) for r in parsed.forbidden[0].ports]


@pytest.mark.parametrize(
    ("spec", "ranges"),
    [
        ("[4444]", [(4444, 4444)]),
        ("4444", [(4444, 4444)]),
        ('["6667-6669"]', [(6667, 6669)]),
        ('["6667 - 6669", 31337]', [(6667, 6669), (31337, 31337)]),
        ('["22"]', [(22, 22)]),
        ("[0, 65535]", [(0, 0), (65535, 65535)]),
        ('["1-65535"]', [(1, 65535)]),
    ],
)
def test_ports_accept_ints_strings_and_ranges(spec: str, ranges: list[tuple[int, int]]) -> None:
    assert forbidden_ports(spec) == ranges


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 65535), st.integers(0, 65535), st.integers(0, 65535))
def test_port_range_contains_exactly_its_ports(a: int, b: int, port: int) -> None:
    lo, hi = min(a, b), max(a, b)
    (parsed,) = forbidden_ports(f'["{lo}-{hi}"]')
    r = PortRange(lo=parsed[0], hi=parsed[1])
    assert (port in r) == (lo <= port <= hi)


@pytest.mark.parametrize(
    ("written", "severity"),
    [("critical", Severity.CRITICAL), ("HIGH", Severity.HIGH), (" low ", Severity.LOW)],
)
def test_severity_names_are_case_insensitive(written: str, severity: Severity) -> None:
    text = f"version: 1\nforbidden:\n  - {{id: r, ports: [1], severity: '{written}'}}\n"
    assert parse_policy_text(text).forbidden[0].severity is severity


def test_rules_without_severity_take_their_files_default(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    a.write_text(
        "version: 1\ndefaults: {severity: low}\nforbidden:\n"
        "  - {id: a1, ports: [1]}\n  - {id: a2, ports: [2], severity: critical}\n"
    )
    b = tmp_path / "b.yaml"
    b.write_text("version: 1\nbind:\n  - {id: b1, ports: [5432], allow: [loopback]}\n")
    policy = load_policies([a, b])
    assert [r.severity for r in policy.forbidden] == [Severity.LOW, Severity.CRITICAL]
    assert policy.bind[0].severity is Severity.MEDIUM  # b.yaml has no defaults: medium


def test_scalars_are_accepted_where_lists_are_natural() -> None:
    parsed = parse_policy_text(
        "version: 1\nowner:\n  - {id: ssh, ports: 22, process: sshd, user: root, hosts: web-01}\n"
    )
    rule = parsed.owner[0]
    assert (rule.process, rule.user, rule.hosts) == (("sshd",), ("root",), ("web-01",))


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("loopback", "loopback"),
        ("Wildcard", "wildcard"),
        ("link-local", "link-local"),
        ("10.1.2.3/8", "10.0.0.0/8"),
        ("192.168.1.7", "192.168.1.7/32"),
        ("fd00::/8", "fd00::/8"),
    ],
)
def test_bind_specs_are_classes_or_normalised_cidrs(written: str, normalised: str) -> None:
    text = f"version: 1\nbind:\n  - {{id: r, ports: [1], allow: ['{written}']}}\n"
    assert parse_policy_text(text).bind[0].allow == (normalised,)


def test_expected_listener_defaults_to_any_proto_bind_and_process() -> None:
    parsed = parse_policy_text(
        "version: 1\nexpected:\n  - {id: e, hosts: ['*'], listeners: [{port: 80}]}\n"
    )
    want = parsed.expected[0].listeners[0]
    assert (want.proto, want.bind, want.process, want.user) == ("any", ("any",), (), ())


@pytest.mark.parametrize("expires", ["2026-12-31", "'2026-12-31'"])
def test_waiver_expiry_is_a_date(expires: str) -> None:
    parsed = parse_policy_text(
        "version: 1\nforbidden: [{id: r, ports: [1]}]\nwaivers:\n"
        f"  - {{id: W, rule: r, hosts: [h], justification: j, owner: o, expires: {expires}}}\n"
    )
    assert parsed.waivers[0].expires == date(2026, 12, 31)


def test_merged_policy_keeps_file_order_sources_and_digest(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    a.write_text("version: 1\nforbidden:\n  - {id: one, ports: [1]}\n")
    b = tmp_path / "b.yaml"
    b.write_text("version: 1\nforbidden:\n  - {id: two, ports: [2]}\n")
    ab = load_policies([a, b])
    assert [r.id for r in ab.forbidden] == ["one", "two"]
    assert ab.files == (str(a), str(b))
    assert ab.sources == {"one": f"{a}:3", "two": f"{b}:3"}
    assert len(ab.digest) == 64
    assert load_policies([a, b]).digest == ab.digest
    assert load_policies([b, a]).digest != ab.digest
    b.write_text("version: 1\nforbidden:\n  - {id: two, ports: [3]}\n")
    assert load_policies([a, b]).digest != ab.digest


def test_no_policy_files_is_an_empty_policy_that_still_fails_closed() -> None:
    policy = load_policies([])
    assert policy.forbidden == () and policy.files == ()
    assert policy.scan_incomplete.severity is Severity.HIGH


def test_policy_is_immutable() -> None:
    policy = load_policies([])
    with pytest.raises(ValueError, match="frozen"):
        policy.digest = "x"  # type: ignore[misc]
