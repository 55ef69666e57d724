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

from fleetscan import __version__
from fleetscan.exposure import ProbeSettings, probe_phase
from fleetscan.exposure.firewall import add_rulesets
from fleetscan.model import HostScan, ProbeResult, ScanRun, Severity, Target
from fleetscan.policy import Policy, evaluate
from fleetscan.runner import HostScanner, ScanSettings, interrupted_scan, scan_stream
from fleetscan.transports.base import Session, Transport

ProgressFn = Callable[[HostScan], None]


@dataclass(frozen=True)
class RunInputs:
    targets: tuple[Target, ...]
    policy: Policy
    settings: ScanSettings
    fail_on: Severity = Severity.HIGH
    inventory_files: tuple[str, ...] = ()
    inventory_digest: str = ""
    probe: ProbeSettings | None = None  # None: no exposure probes


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

    async def consume() -> None:
        async for scan in scan_stream(inputs.targets, inputs.settings, transports=transports):
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
    scans = tuple(done.get(t.name) or interrupted_scan(t) for t in inputs.targets)
    exposure: tuple[ProbeResult, ...] = ()
    if inputs.probe is not None and not interrupted:
        scans, exposure, interrupted = await _probe(inputs, scans, transports, stop)
    finished = datetime.now(UTC)
    findings = evaluate(inputs.policy, scans, now=finished, exposure=exposure)
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
        hostkey_checking=inputs.settings.connect.hostkey_checking,
        interrupted=interrupted,
        fail_on=inputs.fail_on,
        tool_version=__version__,
        exposure=exposure,
        probe_zones=inputs.probe.zones if inputs.probe is not None else (),
    )


async def _probe(
    inputs: RunInputs,
    scans: tuple[HostScan, ...],
    transports: dict[str, Transport] | None,
    stop: asyncio.Event | None,
) -> tuple[tuple[HostScan, ...], tuple[ProbeResult, ...], bool]:
    """The exposure stage (after every host's listeners are known): the probe
    matrix and, when asked, each host's firewall ruleset as evidence. A stop
    request ends it like the scan: the run is marked interrupted and nothing
    half-probed is reported. Returns (scans, matrix, interrupted)."""
    probe = inputs.probe
    assert probe is not None
    scanner = HostScanner(inputs.settings, transports)

    async def connect(target: Target) -> Session:
        return await scanner.transport_for(target).connect(target, inputs.settings.connect)

    async def stage() -> tuple[tuple[HostScan, ...], tuple[ProbeResult, ...]]:
        matrix = probe_phase(scans, inputs.policy, probe, connect)
        if not probe.firewall_evidence:
            return scans, await matrix
        rulesets = add_rulesets(
            scans, connect, concurrency=probe.evidence_concurrency, timeout=probe.deadline
        )
        got_matrix, got_scans = await asyncio.gather(matrix, rulesets)
        return got_scans, got_matrix

    task = asyncio.create_task(stage())
    if stop is None:
        return (*await task, False)
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return scans, (), True
    return (*task.result(), False)


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
