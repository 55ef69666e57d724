"""What a distributed scan costs: coordinator and workers vs a local scan.

Run from the repository root as root, with redis-server installed (never in CI)::

    .venv/bin/python -m bench.distributed                  # 300 hosts; 1, 2, 4 workers
    .venv/bin/python -m bench.distributed --hosts 2000 --workers 1,2,4

Processes, so each figure measures one thing:

* a *fleet* process serves N simulated Linux hosts (real asyncssh servers on
  127.0.0.1, :mod:`fleetscan.testing.simhost`) — the same for every measurement and
  not counted;
* the **local** measurement is one ``fleetscan scan`` (JSON report only):
  wall time and its CPU time (user + system, ``RUSAGE_CHILDREN``);
* a **distributed** measurement starts a private redis-server on loopback and
  K ``fleetscan worker`` processes for the one site (each ``--concurrency 1``,
  ``--host-concurrency 50``), waits until they are ready, then runs ``fleetscan
  scan --distributed`` (``--shard-size 50``): wall time, the coordinator's
  CPU time (its own process), and the workers' CPU time during the run (sum of
  utime + stime over each worker's process tree from ``/proc``, read before
  and after the run). Redis's CPU time is read the same way.

Per host, "coordinator" is what the central machine pays, "workers" what the
zones pay; compare both with the local scan's CPU per host. The machine's CPUs
are shared by the fleet, the workers and the coordinator, so wall times are
those of a CPU-bound box: more workers cannot make the scan faster here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncssh

from fleetscan.testing.fleet import free_port, start_fleet
from fleetscan.testing.simhost import SimHost

SS = (
    "Netid State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
    'tcp   LISTEN 0      128    0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=733,fd=3))\n'
    'tcp   LISTEN 0      244    127.0.0.1:5432 0.0.0.0:* users:(("postgres",pid=812,fd=5))\n'
    'udp   UNCONN 0      0      0.0.0.0:68 0.0.0.0:* users:(("dhclient",pid=640,fd=7))\n'
)
PS = "733 root\n812 postgres\n640 root\n"
TICK = os.sysconf("SC_CLK_TCK")
POLICY = "version: 1\nforbidden:\n  - id: irc\n    ports: 6667\n"


async def serve(work: Path, n: int) -> None:
    hosts = [SimHost(f"h{i:04d}", outputs={"ss": SS}, ps=PS) for i in range(n)]
    host_key = asyncssh.generate_private_key("ssh-ed25519")  # one key: cheaper to start
    fleet = await start_fleet(work, hosts, host_key=host_key)
    extra = {h.name: {"fleetscan_platform": "linux"} for h in hosts}
    fleet.write_inventory(work / "hosts.yaml", extra=extra)
    (work / "ssh_config").write_text("")  # read no ssh_config of the machine
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await fleet.stop()


def tree_cpu(pid: int) -> float:
    """utime + stime (seconds) of ``pid`` and its live descendants."""
    total = 0.0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                stack.extend(int(c) for c in children)
        except (OSError, IndexError, ValueError):
            continue
    return total


def cli(work: Path, args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Run the CLI; (wall s, its CPU s, exit code)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "fleetscan", *args],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 1, 3):
        raise RuntimeError(f"fleetscan exited {proc.returncode}: {proc.stderr[-2000:]}")
    return wall, cpu, proc.returncode


def statuses(out: Path) -> dict[str, int]:
    doc = json.loads((out / "report.json").read_text())
    return dict(doc["run"]["summary"]["by_status"])


def base_args(work: Path, out: str) -> list[str]:
    return ["scan", "-i", "hosts.yaml", "-p", "policy.yaml", "-o", out, "--format", "json", "-q"]


def distributed(work: Path, k: int, n: int) -> dict[str, object]:
    redis_bin = shutil.which("redis-server") or "/usr/bin/redis-server"
    password = secrets.token_hex(12)
    port = free_port()
    conf = work / f"redis-{k}.conf"
    conf.write_text(f'port {port}\nbind 127.0.0.1\nrequirepass {password}\nsave ""\n')
    redis = subprocess.Popen([redis_bin, str(conf)], stdout=subprocess.DEVNULL)
    env = dict(os.environ, FLEETSCAN_BROKER_PASSWORD=password, NO_COLOR="1")
    env.pop("SSH_AUTH_SOCK", None)
    url = f"redis://127.0.0.1:{port}/0"
    workers: list[subprocess.Popen[bytes]] = []
    try:
        time.sleep(0.3)
        for i in range(k):
            log = (work / f"worker-{k}-{i}.log").open("wb")
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "fleetscan",
                        "worker",
                        "--site",
                        "default",
                        "--broker",
                        url,
                        "--concurrency",
                        "1",
                        "--host-concurrency",
                        "50",
                        "--known-hosts",
                        "known_hosts",
                        "--ssh-config",
                        "ssh_config",
                        "--loglevel",
                        "INFO",
                        "--name",
                        f"bench-{k}-{i}@localhost",
                    ],
                    cwd=work,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + 120
        for i in range(k):  # each worker has imported, forked its pool and subscribed
            while "ready." not in (work / f"worker-{k}-{i}.log").read_text(errors="replace"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker {i} did not start")
                time.sleep(0.2)
        cpu0 = sum(tree_cpu(w.pid) for w in workers)
        redis0 = tree_cpu(redis.pid)
        args = [*base_args(work, f"out-d{k}"), "--distributed", url, "--shard-size", "50"]
        wall, coord_cpu, _ = cli(work, args, env)
        worker_cpu = sum(tree_cpu(w.pid) for w in workers) - cpu0
        redis_cpu = tree_cpu(redis.pid) - redis0
    finally:
        for w in workers:
            os.killpg(w.pid, 9)
            w.wait()
        redis.kill()
        redis.wait()
    return {
        "mode": f"distributed, {k} worker(s)",
        "wall": wall,
        "coordinator_cpu": coord_cpu,
        "workers_cpu": worker_cpu,
        "redis_cpu": redis_cpu,
        "statuses": statuses(work / f"out-d{k}"),
        "n": n,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=300)
    ap.add_argument("--workers", default="1,2,4")
    opts = ap.parse_args(argv)
    n = opts.hosts
    with tempfile.TemporaryDirectory(prefix="fleetscan-bench-dist-") as tmp:
        work = Path(tmp)
        (work / "policy.yaml").write_text(POLICY)
        fleet = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from bench.distributed import _serve; _serve()",
                str(work),
                str(n),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        try:
            assert fleet.stdout is not None
            if fleet.stdout.readline().strip() != "ready":
                raise RuntimeError("the simulated fleet did not start")
            env = dict(os.environ, NO_COLOR="1")
            env.pop("SSH_AUTH_SOCK", None)
            local_args = [
                *base_args(work, "out-local"),
                "--known-hosts",
                "known_hosts",
                "--ssh-config",
                "ssh_config",
                "--concurrency",
                "50",
            ]
            wall, cpu, _ = cli(work, local_args, env)
            rows: list[dict[str, object]] = [
                {
                    "mode": "local",
                    "wall": wall,
                    "coordinator_cpu": cpu,
                    "workers_cpu": 0.0,
                    "redis_cpu": 0.0,
                    "statuses": statuses(work / "out-local"),
                    "n": n,
                }
            ]
            for k in (int(x) for x in opts.workers.split(",")):
                rows.append(distributed(work, k, n))
        finally:
            if fleet.stdin:
                fleet.stdin.close()
            fleet.wait(60)
    print(f"{n} simulated hosts; CPU in seconds; per host in milliseconds")
    print(
        f"{'mode':28} {'wall':>7} {'coord':>7} {'workers':>8} {'redis':>6} "
        f"{'coord/h':>8} {'work/h':>7} {'total/h':>8}  statuses"
    )
    for r in rows:
        c, w, rd = float(r["coordinator_cpu"]), float(r["workers_cpu"]), float(r["redis_cpu"])
        print(
            f"{r['mode']:28} {float(r['wall']):7.1f} {c:7.1f} {w:8.1f} {rd:6.1f} "
            f"{1000 * c / n:8.1f} {1000 * w / n:7.1f} {1000 * (c + w + rd) / n:8.1f}  "
            f"{r['statuses']}"
        )
    return 0


def _serve() -> None:
    asyncio.run(serve(Path(sys.argv[1]), int(sys.argv[2])))


if __name__ == "__main__":
    raise SystemExit(main())
