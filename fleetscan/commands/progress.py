"""A scan as the terminal shows it: a progress bar or a line per host while it
runs, then the summary and the report files."""

from __future__ import annotations

import logging
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from fleetscan.commands.common import config_errors, err_console
from fleetscan.model import HostScan, ScanRun
from fleetscan.options import RunOptions


class ScanProgress:
    """A progress bar on a terminal; silence otherwise (machine-friendly).
    With ``verbose``, one line per host on stderr as each finishes."""

    def __init__(self, total: int, enabled: bool, verbose: bool = False) -> None:
        self.failed = 0
        self.verbose = verbose
        self._progress: Progress | None = None
        if enabled:
            self._progress = Progress(
                TextColumn("scanning"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("[red]{task.fields[failed]} not fully scanned"),
                TimeElapsedColumn(),
                console=err_console,
                transient=True,
            )
            self._task = self._progress.add_task("scan", total=total, failed=0)

    def __enter__(self) -> ScanProgress:
        if self._progress:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress:
            self._progress.stop()

    def update(self, scan: HostScan) -> None:
        if not scan.status.complete:
            self.failed += 1
        if self.verbose:
            console = self._progress.console if self._progress else err_console
            console.print(host_line(scan), markup=False, highlight=False, soft_wrap=True)
        if self._progress:
            self._progress.update(self._task, advance=1, failed=self.failed)


def host_line(scan: HostScan) -> str:
    """One line per finished host (``--verbose``); host text is shown inert."""
    from fleetscan.reports.sanitize import clip, visible_controls

    parts = [f"{scan.host}: {scan.status.value}", f"{scan.duration:.1f}s"]
    if scan.status.scanned:
        parts.append(f"{len(scan.listeners)} listeners via {scan.collector}")
    if scan.message:
        parts.append(scan.message)
    return visible_controls(clip(" | ".join(parts), 500))


def scan_and_print(options: RunOptions, *, console: Console, quiet: bool, verbose: int) -> int:
    """Prepare (config errors → exit 2), scan with progress, print the summary;
    the exit code of the run."""
    from fleetscan import app as pipeline
    from fleetscan.commands.history import history_summary
    from fleetscan.reports import render_summary
    from fleetscan.reports.files import is_stdout
    from fleetscan.reports.terminal import console as make_console

    with config_errors():
        inputs = pipeline.prepare(options)
    if not options.hostkey_checking:
        err_console.print(
            Text.assemble(
                ("WARNING:", "bold red"),
                " host-key checking is OFF (--no-host-key-check): "
                "this run cannot detect a man-in-the-middle; every report says so.",
            )
        )
    if verbose >= 2:  # the SSH library's own connection log (never holds secrets)
        logging.basicConfig(stream=sys.stderr, format="%(name)s: %(message)s")
        logging.getLogger("asyncssh").setLevel(logging.INFO)
    show = not quiet and err_console.is_terminal
    # config_errors: a report that cannot be written after all (disk full) is one line, exit 2
    with config_errors(), ScanProgress(len(inputs.targets), show, verbose >= 1) as progress:
        result = pipeline.execute(inputs, on_result=progress.update)
    if is_stdout(options.output):  # standard output holds the report alone
        console = make_console(stderr=True)
    if not quiet:
        render_summary(result.run, console)
        history_summary(result.run, console, inputs.history.url if inputs.history else None)
        alert_summary(result.run, console)
        files = ", ".join(str(p) for paths in result.reports.values() for p in paths)
        files = files or f"{', '.join(result.reports)} on standard output"
        console.print(f"reports: {files}", markup=False, highlight=False, soft_wrap=True)
    return result.exit_code


def alert_summary(run: ScanRun, console: Console) -> None:
    """One line per alert delivery problem, one line in all: never the message text."""
    from fleetscan.reports.sanitize import visible_controls

    report = run.alerts
    if report is None:
        return
    ok = sum(1 for d in report.deliveries if d.ok)
    line = f"alerts: {report.raised} raised; {ok} delivered, {report.failures} failed"
    console.print(line, markup=False, highlight=False, soft_wrap=True)
    for d in report.deliveries:
        if not d.ok:
            kept = "kept for the next run" if d.queued else "not kept"
            console.print(
                visible_controls(f"alerts: {d.destination}: {d.error} ({kept})"),
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
