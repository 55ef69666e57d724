"""The local transport scans the machine the tests run on, for real, and keeps
the transport contract: stdin, exit status, caps, timeouts, process-group kill."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleetscan.errors import CommandTimeout
from fleetscan.model import HostScan, Status, Target
from fleetscan.runner import ScanSettings, scan_all
from fleetscan.transports import get_transport
from fleetscan.transports.base import CommandResult, ConnectSettings
from fleetscan.transports.local import LocalTransport, is_this_machine
from tests.unraisable import unraisable

LOCALHOST = Target("localhost", "localhost", transport="local")


@pytest.fixture
def tcp_listener() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


@pytest.fixture
def udp_socket() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def scan_localhost(target: Target = LOCALHOST) -> HostScan:
    return asyncio.run(scan_all([target], ScanSettings(host_timeout=60.0)))[0]


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_local_scan_finds_a_socket_this_process_opened_with_its_pid(
    proto: str, request: pytest.FixtureRequest
) -> None:
    port = request.getfixturevalue("tcp_listener" if proto == "tcp" else "udp_socket")
    scan = scan_localhost()
    assert scan.status.complete, scan.message
    assert scan.platform == "linux"
    [mine] = [x for x in scan.listeners if x.proto == proto and x.port == port]
    assert mine.address == "127.0.0.1"
    assert os.getpid() in {p.pid for p in mine.processes}


def test_settings_transport_local_scans_this_machine_too(tcp_listener: int) -> None:
    target = Target("localhost", "127.0.0.1")  # inventory says asyncssh; the run says local
    scans = asyncio.run(scan_all([target], ScanSettings(transport="local")))
    assert tcp_listener in {x.port for x in scans[0].listeners}


@pytest.mark.parametrize("address", ["db-07.example.com", "10.0.0.7", "192.0.2.1"])
def test_local_transport_refuses_a_host_that_is_not_this_machine(address: str) -> None:
    scan = scan_localhost(Target("db-07", address, transport="local"))
    assert scan.status is Status.UNREACHABLE
    assert "only this machine" in scan.message
    assert scan.listeners == ()


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("127.0.0.1", True),
        ("127.0.1.1", True),
        ("::1", True),
        ("[::1]", True),
        (socket.gethostname(), True),
        ("10.0.0.7", False),
        ("localhost.example.com", False),
    ],
)
def test_names_of_this_machine(address: str, local: bool) -> None:
    assert is_this_machine(address) is local


def run(
    command: str, *, stdin: str | None = None, timeout: float = 30.0, max_output: int = 1 << 20
) -> CommandResult:
    async def main() -> CommandResult:
        session = await LocalTransport().connect(LOCALHOST, ConnectSettings())
        try:
            return await session.run(command, stdin=stdin, timeout=timeout, max_output=max_output)
        finally:
            await session.close()

    return asyncio.run(main())


def test_registry_returns_the_local_transport() -> None:
    assert get_transport("local").name == "local"


@pytest.mark.parametrize(
    ("command", "stdin", "stdout", "stderr", "status"),
    [
        ("cat", "line one\nline two\n", b"line one\nline two\n", b"", 0),
        ("sh -s", "echo from-script; exit 3\n", b"from-script\n", b"", 3),
        ("echo oops >&2; exit 2", None, b"", b"oops\n", 2),
        ('read x; echo "got $x"', None, b"got \n", b"", 0),  # stdin closed: EOF, no hang
    ],
)
def test_command_gets_stdin_and_returns_streams_and_status(
    command: str, stdin: str | None, stdout: bytes, stderr: bytes, status: int
) -> None:
    result = run(command, stdin=stdin)
    assert (result.stdout, result.stderr, result.exit_status) == (stdout, stderr, status)
    assert not result.truncated


def test_big_stdin_and_big_output_do_not_deadlock_on_full_pipes() -> None:
    script = "x" * (4 * 1024 * 1024)
    result = run("cat", stdin=script, max_output=8 * 1024 * 1024)
    assert result.exit_status == 0
    assert len(result.stdout) == len(script)


@pytest.mark.parametrize(
    ("command", "stream"),
    [("yes fleetscan", "stdout"), ("yes fleetscan >&2", "stderr")],
)
def test_endless_output_is_cut_at_the_cap_and_the_command_killed(command: str, stream: str) -> None:
    result = run(command, max_output=100_000)
    assert result.truncated
    assert result.exit_status is None
    data = result.stdout if stream == "stdout" else result.stderr
    assert 0 < len(data) <= 100_000
    assert data.startswith(b"fleetscan\n")


def test_command_over_its_timeout_raises_and_its_children_are_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    with pytest.raises(CommandTimeout, match="did not finish"):
        run(f"sleep 300 & echo $! > {pidfile}; wait", timeout=0.5)
    child = int(pidfile.read_text())
    # the background sleep was in the killed process group: gone, or a zombie
    # waiting for an init that does not reap in this container
    status = Path(f"/proc/{child}/status")
    if status.exists():
        state = next(x for x in status.read_text().splitlines() if x.startswith("State:"))
        assert "Z" in state.split()[1]


@pytest.mark.parametrize(
    ("command", "kw"),
    [
        ("sleep 300", {"timeout": 0.5}),  # over its timeout: killed
        ("yes fleetscan", {"max_output": 100_000}),  # flooding: cut and killed
        ("echo done", {}),
    ],
    ids=["timeout", "flood", "normal"],
)
def test_no_subprocess_transport_outlives_the_command(command: str, kw: dict[str, Any]) -> None:
    """Every way a command ends leaves its pipes read to EOF and asyncio's
    subprocess transport closed, inside the run's own event loop. A transport
    left open is closed by the garbage collector after the loop is gone
    ("Event loop is closed"), and holds its pipes until then: each cycle of a
    long watch would leak them."""
    with unraisable() as leaked, contextlib.suppress(CommandTimeout):
        run(command, **kw)
    assert leaked == []


def test_a_cancelled_command_leaves_no_subprocess_transport_behind() -> None:
    """Ctrl-C / SIGTERM cancel the scan's tasks: the command is killed and its
    transport closed before the loop ends, not by the garbage collector."""

    async def main() -> None:
        session = await LocalTransport().connect(LOCALHOST, ConnectSettings())
        task = asyncio.ensure_future(session.run("sleep 300", timeout=60, max_output=1 << 20))
        await asyncio.sleep(0.3)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    with unraisable() as leaked:
        asyncio.run(main())
    assert leaked == []
