"""What the whole CLI costs in memory on hostile hosts: peak RSS of ``fleetscan scan``.

Run from the repository root (never in CI)::

    .venv/bin/python -m bench.memory                    # every scenario, every format
    .venv/bin/python -m bench.memory --scenario mass --formats json

:mod:`bench.faults` measures the runner alone; the issue's memory goals are
*all-in* (scan, policy, every report format), so here each measurement is one
real ``fleetscan scan`` process — inventory, asyncssh, collector, parser,
policy, the reports — against simulated hosts served by another process
(:mod:`fleetscan.testing.simhost`, real asyncssh servers on loopback). Its
peak RSS comes from ``os.wait4`` (the CLI process alone, not the servers).

Scenarios:

* ``mass`` — one host with 100,000 distinct listeners (the figure is also
  given per listener);
* ``flood`` — one host whose ``ss`` never stops printing (the CLI cuts it at
  ``--max-output-mb``); ``flood-windows`` the same from a Windows host's
  ``netstat -ano``;
* ``mix`` — 19 hosts of the hostile mix: healthy hosts beside the mass host,
  the flood, a hang, a 1 byte/s trickle, binary garbage, garbage lines, a
  dropped connection, ``ss`` refused by the kernel, sudo asking for a
  password, a login banner, refused authentication, a changed host key, a
  refused port, a silent port and a stalled key exchange
  (:mod:`tests.faults.test_fault_matrix` without the DNS row);
* ``healthy`` — N healthy hosts of 30 listeners each (``--hosts``), for the
  per-host growth.

The reports are written (``--no-history``: the history store is measured by
:mod:`bench.store`), and each run's report sizes are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncssh
import yaml

from bench.faults import serving
from fleetscan.testing.fleet import free_port, start_fleet
from fleetscan.testing.simhost import (
    HEALTHY_PS as GOOD_PS,
)
from fleetscan.testing.simhost import (
    HEALTHY_SS as GOOD_SS,
)
from fleetscan.testing.simhost import (
    SimHost,
    mass_ss_output,
    render_ss,
    stalled_server,
    with_garbage,
)

MIB = 1024 * 1024
MASS = 100_000
NETLINK_DENIED = "Cannot open netlink socket: Operation not permitted\n"
KEX_BANNER = b"SSH-2.0-OpenSSH_9.6\r\n"
WINDOWS_HEAD = (
    "\r\nActive Connections\r\n\r\n"
    "  Proto  Local Address          Foreign Address        State           PID\r\n"
)


def thirty_ss(i: int) -> str:
    """A healthy host of 30 listeners (a busy application server)."""
    rows = [("tcp", "0.0.0.0", 22, [("sshd", 733)])]
    rows += [("tcp", "0.0.0.0", 8000 + k, [("gunicorn", 2000 + k)]) for k in range(20)]
    rows += [("tcp", "127.0.0.1", 9100 + k, [("exporter", 3000 + k)]) for k in range(8)]
    rows += [("udp", "0.0.0.0", 68, [("dhclient", 640)])]
    return render_ss(rows)


THIRTY_PS = (
    "  733 root\n  640 root\n"
    + "".join(f" {2000 + k} app\n" for k in range(20))
    + "".join(f" {3000 + k} prometheus\n" for k in range(8))
)


def good(name: str, **kw: Any) -> SimHost:
    return SimHost(name, outputs={"ss": GOOD_SS}, ps=GOOD_PS, **kw)


def mass_host(name: str, mass: str) -> SimHost:
    return SimHost(name, outputs={"ss": mass}, ps="4242 haproxy\n")


#: the hostile mix: name → (how to build the host, wrong key?, become?)
def mix_hosts(mass: str) -> list[tuple[SimHost, bool, bool]]:
    return [
        (good("mix-healthy-1"), False, False),
        (good("mix-healthy-2"), False, False),
        (good("mix-healthy-3"), False, False),
        (good("mix-healthy-4"), False, False),
        (good("mix-auth-refused", behaviour="auth_fail"), False, False),
        (good("mix-key-changed"), True, False),
        (good("mix-never-returns", behaviour="hang"), False, False),
        (good("mix-trickle", behaviour="trickle"), False, False),
        (good("mix-flood", behaviour="flood"), False, False),
        (
            SimHost("mix-garbage-lines", outputs={"ss": with_garbage(GOOD_SS)}, ps=GOOD_PS),
            False,
            False,
        ),
        (good("mix-garbage-stream", behaviour="garbage"), False, False),
        (good("mix-disconnect", behaviour="disconnect"), False, False),
        (
            SimHost(
                "mix-ss-not-permitted",
                outputs={"ss": ""},
                step_exit={"ss": 1},
                step_stderr={"ss": NETLINK_DENIED},
            ),
            False,
            False,
        ),
        (good("mix-sudo-password", sudo="password", uid=1000), False, True),
        (good("mix-banner-noise", behaviour="noise"), False, False),
        (mass_host("mix-100k-listeners", mass), False, False),
    ]


# --------------------------------------------------------------------------- server side


async def serve(work: Path, healthy: int) -> None:
    """Start every scenario's hosts, write one inventory per scenario, wait for stdin EOF."""
    mass = mass_ss_output(MASS)
    mix = mix_hosts(mass)
    hosts = [mass_host("mass-100k", mass), good("flood-1", behaviour="flood")]
    hosts.append(
        SimHost(
            "flood-win",
            platform="windows",
            behaviour="flood",
            outputs={
                "netstat-ano": WINDOWS_HEAD,
                "tasklist": '"System","4","Services","0","8 K"\n',
            },
        )
    )
    hosts += [h for h, _, _ in mix]
    hosts += [
        SimHost(f"app-{i:05d}", outputs={"ss": thirty_ss(i)}, ps=THIRTY_PS) for i in range(healthy)
    ]
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    fleet = await start_fleet(
        work,
        hosts,
        host_key=host_key,
        wrong_key=[h.name for h, wrong, _ in mix if wrong],
        user="bench",
    )
    entries = fleet.inventory_hosts()
    for h, _, become in mix:
        if become:
            entries[h.name]["ansible_become"] = True
    async with (
        stalled_server() as silent_port,
        stalled_server(KEX_BANNER) as kex_port,
    ):
        for name, port in (
            ("mix-refused", free_port()),
            ("mix-no-banner", silent_port),
            ("mix-kex-stall", kex_port),
        ):
            entries[name] = {**entries["mix-healthy-1"], "ansible_port": port}

        def inventory(scenario: str, names: list[str]) -> None:
            doc = {"all": {"hosts": {n: entries[n] for n in names}}}
            (work / f"{scenario}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))

        inventory("mass", ["mass-100k"])
        inventory("flood", ["flood-1"])
        inventory("flood-windows", ["flood-win"])
        inventory("mix", [n for n in entries if n.startswith("mix-")])
        inventory("healthy", [n for n in entries if n.startswith("app-")])
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # the parent closes stdin to stop us
    await fleet.stop()


# --------------------------------------------------------------------------- the CLI side


def fleetscan_cli() -> list[str]:
    here = Path(sys.executable).parent / "fleetscan"
    return [str(here)] if here.exists() else [sys.executable, "-m", "fleetscan"]


def measure(work: Path, scenario: str, formats: str, opts: dict[str, Any]) -> dict[str, Any]:
    """One ``fleetscan scan`` of ``scenario``: wall time, peak RSS, exit code, report sizes."""
    out = work / f"out-{scenario}-{formats.replace(',', '-')}"
    argv = [
        *fleetscan_cli(),
        "scan",
        "-i",
        str(work / f"{scenario}.yaml"),
        "-p",
        "baseline",
        "--known-hosts",
        str(work / "known_hosts"),
        "--ssh-config",
        os.devnull,
        "--no-history",
        "-q",
        "-o",
        str(out),
        "--format",
        formats,
        "--max-output-mb",
        str(opts["max_output_mib"]),
        "--host-timeout",
        str(opts["host_timeout"]),
        "--connect-timeout",
        str(opts["connect_timeout"]),
        "--concurrency",
        str(opts["concurrency"]),
    ]
    env = {**os.environ, "SSH_AUTH_SOCK": ""}
    start = time.monotonic()
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    # wait4 gives this child's own rusage (not every child's maximum)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    assert proc.stderr is not None
    err = proc.stderr.read().decode("utf-8", "replace")
    if code not in (0, 1, 3):
        raise SystemExit(f"fleetscan scan {scenario} exited {code}:\n{err[-3000:]}")
    sizes = {p.name: p.stat().st_size for p in sorted(out.iterdir()) if not p.name.startswith(".")}
    return {
        "scenario": scenario,
        "formats": formats,
        "wall": wall,
        "rss_mib": usage.ru_maxrss / 1024,  # KiB on Linux
        "cpu": usage.ru_utime + usage.ru_stime,
        "exit": code,
        "report_mib": sum(sizes.values()) / MIB,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n")[0])
    ap.add_argument(
        "--scenario",
        action="append",
        choices=("mass", "flood", "flood-windows", "mix", "healthy"),
        help="repeatable (default: mass, flood, flood-windows, mix)",
    )
    ap.add_argument("--formats", default="html,csv,json,junit", help="'all' or a --format list")
    ap.add_argument("--also-json-only", action="store_true", help="each scenario again with json")
    ap.add_argument("--hosts", type=int, default=0, help="healthy hosts of 30 listeners")
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--max-output-mib", type=int, default=16)
    ap.add_argument("--host-timeout", type=float, default=30.0)
    ap.add_argument("--connect-timeout", type=float, default=5.0)
    ap.add_argument("--serve", metavar="WORK", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        asyncio.run(serve(Path(args.serve), args.hosts))
        return 0
    scenarios = args.scenario or ["mass", "flood", "flood-windows", "mix"]
    if "healthy" in scenarios and args.hosts <= 0:
        ap.error("--scenario healthy needs --hosts N")
    formats = "html,csv,json,junit" if args.formats == "all" else args.formats
    opts = {
        "concurrency": args.concurrency,
        "max_output_mib": args.max_output_mib,
        "host_timeout": args.host_timeout,
        "connect_timeout": args.connect_timeout,
    }
    rows = []
    with tempfile.TemporaryDirectory(prefix="fleetscan-bench-mem-") as tmp:
        work = Path(tmp)
        with serving("bench.memory", work, args.hosts):
            for scenario in scenarios:
                rows.append(measure(work, scenario, formats, opts))
                if args.also_json_only and formats != "json":
                    rows.append(measure(work, scenario, "json", opts))
    print(
        f"fleetscan CLI memory: max_output {args.max_output_mib} MiB, concurrency "
        f"{args.concurrency}, host_timeout {args.host_timeout:.0f}s, policy baseline, --no-history"
    )
    print(
        f"{'scenario':<9} {'formats':<20} {'wall s':>7} {'cpu s':>6} {'peak RSS MiB':>13} "
        f"{'reports MiB':>12} {'exit':>5}"
    )
    for r in rows:
        print(
            f"{r['scenario']:<9} {r['formats']:<20} {r['wall']:>7.1f} {r['cpu']:>6.1f} "
            f"{r['rss_mib']:>13.0f} {r['report_mib']:>12.1f} {r['exit']:>5}"
        )
        if r["scenario"] == "mass":
            print(
                f"{'':<9} {'':<20} bytes per listener (peak RSS / {MASS:,}): "
                f"{r['rss_mib'] * MIB / MASS:,.0f}"
            )
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
