"""fleetscan against a bare asyncssh script on one real OpenSSH fleet, same run.

    python -m bench.scan [N] [--concurrency K ...]      (as root; make bench-scan)

Brings up the shared harness's fleet (``../shared/bench/fleet.py up N``: real
sshd on loopback addresses, ``FLEET_DIR`` default /tmp/fleet), then runs,
each under the harness's ``measure.py`` (GNU time + cgroup v1 cpuacct/memory,
the fleet's sshd in its own cgroup):

* the bare script: asyncssh, connect → ``ss -tulnp`` → close, semaphore 200
  (the limit reference, :data:`BARE`);
* ``fleetscan scan`` with an inventory built from the fleet's ``fleet.json``
  (address, port, root, the fleet's key and known_hosts), the baseline policy,
  every report format — once per ``--concurrency`` asked for.

Prints wall s, client CPU ms/host, fleet-side CPU ms/host, client peak MB and
each row's ratio to the bare script; always takes the fleet down afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = Path(os.environ.get("BENCH_HARNESS", ROOT.parent.parent / "shared" / "bench"))
FLEET_DIR = Path(os.environ.get("FLEET_DIR", "/tmp/fleet"))

BARE = """
import asyncio, json, sys
import asyncssh

async def main() -> None:
    fleet = json.load(open(sys.argv[1]))
    key = asyncssh.read_private_key(fleet["client_key"])
    known = asyncssh.read_known_hosts(fleet["known_hosts"])
    gate = asyncio.Semaphore(200)
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


HEADER = "| tool | wall s | client CPU ms/host | fleet-side CPU ms/host | client peak MB |"


def inventory(fleet: dict[str, object], path: Path) -> Path:
    """An INI inventory of the fleet: address, port, root, its key."""
    hosts = fleet["hosts"]
    assert isinstance(hosts, list)
    lines = ["[fleet]"]
    for h in hosts:
        lines.append(
            f"{h['name']} ansible_host={h['ip']} ansible_port={fleet['port']} "
            f"ansible_user={fleet['user']} ansible_ssh_private_key_file={fleet['client_key']}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def measure(label: str, cmd: list[str], work: Path) -> dict[str, float]:
    out = work / f"{label}.metrics"
    env = {**os.environ, "FLEET_DIR": str(FLEET_DIR)}
    subprocess.run(
        [sys.executable, str(HARNESS / "measure.py"), "--out", str(out), "--", *cmd],
        env=env,
        check=False,
        stdout=(work / f"{label}.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    got: dict[str, float] = {}
    for line in out.read_text().splitlines():
        key, _, value = line.partition("=")
        try:
            got[key] = float(value)
        except ValueError:
            continue
    return got


def row(label: str, m: dict[str, float], n: int, ref: dict[str, float] | None) -> str:
    wall, cli, srv = m.get("wall_s", 0.0), m.get("cli_cpu_s", 0.0), m.get("srv_cpu_s", 0.0)
    mem = m.get("cli_mem_peak_mb", 0.0)
    cells = [wall, cli * 1000 / n, srv * 1000 / n, mem]
    text = f"| {label} | " + " | ".join(f"{c:.1f}" for c in cells) + " |"
    if ref:
        base = [
            ref.get("wall_s", 0.0),
            ref.get("cli_cpu_s", 0.0) * 1000 / n,
            ref.get("srv_cpu_s", 0.0) * 1000 / n,
            ref.get("cli_mem_peak_mb", 0.0),
        ]
        ratios = (f"{c / b:.2f}x" if b else "-" for c, b in zip(cells, base, strict=True))
        text += " " + " ".join(ratios)
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("n", type=int, nargs="?", default=500)
    ap.add_argument("--concurrency", type=int, action="append", default=[])
    ap.add_argument("--fleetscan", default=str(ROOT / ".venv" / "bin" / "fleetscan"))
    ap.add_argument("--keep", action="store_true", help="leave the fleet up")
    a = ap.parse_args()
    fleet_py = [sys.executable, str(HARNESS / "fleet.py")]
    env = {**os.environ, "FLEET_DIR": str(FLEET_DIR)}
    subprocess.run([*fleet_py, "up", str(a.n)], env=env, check=True, stdout=subprocess.DEVNULL)
    try:
        fleet = json.loads((FLEET_DIR / "fleet.json").read_text())
        with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
            work = Path(tmp)
            inv = inventory(fleet, work / "fleet.ini")
            policy = ROOT / "policies" / "baseline.yaml"
            bare = [
                str(ROOT / ".venv" / "bin" / "python"),
                "-c",
                BARE,
                str(FLEET_DIR / "fleet.json"),
            ]
            results = [("bare asyncssh (ss -tulnp, c200)", measure("bare", bare, work))]
            for k in a.concurrency or [50]:
                cmd = [
                    a.fleetscan, "scan", "-i", str(inv), "-p", str(policy),
                    "--known-hosts", str(fleet["known_hosts"]),
                    "-o", str(work / f"out-{k}"), "--concurrency", str(k), "-q", "--no-history",
                ]  # fmt: skip
                results.append((f"fleetscan --concurrency {k}", measure(f"fs{k}", cmd, work)))
            print(
                "| tool | wall s | client CPU ms/host | fleet-side CPU ms/host | client peak MB |"
            )
            print("|---|---:|---:|---:|---:|")
            ref = results[0][1]
            for label, m in results:
                print(row(label, m, a.n, None if m is ref else ref))
    finally:
        if not a.keep:
            subprocess.run([*fleet_py, "down"], env=env, check=False, stdout=subprocess.DEVNULL)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
