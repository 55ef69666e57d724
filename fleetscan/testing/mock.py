"""An in-memory transport for unit tests (httpx's ``MockTransport`` is the model).

:class:`MockTransport` is a real implementation of the
:class:`~fleetscan.transports.base.Transport` protocol, not a patch: a
handler function plays the host. It is given each command as a
:class:`MockCall` and returns a :class:`MockReply` (or raises a
:class:`~fleetscan.errors.TransportError`, as a real transport would); the
session enforces the per-command timeout and output cap exactly as the SSH
transports do, and every call is recorded in ``transport.calls``::

    def host(call: MockCall) -> MockReply:
        if call.command == "uname -s":
            return MockReply("Linux\\n")
        return MockReply(stderr="sh: not found", exit_status=127)

    scans = await scan_all(targets, settings, transports={"mock": MockTransport(host)})

``connect`` may be a function too: raise from it to play an unreachable host.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fleetscan.errors import CommandTimeout
from fleetscan.model import Target
from fleetscan.transports.base import CommandResult, ConnectSettings


@dataclass(frozen=True)
class MockCall:
    """One command as the host received it."""

    target: Target
    command: str
    stdin: str | None
    timeout: float
    max_output: int


@dataclass(frozen=True)
class MockReply:
    """What the host answers: text is encoded as UTF-8, bytes are sent as they are."""

    stdout: str | bytes = b""
    stderr: str | bytes = b""
    exit_status: int | None = 0


#: a CommandResult is handed back exactly as returned (a buggy transport, for
#: fault-isolation tests); a MockReply is encoded and capped like real output
Reply = MockReply | CommandResult
Handler = Callable[[MockCall], Reply | Awaitable[Reply]]
ConnectHook = Callable[[Target], Awaitable[None] | None]


def _bytes(data: str | bytes) -> bytes:
    return data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data


class MockSession:
    def __init__(self, transport: MockTransport, target: Target) -> None:
        self._transport = transport
        self._target = target
        self.closed = False

    async def run(
        self, command: str, *, stdin: str | None = None, timeout: float, max_output: int
    ) -> CommandResult:
        call = MockCall(self._target, command, stdin, timeout, max_output)
        self._transport.calls.append(call)
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                reply = self._transport.handler(call)
                if inspect.isawaitable(reply):
                    reply = await reply
        except TimeoutError:
            raise CommandTimeout(f"command did not finish within {timeout:.0f}s") from None
        if isinstance(reply, CommandResult):
            return reply
        assert isinstance(reply, MockReply), f"handler returned {reply!r}, not a MockReply"
        out = _bytes(reply.stdout)
        cut = len(out) > max_output
        return CommandResult(
            command=command,
            exit_status=None if cut else reply.exit_status,
            stdout=out[:max_output],
            stderr=_bytes(reply.stderr)[:max_output],
            duration=time.monotonic() - started,
            truncated=cut,
        )

    async def close(self) -> None:
        self.closed = True


@dataclass
class MockTransport:
    """A transport whose hosts are ``handler`` (see the module docstring)."""

    handler: Handler
    on_connect: ConnectHook | None = None
    name: str = "mock"
    calls: list[MockCall] = field(default_factory=list)
    sessions: list[MockSession] = field(default_factory=list)

    async def connect(self, target: Target, settings: ConnectSettings) -> MockSession:
        if self.on_connect is not None:
            hook = self.on_connect(target)
            if inspect.isawaitable(hook):
                await hook
        session = MockSession(self, target)
        self.sessions.append(session)
        return session
