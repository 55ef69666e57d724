"""A bug stays the problem of the host it happened on.

No parser raises on any input (the property tests of tests/parsers feed them
garbage and cut outputs), so the runner's last line of defence — an
unexpected exception becomes that host's ``internal_error`` — is driven here
by :class:`~fleetscan.testing.mock.MockTransport` (a real implementation of
the Transport protocol) breaking in the ways a buggy transport or collector
would: raising on connect, raising while a command runs, or handing back text
where the collectors expect bytes. They run
in one scan with healthy hosts reached over real SSH; only the broken hosts
change status.
"""

from __future__ import annotations

import asyncio

import pytest

from fleetscan.model import HostScan, Status, Target
from fleetscan.runner import scan_all
from fleetscan.testing.fleet import sim_fleet
from fleetscan.testing.mock import MockCall, MockTransport
from fleetscan.transports.base import CommandResult, Transport
from tests.orchestration.test_host_statuses import assert_good_listeners, good


def broken(mode: str) -> MockTransport:
    """A transport that connects without any network and then breaks as ``mode`` says."""

    def connect(target: Target) -> None:
        if mode == "connect-raises":
            raise RuntimeError("transport bug during connect")

    def run(call: MockCall) -> CommandResult:
        if mode == "run-raises":
            raise RuntimeError("session exploded while running the command")
        # a transport bug: decoded text where the protocol promises bytes
        text: bytes = "Linux\n"  # type: ignore[assignment]
        return CommandResult(call.command, 0, text, b"", 0.0)

    return MockTransport(run, on_connect=connect, name=mode)


BROKEN = [
    ("connect-raises", "RuntimeError: transport bug during connect"),
    ("run-raises", "RuntimeError: session exploded while running the command"),
    ("text-not-bytes", "AttributeError"),
]


@pytest.fixture(scope="module")
def isolation_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, HostScan], int]:
    tmp = tmp_path_factory.mktemp("isolation")
    mocks = {mode: broken(mode) for mode, _ in BROKEN}
    transports: dict[str, Transport] = dict(mocks)

    async def main() -> dict[str, HostScan]:
        async with sim_fleet(tmp, [good("healthy-1"), good("healthy-2")]) as fleet:
            # never connected to: the mock transports reach no network
            buggy = [Target(mode, "127.0.0.1", transport=mode) for mode, _ in BROKEN]
            scans = await scan_all(
                [fleet.targets[0], *buggy, fleet.targets[1]],
                fleet.settings(connect_timeout=2.0, host_timeout=6.0),
                transports=transports,
            )
            return {s.host: s for s in scans}

    scans = asyncio.run(main())
    return scans, sum(not s.closed for m in mocks.values() for s in m.sessions)


@pytest.mark.parametrize(("mode", "words"), BROKEN, ids=[m for m, _ in BROKEN])
def test_a_bug_on_one_host_is_internal_error_for_that_host_only(
    mode: str, words: str, isolation_run: tuple[dict[str, HostScan], int]
) -> None:
    scans, _ = isolation_run
    scan = scans[mode]
    assert scan.status is Status.INTERNAL_ERROR, scan.message
    assert words in scan.message
    assert scan.listeners == ()
    assert not scan.status.complete


def test_healthy_hosts_in_the_same_run_are_complete(
    isolation_run: tuple[dict[str, HostScan], int],
) -> None:
    scans, _ = isolation_run
    assert set(scans) == {"healthy-1", "healthy-2", *(m for m, _ in BROKEN)}
    for name in ("healthy-1", "healthy-2"):
        assert scans[name].status is Status.OK, scans[name].message
        assert_good_listeners(scans[name])


def test_a_session_is_closed_even_when_its_host_hit_a_bug(
    isolation_run: tuple[dict[str, HostScan], int],
) -> None:
    _, left_open = isolation_run
    assert left_open == 0
