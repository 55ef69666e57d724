"""Reporters: turn a finished :class:`~fleetscan.model.ScanRun` into files, a
terminal summary and an exit code. They read only the model.

The CLI uses exactly this API:

* :data:`FORMATS`, :func:`prepare_output` (checks the destination before any
  connection) and :func:`write_reports` — ``report.html``,
  ``hosts.csv``/``listeners.csv``/``findings.csv``, ``report.json``,
  ``junit.xml``, written atomically and owner-only (see
  :mod:`fleetscan.reports.files`), or one of them to standard output;
* :func:`render_summary` — the one-screen summary for the terminal;
* :func:`exit_code` — the CI contract (0 / 1 / 3 / 130; 2 is the CLI's).

Untrusted text is made safe in one module, :mod:`fleetscan.reports.sanitize`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path
from typing import IO

from fleetscan.model import ScanRun
from fleetscan.reports.files import (
    DEFAULT_MODE,
    STDOUT,
    ReportWriteError,
    folder_mode,
    is_stdout,
    make_folder,
    prepare_output,
    read_manifest,
    remove_stale,
    stdout_sink,
    write_manifest,
)
from fleetscan.reports.summary import exit_code
from fleetscan.reports.terminal import render_summary

FORMATS = ("html", "csv", "json", "junit")

__all__ = [
    "FORMATS",
    "STDOUT",
    "exit_code",
    "prepare_output",
    "render_summary",
    "write_reports",
]

# format → module; imported on use: jinja2 (HTML) costs ~50 ms at start-up, which
# every CLI call (even one that ends in a config error) would otherwise pay
_MODULES = {
    "html": "fleetscan.reports.html",
    "csv": "fleetscan.reports.csv",
    "json": "fleetscan.reports.json",
    "junit": "fleetscan.reports.junit",
}


def _writer(fmt: str) -> Callable[[ScanRun, Path, int], list[Path]]:
    writer: Callable[[ScanRun, Path, int], list[Path]]
    writer = getattr(import_module(_MODULES[fmt]), f"write_{fmt}")
    return writer


def _streamer(fmt: str) -> Callable[[ScanRun, IO[str]], None]:
    streamer: Callable[[ScanRun, IO[str]], None]
    streamer = getattr(import_module(_MODULES[fmt]), f"stream_{fmt}")
    return streamer


def write_reports(
    run: ScanRun, outdir: Path, formats: Sequence[str], mode: int = DEFAULT_MODE
) -> dict[str, list[Path]]:
    """Write the requested formats into ``outdir`` (created owner-only if
    missing; ``-`` is standard output, one format) and return format → files
    written. The previous run's files in ``outdir`` that this run does not
    write again are removed (see :mod:`~fleetscan.reports.files`). Unknown
    formats raise ValueError before anything is written; a file that cannot
    be written raises :class:`~fleetscan.reports.files.ReportWriteError`."""
    wanted = list(dict.fromkeys(f.strip().lower() for f in formats))
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown:
        raise ValueError(
            f"unknown report format {', '.join(map(repr, unknown))} "
            f"(valid formats: {', '.join(FORMATS)})"
        )
    if is_stdout(outdir):
        prepare_output(outdir, wanted)
        with stdout_sink() as out:
            _streamer(wanted[0])(run, out)
        return {wanted[0]: []}
    try:
        make_folder(outdir, folder_mode(mode))
        previous = read_manifest(outdir)
        written = {fmt: _writer(fmt)(run, outdir, mode) for fmt in wanted}
        paths = [p for ps in written.values() for p in ps]
        remove_stale(outdir, previous, [p.name for p in paths])
        write_manifest(outdir, run.id, paths, mode)
    except OSError as exc:
        raise ReportWriteError(
            f"cannot write the reports: {exc.strerror or exc}",
            # a failed rename names the temporary first, the report second
            file=str(exc.filename2 or exc.filename or outdir),
            field="--output",
        ) from None
    return written
