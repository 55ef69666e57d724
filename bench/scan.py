"""fleetscan against a bare asyncssh script on one real OpenSSH fleet, same run.

    python -m bench.scan [N] [--concurrency K ...] [--transport T ...]   (as root; make bench-scan)
    python -m bench.scan 1000 --latency 50ms [--concurrency K ...]        latency mode
    python -m bench.scan --curve 500,1000,2000,5000                       memory curve

Run it under ``flock /tmp/bench.lock`` when others share the machine: the fleet
and its cgroups are shared. It brings up the shared harness's fleet
(``../shared/bench/fleet.py up N``: real sshd on loopback addresses, ``FLEET_DIR``
default /tmp/fleet; ``BENCH_HARNESS`` names another harness folder) and runs,
each under the harness's ``measure.py`` (GNU time + cgroup v1 cpuacct/memory,
the fleet's sshd in their own cgroup):

* the bare script: asyncssh, connect → ``ss -tulnp`` → close under a semaphore
  (the limit reference, :data:`BARE`);
* ``fleetscan scan`` with an inventory built from the fleet's ``fleet.json``
  (address, port, root, the fleet's key and known_hosts), the baseline policy,
  every report format, no history — once per ``--concurrency`` (default 50)
  and per ``--transport`` (default asyncssh and paramiko).

**Default mode** (the issue's table): the bare script at ``--bare-concurrency``
(200) is the reference of every row.

**Latency mode** (``--latency RTT``, e.g. ``50ms``): the fleet runs in network
namespace ``benchlat`` behind a delayed link, RTT added to every round trip
(half each way), see :mod:`bench.latency`; ``--delay-via`` picks netem (veth
pair) or the userspace TUN delay line (kernels without sch_netem, such as the
reference box), ``auto`` by default. One bare row per ``--concurrency`` K at
the same K; each fleetscan row's ratios are to the bare row of its K.

**Curve mode** (``--curve 500,1000,2000,5000``): one fleet of the largest K,
brought up once; for each K, the bare script and fleetscan (first
``--transport``, first ``--concurrency``) scan the first K hosts. Reports each
point's peak memory (cgroup, all processes, and GNU time's max RSS) and the
growth in KB per host between points and from the first to the last.

Columns: wall s; client CPU ms/host; fleet-side CPU ms/host (sshd, sessions,
commands); client peak MB (cgroup memory.max_usage); max RSS MB; hosts ok (the
bare script: hosts that answered; fleetscan: hosts whose report.json status is
``ok`` with exactly the listeners the fleet served). Ratios are to the row's
reference in the same run: wall, client CPU, fleet CPU, peak MB. The fleet and
the namespace are always taken down, also on errors and Ctrl-C/SIGTERM
(``--keep`` leaves a default-mode fleet up). Per-run logs and outputs stay in
``--work`` (default a temporary folder, removed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.latency import LatencyFleet, parse_ms

ROOT = Path(__file__).resolve().parent.parent


def _harness() -> Path:
    """``../shared/bench`` from the checkout (one more level up from a git
    worktree under ``../wt/``), or ``BENCH_HARNESS``."""
    if "BENCH_HARNESS" in os.environ:
        return Path(os.environ["BENCH_HARNESS"])
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / "shared" / "bench" / "fleet.py").is_file():
            return base / "shared" / "bench"
    return ROOT.parent / "shared" / "bench"


HARNESS = _harness()
FLEET_DIR = Path(os.environ.get("FLEET_DIR", "/tmp/fleet"))
RUN_TIMEOUT_S = 3600  # one measured command; a 5,000-host run takes minutes

# argv: fleet.json [concurrency]
BARE = """
import asyncio, json, sys
import asyncssh

async def main() -> None:
    fleet = json.load(open(sys.argv[1]))
    key = asyncssh.read_private_key(fleet["client_key"])
    known = asyncssh.read_known_hosts(fleet["known_hosts"])
    gate = asyncio.Semaphore(int(sys.argv[2]) if len(sys.argv) > 2 else 200)
    ok = 0

    async def one(ip: str) -> None:
        nonlocal ok
        async with gate:
            async with asyncssh.connect(ip, port=fleet["port"], username=fleet["user"],
                                        client_keys=[key], known_hosts=known,
                                        agent_path=None) as conn:
                r = await conn.run("ss -tulnp", check=False)
                ok += bool(r.stdout)

    await asyncio.gather(*(one(h["ip"]) for h in fleet["hosts"]))
    print(f"hosts_ok={ok}/{len(fleet['hosts'])}")

asyncio.run(main())
"""


@dataclass
class Run:
    """One measured command: its label, host count, measure.py figures, hosts ok."""

    label: str
    n: int
    m: dict[str, float] = field(default_factory=dict)
    ok: int | None = None
    ref: Run | None = None  # the row its ratios are computed against

    def per_host_ms(self, key: str) -> float:
        return self.m.get(key, 0.0) * 1000 / self.n if self.n else 0.0

    def cells(self) -> list[float]:
        """wall s, client ms/host, fleet ms/host, peak MB: the ratio columns."""
        return [
            self.m.get("wall_s", 0.0),
            self.per_host_ms("cli_cpu_s"),
            self.per_host_ms("srv_cpu_s"),
            self.m.get("cli_mem_peak_mb", 0.0),
        ]


HEADER = (
    "| tool | N | hosts ok | wall s | client CPU ms/host | fleet-side CPU ms/host "
    "| client peak MB | max RSS MB | ratio wall | ratio client | ratio fleet | ratio peak |"
)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def table(runs: Sequence[Run]) -> list[str]:
    """The markdown table of RUNS; ratios to each row's reference (``-`` for references)."""
    lines = [HEADER, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        cells = r.cells()
        ok = "?" if r.ok is None else f"{r.ok}/{r.n}"
        text = [r.label, str(r.n), ok] + [f"{c:.1f}" for c in cells]
        text.append(f"{r.m.get('max_rss_mb', 0.0):.1f}")
        if r.ref is not None:
            text += [ratio(c, b) for c, b in zip(cells, r.ref.cells(), strict=True)]
        else:
            text += ["-"] * 4
        lines.append("| " + " | ".join(text) + " |")
    return lines


def curve_table(points: Sequence[Run]) -> list[str]:
    """Peak memory per point and its growth in KB/host from the previous point
    (cgroup peak and max RSS), then the first-to-last slope. "reports MB" is the
    size of the report files written: the cgroup peak includes their page cache."""
    lines = [
        "| tool | N | hosts ok | wall s | client CPU ms/host | fleet-side CPU ms/host "
        "| client peak MB | max RSS MB | reports MB | KB/host (peak) | KB/host (RSS) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for tool in dict.fromkeys(p.label for p in points):
        mine = sorted((p for p in points if p.label == tool), key=lambda p: p.n)
        prev: Run | None = None
        for p in mine:
            c = p.cells()
            rss = p.m.get("max_rss_mb", 0.0)
            row = [tool, str(p.n), "?" if p.ok is None else f"{p.ok}/{p.n}"]
            row += [f"{x:.1f}" for x in c] + [f"{rss:.1f}"]
            row.append(f"{p.m['reports_mb']:.1f}" if "reports_mb" in p.m else "-")
            row += [slope(prev, p, "cli_mem_peak_mb"), slope(prev, p, "max_rss_mb")]
            lines.append("| " + " | ".join(row) + " |")
            prev = p
        if len(mine) > 2:
            a, b = mine[0], mine[-1]
            lines.append(
                f"| {tool} | {a.n}→{b.n} | | | | | | | | {slope(a, b, 'cli_mem_peak_mb')} "
                f"| {slope(a, b, 'max_rss_mb')} |"
            )
    return lines


def slope(a: Run | None, b: Run, key: str) -> str:
    """Growth of B's figure KEY (MB) over A's, in KB per added host."""
    if a is None or b.n == a.n:
        return "-"
    return f"{(b.m.get(key, 0.0) - a.m.get(key, 0.0)) * 1024 / (b.n - a.n):.1f}"


def parse_curve(text: str) -> list[int]:
    """'500,1000,2000,5000' → sorted distinct host counts (1..5000, fleet.py's range)."""
    try:
        ks = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        msg = f"--curve wants host counts like 500,1000: {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not ks or ks[0] < 1 or ks[-1] > 5000:
        raise argparse.ArgumentTypeError(f"--curve host counts must be in 1..5000: {text!r}")
    return ks


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.scan",
        description=(__doc__ or "").split("\n")[0],
        epilog="See the module docstring (bench/scan.py) for the modes and columns.",
    )
    ap.add_argument("n", type=int, nargs="?", default=500, help="hosts (default 500)")
    ap.add_argument(
        "--concurrency", type=int, action="append", default=[], help="fleetscan's (default 50)"
    )
    ap.add_argument(
        "--transport",
        action="append",
        default=[],
        choices=["asyncssh", "paramiko"],
        help="fleetscan --transport (repeatable; default asyncssh and paramiko)",
    )
    ap.add_argument(
        "--bare-concurrency",
        type=int,
        default=200,
        help="the bare script's semaphore in default and curve modes (default 200)",
    )
    ap.add_argument(
        "--latency",
        type=parse_ms,
        default=None,
        metavar="RTT",
        help="latency mode: round trip added to the fleet, e.g. 50ms (half each way)",
    )
    ap.add_argument(
        "--delay-via",
        choices=["auto", "netem", "tun"],
        default="auto",
        help="netem on a veth pair, or the userspace TUN delay line (default: netem if present)",
    )
    ap.add_argument(
        "--curve",
        type=parse_curve,
        default=None,
        metavar="K,K,...",
        help="memory curve: scan the first K hosts of one fleet for each K",
    )
    ap.add_argument(
        "--fleetscan",
        default=str(ROOT / ".venv" / "bin" / "fleetscan"),
        help="the executable measured (default: this checkout's .venv)",
    )
    ap.add_argument(
        "--python", default=str(ROOT / ".venv" / "bin" / "python"), help=argparse.SUPPRESS
    )
    ap.add_argument("--work", type=Path, default=None, help="keep logs and reports here")
    ap.add_argument("--keep", action="store_true", help="leave the fleet up (default mode)")
    a = ap.parse_args(argv)
    a.concurrency = a.concurrency or [50]
    a.transport = a.transport or ["asyncssh", "paramiko"]
    if not 1 <= a.n <= 5000:
        ap.error("N must be in 1..5000 (fleet.py's range)")
    if a.latency is not None and a.latency <= 0:
        ap.error("--latency must be positive, e.g. 50ms")
    if a.curve and a.latency is not None:
        ap.error("--curve measures memory on the plain fleet; drop --latency")
    return a


def inventory(fleet: dict[str, Any], path: Path, k: int | None = None) -> Path:
    """An INI inventory of the fleet's first K hosts: address, port, root, its key."""
    lines = ["[fleet]"]
    for h in fleet["hosts"][:k]:
        lines.append(
            f"{h['name']} ansible_host={h['ip']} ansible_port={fleet['port']} "
            f"ansible_user={fleet['user']} ansible_ssh_private_key_file={fleet['client_key']}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def subset(fleet: dict[str, Any], path: Path, k: int) -> Path:
    """fleet.json with only the first K hosts (for the bare script)."""
    path.write_text(json.dumps({**fleet, "hosts": fleet["hosts"][:k], "n": k}))
    return path


def measure(label: str, cmd: list[str], work: Path, env: dict[str, str]) -> dict[str, float]:
    """CMD under the harness's measure.py; its key=value figures (empty if it wrote none)."""
    out = work / f"{label}.metrics"
    with (work / f"{label}.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(HARNESS / "measure.py"), "--out", str(out),
             "--timeout", str(RUN_TIMEOUT_S), "--", *cmd],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            proc.wait()
        except BaseException:
            stop_measured(proc)
            raise
    got: dict[str, float] = {}
    if not out.exists():
        return got
    for line in out.read_text().splitlines():
        key, _, value = line.partition("=")
        with contextlib.suppress(ValueError):
            got[key] = float(value)
    return got


def client_cgroups(measure_pid: int) -> list[Path]:
    """The cgroups measure.py (pid MEASURE_PID, our child) made for its command."""
    found = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        for ctrl in ("cpuacct", "memory"):
            if ctrl in ctrls.split(","):
                base = Path(f"/sys/fs/cgroup/{ctrl}{path.rstrip('/')}")
                found.append(base / "fleetbench" / f"client-{measure_pid}")
    return [p for p in found if p.is_dir()]


def stop_measured(proc: subprocess.Popen[bytes]) -> None:
    """Interrupted: end the measured command (it runs in its own session, so a
    signal to measure.py alone would orphan it), then measure.py, then its cgroups."""
    groups = client_cgroups(proc.pid)
    for cg in groups:
        for pid in (cg / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGTERM)
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for cg in groups:
        for _ in range(50):
            try:
                cg.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def bare_ok(log: Path) -> int | None:
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("hosts_ok="):
            return int(line.split("=")[1].split("/")[0])
    return None


def fleetscan_ok(out: Path, fleet: dict[str, Any]) -> int | None:
    """Hosts whose status is ok with exactly the listeners the fleet served."""
    try:
        report = json.loads((out / "report.json").read_text())
    except (OSError, ValueError):
        return None
    want = {h["name"]: h["listeners"] for h in fleet["hosts"]}
    return sum(
        1
        for h in report.get("hosts", [])
        if h.get("status") == "ok" and len(h.get("listeners", [])) == want.get(h.get("name"))
    )


class Bench:
    """Runs the bare script and fleetscan against one fleet (FLEET, as clients see it)."""

    def __init__(
        self,
        a: argparse.Namespace,
        fleet: dict[str, Any],
        fleet_json: Path,
        work: Path,
        delay_cpu: Callable[[], float] | None = None,
    ):
        self.a, self.fleet, self.fleet_json, self.work = a, fleet, fleet_json, work
        self.delay_cpu = delay_cpu
        home = work / "home"
        home.mkdir(exist_ok=True)
        # HOME: no operator ~/.ssh/config or history database leaks into the run
        self.env = {**os.environ, "FLEET_DIR": str(FLEET_DIR), "HOME": str(home)}

    def measure(self, label: str, cmd: list[str]) -> dict[str, float]:
        """measure.py's figures, plus ``delay_cpu_s``: the delay line's CPU meanwhile."""
        before = self.delay_cpu() if self.delay_cpu else 0.0
        m = measure(label, cmd, self.work, self.env)
        if self.delay_cpu:
            m["delay_cpu_s"] = round(self.delay_cpu() - before, 2)
        return m

    def bare(self, concurrency: int, k: int | None = None) -> Run:
        n = k or len(self.fleet["hosts"])
        label = f"bare-c{concurrency}-n{n}"
        fj = self.fleet_json if k is None else subset(self.fleet, self.work / f"{label}.json", k)
        cmd = [self.a.python, "-c", BARE, str(fj), str(concurrency)]
        m = self.measure(label, cmd)
        return Run(f"bare asyncssh (c{concurrency})", n, m, bare_ok(self.work / f"{label}.log"))

    def fleetscan(
        self, concurrency: int, transport: str, k: int | None = None, ref: Run | None = None
    ) -> Run:
        n = k or len(self.fleet["hosts"])
        label = f"fleetscan-{transport}-c{concurrency}-n{n}"
        inv = inventory(self.fleet, self.work / f"{label}.ini", k)
        out = self.work / f"{label}-out"
        shutil.rmtree(out, ignore_errors=True)
        policy = ROOT / "policies" / "baseline.yaml"
        cmd = [
            self.a.fleetscan, "scan", "-i", str(inv), "-p", str(policy),
            "--known-hosts", str(self.fleet["known_hosts"]), "-o", str(out),
            "--concurrency", str(concurrency), "--transport", transport, "-q", "--no-history",
        ]  # fmt: skip
        m = self.measure(label, cmd)
        if out.is_dir():
            m["reports_mb"] = sum(f.stat().st_size for f in out.iterdir() if f.is_file()) / 2**20
        sub = {**self.fleet, "hosts": self.fleet["hosts"][:k]}
        return Run(f"fleetscan {transport} (c{concurrency})", n, m, fleetscan_ok(out, sub), ref)


def run_default(b: Bench) -> list[Run]:
    ref = b.bare(b.a.bare_concurrency)
    runs = [ref]
    for k in b.a.concurrency:
        for t in b.a.transport:
            runs.append(b.fleetscan(k, t, ref=ref))
    return runs


def run_latency(b: Bench) -> list[Run]:
    runs = []
    for k in b.a.concurrency:
        ref = b.bare(k)
        runs.append(ref)
        for t in b.a.transport:
            runs.append(b.fleetscan(k, t, ref=ref))
    return runs


def run_curve(b: Bench) -> list[Run]:
    runs = []
    for k in b.a.curve:
        runs.append(b.bare(b.a.bare_concurrency, k))
        runs.append(b.fleetscan(b.a.concurrency[0], b.a.transport[0], k))
    return runs


def fleet_up(n: int, env: dict[str, str]) -> None:
    r = subprocess.run(
        [sys.executable, str(HARNESS / "fleet.py"), "up", str(n)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    if r.returncode:
        raise RuntimeError(f"fleet.py up {n} failed: {r.stderr.strip()}")


def fleet_down(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, str(HARNESS / "fleet.py"), "down"], env=env, check=False,
        capture_output=True,
    )  # fmt: skip


@contextlib.contextmanager
def workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
    else:
        with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
            yield Path(tmp)


def raise_nofile() -> int:
    """The soft fd limit up to the hard one (a 5,000-host run holds many sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def on_sigterm(_sig: int, _frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through every teardown below


def main(argv: Sequence[str] | None = None) -> int:
    a = parse_args(argv)
    if os.geteuid() != 0:
        print("bench.scan needs root (sshd sessions are for root)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        return bench(a)
    except RuntimeError as e:  # bring-up failed (and everything was taken down)
        print(f"bench.scan: {e}", file=sys.stderr)
        return 2


def bench(a: argparse.Namespace) -> int:
    nofile = raise_nofile()
    env = {**os.environ, "FLEET_DIR": str(FLEET_DIR)}
    n = max(a.curve) if a.curve else a.n
    with contextlib.ExitStack() as stack:
        delay_cpu: Callable[[], float] | None = None
        if a.latency is not None:
            lf = stack.enter_context(LatencyFleet(n, a.latency, HARNESS, FLEET_DIR, a.delay_via))
            fleet_json = lf.client_fleet_json
            delay_cpu = lf.delay_cpu_s if lf.method == "tun" else None
            print(
                f"latency mode: +{a.latency:g} ms RTT via {lf.method} "
                f"(TCP connect to the first host: {lf.measured_rtt_ms:.1f} ms)",
                flush=True,
            )
        else:
            if not a.keep:
                stack.callback(fleet_down, env)
            fleet_up(n, env)
            fleet_json = FLEET_DIR / "fleet.json"
        fleet = json.loads(fleet_json.read_text())
        work = stack.enter_context(workdir(a.work))
        b = Bench(a, fleet, fleet_json, work, delay_cpu)
        if a.curve:
            runs = run_curve(b)
            lines = curve_table(runs)
        else:
            runs = run_latency(b) if a.latency is not None else run_default(b)
            lines = table(runs)
        print(
            f"N={n}, {os.cpu_count()} cores shared with the fleet's "
            f"{fleet.get('sshd_processes', '?')} sshd, nofile={nofile}"
        )
        print("\n".join(lines))
        if delay_cpu is not None:
            used = ", ".join(f"{r.label} {r.m.get('delay_cpu_s', 0.0):.1f} s" for r in runs)
            print(f"CPU of the userspace delay line (in neither column): {used}")
        failed = [r.label for r in runs if r.ok != r.n]
        if failed:
            print(f"not every host ok in: {', '.join(failed)} (logs in --work)", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
