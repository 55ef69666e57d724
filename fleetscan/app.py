"""The scan pipeline shared by ``fleetscan scan`` and ``fleetscan demo``.

inventory → (select) → runner → policy engine → reports → exit code. All
configuration is loaded and validated *before* the first connection; a
config error raises :class:`~fleetscan.errors.ConfigError` (exit 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fleetscan import __version__
from fleetscan.model import HostScan, ScanRun, Severity, Target
from fleetscan.policy import Policy, evaluate
from fleetscan.runner import ScanSettings, interrupted_scan, scan_stream
from fleetscan.transports.base import Transport

if TYPE_CHECKING:
    from fleetscan.distributed.coordinator import DistributedOptions

ProgressFn = Callable[[HostScan], None]


@dataclass(frozen=True)
class RunInputs:
    targets: tuple[Target, ...]
    policy: Policy
    settings: ScanSettings
    fail_on: Severity = Severity.HIGH
    inventory_files: tuple[str, ...] = ()
    inventory_digest: str = ""
    #: set: the hosts are scanned by workers of their site (``--distributed``)
    distributed: DistributedOptions | None = None


async def run_scan(
    inputs: RunInputs,
    *,
    on_result: ProgressFn | None = None,
    transports: dict[str, Transport] | None = None,
    stop: asyncio.Event | None = None,
) -> ScanRun:
    """Scan every target and evaluate policy. When ``stop`` is set (Ctrl-C,
    SIGTERM), the scans still running are cancelled, their connections
    closed, and those hosts end as ``interrupted``; the run is marked so."""
    started = datetime.now(UTC)
    done: dict[str, HostScan] = {}
    interrupted = False
    hostkey_checking = inputs.settings.connect.hostkey_checking
    if inputs.distributed is not None:
        from fleetscan.distributed.coordinator import Coordinator

        coordinator = Coordinator(inputs.distributed)
        source = coordinator.stream(inputs.targets, inputs.settings)
    else:
        source = scan_stream(inputs.targets, inputs.settings, transports=transports)

    async def consume() -> None:
        async for scan in source:
            done[scan.target.name] = scan
            if on_result:
                on_result(scan)

    worker = asyncio.create_task(consume())
    if stop is not None:
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({worker, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not worker.done():
            interrupted = True
            worker.cancel()
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
    else:
        await worker
    if inputs.distributed is not None:  # the workers decided host-key checking
        hostkey_checking = coordinator.hostkey_checking
    scans = tuple(done.get(t.name) or interrupted_scan(t) for t in inputs.targets)
    finished = datetime.now(UTC)
    findings = evaluate(inputs.policy, scans, now=finished)
    return ScanRun(
        id=started.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8],
        started=started,
        finished=finished,
        scans=scans,
        findings=tuple(findings),
        inventory_digest=inputs.inventory_digest,
        policy_digest=inputs.policy.digest,
        policy_files=tuple(inputs.policy.files),
        inventory_files=inputs.inventory_files,
        hostkey_checking=hostkey_checking,
        interrupted=interrupted,
        fail_on=inputs.fail_on,
        tool_version=__version__,
    )


def run_with_signals(
    inputs: RunInputs,
    *,
    on_result: ProgressFn | None = None,
    transports: dict[str, Transport] | None = None,
) -> ScanRun:
    """Run :func:`run_scan` in a fresh event loop; SIGINT/SIGTERM stop it cleanly."""

    async def main() -> ScanRun:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
        try:
            return await run_scan(inputs, on_result=on_result, transports=transports, stop=stop)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    return asyncio.run(main())
