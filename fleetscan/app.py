"""The pipeline: one entry for every way a scan is started.

``fleetscan scan``, ``fleetscan demo``, a future ``watch`` loop, a worker or a
Python user all go through the same two steps::

    inputs = prepare(options)      # load + validate everything, connect nowhere
    result = execute(inputs)       # scan → policy → reports → exit code

or :func:`run` for both. The stages, in order (docs/architecture.md draws them):

1. inventory (values validated, safe reads) → select (``--limit``, key files
   checked) → transport libraries checked
2. policy loaded and validated, report folder checked      — all before any connection
3. runner: connect, collect, parse, per-host status        (:mod:`fleetscan.runner`)
4. exposure probes and firewall evidence (optional)       (:mod:`fleetscan.exposure`)
5. policy engine: findings                                 (:mod:`fleetscan.policy`)
6. history: each host compared with its reference scan (drift) before the
   policy engine, so drift rules give findings; the finished run recorded in
   one transaction before the reports                    (:mod:`fleetscan.store`)
7. reports written, exit code                              (:mod:`fleetscan.reports`)
8. [alerts and metrics plug in here: after reports]

Any problem before stage 3 is a :class:`~fleetscan.errors.ConfigError` (exit
2). SIGINT/SIGTERM at any point of :func:`execute` stop the run cleanly: hosts
still running end ``interrupted``, the reports are still written in full and
marked interrupted, and the exit code is 130.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from fleetscan import __version__
from fleetscan.errors import ConfigError
from fleetscan.exposure import ProbeSettings, check_probe_config, probe_phase
from fleetscan.exposure.firewall import add_rulesets
from fleetscan.model import HostScan, ProbeResult, ScanRun, Severity, Target
from fleetscan.options import RunOptions
from fleetscan.policy import Policy, evaluate, load_policies
from fleetscan.reports import FORMATS, prepare_output
from fleetscan.reports.files import DEFAULT_MODE, DEFAULT_REPORTS, is_stdout
from fleetscan.runner import HostScanner, ScanSettings, interrupted_scan, scan_stream
from fleetscan.transports import check_transport, trust
from fleetscan.transports.base import Session, Transport
from fleetscan.transports.hostkeys import learned_keys

if TYPE_CHECKING:
    from fleetscan.distributed.coordinator import DistributedOptions
    from fleetscan.store import History

ProgressFn = Callable[[HostScan], None]


@dataclass(frozen=True)
class RunInputs:
    """A prepared run: everything loaded and validated, nothing connected."""

    targets: tuple[Target, ...]
    policy: Policy
    settings: ScanSettings
    fail_on: Severity = Severity.HIGH
    inventory_files: tuple[str, ...] = ()
    inventory_digest: str = ""
    formats: tuple[str, ...] = FORMATS
    output: Path | None = None  # None: fleetscan-reports/<run id>
    report_mode: int = DEFAULT_MODE
    #: the open history (None: --no-history); opened by prepare, closed by execute
    history: History | None = field(default=None, compare=False)
    probe: ProbeSettings | None = None  # None: no exposure stage
    #: set: the hosts are scanned by workers of their site (``--distributed``)
    distributed: DistributedOptions | None = None


@dataclass(frozen=True)
class RunResult:
    """A finished run and the report files written for it."""

    run: ScanRun
    outdir: Path
    reports: Mapping[str, list[Path]] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        from fleetscan.reports import exit_code

        return exit_code(self.run)


# --- stages 1-2: everything checked before the first connection -------------------------


def prepare(options: RunOptions) -> RunInputs:
    """Load and validate the inventory, policy and options; create the report
    folder. Raises ConfigError (exit 2) and connects nowhere."""
    from fleetscan.inventory import load_inventory

    options.validate()
    spread = None
    if options.distributed is not None:
        from fleetscan.distributed.coordinator import distributed_options

        spread = distributed_options(options)
    inv = load_inventory(options.inventory, allow_exec=options.allow_exec_inventory)
    # checks the selected hosts' key files too (distributed: paths on the workers)
    targets = inv.select(options.limit, check_files=spread is None)
    check_transports(targets, options.transport)
    # the inventory may not choose a secret variable or widen known_hosts trust
    trust.check_targets(
        targets,
        allowed_env=options.allowed_secret_env,
        trust_known_hosts=options.trust_inventory_known_hosts,
    )
    connect = options.connect_settings()
    policy = load_policies(options.policies)
    history = open_history(options) if options.history else None
    probe = options.probe_settings()
    if probe is not None:
        check_probe_config(policy, probe, targets)
    # last check, so a config error writes nothing; no --output: ./fleetscan-reports
    prepare_output(options.output or DEFAULT_REPORTS, options.formats, options.report_mode)
    return RunInputs(
        targets=targets,
        policy=policy,
        settings=ScanSettings(
            connect=connect,
            concurrency=options.concurrency,
            host_timeout=options.host_timeout,
            max_output=options.max_output,
            transport=options.transport,
        ),
        fail_on=options.fail_on,
        inventory_files=inv.files,
        inventory_digest=inv.digest,
        formats=options.formats,
        report_mode=options.report_mode,
        output=options.output,
        history=history,
        probe=probe,
        distributed=spread,
    )


def open_history(options: RunOptions) -> History:
    """Resolve and open the history database (migrated to the current schema).
    A bad URL or a database that cannot be used is a ConfigError: exit 2,
    before any host is contacted."""
    from fleetscan.store import History, StoreError, resolve

    url = resolve(options.db)
    try:
        return History.open(url, options.compare_to)
    except StoreError as exc:
        raise ConfigError(str(exc), field="--db") from None


def check_transports(targets: Sequence[Target], forced: str | None) -> None:
    """Every transport the run will use must exist (and its library import):
    a typo is a config error, not a fleet of ``internal_error`` hosts."""
    if forced is not None:
        check_transport(forced, field="--transport")
        return
    seen: set[str] = set()
    for target in targets:
        if target.transport in seen:
            continue
        try:
            check_transport(target.transport)
        except ConfigError as exc:
            src = target.source
            raise ConfigError(
                f"host {target.name}: {exc.detail}",
                file=src.file if src else None,
                line=src.line if src else None,
                field="transport",
            ) from None
        seen.add(target.transport)


# --- stages 3-5: scan and policy ------------------------------------------------------


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
    connect = inputs.settings.connect
    accept_new = connect.accept_new_file()
    journal, _ = learned_keys(accept_new or "")
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
    # exposure probes: connect to exactly the listeners found, before policy
    exposure: tuple[ProbeResult, ...] = ()
    if inputs.probe is not None and not interrupted:
        scans, exposure, interrupted = await _probe(inputs, scans, transports, stop)
    finished = datetime.now(UTC)
    # drift: each host against its reference scan, before policy (drift rules)
    history = inputs.history
    changes, compared_to = history.compare(scans) if history is not None else ((), None)
    findings = evaluate(inputs.policy, scans, now=finished, changes=changes, exposure=exposure)
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
        inventory_known_hosts_trusted=connect.trust_inventory_known_hosts,
        accept_new_file=accept_new,
        keys_learned=learned_keys(accept_new, journal)[1] if accept_new else (),
        interrupted=interrupted,
        fail_on=inputs.fail_on,
        tool_version=__version__,
        changes=changes,
        compared_to=compared_to,
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
            scans,
            connect,
            concurrency=probe.evidence_concurrency,
            timeout=inputs.settings.host_timeout,
            deadline=probe.deadline,
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


class StopSignals:
    """SIGINT and SIGTERM for a whole run, from the first host to the last report.

    The first signal stops the scan (see :func:`run_scan`); one that arrives
    later (policy, reports) is remembered, and :func:`execute` then marks the
    run interrupted and writes its reports again. Outside the main thread
    (``fleetscan demo`` runs the scan in one) signals are left alone."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self._stop: Callable[[], None] | None = None
        self._saved: dict[int, object] = {}

    def _handler(self, signum: int, _frame: FrameType | None = None) -> None:
        if self.received is None:
            self.received = signum
        if self._stop is not None:
            self._stop()

    def _install(self) -> None:
        for sig in self.SIGNALS:
            signal.signal(sig, self._handler)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._saved = {sig: signal.getsignal(sig) for sig in self.SIGNALS}
            self._install()
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    @contextlib.contextmanager
    def stopping(self, stop: asyncio.Event) -> Iterator[None]:
        """While the event loop runs: a signal sets ``stop``. asyncio's own
        handlers are used there, because they wake the loop even when the
        signal landed on another thread (paramiko's, a parser's)."""
        loop = asyncio.get_running_loop()
        self._stop = stop.set
        if self.received is not None:
            stop.set()
        installed: list[int] = []
        if self._saved:
            for sig in map(int, self.SIGNALS):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, self._handler, sig)
                    installed.append(sig)
        try:
            yield
        finally:
            self._stop = None
            for sig in installed:
                loop.remove_signal_handler(sig)
            if installed:
                self._install()  # remove_signal_handler put the defaults back


# --- stages 6-8: store, reports, alerts --------------------------------------------------


def execute(
    inputs: RunInputs,
    *,
    on_result: ProgressFn | None = None,
    transports: dict[str, Transport] | None = None,
) -> RunResult:
    """Run a prepared scan in a fresh event loop and write its reports."""
    from fleetscan.reports import write_reports

    with StopSignals() as signals:

        async def scan() -> ScanRun:
            stop = asyncio.Event()
            with signals.stopping(stop):
                return await run_scan(inputs, on_result=on_result, transports=transports, stop=stop)

        try:
            run = asyncio.run(scan())
            if inputs.history is not None:  # stage 6: one transaction, adds the trend
                run = record_run(inputs.history, run)
            outdir = inputs.output if inputs.output is not None else DEFAULT_REPORTS / run.id
            written = write_reports(run, outdir, inputs.formats, inputs.report_mode)
            if signals.received is not None and not run.interrupted:
                # stopped while policy or reports ran: the same complete reports, marked so
                run = replace(run, interrupted=True)
                if inputs.history is not None:
                    inputs.history.mark_interrupted(run.id)
                if not is_stdout(outdir):  # a second document on stdout would break `| jq`
                    written = write_reports(run, outdir, inputs.formats, inputs.report_mode)
        finally:
            if inputs.history is not None:
                inputs.history.close()
        # [alerts + metrics: from `run` and the store's drift, deduplicated via the store]
    return RunResult(run, outdir, written)


def record_run(history: History, run: ScanRun) -> ScanRun:
    """Record the finished run; a database failure now is reported on stderr
    but never loses the scan (reports are written, the exit code unchanged)."""
    import sys

    from sqlalchemy.exc import SQLAlchemyError

    from fleetscan.reports.sanitize import visible_controls

    try:
        return history.record(run)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        sys.stderr.write(
            f"fleetscan: warning: run {run.id} NOT recorded in the history: "
            f"{visible_controls(reason[0] if reason else type(exc).__name__)}\n"
        )
        return run


def run(
    options: RunOptions,
    *,
    on_result: ProgressFn | None = None,
    transports: dict[str, Transport] | None = None,
) -> RunResult:
    """:func:`prepare` then :func:`execute`: the whole pipeline in one call."""
    return execute(prepare(options), on_result=on_result, transports=transports)
