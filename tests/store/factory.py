"""Small builders of runs for the store and drift tests (no network)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from fleetscan.model import (
    CommandEvidence,
    Finding,
    HostScan,
    Listener,
    Origin,
    Process,
    ScanRun,
    Severity,
    Status,
    Target,
)

T0 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def lst(
    proto: str,
    address: str,
    port: int,
    name: str = "svc",
    pid: int | None = 100,
    user: str | None = "root",
) -> Listener:
    family = 6 if ":" in address else 4
    procs = (Process(name, pid, user),) if name else ()
    shown = f"[{address}]" if family == 6 else address
    raw = f'{proto} LISTEN 0 128 {shown}:{port} *:* users:(("{name}",pid={pid},fd=3))'
    return Listener(proto, family, address, port, "LISTEN", procs, raw=raw, line=1)  # type: ignore[arg-type]


def scan(
    name: str,
    listeners: Sequence[Listener] = (),
    status: Status = Status.OK,
    groups: Sequence[str] = ("all",),
) -> HostScan:
    target = Target(
        name=name,
        address="127.0.0.1",
        port=22,
        groups=tuple(groups),
        source=Origin("inventories/fleet.ini", 3),
    )
    evidence = (CommandEvidence("ss -H -tulnp", 0, "\n".join(x.raw for x in listeners), "", 0.2),)
    return HostScan(
        target=target,
        status=status,
        message="" if status is Status.OK else f"status {status.value}",
        platform="linux",
        collector="ss -H -tulnp" if status.scanned else None,
        listeners=tuple(listeners) if status.scanned else (),
        evidence=evidence if status.scanned else (),
        started=1.0,
        finished=1.5,
    )


def run(
    run_id: str,
    scans: Sequence[HostScan],
    *,
    day: int = 0,
    findings: Sequence[Finding] = (),
    interrupted: bool = False,
) -> ScanRun:
    started = T0 + timedelta(days=day)
    return ScanRun(
        id=run_id,
        started=started,
        finished=started + timedelta(seconds=30),
        scans=tuple(scans),
        findings=tuple(findings),
        policy_files=("policies/baseline.yaml",),
        interrupted=interrupted,
        tool_version="test",
    )


def fleet(spec: Mapping[str, Sequence[Listener]]) -> list[HostScan]:
    return [scan(name, xs) for name, xs in spec.items()]


def finding(host: str, x: Listener, severity: Severity = Severity.HIGH) -> Finding:
    return Finding("no-telnet", severity, host, f"{x.proto} {x.address}:{x.port} forbidden", x)
