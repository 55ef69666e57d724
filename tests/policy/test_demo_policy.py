"""The shipped demo policy against the embedded demo fleet, built in memory.

Pins the exact findings `fleetscan demo` shows, so a change to the demo
policy, the baseline or the engine that alters the demo is a deliberate one.
"""

from __future__ import annotations

import pytest

from fleetscan.model import Finding, HostScan, Severity, Status
from fleetscan.policy import builtin_policy_path, evaluate, load_policies

from .builders import NOW, listener, scan


def demo_fleet() -> list[HostScan]:
    """The demo fleet as fleetscan/demo.py models it (what its parsers produce)."""
    resolved = listener("udp", "127.0.0.53%lo:53", ("systemd-resolve", 512, "systemd-resolve"))
    sshd = listener("tcp", "0.0.0.0:22", ("sshd", 733, "root"))
    sshd6 = listener("tcp", "[::]:22", ("sshd", 733, "root"))
    nginx = (("nginx", 1200, "root"), ("nginx", 1201, "www-data"))
    return [
        scan(
            "web-01",
            ["linux", "web"],
            [
                resolved,
                sshd,
                listener("tcp", "0.0.0.0:80", *nginx),
                listener("tcp", "0.0.0.0:443", *nginx),
                listener("tcp", "127.0.0.1:8080", ("gunicorn", 1410, "www-data")),
                sshd6,
            ],
        ),
        scan(
            "db-01",
            ["db", "linux"],
            [
                resolved,
                sshd,
                listener("tcp", "0.0.0.0:5432", ("postgres", 812, "postgres")),
                listener("tcp", "127.0.0.1:6379", ("redis-server", 845, "redis")),
                sshd6,
            ],
        ),
        scan(
            "app-01",
            ["app", "linux"],
            [
                listener("udp", "0.0.0.0:5353", ("avahi-daemon", 640, "avahi")),
                sshd,
                listener("tcp", "0.0.0.0:8000", ("java", 2001, "app")),
                listener("tcp", "0.0.0.0:4444", ("nc", 6666, "www-data")),
                listener("tcp", "127.0.0.1:9000", ("php-fpm", 2300, "www-data")),
            ],
        ),
        scan(
            "mon-01",
            ["linux", "monitoring"],
            [
                listener("tcp", "0.0.0.0:22"),  # ss without sudo: root's sshd is invisible
                listener("tcp", "0.0.0.0:9100", ("node_exporter", 3100, "monitor")),
                listener("tcp", "0.0.0.0:3000", ("grafana", 3150, "monitor")),
            ],
            status=Status.PARTIAL,
            message="sudo -n refused; scanned without privileges",
        ),
        scan(
            "win-01",
            ["windows"],
            [
                listener("tcp", "0.0.0.0:135", ("svchost.exe", 912, None)),
                listener("tcp", "0.0.0.0:445", ("System", 4, None)),
                listener("tcp", "0.0.0.0:3389", ("svchost.exe", 1104, None)),
                listener("tcp", "0.0.0.0:5985", ("System", 4, None)),
                listener("tcp", "0.0.0.0:22", ("sshd.exe", 3220, None)),
                listener("tcp", "[::]:135", ("svchost.exe", 912, None)),
                listener("tcp", "[::]:445", ("System", 4, None)),
                listener("udp", "0.0.0.0:123", ("svchost.exe", 1380, None)),
                listener("udp", "[::]:500", ("IKEEXT Service.exe", 2288, None)),
            ],
        ),
        scan("down-01", ["linux", "web"], status=Status.UNREACHABLE, message="connection refused"),
        scan("rogue-01", ["db", "linux"], status=Status.HOSTKEY_MISMATCH, message="host key"),
    ]


@pytest.fixture(scope="module")
def findings() -> tuple[Finding, ...]:
    policy = load_policies([builtin_policy_path("baseline"), builtin_policy_path("demo")])
    return evaluate(policy, demo_fleet(), now=NOW)


def test_demo_fleet_produces_exactly_the_documented_findings(findings: tuple[Finding, ...]) -> None:
    got = {(f.host, f.rule_id, f.listener.port if f.listener else None, f.waived) for f in findings}
    assert got == {
        ("app-01", "backdoor-metasploit", 4444, False),
        ("app-01", "public-exposure", 4444, False),
        ("app-01", "undocumented", 4444, False),
        ("app-01", "public-exposure", 8000, False),
        ("app-01", "undocumented", 9000, True),
        ("db-01", "db-loopback-only", 5432, False),
        ("db-01", "public-exposure", 5432, False),
        ("mon-01", "scan-incomplete", None, False),
        ("mon-01", "ssh-is-sshd", 22, False),
        ("mon-01", "public-exposure", 9100, False),
        ("mon-01", "public-exposure", 3000, False),
        ("mon-01", "waiver-expired", None, False),
        ("down-01", "scan-incomplete", None, False),
        ("rogue-01", "scan-incomplete", None, False),
        ("win-01", "windows-remote-admin", 3389, False),
        ("win-01", "windows-remote-admin", 5985, False),
    }
    assert len(findings) == 16  # no duplicates hiding behind the set


def test_demo_web_host_is_compliant(findings: tuple[Finding, ...]) -> None:
    assert [f for f in findings if f.host == "web-01"] == []


def test_demo_backdoor_is_critical_and_explained(findings: tuple[Finding, ...]) -> None:
    (f,) = [f for f in findings if f.rule_id == "backdoor-metasploit"]
    assert f.severity is Severity.CRITICAL
    assert f.message.startswith("tcp 0.0.0.0:4444 (nc pid 6666) listens on forbidden port 4444")
    assert "Metasploit" in f.message


def test_demo_postgres_bind_finding_names_socket_and_rule(findings: tuple[Finding, ...]) -> None:
    (f,) = [f for f in findings if f.rule_id == "db-loopback-only"]
    assert f.severity is Severity.HIGH
    assert f.message.startswith(
        "tcp 0.0.0.0:5432 (postgres pid 812) binds wildcard; rule allows loopback"
    )


def test_demo_active_waiver_is_attached(findings: tuple[Finding, ...]) -> None:
    (f,) = [f for f in findings if f.waived]
    assert f.waiver is not None
    assert (f.host, f.waiver.id, f.waiver.owner, f.waiver.expires) == (
        "app-01",
        "W-2026-014",
        "app-team",
        "2028-06-30",
    )


def test_demo_expired_waiver_is_reported_and_stops_waiving(
    findings: tuple[Finding, ...],
) -> None:
    (expired,) = [f for f in findings if f.rule_id == "waiver-expired"]
    assert expired.kind == "waiver"
    assert expired.severity is Severity.LOW
    assert "W-2026-003" in expired.message and "2026-09-30" in expired.message
    assert "1 finding it covered on this host is active again" in expired.message
    (grafana,) = [f for f in findings if f.listener and f.listener.port == 3000]
    assert not grafana.waived


def test_demo_findings_are_sorted_by_host_then_severity(findings: tuple[Finding, ...]) -> None:
    keys = [(f.host, -f.severity) for f in findings]
    assert keys == sorted(keys)
    assert next(f.rule_id for f in findings if f.host == "app-01") == "backdoor-metasploit"
