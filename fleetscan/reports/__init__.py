"""Reporters: turn a finished :class:`~fleetscan.model.ScanRun` into files, a
terminal summary and an exit code. They read only the model.

The CLI uses exactly this API:

* :data:`FORMATS` and :func:`write_reports` — ``report.html``,
  ``hosts.csv``/``listeners.csv``/``findings.csv``, ``report.json``,
  ``junit.xml``;
* :func:`render_summary` — the one-screen summary for the terminal;
* :func:`exit_code` — the CI contract (0 / 1 / 3 / 130; 2 is the CLI's).

Untrusted text is made safe in one module, :mod:`fleetscan.reports.sanitize`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from fleetscan.model import ScanRun
from fleetscan.reports.summary import exit_code
from fleetscan.reports.terminal import render_summary

FORMATS = ("html", "csv", "json", "junit")

__all__ = ["FORMATS", "exit_code", "render_summary", "write_reports"]


def _writer(fmt: str) -> Callable[[ScanRun, Path], list[Path]]:
    # imported on use: pandas and jinja2 cost ~0.5 s at start-up, which every
    # CLI call (even one that ends in a config error) would otherwise pay
    if fmt == "html":
        from fleetscan.reports.html import write_html

        return write_html
    if fmt == "csv":
        from fleetscan.reports.csv import write_csv

        return write_csv
    if fmt == "json":
        from fleetscan.reports.json import write_json

        return write_json
    from fleetscan.reports.junit import write_junit

    return write_junit


def write_reports(run: ScanRun, outdir: Path, formats: Sequence[str]) -> dict[str, list[Path]]:
    """Write the requested formats into ``outdir`` (created if missing) and
    return format → files written. Unknown formats raise ValueError before
    anything is written."""
    wanted = list(dict.fromkeys(f.strip().lower() for f in formats))
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown:
        raise ValueError(
            f"unknown report format {', '.join(map(repr, unknown))} "
            f"(valid formats: {', '.join(FORMATS)})"
        )
    outdir.mkdir(parents=True, exist_ok=True)
    return {fmt: _writer(fmt)(run, outdir) for fmt in wanted}
