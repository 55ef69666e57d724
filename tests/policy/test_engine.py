"""Semantics of the policy engine, one behaviour per test."""

from __future__ import annotations

import functools
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetscan.model import Finding, HostScan, Listener, Process, Severity, Status
from fleetscan.policy import Policy, builtin_policy_path, evaluate, load_policies

from .builders import NOW, listener, make_policy, scan


def keys(findings: tuple[Finding, ...]) -> list[tuple[str, str, int | None, bool]]:
    return [
        (f.host, f.rule_id, f.listener.port if f.listener else None, f.waived) for f in findings
    ]


def rules_hit(policy: Policy, *scans: HostScan) -> list[str]:
    return [f.rule_id for f in evaluate(policy, scans, now=NOW)]


# --- fail closed ------------------------------------------------------------------

INCOMPLETE = [s for s in Status if s is not Status.OK]


@pytest.mark.parametrize("status", INCOMPLETE, ids=[s.value for s in INCOMPLETE])
def test_host_not_fully_scanned_always_gets_a_host_finding(status: Status) -> None:
    (f,) = evaluate(
        load_policies([]), [scan("h1", status=status, message="it went wrong")], now=NOW
    )
    assert (f.rule_id, f.kind, f.severity, f.listener) == (
        "scan-incomplete",
        "host",
        Severity.HIGH,
        None,
    )
    assert f"status {status.value}" in f.message and "it went wrong" in f.message


def test_complete_scan_with_no_rules_has_no_findings() -> None:
    host = scan("h1", listeners=[listener("tcp", "0.0.0.0:4444", "nc")])
    assert evaluate(load_policies([]), [host], now=NOW) == ()


def test_scan_incomplete_severity_comes_from_policy(tmp_path: Path) -> None:
    policy = make_policy(tmp_path, "version: 1\nscan_incomplete: {severity: critical}\n")
    (f,) = evaluate(policy, [scan("h1", status=Status.TIMEOUT)], now=NOW)
    assert f.severity is Severity.CRITICAL


BACKDOOR = """
version: 1
forbidden:
  - {id: backdoor, ports: [4444], proto: tcp, severity: critical, reason: Metasploit}
"""


def test_partial_scan_still_has_its_listeners_evaluated(tmp_path: Path) -> None:
    host = scan("h1", status=Status.PARTIAL, listeners=[listener("tcp", "0.0.0.0:4444")])
    assert rules_hit(make_policy(tmp_path, BACKDOOR), host) == ["backdoor", "scan-incomplete"]


def test_listeners_of_a_failed_scan_are_not_evaluated(tmp_path: Path) -> None:
    # a parse_error scan may carry half-read listeners; its status already says it failed
    host = scan("h1", status=Status.PARSE_ERROR, listeners=[listener("tcp", "0.0.0.0:4444")])
    assert rules_hit(make_policy(tmp_path, BACKDOOR), host) == ["scan-incomplete"]


def waiver(rule: str, scope: str, expires: str = "2026-12-31", extra: str = "") -> str:
    return (
        f"  - {{id: W-{rule}, rule: {rule}, {scope}, justification: known, owner: ops, "
        f"expires: {expires}{extra}}}\n"
    )


@pytest.mark.parametrize(
    ("waivers", "waived"),
    [
        (waiver("scan-incomplete", "hosts: [h1]"), True),
        (waiver("scan-incomplete", "hosts: [other]"), False),
        (waiver("backdoor", "hosts: [h1]"), False),
        (waiver("scan-incomplete", "hosts: [h1]", expires="2026-11-25"), False),
    ],
    ids=["named-host", "other-host", "other-rule", "expired"],
)
def test_incomplete_scan_is_waived_only_by_a_scan_incomplete_waiver_naming_the_host(
    tmp_path: Path, waivers: str, waived: bool
) -> None:
    policy = make_policy(tmp_path, BACKDOOR + "waivers:\n" + waivers)
    findings = evaluate(policy, [scan("h1", status=Status.UNREACHABLE)], now=NOW)
    (host_finding,) = [f for f in findings if f.kind == "host"]
    assert host_finding.waived is waived


# --- waivers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "waived"),
    [
        (datetime(2026, 12, 30, 23, 59, tzinfo=UTC), True),
        (datetime(2026, 12, 31, 0, 0, tzinfo=UTC), True),
        (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), True),
        (datetime(2027, 1, 1, 0, 0, tzinfo=UTC), False),
    ],
    ids=["day-before", "expiry-day-start", "expiry-day-end", "day-after"],
)
def test_waiver_is_valid_through_its_expiry_date(
    tmp_path: Path, now: datetime, waived: bool
) -> None:
    policy = make_policy(tmp_path, BACKDOOR + "waivers:\n" + waiver("backdoor", "hosts: [h1]"))
    host = scan("h1", listeners=[listener("tcp", "0.0.0.0:4444", "nc")])
    findings = evaluate(policy, [host], now=now)
    (backdoor,) = [f for f in findings if f.rule_id == "backdoor"]
    assert backdoor.waived is waived
    assert backdoor.severity is Severity.CRITICAL  # waiving never lowers the severity
    expired = [f for f in findings if f.rule_id == "waiver-expired"]
    assert len(expired) == (0 if waived else 1)


def test_valid_waiver_is_copied_into_the_finding(tmp_path: Path) -> None:
    policy = make_policy(tmp_path, BACKDOOR + "waivers:\n" + waiver("backdoor", "hosts: [h1]"))
    host = scan("h1", listeners=[listener("tcp", "0.0.0.0:4444", "nc")])
    (f,) = evaluate(policy, [host], now=NOW)
    assert f.waiver is not None
    assert (f.waiver.id, f.waiver.justification, f.waiver.expires, f.waiver.owner) == (
        "W-backdoor",
        "known",
        "2026-12-31",
        "ops",
    )


def test_expired_waiver_is_reported_and_its_finding_is_active(tmp_path: Path) -> None:
    policy = make_policy(
        tmp_path, BACKDOOR + "waivers:\n" + waiver("backdoor", "hosts: [h1]", "2026-06-30")
    )
    host = scan("h1", listeners=[listener("tcp", "0.0.0.0:4444", "nc")])
    backdoor, expired = evaluate(policy, [host], now=NOW)
    assert not backdoor.waived
    assert (expired.rule_id, expired.kind, expired.severity, expired.listener) == (
        "waiver-expired",
        "waiver",
        Severity.LOW,
        None,
    )
    assert expired.message == (
        "waiver W-backdoor for rule backdoor (owner ops) expired on 2026-06-30; "
        "1 finding it covered on this host is active again"
    )


def test_expired_waiver_that_covers_nothing_is_still_reported(tmp_path: Path) -> None:
    policy = make_policy(
        tmp_path, BACKDOOR + "waivers:\n" + waiver("backdoor", "groups: [web]", "2026-06-30")
    )
    fleet = [scan("w1", ["web"]), scan("w2", ["web"]), scan("d1", ["db"])]
    findings = evaluate(policy, fleet, now=NOW)
    assert keys(findings) == [
        ("w1", "waiver-expired", None, False),
        ("w2", "waiver-expired", None, False),
    ]
    assert "covers nothing on this host" in findings[0].message


def test_valid_waiver_matching_nothing_is_silent(tmp_path: Path) -> None:
    policy = make_policy(tmp_path, BACKDOOR + "waivers:\n" + waiver("backdoor", "hosts: [h9]"))
    assert evaluate(policy, [scan("h1")], now=NOW) == ()


def test_first_valid_waiver_in_policy_order_wins_over_an_expired_one(tmp_path: Path) -> None:
    text = (
        BACKDOOR
        + "waivers:\n"
        + waiver("backdoor", "hosts: [h1]", "2026-01-01").replace("W-backdoor", "W-old")
        + waiver("backdoor", "hosts: [h1]", "2027-01-01").replace("W-backdoor", "W-new")
    )
    host = scan("h1", listeners=[listener("tcp", "0.0.0.0:4444")])
    backdoor, expired = evaluate(make_policy(tmp_path, text), [host], now=NOW)
    assert backdoor.waiver is not None and backdoor.waiver.id == "W-new"
    assert "W-old" in expired.message and "covers nothing" in expired.message


@pytest.mark.parametrize(
    ("scope", "waived_ports"),
    [
        ("hosts: [h1]", [4444, 4444]),
        ("hosts: ['h*']", [4444, 4444]),
        ("groups: [app]", [4444, 4444]),
        ("groups: [db]", []),
        ("hosts: [h1], proto: udp", [4444]),
        ("hosts: [h1], proto: tcp", [4444]),
        ("hosts: [h1], ports: [22]", []),
    ],
)
def test_waiver_scope_narrows_by_host_group_port_and_proto(
    tmp_path: Path, scope: str, waived_ports: list[int]
) -> None:
    text = "version: 1\nforbidden:\n  - {id: backdoor, ports: [4444]}\nwaivers:\n" + waiver(
        "backdoor", scope
    )
    host = scan(
        "h1",
        ["app"],
        [listener("tcp", "0.0.0.0:4444"), listener("udp", "0.0.0.0:4444")],
    )
    findings = evaluate(make_policy(tmp_path, text), [host], now=NOW)
    assert [f.listener.port for f in findings if f.waived and f.listener] == waived_ports


# --- forbidden ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "sock", "proto", "procs", "hit"),
    [
        ("{id: r, ports: [4444], proto: tcp}", "0.0.0.0:4444", "tcp", [], True),
        ("{id: r, ports: [4444], proto: tcp}", "0.0.0.0:4444", "udp", [], False),
        ("{id: r, ports: [4444]}", "127.0.0.1:4444", "udp", [], True),
        ("{id: r, ports: ['6667-6669']}", "[::]:6668", "tcp", [], True),
        ("{id: r, ports: ['6667-6669']}", "[::]:6670", "tcp", [], False),
        ("{id: r, process: [nc, 'nc.*']}", "0.0.0.0:9", "tcp", ["nc.openbsd"], True),
        ("{id: r, process: [nc]}", "0.0.0.0:9", "tcp", ["ncat"], False),
        ("{id: r, process: [nc]}", "0.0.0.0:9", "tcp", [], False),
        ("{id: r, ports: [1337], process: [nc]}", "0.0.0.0:1337", "tcp", ["sshd"], False),
        ("{id: r, ports: [1337], hosts: [other]}", "0.0.0.0:1337", "tcp", [], False),
    ],
)
def test_forbidden_rule_matches_port_proto_and_process(
    tmp_path: Path, rule: str, sock: str, proto: str, procs: list[str], hit: bool
) -> None:
    policy = make_policy(tmp_path, f"version: 1\nforbidden:\n  - {rule}\n")
    host = scan("h1", listeners=[listener(proto, sock, *procs)])
    assert rules_hit(policy, host) == (["r"] if hit else [])


# --- bind ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "sock", "hit"),
    [
        ("allow: [loopback]", "127.0.0.1:5432", False),
        ("allow: [loopback]", "[::1]:5432", False),
        ("allow: [loopback]", "0.0.0.0:5432", True),
        ("allow: [loopback]", "[::]:5432", True),
        ("allow: [loopback]", "10.0.0.5:5432", True),
        ("allow: [loopback, private]", "10.0.0.5:5432", False),
        ("allow: ['10.0.0.0/8']", "10.0.0.5:5432", False),
        ("allow: ['10.0.0.0/8']", "192.168.0.5:5432", True),
        # a wildcard socket also listens on public interfaces: no CIDR covers it
        ("allow: ['0.0.0.0/0']", "0.0.0.0:5432", True),
        ("allow: ['10.0.0.0/8']", "[::ffff:10.1.1.1]:5432", False),
        ("allow: [loopback]", "127.0.0.1:5433", False),  # other port: rule does not apply
        ("deny: [wildcard, public]", "0.0.0.0:5432", True),
        ("deny: [wildcard, public]", "8.8.8.8:5432", True),
        ("deny: [wildcard, public]", "192.168.1.1:5432", False),
    ],
)
def test_bind_rule_checks_bind_class_and_cidr(
    tmp_path: Path, rule: str, sock: str, hit: bool
) -> None:
    policy = make_policy(tmp_path, f"version: 1\nbind:\n  - {{id: r, ports: [5432], {rule}}}\n")
    host = scan("h1", listeners=[listener("tcp", sock, "postgres")])
    assert rules_hit(policy, host) == (["r"] if hit else [])


def test_deny_rule_without_ports_covers_everything_but_its_exceptions(tmp_path: Path) -> None:
    policy = make_policy(
        tmp_path,
        "version: 1\nbind:\n  - {id: exposed, deny: [wildcard], except_ports: [22, '80-443']}\n",
    )
    host = scan(
        "h1",
        listeners=[listener("tcp", f"0.0.0.0:{port}") for port in (22, 80, 200, 443, 8080, 3000)],
    )
    findings = evaluate(policy, [host], now=NOW)
    assert [f.listener.port for f in findings if f.listener] == [3000, 8080]
    assert findings[0].message == (
        "tcp 0.0.0.0:3000 binds wildcard; rule denies wildcard except ports 22, 80-443"
    )


# --- owner ------------------------------------------------------------------------------

SSH_OWNER = """
version: 1
owner:
  - {id: ssh, ports: [22], proto: tcp, process: [sshd], user: [root], severity: high}
"""


@pytest.mark.parametrize(
    ("procs", "severity"),
    [
        ([("sshd", 1, "root")], None),
        ([("sshd", 1, "root"), ("sshd", 2, "root")], None),
        ([("dropbear", 1, "root")], Severity.HIGH),
        ([("sshd", 1, "root"), ("evil", 2, "root")], Severity.HIGH),  # all must be allowed
        ([("sshd", 1, "nobody")], Severity.HIGH),
        ([], Severity.LOW),  # owner unknown: reported, lower severity
        ([("sshd", 1, None)], Severity.LOW),  # user unknown
    ],
    ids=["sshd", "two-sshd", "dropbear", "sshd-and-evil", "wrong-user", "unknown", "no-user"],
)
def test_owner_rule_requires_every_process_to_be_allowed(
    tmp_path: Path, procs: list[tuple[str, int, str | None]], severity: Severity | None
) -> None:
    host = scan("h1", listeners=[listener("tcp", "0.0.0.0:22", *procs)])
    findings = evaluate(make_policy(tmp_path, SSH_OWNER), [host], now=NOW)
    assert [f.severity for f in findings] == ([severity] if severity else [])


def test_owner_finding_names_the_offending_process(tmp_path: Path) -> None:
    host = scan(
        "h1", listeners=[listener("tcp", "0.0.0.0:22", ("sshd", 1, "root"), ("evil", 66, "bob"))]
    )
    (f,) = evaluate(make_policy(tmp_path, SSH_OWNER), [host], now=NOW)
    assert f.message == (
        "tcp 0.0.0.0:22 (sshd pid 1, evil pid 66) is held by evil pid 66 user bob; "
        "rule allows process sshd and user root"
    )


def test_unknown_owner_severity_is_configurable(tmp_path: Path) -> None:
    policy = make_policy(
        tmp_path,
        "version: 1\nowner:\n  - {id: ssh, ports: [22], process: sshd, unknown_severity: high}\n",
    )
    (f,) = evaluate(policy, [scan("h1", listeners=[listener("tcp", "0.0.0.0:22")])], now=NOW)
    assert f.severity is Severity.HIGH and "owner unknown" in f.message


# --- undocumented ----------------------------------------------------------------------

MAP = """
version: 1
expected:
  - id: base
    hosts: ["*"]
    listeners:
      - {proto: tcp, port: 22, process: sshd}
  - id: web
    groups: [web]
    listeners:
      - {proto: tcp, port: 443, bind: [wildcard], process: [nginx, haproxy]}
      - {proto: udp, port: 53, bind: loopback, process: systemd-resolved}
      - {proto: tcp, port: '8000-8009', bind: loopback, user: www-data}
"""


@pytest.mark.parametrize(
    ("proto", "sock", "procs", "documented"),
    [
        ("tcp", "0.0.0.0:22", [("sshd", 1, "root")], True),
        ("udp", "0.0.0.0:22", [("sshd", 1, "root")], False),
        ("tcp", "0.0.0.0:443", [("nginx", 1, "root"), ("nginx", 2, "www-data")], True),
        ("tcp", "0.0.0.0:443", [("nginx", 1, "root"), ("nc", 2, "root")], False),
        ("tcp", "10.0.0.1:443", [("nginx", 1, "root")], False),
        # ss shows at most 15 characters of a Linux process name
        ("udp", "127.0.0.53:53", [("systemd-resolve", 1, "systemd-resolve")], True),
        ("udp", "127.0.0.53:53", [("systemd-resolv", 1, "x")], False),
        ("tcp", "127.0.0.1:8005", [("gunicorn", 1, "www-data")], True),
        ("tcp", "127.0.0.1:8005", [("gunicorn", 1, "root")], False),
        ("tcp", "127.0.0.1:8010", [("gunicorn", 1, "www-data")], False),
        # owner unknown: the map's process cannot be checked; scan-incomplete reports it
        ("tcp", "0.0.0.0:22", [], True),
    ],
)
def test_listener_is_documented_by_proto_port_bind_and_process(
    tmp_path: Path,
    proto: str,
    sock: str,
    procs: list[tuple[str, int, str]],
    documented: bool,
) -> None:
    host = scan("web-01", ["web"], [listener(proto, sock, *procs)])
    assert rules_hit(make_policy(tmp_path, MAP), host) == ([] if documented else ["undocumented"])


def test_host_outside_every_map_entry_gets_no_undocumented_findings(tmp_path: Path) -> None:
    policy = make_policy(
        tmp_path, "version: 1\nexpected:\n  - {id: web, groups: [web], listeners: [{port: 443}]}\n"
    )
    db = scan("db-01", ["db"], [listener("tcp", "0.0.0.0:9999", "anything")])
    web = scan("web-01", ["web"], [listener("tcp", "0.0.0.0:9999", "anything")])
    assert keys(evaluate(policy, [db, web], now=NOW)) == [("web-01", "undocumented", 9999, False)]


def test_undocumented_message_names_the_entries_in_scope(tmp_path: Path) -> None:
    host = scan("web-01", ["web"], [listener("tcp", "127.0.0.1:9000", ("php-fpm", 7, "www"))])
    (f,) = evaluate(make_policy(tmp_path, MAP), [host], now=NOW)
    assert f.message == (
        "tcp 127.0.0.1:9000 (php-fpm pid 7) is not in the infrastructure map for this host "
        "(entries: base, web)"
    )
    assert f.severity is Severity.MEDIUM


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("{enabled: false}", []),
        ("{severity: high}", [Severity.HIGH]),
    ],
)
def test_undocumented_can_be_disabled_or_reweighted(
    tmp_path: Path, setting: str, expected: list[Severity]
) -> None:
    policy = make_policy(tmp_path, MAP + f"undocumented: {setting}\n")
    host = scan("web-01", ["web"], [listener("tcp", "0.0.0.0:9999")])
    assert [f.severity for f in evaluate(policy, [host], now=NOW)] == expected


# --- messages, order, hostile input -----------------------------------------------------


def test_hostile_process_name_is_escaped_and_bounded_in_messages(tmp_path: Path) -> None:
    name = "\x1b[31mevil\nname" + "x" * 200
    host = scan("h1", listeners=[listener("tcp", "0.0.0.0:4444", (name, 1, "root"))])
    (f,) = evaluate(make_policy(tmp_path, BACKDOOR), [host], now=NOW)
    assert "\x1b" not in f.message and "\n" not in f.message
    assert "\\x1b[31mevil\\nname" in f.message
    assert len(f.message) < 200
    assert f.listener is not None and f.listener.processes[0].name == name  # evidence intact


def test_hostile_process_name_is_never_a_pattern(tmp_path: Path) -> None:
    # a process called "*" must not match a rule for "sshd" (names are matched, never globbed)
    host = scan("h1", listeners=[listener("tcp", "0.0.0.0:22", ("*", 1, "root"))])
    assert rules_hit(make_policy(tmp_path, SSH_OWNER), host) == ["ssh"]


def test_ipv6_sockets_are_bracketed_in_messages(tmp_path: Path) -> None:
    host = scan("h1", listeners=[listener("tcp", "[fe80::1%eth0]:4444")])
    (f,) = evaluate(make_policy(tmp_path, BACKDOOR), [host], now=NOW)
    assert f.message.startswith("tcp [fe80::1%eth0]:4444 listens on forbidden port 4444")


def test_findings_are_sorted_and_independent_of_input_order(tmp_path: Path) -> None:
    text = MAP + BACKDOOR.replace("version: 1\n", "") + SSH_OWNER.replace("version: 1\n", "")
    policy = make_policy(tmp_path, text)
    fleet = [
        scan("b", ["web"], [listener("tcp", "0.0.0.0:4444"), listener("tcp", "0.0.0.0:22")]),
        scan("a", ["web"], [listener("udp", "0.0.0.0:99"), listener("tcp", "0.0.0.0:4444")]),
        scan("c", status=Status.TIMEOUT),
    ]
    first = evaluate(policy, fleet, now=NOW)
    shuffled = fleet[:]
    random.Random(7).shuffle(shuffled)
    assert evaluate(policy, shuffled, now=NOW) == first
    assert keys(first) == [
        ("a", "backdoor", 4444, False),
        ("a", "undocumented", 99, False),
        ("a", "undocumented", 4444, False),
        ("b", "backdoor", 4444, False),
        ("b", "undocumented", 4444, False),
        ("b", "ssh", 22, False),
        ("c", "scan-incomplete", None, False),
    ]


# --- property: any scanned data, same guarantees ---------------------------------------

_names = st.text(min_size=0, max_size=40)
_addresses = st.sampled_from(
    ["0.0.0.0", "::", "127.0.0.1", "::1", "10.1.2.3", "8.8.8.8", "fe80::1", "localhost", "*x*"]
)
_listeners = st.builds(
    Listener,
    proto=st.sampled_from(["tcp", "udp"]),
    family=st.sampled_from([4, 6]),
    address=_addresses,
    port=st.integers(0, 65535) | st.sampled_from([22, 4444, 5432, 443, 9000]),
    processes=st.lists(
        st.builds(
            Process, name=_names, pid=st.none() | st.integers(0, 2**31), user=st.none() | _names
        ),
        max_size=3,
    ).map(tuple),
)


@functools.cache
def _shipped() -> Policy:
    return load_policies([builtin_policy_path("baseline"), builtin_policy_path("example-infra")])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(_listeners, max_size=8),
    st.sampled_from(list(Status)),
    st.lists(st.sampled_from(["web", "db", "app"]), max_size=2, unique=True),
)
def test_engine_never_fails_and_is_deterministic_on_any_scan(
    listeners: list[Listener], status: Status, groups: list[str]
) -> None:
    policy = _shipped()
    host = scan("h1", groups, listeners, status=status)
    findings = evaluate(policy, [host], now=NOW)
    assert evaluate(policy, [host], now=NOW) == findings
    assert any(f.rule_id == "scan-incomplete" for f in findings) is (status is not Status.OK)
    assert all(f.message.isprintable() for f in findings)
    severities = [-f.severity for f in findings]
    assert severities == sorted(severities)
