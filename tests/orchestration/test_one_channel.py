"""One connection, one exec channel and no process the job does not need per POSIX host.

The real collector script runs in this machine's ``sh`` (the local
transport): PATH shims log every ``ps``, ``id``, ``uname``, ``ss`` and
``netstat`` the script starts, so the test sees exactly which processes a
scan costs the host. Simulated hosts (real asyncssh servers) show the exec
channels one scan opens.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pwd
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetscan.collectors.owners import parse_passwd, with_uid_names
from fleetscan.model import HostScan, Listener, Process, Status, Target
from fleetscan.runner import ScanSettings, scan_all
from fleetscan.testing.fleet import sim_fleet
from fleetscan.testing.simhost import SimHost
from tests.orchestration.test_host_statuses import GOOD_PS, GOOD_SS

LOGGED = ("ps", "id", "uname", "ss", "netstat", "cat", "ls")


def _shims(folder: Path, log: Path, broken: tuple[str, ...] = ()) -> None:
    """Wrappers that log their name, then run the real program (or fail)."""
    folder.mkdir()
    for name in LOGGED:
        real = subprocess.run(
            ["sh", "-c", f"command -v {name}"], capture_output=True, text=True, check=False
        ).stdout.strip()
        body = "exit 1" if name in broken or not real else f'exec {real} "$@"'
        shim = folder / name
        shim.write_text(f'#!/bin/sh\necho {name} >>"{log}"\n{body}\n')
        shim.chmod(0o755)


@pytest.fixture
def nobody_socket() -> Iterator[int]:
    """A TCP listener on loopback held by a process running as ``nobody``."""
    if os.geteuid() != 0:
        pytest.skip("needs root to start a listener as nobody")
    nobody = pwd.getpwnam("nobody")
    code = (
        "import os, socket, sys\n"
        f"os.setgid({nobody.pw_gid}); os.setuid({nobody.pw_uid})\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
        "print(s.getsockname()[1], flush=True); sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    try:
        yield port
    finally:
        proc.kill()
        proc.wait()


def _scan_here(bin_dir: Path, platform: str | None = None) -> HostScan:
    target = Target("here", "127.0.0.1", transport="local", platform=platform)
    old = os.environ["PATH"]
    os.environ["PATH"] = f"{bin_dir}:{old}"
    try:
        return asyncio.run(scan_all([target], ScanSettings()))[0]
    finally:
        os.environ["PATH"] = old


def _listener(scan: HostScan, port: int) -> Listener:
    found = [x for x in scan.listeners if x.port == port and x.address == "127.0.0.1"]
    assert len(found) == 1, scan.listeners
    return found[0]


def test_a_linux_host_with_ss_costs_one_channel_and_ss_alone(
    tmp_path: Path, nobody_socket: int
) -> None:
    own = socket.socket()
    own.bind(("127.0.0.1", 0))
    own.listen()
    own_port = own.getsockname()[1]
    log = tmp_path / "ran.log"
    _shims(tmp_path / "bin", log)
    try:
        scan = _scan_here(tmp_path / "bin")
    finally:
        own.close()
    assert scan.status is Status.OK, scan.message
    assert scan.platform == "linux"
    # one command (the script) and, inside it, ss and nothing else: no ps, no id
    assert [e.command for e in scan.evidence] == ["sh -s <fleetscan posix collector>"]
    assert log.read_text().split() == ["ss"]
    assert scan.collector == "ss -tulnpe"
    # owners named from the socket's uid (ss -e) and /etc/passwd
    assert {p.user for p in _listener(scan, nobody_socket).processes} == {"nobody"}
    me = _listener(scan, own_port)
    assert {(p.pid, p.user) for p in me.processes} == {
        (os.getpid(), pwd.getpwuid(os.geteuid()).pw_name)
    }


def test_the_netstat_fallback_names_users_from_its_user_column_and_runs_ps_for_names(
    tmp_path: Path, nobody_socket: int
) -> None:
    if subprocess.run(["sh", "-c", "command -v netstat"], check=False).returncode != 0:
        pytest.skip("net-tools netstat is not installed")
    log = tmp_path / "ran.log"
    _shims(tmp_path / "bin", log, broken=("ss",))
    scan = _scan_here(tmp_path / "bin", platform="linux")
    assert scan.status is Status.OK, scan.message
    assert scan.collector == "netstat -tulnpeW"
    ran = log.read_text().split()
    # ps only for the comm (netstat prints argv[0] cut to fit), never id
    assert ran == ["ss", "netstat", "ps"]
    assert {p.user for p in _listener(scan, nobody_socket).processes} == {"nobody"}


def test_the_proc_fallback_names_uids_from_passwd_without_ps(
    tmp_path: Path, nobody_socket: int
) -> None:
    log = tmp_path / "ran.log"
    _shims(tmp_path / "bin", log, broken=("ss", "netstat"))
    scan = _scan_here(tmp_path / "bin", platform="linux")
    assert scan.collector == "/proc/net"
    assert "ps" not in log.read_text().split()
    assert {p.user for p in _listener(scan, nobody_socket).processes} == {"nobody"}


def test_simulated_hosts_get_one_exec_channel_and_windows_one_more(tmp_path: Path) -> None:
    linux = SimHost("lin", outputs={"ss": GOOD_SS}, ps=GOOD_PS)
    old = SimHost("old", outputs={"ss": "", "netstat": ""}, step_exit={"ss": 1}, ps=GOOD_PS)
    win = SimHost(
        "win", platform="windows", outputs={"netstat-ano": "", "tasklist": ""}, shell="powershell"
    )

    async def go() -> list[HostScan]:
        async with sim_fleet(tmp_path, [linux, old, win]) as fleet:
            # no platform in the inventory: the script finds it out
            targets = [dataclasses.replace(t, platform=None) for t in fleet.targets]
            return await scan_all(targets, fleet.settings())

    scans = {s.host: s for s in asyncio.run(go())}
    assert linux.commands == ["sh -s"] and old.commands == ["sh -s"]
    assert scans["lin"].status is Status.OK and scans["lin"].platform == "linux"
    nginx = next(x for x in scans["lin"].listeners if x.port == 443)
    assert [(p.pid, p.user) for p in nginx.processes] == [(1200, "root"), (1201, "root")]
    assert win.commands == ["sh -s", "netstat -ano", "tasklist /FO CSV /NH"]
    assert scans["win"].platform == "windows"


def test_proc_uids_are_named_from_passwd_and_unknown_ones_stay_numbers() -> None:
    names = parse_passwd("0 root\n33 www-data\n33 shadowed\nbad line\n")
    assert names == {"0": "root", "33": "www-data"}
    procs = (Process("a", 7, "33"), Process("b", 8, "4242"), Process("c", 9, "alice"))
    lst = Listener("tcp", 4, "0.0.0.0", 80, "LISTEN", procs)
    (named,) = with_uid_names([lst], names)
    assert [p.user for p in named.processes] == ["www-data", "4242", "alice"]
