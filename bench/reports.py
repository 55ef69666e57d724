"""Benchmark: every report format at 1,000 / 5,000 / 10,000 hosts.

Run with ``.venv/bin/python -m bench.reports [HOSTS ...] [--listeners N]``
(default 1000 5000 10000 hosts, 30 listeners each). No live servers: the run
data is generated (:func:`synthetic_run`) the way a real fleet looks — mostly
compliant Linux hosts with sshd, web servers and databases, some forbidden
listeners and waived findings, some hosts unreachable or timed out.

For each size it prints, per format, the file size, the write time and the
peak memory the write allocates (tracemalloc, a separate run so it does not
slow the timed one), and for ``report.html`` the time to its first screen in
headless Chromium.

Time to first screen: ``chromium --headless --dump-dom file://…/report.html``
loads the page; ``report.js`` runs at the end of ``<body>`` (after the whole
document, including the data block, is parsed) and, once the first screen
(summary, findings by rule, first page of hosts, pagers) is built, writes
``performance.now()`` into ``<html data-ready-ms>``: the milliseconds from
navigation start to a usable page, as the browser measures them, without
Chromium's own start-up. The wall time of the whole Chromium process is
printed beside it. Not a test: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fleetscan.model import (
    CommandEvidence,
    Finding,
    HostScan,
    Listener,
    Process,
    ScanRun,
    Severity,
    Status,
    Target,
    WaiverRef,
)
from fleetscan.reports import FORMATS, write_reports
from fleetscan.runtime import tune_process

SS = "ss -H -tulnp"
SERVICES = [
    ("tcp", "0.0.0.0", 22, "sshd", "root"),
    ("tcp", "::", 22, "sshd", "root"),
    ("tcp", "0.0.0.0", 80, "nginx", "www-data"),
    ("tcp", "0.0.0.0", 443, "nginx", "www-data"),
    ("tcp", "127.0.0.1", 5432, "postgres", "postgres"),
    ("tcp", "127.0.0.1", 6379, "redis-server", "redis"),
    ("udp", "127.0.0.1", 323, "chronyd", "_chrony"),
    ("udp", "0.0.0.0", 68, "dhclient", "root"),
    ("tcp", "127.0.0.53", 53, "systemd-resolve", "systemd-resolve"),
    ("tcp", "0.0.0.0", 9100, "node_exporter", "prometheus"),
]
FORBIDDEN = [("tcp", "0.0.0.0", 23, "telnetd", "root"), ("tcp", "0.0.0.0", 4444, "nc", "nobody")]
FAILED = [
    (Status.UNREACHABLE, "connect to {a} port 22: No route to host"),
    (Status.TIMEOUT, "no result within the 120s per-host deadline"),
    (Status.AUTH_FAILED, "Permission denied (publickey) for user audit"),
    (Status.PARTIAL, "netstat ran without root: process owners unknown"),
]
WAIVER = WaiverRef("WVR-2025-004", "legacy agent until migration (CHG-8812)", "2099-12-31", "ops")


def _listener(rng: random.Random, spec: tuple[str, str, int, str, str], line: int) -> Listener:
    proto, address, port, name, user = spec
    family = 6 if ":" in address else 4
    pid = rng.randrange(300, 4_000_000)
    shown = f"[{address}]" if family == 6 else address
    state = "LISTEN" if proto == "tcp" else "UNCONN"
    raw = (
        f"{proto}   {state} 0      4096      {shown}:{port}      0.0.0.0:*"
        f'    users:(("{name}",pid={pid},fd={rng.randrange(3, 64)}))'
    )
    return Listener(
        proto,  # type: ignore[arg-type]
        family,  # type: ignore[arg-type]
        address,
        port,
        state=state,
        processes=(Process(name, pid, user),),
        raw=raw,
        line=line,
    )


def synthetic_run(hosts: int, listeners: int = 30, seed: int = 7) -> ScanRun:
    """A run of ``hosts`` hosts with about ``listeners`` listeners each: 95 %
    scanned ok (ephemeral app ports fill up the count), 1 in 20 with a
    forbidden listener (critical), 1 in 10 with a waived medium finding, 5 %
    unreachable / timed out / auth failed / partial."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    scans: list[HostScan] = []
    findings: list[Finding] = []
    for i in range(hosts):
        name = f"{rng.choice(('web', 'db', 'app', 'cache', 'mq'))}-{i:05d}.dc{i % 3}.example"
        address = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        target = Target(name=name, address=address, port=22, user="audit", groups=("prod",))
        if i % 20 == 19:
            status, message = FAILED[(i // 20) % len(FAILED)]
            if status is not Status.PARTIAL:
                scans.append(
                    HostScan(
                        target, status, message=message.format(a=address), started=0, finished=3
                    )
                )
                findings.append(
                    Finding("scan-incomplete", Severity.HIGH, name, message, kind="host")
                )
                continue
        specs = list(SERVICES)
        specs += [
            ("tcp", "0.0.0.0", 30000 + rng.randrange(20000), "java", "app")
            for _ in range(max(0, listeners - len(specs)))
        ]
        specs = specs[:listeners]
        if i % 20 == 7:
            specs[-1] = FORBIDDEN[i % 2]
        own = tuple(_listener(rng, spec, n + 1) for n, spec in enumerate(specs))
        scans.append(
            HostScan(
                target,
                Status.OK,
                platform="linux",
                collector=SS,
                listeners=own,
                evidence=(CommandEvidence(SS, 0, "", "", 0.05),),
                started=0.0,
                finished=0.4 + rng.random(),
            )
        )
        if i % 20 == 7:
            x = own[-1]
            findings.append(
                Finding(
                    "forbidden-ports",
                    Severity.CRITICAL,
                    name,
                    f"port {x.port} is forbidden ({x.process_names[0]})",
                    x,
                )
            )
        if i % 10 == 3:
            findings.append(
                Finding(
                    "db-loopback",
                    Severity.MEDIUM,
                    name,
                    "redis must bind loopback",
                    own[5 % len(own)],
                    waiver=WAIVER,
                )
            )
        if i % 4 == 0:
            findings.append(
                Finding(
                    "undocumented",
                    Severity.LOW,
                    name,
                    "listener not in the map",
                    own[len(own) // 2],
                )
            )
    return ScanRun(
        id=f"bench-{hosts}",
        started=start,
        finished=start + timedelta(seconds=hosts / 40),
        scans=tuple(scans),
        findings=tuple(findings),
        policy_files=("policies/baseline.yaml",),
        inventory_files=("inventories/prod.ini",),
        tool_version="bench",
    )


def measure_write(run: ScanRun, fmt: str, folder: Path) -> tuple[float, int, int]:
    """(seconds, bytes written, peak bytes allocated) for one format."""
    gc.collect()
    t0 = time.perf_counter()
    # one folder per format: a run into the same folder would remove the others
    paths = write_reports(run, folder / "timed" / fmt, [fmt])[fmt]
    seconds = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in paths)
    gc.collect()
    tracemalloc.start()
    write_reports(run, folder / "traced" / fmt, [fmt])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, size, peak


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def first_screen(page: Path, profile: Path) -> tuple[float, float]:
    """(ms to the first screen as the page measured it, wall s of chromium)."""
    browser = chromium()
    assert browser is not None
    t0 = time.perf_counter()
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            f"--user-data-dir={profile}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    wall = time.perf_counter() - t0
    found = re.search(r'data-ready-ms="(\d+)"', dom)
    if found is None:
        raise RuntimeError("the report's script did not finish its first screen")
    return float(found.group(1)), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("hosts", nargs="*", type=int, default=[1000, 5000, 10000])
    parser.add_argument("--listeners", type=int, default=30)
    args = parser.parse_args()
    # the process settings of the CLI (fleetscan.cli.main), which writes the reports
    tune_process()
    # the figures are only comparable on a quiet machine: say how busy it was
    print("load average (1/5/15 min): {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    print(
        f"{'hosts':>6} {'listeners':>9} {'format':>6} {'size MB':>8} {'write s':>8} "
        f"{'peak MB':>8} {'KB/host':>8}"
    )
    with tempfile.TemporaryDirectory(prefix="fleetscan-bench-") as tmp:
        folder = Path(tmp)
        for hosts in args.hosts:
            run = synthetic_run(hosts, args.listeners)
            total = sum(len(s.listeners) for s in run.scans)
            for fmt in FORMATS:
                seconds, size, peak = measure_write(run, fmt, folder)
                print(
                    f"{hosts:>6} {total:>9} {fmt:>6} {size / 1e6:>8.2f} {seconds:>8.2f} "
                    f"{peak / 1e6:>8.1f} {size / hosts / 1e3:>8.2f}",
                    flush=True,
                )
            if chromium():
                ready = [
                    first_screen(folder / "timed" / "html" / "report.html", folder / "profile")
                    for _ in range(3)
                ]
                best = min(ready)
                print(
                    f"{hosts:>6} report.html first screen: {best[0]:.0f} ms in the page "
                    f"(best of 3; all {', '.join(f'{r[0]:.0f}' for r in ready)} ms), "
                    f"chromium process {best[1]:.1f} s",
                    flush=True,
                )
            shutil.rmtree(folder / "timed")
            shutil.rmtree(folder / "traced")


if __name__ == "__main__":
    main()
