"""Owners' user names come from the listing, not from ``ps``: a real scan
through a real OpenSSH sshd, with every program the collector script might
start wrapped by a PATH-first logger.

The sshd of this module sets ``PATH`` for its sessions (``SetEnv``) to a
folder of wrappers (``ps``, ``id``, ``uname``, ``ss``, ``netstat``) that log
their name and run the real program — or, when the test drops a ``broken-ss``
file there, make ``ss`` fail so the chain goes on to netstat. A listener run
by ``nobody`` (through runuser) and one held by the root test process must
come out with their users by name, and the log shows which processes the scan
cost the host.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import (
    Opened,
    OpenSockets,
    SshdServer,
    comm_of,
    describe,
    host_entry,
    listeners_for,
    load_report,
    loopback_sshd,
    require,
    run_cli,
    scan_args,
)

pytestmark = [pytest.mark.sshd, pytest.mark.timeout(120)]

WRAPPED = ("ps", "id", "uname", "ss", "netstat")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SYSTEM_PYTHON = "/usr/bin/python3"  # nobody cannot read the test's venv


def _real(program: str) -> str | None:
    return shutil.which(program, path=SYSTEM_PATH)


def _write_wrappers(folder: Path, log: Path) -> None:
    folder.mkdir(mode=0o755)
    for name in WRAPPED:
        real = _real(name)
        run = f'exec {real} "$@"' if real else "exit 127"
        broken = f'[ -e "{folder}/broken-{name}" ] && exit 1\n'
        wrapper = folder / name
        wrapper.write_text(f'#!/bin/sh\necho {name} >>"{log}"\n{broken}{run}\n')
        wrapper.chmod(0o755)


class WrappedSshd:
    """A real sshd whose sessions find the logging wrappers first in PATH."""

    def __init__(self, server: SshdServer, wrappers: Path, log: Path) -> None:
        self.server = server
        self.wrappers = wrappers
        self.log = log

    def ran(self) -> list[str]:
        """The wrapped programs the scans started, in order."""
        return self.log.read_text().split() if self.log.exists() else []

    def break_tool(self, name: str) -> None:
        (self.wrappers / f"broken-{name}").touch()

    def reset(self) -> None:
        self.log.unlink(missing_ok=True)
        for flag in self.wrappers.glob("broken-*"):
            flag.unlink()


@pytest.fixture(scope="module")
def wrapped_sshd(sshd_server: SshdServer, sshd_binary: str) -> Iterator[WrappedSshd]:
    """The session's key material and users, a second sshd with ``SetEnv PATH``."""
    tmp = sshd_server.tmp.parent / "wrapped-sshd"
    tmp.mkdir()
    tmp.chmod(0o755)
    wrappers = tmp / "bin"
    log = tmp / "ran.log"
    _write_wrappers(wrappers, log)
    try:
        with loopback_sshd(
            sshd_binary,
            tmp,
            client_key=sshd_server.client_key,
            keys_dir=sshd_server.keys_dir,
            extra_config=f"SetEnv PATH={wrappers}:{SYSTEM_PATH}\n",
        ) as server:
            yield WrappedSshd(server, wrappers, log)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def nobody_listener() -> Iterator[int]:
    """A TCP listener on 127.0.0.1 held by a process started as ``nobody``
    (runuser), so the socket and its process belong to uid 65534."""
    require(os.geteuid() == 0, "needs root to start a listener as nobody")
    require(shutil.which("runuser") is not None, "runuser (util-linux) is not installed")
    code = (
        "import socket, sys\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
        "print(s.getsockname()[1], flush=True); sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        ["runuser", "-u", "nobody", "--", SYSTEM_PYTHON, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        port = int(proc.stdout.readline())
        yield port
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def root_socket() -> Iterator[int]:
    """A TCP listener held by this (root) test process."""
    socks = OpenSockets()
    try:
        yield socks.tcp("127.0.0.1", 0).port
    finally:
        socks.close()


@pytest.fixture
def wrapped(wrapped_sshd: WrappedSshd) -> Iterator[WrappedSshd]:
    wrapped_sshd.reset()
    yield wrapped_sshd
    wrapped_sshd.reset()


def _scan(wrapped: WrappedSshd, tmp_path: Path) -> dict[str, object]:
    server = wrapped.server
    inventory = server.write_inventory(tmp_path / "hosts.ini", user="root")
    out = tmp_path / "out"
    proc = run_cli(scan_args(inventory, out, server.known_hosts), cwd=tmp_path)
    host = host_entry(load_report(out, proc), "local")
    assert host["status"] == "ok", (host["message"], describe(proc))
    return host


def _users_on(host: dict[str, object], port: int) -> set[tuple[str, int | None, str | None]]:
    (found,) = listeners_for(host, Opened("tcp", 4, "127.0.0.1", port))
    return {(p["name"], p["pid"], p["user"]) for p in found["processes"]}


def _ss_row(port: int) -> str:
    out = subprocess.run(
        [_real("ss") or "ss", "-Htlnpe", f"sport = :{port}"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout
    (row,) = [line for line in out.splitlines() if f"127.0.0.1:{port} " in line]
    return row


def _listener_pid(port: int) -> int:
    row = _ss_row(port)
    return int(row.split("pid=", 1)[1].split(",", 1)[0])


def test_ss_names_the_users_of_a_nobody_and_a_root_socket_without_running_ps(
    wrapped: WrappedSshd, nobody_listener: int, root_socket: int, tmp_path: Path
) -> None:
    require(_real("ss") is not None, "iproute2 ss is not installed")
    # the premise: ss -e prints uid: for nobody's socket and leaves it out for root's
    assert " uid:65534 " in _ss_row(nobody_listener)
    root_row = _ss_row(root_socket)
    assert " ino:" in root_row and " uid:" not in root_row

    host = _scan(wrapped, tmp_path)

    assert host["collector"] == "ss -tulnpe"
    # the scan cost the host ss alone: no ps, no id, no uname
    assert wrapped.ran() == ["ss"]
    nobody_pid = _listener_pid(nobody_listener)
    assert _users_on(host, nobody_listener) == {("python3", nobody_pid, "nobody")}
    assert _users_on(host, root_socket) == {(comm_of("self"), os.getpid(), "root")}


def test_netstat_names_the_users_from_its_user_column_and_asks_ps_only_for_names(
    wrapped: WrappedSshd, nobody_listener: int, root_socket: int, tmp_path: Path
) -> None:
    require(_real("netstat") is not None, "net-tools netstat is not installed")
    # the premise: net-tools prints the numeric uid in the -e User column
    out = subprocess.run(
        [_real("netstat") or "netstat", "-tlnpeW"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout
    (row,) = [x for x in out.splitlines() if f"127.0.0.1:{nobody_listener} " in x]
    assert row.split()[6] == "65534"
    wrapped.break_tool("ss")

    host = _scan(wrapped, tmp_path)

    assert host["collector"] == "netstat -tulnpeW"
    # ps runs for the comm only (net-tools prints argv[0] cut to fit); never id
    assert wrapped.ran() == ["ss", "netstat", "ps"]
    nobody_pid = _listener_pid(nobody_listener)
    assert _users_on(host, nobody_listener) == {("python3", nobody_pid, "nobody")}
    assert _users_on(host, root_socket) == {(comm_of("self"), os.getpid(), "root")}
