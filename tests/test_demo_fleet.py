"""The embedded demo fleet, scanned for real: its SSH servers, the Ansible
inventory it writes, strict known_hosts, every collector and parser, the
baseline + demo policies. Pins what `fleetscan demo` shows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetscan.app import RunInputs, run_scan
from fleetscan.demo import start_demo_fleet
from fleetscan.inventory import load_inventory
from fleetscan.model import ScanRun, Severity, Status
from fleetscan.policy import builtin_policy_path, evaluate, load_policies
from fleetscan.reports import exit_code
from fleetscan.runner import ScanSettings
from fleetscan.transports.base import ConnectSettings

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> ScanRun:
    work: Path = tmp_path_factory.mktemp("demo")

    async def main() -> ScanRun:
        fleet = await start_demo_fleet(work)
        try:
            inv = load_inventory([fleet.inventory])
            policy = load_policies([builtin_policy_path("baseline"), builtin_policy_path("demo")])
            settings = ScanSettings(
                connect=ConnectSettings(
                    known_hosts=str(fleet.known_hosts), ssh_config=(), use_agent=False
                ),
                host_timeout=30,
            )
            return await run_scan(RunInputs(inv.targets, policy, settings))
        finally:
            await fleet.stop()

    run = asyncio.run(main())
    # evaluate again at a fixed date so waiver expiry does not depend on today
    policy = load_policies([builtin_policy_path("baseline"), builtin_policy_path("demo")])
    from dataclasses import replace

    return replace(run, findings=evaluate(policy, run.scans, now=NOW))


def test_demo_hosts_end_in_the_expected_statuses(demo_run: ScanRun) -> None:
    got = {s.host: (s.status, s.platform, s.collector) for s in demo_run.scans}
    assert got == {
        "web-01": (Status.OK, "linux", "ss -tulnpe"),
        "db-01": (Status.OK, "linux", "ss -tulnpe"),
        "app-01": (Status.OK, "linux", "ss -tulnpe"),
        "mon-01": (Status.PARTIAL, "linux", "ss -tulnpe"),
        "win-01": (Status.OK, "windows", "netstat -ano"),
        "mac-01": (Status.OK, "darwin", "lsof -nP -iTCP -sTCP:LISTEN; lsof -nP -iUDP"),
        "bsd-01": (Status.OK, "freebsd", "sockstat -46l"),
        "down-01": (Status.UNREACHABLE, None, None),
        "rogue-01": (Status.HOSTKEY_MISMATCH, None, None),
    }
    assert "sudo -n refused" in next(s for s in demo_run.scans if s.host == "mon-01").message


def test_demo_parses_every_platform_into_the_same_model(demo_run: ScanRun) -> None:
    scans = {s.host: s for s in demo_run.scans}
    win = {(x.proto, x.address, x.port, x.process_names) for x in scans["win-01"].listeners}
    assert ("tcp", "0.0.0.0", 445, ("System",)) in win
    assert ("udp", "::", 500, ("IKEEXT Service.exe",)) in win
    assert ("tcp", "10.0.0.15", 22, ("sshd.exe",)) not in win  # an ESTABLISHED row
    mac = {(x.proto, x.address, x.port, x.process_names) for x in scans["mac-01"].listeners}
    assert ("tcp", "0.0.0.0", 8080, ("My Ser",)) in mac  # lsof's \x20 decoded
    assert ("tcp", "::1", 5432, ("postgres",)) in mac
    bsd = {(x.proto, x.address, x.port, x.process_names) for x in scans["bsd-01"].listeners}
    assert ("udp", "::", 2049, ()) in bsd  # kernel socket: no owner, still reported
    web = scans["web-01"]
    nginx = next(x for x in web.listeners if x.port == 443)
    # ss -e: the socket's owner (the root master that bound it), for the worker too
    assert [(p.name, p.pid, p.user) for p in nginx.processes] == [
        ("nginx", 1200, "root"),
        ("nginx", 1201, "root"),
    ]


def test_demo_fleet_produces_exactly_the_documented_findings(demo_run: ScanRun) -> None:
    got = {
        (f.host, f.rule_id, f.listener.port if f.listener else None, f.waived)
        for f in demo_run.findings
    }
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
        ("mac-01", "ssh-is-sshd", 22, True),
        ("mac-01", "public-exposure", 7000, False),
        ("mac-01", "public-exposure", 8080, False),
        ("mac-01", "undocumented", 7000, False),
        ("mac-01", "undocumented", 8080, False),
        ("bsd-01", "undocumented", 2049, False),
    }
    assert [f for f in demo_run.findings if f.host == "web-01"] == []


def test_demo_backdoor_is_critical_and_explained(demo_run: ScanRun) -> None:
    (f,) = [f for f in demo_run.findings if f.rule_id == "backdoor-metasploit"]
    assert f.severity is Severity.CRITICAL
    assert f.message.startswith("tcp 0.0.0.0:4444 (nc pid 6666) listens on forbidden port 4444")
    assert 'users:(("nc",pid=6666' in f.evidence


def test_demo_expired_waiver_is_reported_and_stops_waiving(demo_run: ScanRun) -> None:
    (expired,) = [f for f in demo_run.findings if f.rule_id == "waiver-expired"]
    assert "W-2026-003" in expired.message and "2026-09-30" in expired.message
    (grafana,) = [f for f in demo_run.findings if f.listener and f.listener.port == 3000]
    assert not grafana.waived


def test_demo_exit_code_is_findings(demo_run: ScanRun) -> None:
    assert exit_code(demo_run) == 1
