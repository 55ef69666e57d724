"""What a terminal shows while a scan runs: a progress bar, or a line per host."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fleetscan.commands.common import err_console
from fleetscan.model import HostScan


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
