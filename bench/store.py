"""History store benchmark: database size and the time storing adds to a run.

    python -m bench.store [--hosts 1000] [--runs 100] [--change 0.01] [--backend sqlite,postgresql]

A synthetic fleet of ``--hosts`` Linux hosts, each with 15 listeners (ss-style
raw lines, owners, a command output as evidence, two findings). Every run,
``--change`` of the hosts change for real (a listener opened or closed); the
others are unchanged. For each run the benchmark times what the history adds
to a scan: comparing every host with its previous complete scan
(:meth:`History.compare`) and recording the run in one transaction
(:meth:`History.record`). It prints the database size, the bytes added per
run after the first, and the median / 95th percentile time added per run.

PostgreSQL runs in a throwaway cluster (``initdb`` + ``pg_ctl`` on a Unix
socket, as the tests do); its size is ``pg_database_size``. No network.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL

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
)
from fleetscan.store import History, Store

DAEMONS = ["sshd", "nginx", "postgres", "redis-server", "node_exporter", "chronyd", "dnsmasq"]


def _listener(port: int, rng: random.Random) -> Listener:
    name = DAEMONS[port % len(DAEMONS)]
    addr = "0.0.0.0" if port % 3 else "127.0.0.1"
    pid = 300 + port % 9000
    users = f'users:(("{name}",pid={pid},fd=6))'
    raw = f"tcp   LISTEN 0      511    {addr}:{port}    0.0.0.0:*    {users}"
    return Listener("tcp", 4, addr, port, "LISTEN", (Process(name, pid, "root"),), raw=raw, line=1)


def _host(i: int, ports: list[int], rng: random.Random) -> HostScan:
    listeners = tuple(_listener(p, rng) for p in sorted(ports))
    target = Target(
        name=f"host-{i:05d}",
        address=f"10.{i // 250}.{i % 250}.10",
        port=22,
        groups=("linux", f"dc{i % 4}"),
    )
    ev = CommandEvidence("ss -H -tulnp", 0, "\n".join(x.raw for x in listeners), "", 0.12)
    return HostScan(target, Status.OK, "", "linux", "ss -H -tulnp", listeners, (), (ev,), 0.0, 0.5)


def _findings(scans: list[HostScan]) -> tuple[Finding, ...]:
    out = []
    for s in scans:
        for x in s.listeners[:2]:
            out.append(
                Finding(
                    "bind-public",
                    Severity.MEDIUM,
                    s.host,
                    f"tcp {x.address}:{x.port} binds wildcard",
                    x,
                )
            )
    return tuple(out)


def bench(url: URL, hosts: int, runs: int, change: float, size_of: Any) -> dict[str, Any]:
    rng = random.Random(1)
    fleet = {i: rng.sample(range(1000, 60000), 15) for i in range(hosts)}
    history = History.open(url)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    added: list[float] = []
    sizes: list[int] = []
    for n in range(runs):
        if n:
            for i in rng.sample(range(hosts), max(1, int(hosts * change))):
                ports = fleet[i]
                if rng.random() < 0.5 and len(ports) > 5:
                    ports.pop(rng.randrange(len(ports)))
                else:
                    ports.append(rng.randrange(1000, 60000))
        scans = [_host(i, fleet[i], rng) for i in range(hosts)]
        start = time.perf_counter()
        changes, compared = history.compare(scans)
        started = t0 + timedelta(hours=n)
        run = ScanRun(
            id=started.strftime("%Y%m%dT%H%M%SZ") + f"-{n:08x}",
            started=started,
            finished=started + timedelta(seconds=60),
            scans=tuple(scans),
            findings=_findings(scans),
            changes=changes,
            compared_to=compared,
            tool_version="bench",
        )
        history.record(run)
        added.append(time.perf_counter() - start)
        sizes.append(size_of(history.store))
    history.close()
    per_run = (sizes[-1] - sizes[0]) / max(1, runs - 1)
    return {
        "hosts": hosts,
        "runs": runs,
        "changing_per_run": max(1, int(hosts * change)),
        "db_bytes": sizes[-1],
        "first_run_bytes": sizes[0],
        "bytes_per_run_after_first": round(per_run),
        "bytes_per_host_per_run": round(per_run / hosts, 1),
        "first_run_seconds": round(added[0], 3),
        "added_seconds_median": round(statistics.median(added[1:]), 3),
        "added_seconds_p95": round(sorted(added[1:])[int(0.95 * (len(added) - 1)) - 1], 3),
    }


def _sqlite_size(path: Path) -> Any:
    def size(store: Store) -> int:
        with store.engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))

    return size


def _pg_size(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--change", type=float, default=0.01)
    ap.add_argument("--backend", default="sqlite,postgresql")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fleetscan-bench-") as tmp:
        for backend in args.backend.split(","):
            if backend == "sqlite":
                path = Path(tmp) / "history.sqlite"
                results[backend] = bench(
                    URL.create("sqlite", database=str(path)),
                    args.hosts,
                    args.runs,
                    args.change,
                    _sqlite_size(path),
                )
            elif backend == "postgresql":
                from tests.store.pg import start_cluster

                cluster = start_cluster()
                try:
                    url = cluster.create_database("bench")
                    results[backend] = bench(url, args.hosts, args.runs, args.change, _pg_size)
                finally:
                    cluster.stop()
            else:
                raise SystemExit(f"unknown backend {backend!r}")
            print(backend, json.dumps(results[backend]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(
        "| backend | DB after runs | bytes added per run | per host per run "
        "| time added per run (median / p95) | first run |"
    )
    print("|---|---|---|---|---|---|")
    for backend, r in results.items():
        print(
            f"| {backend} | {r['db_bytes'] / 1e6:.1f} MB after {r['runs']} runs | "
            f"{r['bytes_per_run_after_first'] / 1e3:.0f} kB | "
            f"{r['bytes_per_host_per_run']:.0f} B | "
            f"{r['added_seconds_median'] * 1000:.0f} ms / {r['added_seconds_p95'] * 1000:.0f} ms | "
            f"{r['first_run_seconds'] * 1000:.0f} ms |"
        )


if __name__ == "__main__":
    main()
