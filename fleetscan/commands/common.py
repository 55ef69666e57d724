"""Helpers every command shares: one-line config errors, safe terminal text."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from fleetscan.errors import ConfigError
from fleetscan.reports.terminal import console as make_console

#: stderr: progress, -v lines, warnings; markup off (host text is printed as it is)
err_console = make_console(stderr=True)


@contextmanager
def config_errors() -> Iterator[None]:
    """Turn ConfigError into one clear line and exit code 2 — never a traceback."""
    try:
        yield
    except ConfigError as exc:
        # one plain line (no wrapping, no markup); text from the bad file is escaped
        from fleetscan.reports.sanitize import visible_controls

        sys.stderr.write(f"fleetscan: error: {visible_controls(str(exc))}\n")
        raise typer.Exit(2) from None


def cell(value: object) -> str:
    """A table cell for a value of any shape (lists and dicts flattened)."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)
