"""Helpers every command shares: one-line config errors, safe terminal text."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from fleetscan.errors import ConfigError
from fleetscan.reports.terminal import console as make_console

#: stderr: progress, -v lines, warnings; markup off (host text is printed as it is)
err_console = make_console(stderr=True)


@contextmanager
def config_errors() -> Iterator[None]:
    """Turn ConfigError into one clear line per problem and exit code 2 — never a
    traceback; plain lines (no wrapping, no markup)."""
    try:
        yield
    except ConfigError as exc:
        from fleetscan.reports.sanitize import visible_controls

        for line in exc.lines():  # one line per problem; text from the bad file is escaped
            sys.stderr.write(f"fleetscan: error: {visible_controls(line)}\n")
        raise typer.Exit(2) from None


ALLOW_EXEC_HELP = (
    "Run an executable inventory script given with -i (SCRIPT --list). It is code: off by default."
)


def cell(value: object) -> str:
    """A table cell for a value of any shape (lists and dicts flattened)."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


# --- options several commands share (scan, demo) -------------------------------------

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
        help="History database (sqlite:///PATH, postgresql://USER@HOST/DB); "
        "default $FLEETSCAN_DB, else ~/.local/share/fleetscan/history.sqlite.",
    ),
]
NoHistoryOption = Annotated[
    bool,
    typer.Option("--no-history", metavar="", help="Neither record this run nor compare it."),
]
CompareToOption = Annotated[
    str,
    typer.Option(
        "--compare-to",
        metavar="previous|baseline",
        help="Changes since each host's previous complete scan, or since its baseline.",
    ),
]
