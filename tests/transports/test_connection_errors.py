"""Issue 8 section 5, transport parts: OS-level connection errors end the same
way on both transports, a connect timeout is told apart from a silent SSH
server, and paramiko scans a 1,000-host fleet with more than 256 at once."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import resource
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetscan.model import HostScan, Status, Target
from fleetscan.runner import scan_all
from fleetscan.testing.fleet import sim_fleet
from fleetscan.testing.simhost import stalled_server
from tests.orchestration.test_host_statuses import assert_good_listeners, good

TRANSPORTS = ["asyncssh", "paramiko"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tcp_reset_while_the_listing_is_written_is_a_lost_connection(
    tmp_path: Path, transport: str
) -> None:
    async def main() -> HostScan:
        async with sim_fleet(tmp_path, [good("resets", behaviour="reset")]) as fleet:
            settings = dataclasses.replace(fleet.settings(), transport=transport)
            return (await scan_all(fleet.targets, settings))[0]

    scan = asyncio.run(main())
    assert scan.status is Status.UNREACHABLE, scan.message
    assert scan.message.startswith("connection lost while the command ran"), scan.message
    assert "Error" not in scan.message  # no Python exception names


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A listening socket that never accepts, its accept queue full: Linux
    drops further SYNs, so a connect to it times out in silence."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers = []
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    try:
        yield port
    finally:
        for s in fillers:
            s.close()
        listener.close()


def _target(port: int) -> Target:
    return Target("t", "127.0.0.1", port=port, user="tester")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_connect_timeout_is_not_reported_as_a_silent_ssh_server(
    tmp_path: Path, transport: str, full_backlog: int
) -> None:
    async def main() -> tuple[HostScan, HostScan]:
        async with sim_fleet(tmp_path, [good("unused")]) as fleet:
            settings = dataclasses.replace(fleet.settings(connect_timeout=2.0), transport=transport)
            (blackholed,) = await scan_all([_target(full_backlog)], settings)
            async with stalled_server() as silent_port:
                (silent,) = await scan_all([_target(silent_port)], settings)
            return blackholed, silent

    blackholed, silent = asyncio.run(main())
    assert blackholed.status is Status.TIMEOUT
    assert "no TCP connection within 2s (connect timed out" in blackholed.message
    assert "banner" not in blackholed.message
    assert silent.status is Status.TIMEOUT
    assert "TCP accepted but no banner" in silent.message


@pytest.mark.timeout(900)
def test_paramiko_scans_1000_hosts_with_more_than_256_at_once(tmp_path: Path) -> None:
    """1,000 targets on a few loopback servers, 300 at once: every host is
    tried and scanned ok (no thread starvation, no timeout)."""
    count = 1000

    async def main() -> list[HostScan]:
        async with sim_fleet(tmp_path, [good(f"srv-{i}") for i in range(4)]) as fleet:
            base = fleet.targets
            targets = [
                dataclasses.replace(base[i % len(base)], name=f"host-{i:04d}") for i in range(count)
            ]
            settings = dataclasses.replace(
                fleet.settings(connect_timeout=60.0),
                transport="paramiko",
                concurrency=300,
                host_timeout=600.0,
            )
            return await scan_all(targets, settings)

    # every descriptor of the run numbered above 1023, as in a long-running process
    # with many hosts at once: select() fails there, the transport must not use it
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 16384)), hard))
    padding = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        assert padding[-1] > 1023
        scans = asyncio.run(main())
    finally:
        for fd in padding:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert len(scans) == count
    assert {s.status for s in scans} == {Status.OK}, {
        s.target.name: s.message for s in scans if s.status is not Status.OK
    }
    assert_good_listeners(scans[0])
    assert_good_listeners(scans[-1])


def test_the_paramiko_pool_is_sized_from_the_concurrency() -> None:
    from fleetscan.transports.paramiko_transport import SPARE_WORKERS, ParamikoTransport

    transport = ParamikoTransport()
    transport.size_for(1000)
    assert transport._pool._max_workers == 1000 + SPARE_WORKERS
