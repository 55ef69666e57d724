"""``fleetscan watch``: the whole pipeline again and again, on a schedule.

Each cycle is one full run (:func:`fleetscan.app.prepare` + :func:`~fleetscan.app.execute`):
recorded in the history, compared, alerted, reported, measured. The inventory
and policy are read again every cycle, so an edit takes effect at the next one.

* **No overlap**: cycles run one after the other. The next one starts
  ``every`` seconds after the previous one *started* (plus a random jitter);
  a cycle that took longer than the interval delays the next and says so.
* **Reports** go to ``OUTPUT/<run id>/``; the newest ``keep_reports`` run
  folders are kept, older ones fleetscan wrote are removed, and
  ``OUTPUT/latest`` points at the newest.
* **Failures**: a bad inventory or policy at the *first* cycle ends the
  command (exit 2: a service must not start half-configured); later, any
  error of one cycle — a config error after an edit, an unreachable database
  — is logged and the next cycle tries again. The process keeps running.
* **Stopping**: SIGTERM or SIGINT end the watch within seconds: an
  in-flight scan is stopped and stored as interrupted, with its reports.
* **Logs**: one line per event on stderr (journald-friendly), host text inert.
"""

from __future__ import annotations

import logging
import os
import random
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from fleetscan.errors import ConfigError
from fleetscan.options import RunOptions
from fleetscan.reports.sanitize import clip, visible_controls

if TYPE_CHECKING:
    from fleetscan.app import RunInputs
    from fleetscan.metrics import RunMetrics
    from fleetscan.transports.base import Transport

log = logging.getLogger("fleetscan.watch")

RUN_DIR = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}\Z")
LATEST = "latest"


@dataclass(frozen=True)
class WatchSettings:
    every: float
    jitter: float = 0.0
    keep_reports: int = 24
    metrics_port: int | None = None
    metrics_address: str = "127.0.0.1"
    #: stop after this many cycles (tests, one-off batches); None: until signalled
    max_cycles: int | None = None

    def check(self) -> None:
        if not (self.every > 0 and self.every < float("inf")):
            raise ConfigError(f"must be a positive duration, got {self.every}", field="--every")
        if not (0 <= self.jitter < float("inf")):
            raise ConfigError(f"must be a duration, got {self.jitter}", field="--jitter")
        if self.keep_reports < 1:
            raise ConfigError("must be at least 1", field="--keep-reports")
        if self.metrics_port is not None and not 0 <= self.metrics_port < 65536:
            raise ConfigError("must be a port number", field="--metrics-port")


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\Z")
_UNIT = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, field: str) -> float:
    """``90``, ``90s``, ``5m``, ``1h``, ``1.5h``, ``2d`` → seconds."""
    m = _DURATION.match(text.strip().lower())
    if not m:
        raise ConfigError(f"expected a duration such as 30s, 5m, 1h; got {text!r}", field=field)
    return float(m.group(1)) * _UNIT[m.group(2)]


def _say(message: str) -> None:
    log.info("%s", visible_controls(clip(message, 2000)))


class _Stop:
    """SIGINT/SIGTERM between cycles set an event the loop sleeps on."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._saved: dict[int, object] = {}

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        self.event.set()

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._saved[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def rotate(root: Path, keep: int, newest: Path | None = None) -> None:
    """Keep the newest ``keep`` run folders fleetscan made under ``root``; point
    ``root/latest`` at the newest (``newest``, this cycle's folder, when given).
    Folders not named like a run are never touched.

    Run ids sort in the order the runs started, also within one second (the
    suffix begins with the microsecond, :func:`fleetscan.model.new_run_id`), so
    the folders are ordered by name; this cycle's own folder is the newest
    whatever its name (a clock stepped back by NTP must not make rotation
    delete the run just written)."""
    dirs = sorted(
        p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and RUN_DIR.match(p.name)
    )
    if newest is not None and newest in dirs:
        dirs.remove(newest)
        dirs.append(newest)
    for old in dirs[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    if dirs:
        tmp = root / f".{LATEST}.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(dirs[-1].name)
        os.replace(tmp, root / LATEST)


def watch(
    options: RunOptions,
    settings: WatchSettings,
    *,
    clock: Callable[[], float] = time.monotonic,
    transports: dict[str, Transport] | None = None,
) -> int:
    """Run cycles until signalled (or ``max_cycles``); returns 0. A bad
    configuration at the first cycle raises ConfigError (exit 2)."""
    from fleetscan import app
    from fleetscan.metrics import MetricsServer, RunMetrics

    settings.check()
    root = options.output if options.output is not None else Path("fleetscan-reports")
    options = replace(options, output=None, output_root=root)
    metrics = RunMetrics()
    server: MetricsServer | None = None
    cycle = 0
    with _Stop() as stop:
        # the first preparation decides whether the service can start at all
        inputs: app.RunInputs | None = app.prepare(options)
        if settings.metrics_port is not None:
            server = MetricsServer(metrics, settings.metrics_port, settings.metrics_address)
            server.start()
            _say(f"metrics on http://{settings.metrics_address}:{server.port}/metrics")
        try:
            while True:
                cycle += 1
                began = clock()
                interrupted = False
                if inputs is None:
                    try:
                        inputs = app.prepare(options)
                    except Exception as exc:
                        _say(f"cycle {cycle} not started: {exc}")
                if inputs is not None:
                    interrupted = _cycle(inputs, root, settings, metrics, cycle, transports)
                    inputs = None
                if interrupted or stop.event.is_set():
                    break
                if settings.max_cycles is not None and cycle >= settings.max_cycles:
                    break
                took = clock() - began
                wait = settings.every - took
                if wait < 0:
                    _say(
                        f"cycle {cycle} took {took:.1f}s, longer than the "
                        f"{settings.every:g}s interval: the next run starts now"
                    )
                    wait = 0.0
                if settings.jitter:
                    wait += random.uniform(0, settings.jitter)
                _say(f"next run in {wait:.1f}s")
                if stop.event.wait(wait):
                    break
        finally:
            if server is not None:
                server.close()
    _say(f"watch stopped after {cycle} cycle(s)")
    return 0


def _cycle(
    inputs: RunInputs,
    root: Path,
    settings: WatchSettings,
    metrics: RunMetrics,
    n: int,
    transports: dict[str, Transport] | None,
) -> bool:
    """One run; returns True when it was interrupted (the watch then ends)."""
    from fleetscan import app
    from fleetscan.reports import summary

    try:
        result = app.execute(inputs, metrics=metrics, transports=transports)
    except Exception as exc:
        _say(f"cycle {n} failed: {type(exc).__name__}: {exc}")
        return False
    run = result.run
    c = summary.counts(run)
    summary.forget()  # the run is not kept while the watch sleeps
    by_status = ", ".join(f"{st.value} {k}" for st, k in c.by_status.items() if k)
    findings = ", ".join(f"{sev} {k}" for sev, k in c.active_by_severity.items() if k) or "none"
    alerts = ""
    if run.alerts is not None:
        alerts = (
            f"; alerts raised {run.alerts.raised}, deliveries "
            f"{sum(1 for d in run.alerts.deliveries if d.ok)} ok {run.alerts.failures} failed"
        )
    _say(
        f"cycle {n} run {run.id}: hosts {c.hosts} ({by_status}); active findings {findings}; "
        f"changes {len(run.changes)}{alerts}; exit {result.exit_code}; "
        f"{summary.duration_seconds(run):.1f}s; reports {result.outdir}"
    )
    try:
        rotate(root, settings.keep_reports, result.outdir)
    except OSError as exc:
        _say(f"report folders not rotated: {exc.strerror}")
    return run.interrupted
