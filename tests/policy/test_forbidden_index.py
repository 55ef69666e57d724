"""The forbidden-rule index (issue 12: the policy engine checks a listener
only against the rules whose ports can match it) finds exactly what checking
every in-scope rule finds — for single ports, ranges, spans too wide to list,
rules without ports, scoped rules and processes — in the same order."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetscan.policy.engine import _check_forbidden, _in_scope, host_findings

from .builders import listener, make_policy, scan

PORTS = st.sampled_from(["22", "23", "80", "4444", "6667-6669", "1-65535", "1024-40000", "0-5"])


@st.composite
def rule(draw: st.DrawFn) -> str:
    i = draw(st.integers(0, 10**6))
    lines = [
        f"  - id: r{i}",
        "    severity: high",
        f"    proto: {draw(st.sampled_from(['tcp', 'udp', 'any']))}",
    ]
    ports = draw(st.lists(PORTS, max_size=3))  # none: every port (a process rule)
    if ports:
        lines.append(f"    ports: [{', '.join(repr(p) for p in ports)}]")
    if not ports or draw(st.booleans()):
        lines.append(f"    process: [{draw(st.sampled_from(['nc', 'sshd', 'telnetd']))}]")
    if draw(st.booleans()):
        lines.append(f"    hosts: ['{draw(st.sampled_from(['web-*', 'db-01', 'x']))}']")
    return "\n".join(lines)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=st.lists(rule(), min_size=1, max_size=6, unique_by=lambda r: r.split()[2]),
    socks=st.lists(
        st.tuples(
            st.sampled_from(["tcp", "udp"]),
            st.sampled_from([22, 23, 80, 443, 4444, 6668, 31337, 65535, 3]),
            st.sampled_from(["nc", "sshd", "telnetd", "nginx"]),
        ),
        max_size=8,
    ),
    host=st.sampled_from(["web-01", "db-01", "mail-01"]),
)
def test_indexed_checks_equal_checking_every_rule(
    rules: list[str], socks: list[tuple[str, int, str]], host: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        policy = make_policy(Path(tmp), "version: 1\nforbidden:\n" + "\n".join(rules) + "\n")
    listeners = [listener(proto, f"0.0.0.0:{port}", name) for proto, port, name in socks]
    s = scan(host, listeners=listeners)
    expected = [
        f
        for lst in s.listeners
        for r in policy.forbidden
        if _in_scope(r.hosts, r.groups, s.target)
        for f in _check_forbidden(r, s.host, lst)
    ]
    assert host_findings(policy, s) == expected


def test_a_policy_without_forbidden_rules_and_empty_port_lists(tmp_path: Path) -> None:
    # no forbidden rules and empty except_ports are the same empty tuple: what is
    # derived from it for one purpose (a rule index) is never served for another
    policy = make_policy(
        tmp_path,
        "version: 1\nbind:\n  - id: no-wildcard\n    severity: high\n    deny: [wildcard]\n",
    )
    assert policy.forbidden == () and policy.bind[0].except_ports == ()
    s = scan("web-01", listeners=[listener("tcp", "0.0.0.0:8080", "app")])
    for _ in range(2):
        assert [f.rule_id for f in host_findings(policy, s)] == ["no-wildcard"]
