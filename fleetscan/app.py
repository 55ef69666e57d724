"""The pipeline: one entry for every way a scan is started.

``fleetscan scan``, ``fleetscan demo``, a future ``watch`` loop, a worker or a
Python user all go through the same two steps::

    inputs = prepare(options)      # load + validate everything, connect nowhere
    result = execute(inputs)       # scan → policy → reports → exit code

or :func:`run` for both. The stages, in order (docs/architecture.md draws them):

1. inventory (values validated, safe reads) → select (``--limit``, key files
   checked) → transport libraries checked
2. policy loaded and validated, report folder created      — all before any connection
3. runner: connect, collect, parse, per-host status        (:mod:`fleetscan.runner`)
4. exposure probes and firewall evidence (optional)       (:mod:`fleetscan.exposure`)
5. policy engine: findings                                 (:mod:`fleetscan.policy`)
6. history: each host compared with its reference scan (drift) before the
   policy engine, so drift rules give findings; the finished run recorded in
   one transaction before the reports                    (:mod:`fleetscan.store`)
7. reports written, exit code                              (:mod:`fleetscan.reports`)
8. [alerts and metrics plug in here: after reports]

This module is the one place the stages are put together, so it grows by a
call per stage (a little over 450 lines with alerts); each stage's own work
lives in its package, never here.

Any problem before stage 3 is a :class:`~fleetscan.errors.ConfigError` (exit
2). SIGINT/SIGTERM at any point of :func:`execute` stop the run cleanly: hosts
still running end ``interrupted``, the reports are still written in full and
marked interrupted, and the exit code is 130.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from fleetscan import __version__, runtime
from fleetscan.errors import ConfigError
from fleetscan.inventory import load_inventory, target_error
from fleetscan.model import HostScan, ProbeResult, ScanRun, Severity, Target, new_run_id
from fleetscan.options import RunOptions
from fleetscan.policy import Policy, evaluate, load_policies
from fleetscan.reports import FORMATS, prepare_output
from fleetscan.reports.files import DEFAULT_MODE, DEFAULT_REPORTS, is_stdout
from fleetscan.runner import HostScanner, ScanSettings, interrupted_scan, scan_stream
from fleetscan.stopsignals import StopSignals
from fleetscan.transports import check_transport, trust
from fleetscan.transports.base import Session, Transport
from fleetscan.transports.hostkeys import learned_keys

if TYPE_CHECKING:
    from fleetscan.alerts.stage import AlertSettings
    from fleetscan.distributed.coordinator import DistributedOptions
    from fleetscan.exposure import ProbeSettings
    from fleetscan.metrics import RunMetrics
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
    #: the open history (None: --no-history); opened by prepare, closed by execute
    history: History | None = field(default=None, compare=False)
    probe: ProbeSettings | None = None  # None: no exposure stage
    #: set: the hosts are scanned by workers of their site (``--distributed``)
    distributed: DistributedOptions | None = None
    #: alert destinations and threshold (None: no alerts)
    alerts: AlertSettings | None = None
    #: Prometheus textfile written after each run (None: none)
    metrics_file: Path | None = None
    #: where ``<run id>/`` report folders go when ``output`` is None (watch)
    output_root: Path | None = None
    report_mode: int = DEFAULT_MODE


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
    options.validate()
    if not options.inventory:
        raise ConfigError(
            "no inventory given (-i PATH, or inventory in fleetscan.toml)", field="--inventory"
        )
    if not options.policies:
        raise ConfigError(
            "no policy given (-p FILE, or policy in fleetscan.toml)", field="--policy"
        )
    spread = None
    if options.distributed is not None:
        from fleetscan.distributed.coordinator import distributed_options

        spread = distributed_options(options)
    inv = load_inventory(options.inventory, allow_exec=options.allow_exec_inventory)
    # checks the selected hosts' key files too (distributed: paths on the workers)
    targets = inv.select(options.limit, check_files=spread is None)
    check_transports(targets, options.transport)
    check_become(targets)
    # the inventory may not choose a secret variable or widen known_hosts trust
    trust.check_targets(
        targets,
        allowed_env=options.allowed_secret_env,
        trust_known_hosts=options.trust_inventory_known_hosts,
    )
    policy = load_policies(options.policies)
    from fleetscan.alerts.config import alert_settings

    alerts = alert_settings(options)
    history = open_history(options) if options.history else None
    probe = options.probe_settings()
    if probe is not None:
        from fleetscan.exposure import check_probe_config  # only a probing run imports it

        check_probe_config(policy, probe, targets)
    # last check, so a config error writes nothing; no --output: the default root
    root = options.output_root or DEFAULT_REPORTS
    prepare_output(options.output or root, options.formats, options.report_mode)
    return RunInputs(
        targets=targets,
        policy=policy,
        settings=scan_settings(options),
        fail_on=options.fail_on,
        inventory_files=inv.files,
        inventory_digest=inv.digest,
        formats=options.formats,
        report_mode=options.report_mode,
        output_root=options.output_root,
        output=options.output,
        history=history,
        probe=probe,
        distributed=spread,
        alerts=alerts,
        metrics_file=options.metrics_file,
    )


def scan_settings(options: RunOptions) -> ScanSettings:
    """How the runner reaches hosts for these options (a worker scanning a
    shard of targets uses exactly this)."""
    return ScanSettings(
        connect=options.connect_settings(),
        concurrency=options.concurrency,
        host_timeout=options.host_timeout,
        max_output=options.max_output,
        transport=options.transport,
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
            raise target_error(target, exc.detail, "transport") from None
        seen.add(target.transport)


#: inventory variables that hold a sudo password (Ansible's names, old and new)
BECOME_PASSWORD_VARS = (
    "ansible_become_password",
    "ansible_become_pass",
    "ansible_sudo_password",
    "ansible_sudo_pass",
)


def check_become(targets: Sequence[Target]) -> None:
    """A sudo password is refused, never silently ignored: fleetscan runs
    ``sudo -n`` only (a password on the scan's stdin would share the channel
    with the collector script, and a prompt in a parallel run is a hang)."""
    for target in targets:
        if not target.become:
            continue  # never used, so never sent: a shared group var is not an error
        given = [name for name in BECOME_PASSWORD_VARS if name in target.vars]
        if given:
            raise target_error(
                target,
                "a sudo password is not supported (fleetscan runs 'sudo -n' only and never "
                "sends a password); grant the listing commands without one: "
                "examples/sudoers.d/fleetscan",
                given[0],
            )


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
        id=new_run_id(started),
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
    from fleetscan.exposure import probe_phase
    from fleetscan.exposure.firewall import add_rulesets

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


# --- stages 6-8: store, reports, alerts --------------------------------------------------


def execute(
    inputs: RunInputs,
    *,
    on_result: ProgressFn | None = None,
    transports: dict[str, Transport] | None = None,
    metrics: RunMetrics | None = None,
) -> RunResult:
    """Run a prepared scan in a fresh event loop and write its reports.
    ``metrics`` (``watch`` keeps one for its endpoint) is updated from the run."""
    from fleetscan.reports import write_reports

    with StopSignals() as signals:

        async def scan() -> ScanRun:
            stop = asyncio.Event()
            with signals.stopping(stop):
                return await run_scan(inputs, on_result=on_result, transports=transports, stop=stop)

        try:
            run = runtime.run(scan())
            if inputs.history is not None:  # stage 6: one transaction, adds the trend
                run = record_run(inputs.history, run)
                if inputs.alerts is not None:  # stage 8a: before the reports, which show it
                    from fleetscan.alerts.stage import alert_stage

                    report = alert_stage(inputs.history.store.engine, run, inputs.alerts)
                    run = replace(run, alerts=report)
            root = inputs.output_root or DEFAULT_REPORTS
            outdir = inputs.output if inputs.output is not None else root / run.id
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
        if inputs.metrics_file is not None or metrics is not None:  # stage 8b
            write_metrics(run, inputs.metrics_file, metrics)
    return RunResult(run, outdir, written)


def write_metrics(run: ScanRun, path: Path | None, metrics: RunMetrics | None) -> None:
    """Prometheus metrics of the run: into ``metrics`` (watch keeps one) and the
    textfile. A metrics file that cannot be written is a warning, never a lost scan."""
    import sys

    from fleetscan.metrics import RunMetrics

    metrics = metrics if metrics is not None else RunMetrics()
    metrics.observe(
        run,
        change_kinds=[c.kind for c in run.changes],
        delivery_failures=run.alerts.failures if run.alerts is not None else 0,
    )
    if path is None:
        return
    try:
        metrics.write_textfile(path)
    except OSError as exc:
        sys.stderr.write(f"fleetscan: warning: metrics file {path} not written: {exc.strerror}\n")


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
