"""The orchestrator: scan every target at once, bounded, each within its deadline.

The runner connects, enforces the per-host deadline and maps failures to
statuses; what runs on the host and what its output means belongs to the
collectors (:func:`fleetscan.collectors.collect`). Failure is data (nornir's
lesson): whatever happens on one host — refused, timed out, hostile output,
a bug in a parser — becomes that host's :class:`~fleetscan.model.HostScan`
status, and the other hosts carry on. Results are streamed as they complete
(:func:`scan_stream`), so a fleet of thousands is never held as raw output in
memory.

Where a status comes from is written out in docs/architecture.md ("Statuses").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from fleetscan import collectors
from fleetscan.errors import (
    AuthFailedError,
    ChannelError,
    CommandTimeout,
    ConfigError,
    HandshakeTimeout,
    HostKeyError,
    HostKeyUnknown,
    TransportError,
    UnreachableError,
)
from fleetscan.model import CommandEvidence, HostScan, Status, Target
from fleetscan.transports import get_transport
from fleetscan.transports.base import (
    DEFAULT_HOST_TIMEOUT,
    DEFAULT_MAX_OUTPUT,
    ConnectSettings,
    Transport,
)


@dataclass(frozen=True)
class ScanSettings:
    """How the fleet is scanned. Defaults are what a user can live with."""

    connect: ConnectSettings = field(default_factory=ConnectSettings)
    concurrency: int = 50
    host_timeout: float = DEFAULT_HOST_TIMEOUT  # connect + every command, per host
    max_output: int = DEFAULT_MAX_OUTPUT
    transport: str | None = None  # overrides every target's own transport


_STATUS_OF: tuple[tuple[type[TransportError], Status], ...] = (
    (HostKeyUnknown, Status.HOSTKEY_UNKNOWN),
    (HostKeyError, Status.HOSTKEY_MISMATCH),
    (AuthFailedError, Status.AUTH_FAILED),
    (HandshakeTimeout, Status.TIMEOUT),
    (CommandTimeout, Status.TIMEOUT),
    (UnreachableError, Status.UNREACHABLE),
    (ChannelError, Status.UNREACHABLE),
)


def status_for(exc: TransportError) -> Status:
    for kind, status in _STATUS_OF:
        if isinstance(exc, kind):
            return status
    return Status.UNREACHABLE


class HostScanner:
    """Scans single hosts with a set of settings; transports are created once."""

    def __init__(
        self,
        settings: ScanSettings,
        transports: dict[str, Transport] | None = None,
    ) -> None:
        self.settings = settings
        self._transports: dict[str, Transport] = dict(transports or {})

    def transport_for(self, target: Target) -> Transport:
        name = self.settings.transport or target.transport
        if name not in self._transports:
            transport = get_transport(name)
            size_for = getattr(transport, "size_for", None)
            if size_for is not None:  # thread-backed transports: a worker per host at once
                size_for(self.settings.concurrency)
            self._transports[name] = transport
        return self._transports[name]

    async def scan(self, target: Target) -> HostScan:
        started = time.time()
        evidence: list[CommandEvidence] = []

        def done(status: Status, message: str, **kw: object) -> HostScan:
            return HostScan(
                target=target,
                status=status,
                message=message,
                evidence=tuple(evidence),
                started=started,
                finished=time.time(),
                **kw,  # type: ignore[arg-type]
            )

        try:
            transport = self.transport_for(target)
        except ConfigError as exc:  # the app checks names up front; a library caller may not
            return done(Status.INTERNAL_ERROR, str(exc))
        budget = self.settings.host_timeout
        deadline = asyncio.get_running_loop().time() + budget
        try:
            async with asyncio.timeout_at(deadline):
                session = await transport.connect(target, self.settings.connect)
                try:
                    host = collectors.HostSession(
                        target,
                        session,
                        deadline=deadline,
                        budget=budget,
                        max_output=self.settings.max_output,
                        evidence=evidence,
                    )
                    got = await collectors.collect(host)
                finally:
                    await session.close()
        except TimeoutError:
            return done(Status.TIMEOUT, f"host did not finish within its {budget:.0f}s deadline")
        except TransportError as exc:
            return done(status_for(exc), str(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or a surprise must stay this host's problem
            return done(Status.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
        return done(
            got.status,
            got.message,
            platform=got.platform,
            collector=got.collector,
            listeners=got.listeners,
            unparsed=got.unparsed,
        )


async def scan_stream(
    targets: Sequence[Target],
    settings: ScanSettings,
    *,
    transports: dict[str, Transport] | None = None,
) -> AsyncIterator[HostScan]:
    """Scan all targets, at most ``settings.concurrency`` at a time; yield each
    HostScan as soon as it is done. Cancelling the iteration (Ctrl-C) cancels
    the scans still running; their connections are closed."""
    scanner = HostScanner(settings, transports)
    gate = asyncio.Semaphore(max(1, settings.concurrency))

    async def one(target: Target) -> HostScan:
        async with gate:
            return await scanner.scan(target)

    tasks = [asyncio.create_task(one(t), name=f"scan:{t.name}") for t in targets]
    try:
        for fut in asyncio.as_completed(tasks):
            yield await fut
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def scan_all(
    targets: Sequence[Target],
    settings: ScanSettings,
    *,
    transports: dict[str, Transport] | None = None,
) -> list[HostScan]:
    """Every HostScan, in inventory order (for a worker or a library caller)."""
    order = {t.name: i for i, t in enumerate(targets)}
    results = [s async for s in scan_stream(targets, settings, transports=transports)]
    return sorted(results, key=lambda s: order.get(s.target.name, 0))


def interrupted_scan(target: Target) -> HostScan:
    """The status of a host whose scan was stopped by Ctrl-C / SIGTERM."""
    now = time.time()
    return HostScan(
        target=target,
        status=Status.INTERRUPTED,
        message="the run was interrupted before this host finished",
        started=now,
        finished=now,
    )
