"""What hostile hosts cost: wall time and memory of a fleet scan full of faults.

Run from the repository root (never in CI)::

    .venv/bin/python -m bench.faults          # 200 hosts, concurrency 50, 16 MiB cap
    .venv/bin/python -m bench.faults --hosts 40 --max-output-mib 16 --host-timeout 30

Three processes, so each figure measures one thing:

* a *server* process runs every simulated host (real asyncssh servers on
  loopback, :mod:`fleetscan.testing.simhost`): N healthy hosts for the baseline and
  N hosts of the fault mix — floods (endless ``ss`` rows until the scanner
  cuts them), 1 byte/s trickles, hangs, binary garbage, 100,000-listener hosts
  and healthy hosts;
* one fresh *scanner* process per measurement runs :func:`fleetscan.runner.scan_all`
  (the CLI also keeps every HostScan until the run ends) and reports its wall
  time, its peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``: the scanner alone,
  not the servers) and per-status counts; a second pass with :mod:`tracemalloc`
  gives the Python heap peak (tracemalloc slows allocation and adds its own
  memory, so it never shares a pass with the RSS figure).

The scanner's address space is capped (``--memory-limit-gib``, RLIMIT_AS) so a
bad bound ends in MemoryError in the scanner rather than in the machine's OOM
killer taking something else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from fleetscan.model import Target
from fleetscan.runner import ScanSettings, scan_all
from fleetscan.testing.fleet import start_fleet
from fleetscan.testing.simhost import SimHost, mass_ss_output, render_ss, with_garbage
from fleetscan.transports.base import ConnectSettings

MIB = 1024 * 1024
#: share of the fault mix per kind (the rest of the N hosts are healthy)
MIX = {"flood": 0.10, "trickle": 0.10, "hang": 0.10, "garbage": 0.10, "mass": 0.05}

GOOD_SS = render_ss(
    [
        ("tcp", "0.0.0.0", 22, [("sshd", 733)]),
        ("tcp", "127.0.0.1", 5432, [("postgres", 812)]),
        ("udp", "0.0.0.0", 68, [("dhclient", 640)]),
    ]
)
GOOD_PS = "733 root\n812 postgres\n640 root\n"


def fault_mix(n: int) -> list[str]:
    """The kind of each of ``n`` hosts of the fault scenario."""
    kinds: list[str] = []
    for kind, share in MIX.items():
        kinds += [kind] * max(1, round(n * share))
    kinds = kinds[:n]
    return kinds + ["healthy"] * (n - len(kinds))


def sim_host(name: str, kind: str, mass: str) -> SimHost:
    if kind == "mass":
        return SimHost(name, outputs={"ss": mass}, ps="4242 haproxy\n")
    if kind == "garbage":
        return SimHost(name, outputs={"ss": with_garbage(GOOD_SS)}, ps=GOOD_PS)
    behaviour = {"flood": "flood", "trickle": "trickle", "hang": "hang"}.get(kind, "normal")
    return SimHost(name, outputs={"ss": GOOD_SS}, ps=GOOD_PS, behaviour=behaviour)


# --------------------------------------------------------------------------- server side


async def serve(work: Path, n: int) -> None:
    """Start the hosts, write ``hosts.json`` and known_hosts, wait for stdin EOF."""
    mass = mass_ss_output(100_000)  # one string shared by every 100k-listener host
    specs = [("baseline", f"base-{i:03d}", "healthy") for i in range(n)]
    specs += [("faults", f"{k}-{i:03d}", k) for i, k in enumerate(fault_mix(n))]
    host_key = asyncssh.generate_private_key("ssh-ed25519")  # one key: cheaper to start
    # the parent wrote the client key into `work`: start_fleet uses it as it is
    fleet = await start_fleet(
        work, [sim_host(name, kind, mass) for _, name, kind in specs], host_key=host_key
    )
    running = fleet.running
    hosts = [
        {"scenario": s, "name": name, "kind": kind, "port": r.port}
        for (s, name, kind), r in zip(specs, running, strict=True)
    ]
    (work / "hosts.json").write_text(json.dumps(hosts))
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # the parent closes stdin to stop us
    await fleet.stop()


# --------------------------------------------------------------------------- scanner side


@dataclass(frozen=True)
class Measure:
    wall: float
    rss_mib: float
    traced_mib: float | None
    statuses: dict[str, int]


def scan_child(work: Path, scenario: str, opts: dict[str, Any], traced: bool) -> Measure:
    limit = int(opts["memory_limit_gib"] * 1024 * MIB)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    hosts = [h for h in json.loads((work / "hosts.json").read_text()) if h["scenario"] == scenario]
    key = str(work / "id_ed25519")
    targets = [
        Target(h["name"], "127.0.0.1", port=h["port"], user="bench", key_files=(key,))
        for h in hosts
    ]
    settings = ScanSettings(
        connect=ConnectSettings(
            known_hosts=str(work / "known_hosts"),
            ssh_config=(),
            use_agent=False,
            connect_timeout=opts["connect_timeout"],
        ),
        concurrency=opts["concurrency"],
        host_timeout=opts["host_timeout"],
        max_output=opts["max_output_mib"] * MIB,
    )
    if traced:
        tracemalloc.start()
    start = time.monotonic()
    scans = asyncio.run(scan_all(targets, settings))
    wall = time.monotonic() - start
    peak = tracemalloc.get_traced_memory()[1] / MIB if traced else None
    kinds = {h["name"]: h["kind"] for h in hosts}
    statuses = Counter(f"{kinds[s.host]}:{s.status}" for s in scans)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return Measure(wall, rss, peak, dict(sorted(statuses.items())))


def run_child(work: Path, scenario: str, opts: dict[str, Any], traced: bool) -> Measure:
    argv = [sys.executable, "-m", "bench.faults", "--child", str(work), scenario]
    argv += ["--options", json.dumps(opts)] + (["--traced"] if traced else [])
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise SystemExit(f"scanner for {scenario} failed:\n{proc.stderr[-3000:]}")
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    return Measure(**got)


def bound_note(opts: dict[str, Any]) -> str:
    cap, conc = opts["max_output_mib"], opts["concurrency"]
    raw = cap * conc / 1024
    return (
        f"bound: max_output {cap} MiB x concurrency {conc} = {raw:.1f} GiB of raw stdout held at "
        f"once; a flooding host peaks under 4x the cap (the join, then the section text "
        f"and the parsed rows: the raw bytes are dropped once split); what a host keeps "
        f"after parsing is one Listener per socket address (a flood of one row repeated "
        f"is one listener) and, unless its listing was read in full, a 16 KiB excerpt"
    )


@contextlib.contextmanager
def serving(module: str, work: Path, hosts: int) -> Iterator[None]:
    """``python -m <module> --serve WORK --hosts N`` in its own process (the
    simulated hosts, so the scanner's figures are its own) until the block
    ends; the server says ``ready`` once every host listens."""
    server = subprocess.Popen(
        [sys.executable, "-m", module, "--serve", str(work), "--hosts", str(hosts)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            raise SystemExit("the simulated hosts did not start")
        yield
    finally:
        if server.stdin:
            server.stdin.close()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                server.kill()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=200, help="hosts per scenario")
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--max-output-mib", type=int, default=16, help="per-command cap (the default)")
    ap.add_argument("--host-timeout", type=float, default=120.0)
    ap.add_argument("--connect-timeout", type=float, default=10.0)
    ap.add_argument("--memory-limit-gib", type=float, default=16.0, help="scanner RLIMIT_AS")
    ap.add_argument("--no-tracemalloc", action="store_true", help="skip the tracemalloc pass")
    ap.add_argument("--child", nargs=2, metavar=("WORK", "SCENARIO"), help=argparse.SUPPRESS)
    ap.add_argument("--serve", metavar="WORK", help=argparse.SUPPRESS)
    ap.add_argument("--options", help=argparse.SUPPRESS)
    ap.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.serve:
        asyncio.run(serve(Path(args.serve), args.hosts))
        return 0
    if args.child:
        m = scan_child(Path(args.child[0]), args.child[1], json.loads(args.options), args.traced)
        print(json.dumps(m.__dict__))
        return 0

    opts = {
        "concurrency": args.concurrency,
        "max_output_mib": args.max_output_mib,
        "host_timeout": args.host_timeout,
        "connect_timeout": args.connect_timeout,
        "memory_limit_gib": args.memory_limit_gib,
    }
    with tempfile.TemporaryDirectory(prefix="fleetscan-bench-") as tmp:
        work = Path(tmp)
        key = asyncssh.generate_private_key("ssh-ed25519")
        key.write_private_key(str(work / "id_ed25519"))
        os.chmod(work / "id_ed25519", 0o600)
        key.write_public_key(str(work / "id_ed25519.pub"))
        with serving("bench.faults", work, args.hosts):
            rows = []
            for scenario in ("baseline", "faults"):
                rss = run_child(work, scenario, opts, traced=False)
                traced = None if args.no_tracemalloc else run_child(work, scenario, opts, True)
                rows.append((scenario, rss, traced))
    print(
        f"fleetscan fault benchmark: {args.hosts} hosts per scenario, concurrency "
        f"{args.concurrency}, max_output {args.max_output_mib} MiB, host_timeout "
        f"{args.host_timeout:.0f}s"
    )
    print(f"fault mix: {dict(Counter(fault_mix(args.hosts)))}")
    print(f"{'scenario':<10} {'wall s':>8} {'peak RSS MiB':>13} {'traced peak MiB':>16}  statuses")
    for scenario, m, t in rows:
        traced_txt = f"{t.traced_mib:.0f}" if t and t.traced_mib is not None else "-"
        print(f"{scenario:<10} {m.wall:>8.1f} {m.rss_mib:>13.0f} {traced_txt:>16}  {m.statuses}")
    print(bound_note(opts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
