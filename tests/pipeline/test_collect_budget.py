"""The runner connects and keeps the deadline; collectors run the commands.

Driven through :class:`fleetscan.testing.mock.MockTransport`, a real
implementation of the transport protocol whose host is a function: it
records what each command was given (its timeout above all) and enforces
that timeout like the SSH transports.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from fleetscan import collectors
from fleetscan.demo import WINDOWS_NETSTAT, WINDOWS_TASKLIST
from fleetscan.errors import AuthFailedError
from fleetscan.model import HostScan, Status, Target
from fleetscan.runner import ScanSettings, scan_all
from fleetscan.testing.mock import MockCall, MockReply, MockTransport

BUDGET = 5.0
PROBE_DELAY = 1.0


def scan_with(transport: MockTransport, target: Target, budget: float = BUDGET) -> HostScan:
    settings = ScanSettings(host_timeout=budget, transport="mock")
    return asyncio.run(scan_all([target], settings, transports={"mock": transport}))[0]


def test_each_command_gets_the_remaining_host_budget_not_the_full_one() -> None:
    async def host(call: MockCall) -> MockReply:
        if "sudo -n " in (call.stdin or ""):
            await asyncio.sleep(PROBE_DELAY)  # a slow sudo that then refuses: budget eaten
            return MockReply(stderr="sudo: a password is required\n", exit_status=1)
        return MockReply(stderr="sh: not found\n", exit_status=127)

    transport = MockTransport(host)
    scan = scan_with(transport, Target("slow", "127.0.0.1", platform="linux", become=True))
    first, script = transport.calls
    assert first.timeout <= BUDGET
    assert script.command == "sh -s" and "sudo -n " not in (script.stdin or "")
    # the first command slept PROBE_DELAY: what is left for the next is at most the rest
    assert script.timeout <= BUDGET - PROBE_DELAY
    assert scan.status is Status.NO_COLLECTOR
    assert all(s.closed for s in transport.sessions)


def test_a_command_stopped_by_the_budget_is_a_timeout_naming_the_host_deadline() -> None:
    async def host(call: MockCall) -> MockReply:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    transport = MockTransport(host)
    scan = scan_with(transport, Target("hangs", "127.0.0.1", platform="linux"), budget=1.0)
    assert scan.status is Status.TIMEOUT
    assert "1s deadline" in scan.message
    assert all(s.closed for s in transport.sessions)


def test_a_connect_failure_is_mapped_by_the_runner_not_the_collector() -> None:
    def refuse(target: Target) -> None:
        raise AuthFailedError(f"authentication refused for {target.name}")

    transport = MockTransport(lambda call: MockReply(), on_connect=refuse)
    scan = scan_with(transport, Target("locked", "127.0.0.1"))
    assert scan.status is Status.AUTH_FAILED
    assert transport.calls == []


def test_the_windows_collector_joins_netstat_with_tasklist() -> None:
    def host(call: MockCall) -> MockReply:
        if call.command == collectors.WINDOWS_NETSTAT:
            return MockReply(WINDOWS_NETSTAT)
        if call.command == collectors.WINDOWS_TASKLIST:
            return MockReply(WINDOWS_TASKLIST)
        return MockReply(stderr="'x' is not recognized as an internal command", exit_status=1)

    transport = MockTransport(host)
    scan = scan_with(transport, Target("win", "127.0.0.1", platform="windows"))
    assert scan.status is Status.OK, scan.message
    assert [c.command for c in transport.calls] == [
        collectors.WINDOWS_NETSTAT,
        collectors.WINDOWS_TASKLIST,
    ]
    by_port = {x.port: x.process_names for x in scan.listeners if x.family == 4}
    assert by_port[22] == ("sshd.exe",)
    assert [e.command for e in scan.evidence] == [
        collectors.WINDOWS_NETSTAT,
        collectors.WINDOWS_TASKLIST,
    ]


@pytest.mark.parametrize("platform", ["linux", "darwin", "freebsd", "windows"])
def test_every_platform_has_one_collector(platform: str) -> None:
    assert collectors.COLLECTORS[platform].platform == platform


def test_an_unknown_platform_has_no_collector() -> None:
    def plan9(call: MockCall) -> MockReply:
        # the script's own platform line, as a host where uname says Plan9 prints it
        nonce = re.search(r"@@FLEETSCAN-([0-9a-f]+)", call.stdin or "")
        assert nonce is not None
        m = collectors.marker(nonce.group(1))
        return MockReply(f"{m} os Plan9\n{m} uid 0\n{m} none\n")

    transport = MockTransport(plan9)
    scan = scan_with(transport, Target("odd", "127.0.0.1"))
    assert scan.status is Status.NO_COLLECTOR
    assert "plan9" in scan.message
