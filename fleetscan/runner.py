"""The orchestrator: scan every target at once, bounded, each within its deadline.

Failure is data (nornir's lesson): whatever happens on one host — refused,
timed out, hostile output, a bug in a parser — becomes that host's
:class:`~fleetscan.model.HostScan` status, and the other hosts carry on.
Results are streamed as they complete (:func:`scan_stream`), so a fleet of
thousands is never held as raw output in memory.

This is the one place that decides a host's status.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
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
    CommandResult,
    ConnectSettings,
    Session,
    Transport,
)

PROBE_MAX_OUTPUT = 4096


@dataclass(frozen=True)
class ScanSettings:
    """How the fleet is scanned. Defaults are what a user can live with."""

    connect: ConnectSettings = field(default_factory=ConnectSettings)
    concurrency: int = 50
    host_timeout: float = DEFAULT_HOST_TIMEOUT
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
        except ConfigError as exc:
            return done(Status.INTERNAL_ERROR, str(exc))
        deadline = self.settings.host_timeout
        try:
            async with asyncio.timeout(deadline):
                session = await transport.connect(target, self.settings.connect)
                try:
                    return await self._collect(target, session, evidence, done)
                finally:
                    await session.close()
        except TimeoutError:
            return done(Status.TIMEOUT, f"host did not finish within its {deadline:.0f}s deadline")
        except TransportError as exc:
            return done(status_for(exc), str(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or a surprise must stay this host's problem
            return done(Status.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")

    async def _run(
        self,
        session: Session,
        command: str,
        evidence: list[CommandEvidence],
        *,
        stdin: str | None = None,
        max_output: int | None = None,
        label: str | None = None,
    ) -> CommandResult:
        result = await session.run(
            command,
            stdin=stdin,
            timeout=self.settings.host_timeout,
            max_output=max_output or self.settings.max_output,
        )
        evidence.append(collectors.evidence(result, label))
        return result

    async def _collect(
        self,
        target: Target,
        session: Session,
        evidence: list[CommandEvidence],
        done: Callable[..., HostScan],
    ) -> HostScan:
        platform = target.platform
        if not platform:
            probe = await self._run(
                session, collectors.PROBE_COMMAND, evidence, max_output=PROBE_MAX_OUTPUT
            )
            platform = collectors.platform_from_probe(probe)
            if platform is None:
                return done(
                    Status.NO_COLLECTOR,
                    "could not tell the platform: `uname -s` gave nothing usable",
                )
        if platform == "windows":
            netstat = await self._run(session, collectors.WINDOWS_NETSTAT, evidence)
            tasklist = await self._run(session, collectors.WINDOWS_TASKLIST, evidence)
            # parsing is CPU work: off the event loop, so one huge or hostile
            # output cannot stall the other hosts' I/O and deadlines
            got = await asyncio.to_thread(collectors.interpret_windows, netstat, tasklist)
        elif platform in collectors.POSIX_PLATFORMS:
            got = await self._collect_posix(target, platform, session, evidence)
        else:
            return done(Status.NO_COLLECTOR, f"no collector for platform {platform!r}")
        return done(
            got.status,
            got.message,
            platform=platform,
            collector=got.collector,
            listeners=got.listeners,
            unparsed=got.unparsed,
        )

    async def _collect_posix(
        self, target: Target, platform: str, session: Session, evidence: list[CommandEvidence]
    ) -> collectors.Collected:
        """One exec channel: the chain script on stdin, under ``sudo -n`` when the
        target asks for it. A sudo that refuses (password needed, not in
        sudoers) fails fast; the host is then scanned unprivileged and can be
        no better than partial."""
        nonce = collectors.new_nonce()
        script = collectors.posix_script(platform, nonce)
        label = f"sh -s <fleetscan {platform} collector>"
        command = collectors.posix_command(target.become)
        result = await self._run(
            session, command, evidence, stdin=script, label=command.replace("sh -s", label)
        )
        refused = collectors.sudo_refused(result, nonce) if target.become else None
        if refused:
            result = await self._run(session, "sh -s", evidence, stdin=script, label=label)
        got = await asyncio.to_thread(collectors.interpret_posix, platform, result, nonce)
        if refused:
            got = got.degraded(f"sudo -n refused ({refused}); scanned without privileges")
        return got


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
    """Convenience: every HostScan, in inventory order."""
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
