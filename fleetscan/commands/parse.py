"""``fleetscan parse``: read a saved socket listing offline, print the model."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from fleetscan.commands.common import config_errors
from fleetscan.errors import ConfigError
from fleetscan.model import ParseResult


def parse(
    file: Annotated[Path, typer.Argument(help="Saved command output ('-' for stdin).")],
    command: Annotated[
        str | None,
        typer.Option(metavar="TEXT", help="The command that produced it, e.g. 'ss -tulnp'."),
    ] = None,
    parser: Annotated[
        str | None, typer.Option(metavar="NAME", help="Parser name (see --list).")
    ] = None,
    tasklist: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="tasklist /FO CSV /NH output, for Windows netstat -ano."),
    ] = None,
    format: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="json, csv or table.")
    ] = "json",
    _list: Annotated[
        bool,
        typer.Option(
            "--list",
            metavar="",
            is_eager=True,
            callback=lambda value: _list_parsers() if value else None,
            help="List the parsers (name and the commands each reads) and exit.",
        ),
    ] = False,
) -> None:
    """Parse a saved socket listing offline (format detected when not given)."""
    from fleetscan import parsers

    with config_errors():
        text = sys.stdin.read() if str(file) == "-" else _read_output(file)
        try:
            result = parsers.parse(text, command=command, parser=parser)
        except KeyError as exc:
            raise ConfigError(str(exc.args[0]), file=str(file)) from None
        if tasklist is not None:
            from fleetscan.parsers import windows_netstat

            result = windows_netstat.apply_tasklist(result, _read_output(tasklist))
        if format not in ("json", "csv", "table"):
            raise ConfigError("choose json, csv or table", field="--format")
    if format == "json":
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")
    elif format == "csv":
        sys.stdout.write(_parse_csv(result))
    else:
        _print_table(result)


def _list_parsers() -> None:
    from fleetscan import parsers

    for spec in parsers.all_parsers():
        sys.stdout.write(f"{spec.name}\t{', '.join(spec.commands)}\n")
    raise typer.Exit(0)


def _parse_csv(result: ParseResult) -> str:
    """The parse result as CSV: one row per listener, untrusted cells neutralised
    (the standard library's writer, as the reports' CSV files)."""
    import csv
    import io

    from fleetscan.reports.sanitize import csv_cell

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["proto", "family", "address", "port", "state", "processes", "line"])
    writer.writerows(
        [
            x.proto,
            x.family,
            csv_cell(x.address),
            x.port,
            csv_cell(x.state),
            csv_cell(
                "; ".join(f"{p.name}[{p.pid if p.pid is not None else '?'}]" for p in x.processes)
            ),
            "" if x.line is None else x.line,
        ]
        for x in result.listeners
    )
    return out.getvalue()


def _read_output(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from None
    for enc in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")  # cp1252 leaves five bytes undefined


def _print_table(result: ParseResult) -> None:
    from fleetscan.reports.sanitize import visible_controls as terminal_safe
    from fleetscan.reports.terminal import console, data_table

    rows = [
        (
            x.proto,
            x.address,
            x.port,
            x.state,
            ", ".join(
                f"{p.name or '?'}[{p.pid}]" if p.pid is not None else (p.name or "?")
                for p in x.processes
            ),
        )
        for x in result.listeners
    ]
    cols = ("proto", "address", "port", "state", "processes")
    out = console()
    out.print(data_table(cols, rows, title=f"parser: {result.parser}"))
    for u in result.unparsed:
        out.print(f"unparsed line {u.line}: {terminal_safe(u.text)}", soft_wrap=True)
