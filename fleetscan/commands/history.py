"""The history commands (``history``, ``history prune``, ``diff``, ``report``,
``baseline set|show``) and the history line of the ``scan``/``demo`` summary.

Every command takes ``--db URL`` (else ``FLEETSCAN_DB``, else the default
SQLite file). A bad URL or an unusable database is exit 2 with one clear line;
host-sourced text is printed inert (control characters made visible).
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from fleetscan.model import Change, ScanRun
    from fleetscan.store import Store

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="History database URL (default $FLEETSCAN_DB or the SQLite file)."),
]
FormatOption = Annotated[str, typer.Option("--format", help="table or json.")]

history_app = typer.Typer(
    help="Recorded runs, newest first (and `history prune`).", invoke_without_command=True
)
baseline_app = typer.Typer(
    help="Pin or show the runs hosts are compared with.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(history_app, name="history")
    app.add_typer(baseline_app, name="baseline")
    app.command("diff")(diff)
    app.command("report")(report)


# --- the history lines of a scan summary ------------------------------------------------


def history_summary(run: ScanRun, console: Console, url: URL | None) -> None:
    """One line after the scan summary: what changed, where the run is recorded.
    A run without history never imports the store (SQLAlchemy: ~12 MB and
    ~0.2 s of CPU at start-up)."""
    c = run.compared_to
    if c is None:
        console.print("history: off (--no-history)", markup=False, highlight=False)
        return
    parts = []
    if run.changes:
        kinds: dict[str, int] = {}
        for ch in run.changes:
            kinds[ch.kind] = kinds.get(ch.kind, 0) + 1
        what = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        parts.append(f"{len(run.changes)} changes since {c.run} ({what})")
    elif c.run:
        parts.append(f"no changes since {c.run}")
    if c.baseline_hosts:
        parts.append(f"{len(c.baseline_hosts)} hosts at their first complete scan (baseline)")
    if c.unknown_hosts:
        parts.append(f"{len(c.unknown_hosts)} not fully scanned (changes unknown)")
    if run.trend and run.trend[-1].run == run.id and url is not None:
        from fleetscan.store import shown

        parts.append(f"recorded in {shown(url)}")
    console.print("history: " + "; ".join(parts), markup=False, highlight=False, soft_wrap=True)


# --- commands -----------------------------------------------------------------------


def _fail(message: str) -> None:
    from fleetscan.reports.sanitize import visible_controls

    sys.stderr.write(f"fleetscan: error: {visible_controls(message)}\n")
    raise typer.Exit(2)


def _open(db: str | None) -> Store:
    from fleetscan.commands.common import config_errors
    from fleetscan.store import Store, StoreError, resolve

    with config_errors():
        url = resolve(db)
    try:
        return Store.open(url)
    except StoreError as exc:
        _fail(str(exc))
        raise


def _console() -> Console:
    """Markup off (host text is printed as it is); full width in a pipe or a log."""
    from fleetscan.reports.terminal import console

    return console()


def _check_format(fmt: str) -> None:
    if fmt not in ("table", "json"):
        _fail(f"--format: choose table or json, got {fmt!r}")


@history_app.callback()
def history(
    ctx: typer.Context,
    db: DbOption = None,
    host: Annotated[str | None, typer.Option(help="Only runs that scanned this host.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs.")] = 20,
    format: FormatOption = "table",
) -> None:
    """Recorded runs, newest first: hosts, status counts, active findings, changes."""
    if ctx.invoked_subcommand is not None:
        return
    from fleetscan.reports.sanitize import visible_controls
    from fleetscan.store import StoreError

    _check_format(format)
    if limit < 1:
        _fail("--limit: must be at least 1")
    store = _open(db)
    try:
        rows = store.list_runs(limit, host)
    except StoreError as exc:
        _fail(str(exc))
    finally:
        store.close()
    if format == "json":
        sys.stdout.write(json.dumps([r.to_dict() for r in rows], indent=2) + "\n")
        return
    from fleetscan.reports.terminal import data_table

    table = data_table(
        ("id", "started", "hosts", "by status", "active findings", "listeners", "changes"),
        (
            (
                r.id + (" (interrupted)" if r.interrupted else ""),
                r.started[:19].replace("T", " "),
                r.hosts,
                ", ".join(f"{k} {v}" for k, v in r.by_status.items()),
                ", ".join(f"{k} {v}" for k, v in r.active_by_severity.items() if v) or "none",
                r.listeners,
                r.changes,
            )
            for r in rows
        ),
    )
    out = _console()
    if not rows:
        out.print("no runs recorded yet", markup=False)
        return
    out.print(table)
    if host is not None:
        out.print(f"(runs that scanned {visible_controls(host)})", markup=False)


@history_app.command("prune")
def prune(
    older_than: Annotated[str, typer.Option(help="Age like 90d, 12h, 2w.")],
    db: DbOption = None,
) -> None:
    """Delete runs older than --older-than (pinned baselines are kept)."""
    age = _age(older_than)
    store = _open(db)
    try:
        n = store.prune(datetime.now(UTC) - age)
    finally:
        store.close()
    print(f"pruned {n} run{'s' if n != 1 else ''} older than {older_than}")


_AGE_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _age(text: str, option: str = "--older-than") -> timedelta:
    m = _AGE_RE.match(text)
    if not m:
        _fail(f"{option}: {text!r} is not an age like 90d, 12h or 2w")
        raise AssertionError
    return timedelta(**{_AGE_UNITS[m.group(2)]: int(m.group(1))})


def diff(
    run_a: Annotated[
        str | None, typer.Argument(help="From run (default: the one before the last).")
    ] = None,
    run_b: Annotated[str | None, typer.Argument(help="To run (default: the last).")] = None,
    db: DbOption = None,
    host: Annotated[str | None, typer.Option(help="Only this host.")] = None,
    since: Annotated[
        str | None,
        typer.Option(help="From the newest run at least this old (24h, 7d) to the last."),
    ] = None,
    format: FormatOption = "table",
) -> None:
    """Changes between two recorded runs (default the last two)."""
    from fleetscan.store import StoreError

    _check_format(format)
    if since is not None and run_a is not None:
        _fail("--since: give either --since or RUN_A, not both")
    age = _age(since, "--since") if since is not None else None
    store = _open(db)
    try:
        if age is not None:
            a = store.run_before(datetime.now(UTC) - age)
            b = store.resolve("latest")
        elif run_a is None:
            a, b = store.last_two()
        else:
            a = store.resolve(run_a)
            b = store.resolve(run_b or "latest")
        found = store.diff(a, b, host)
    except StoreError as exc:
        _fail(str(exc))
        raise
    finally:
        store.close()
    if format == "json":
        doc = {"from": a, "to": b, "changes": [_change_dict(c) for c in found]}
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        return
    _print_changes(found, f"changes from {a} to {b}")


def _change_dict(c: Change) -> dict[str, Any]:
    from fleetscan.reports.json import change_to_dict

    return change_to_dict(c)


def _print_changes(found: tuple[Change, ...], title: str) -> None:
    from fleetscan.reports.terminal import data_table

    out = _console()
    if not found:
        out.print(f"{title}: none", markup=False)
        return

    def owners(x: Any) -> str:
        if x is None:
            return ""
        return f"{x.address}:{x.port} " + ", ".join(
            f"{p.name}({p.user or '?'})" for p in x.processes
        )

    cols = ("host", "kind", "proto", "address", "port", "before", "after")
    rows = (
        (c.host, c.kind, c.proto, c.address, c.port, owners(c.before), owners(c.after))
        for c in found
    )
    out.print(data_table(cols, rows, title=title))


def report(
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix, or 'latest').")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Report folder.")],
    db: DbOption = None,
    format: Annotated[
        str, typer.Option("--format", help="Report formats: html,csv,json,junit.")
    ] = "html,csv,json,junit",
) -> None:
    """Re-render a recorded run's reports (same content as the originals)."""
    from fleetscan.commands.common import config_errors
    from fleetscan.options import parse_formats
    from fleetscan.reports import prepare_output, write_reports
    from fleetscan.store import StoreError

    with config_errors():
        fmt = parse_formats(format)
        prepare_output(output, fmt)
    store = _open(db)
    try:
        stored = store.load(store.resolve(run))
    except StoreError as exc:
        _fail(str(exc))
        raise
    finally:
        store.close()
    with config_errors():
        written = write_reports(stored, output, fmt)
    if any(written.values()):  # nothing after a report written to standard output (-o -)
        print("reports: " + ", ".join(str(p) for paths in written.values() for p in paths))


@baseline_app.command("set")
def baseline_set(
    run: Annotated[str, typer.Argument(help="Run id (or a unique prefix, or 'latest').")],
    db: DbOption = None,
    limit: Annotated[
        str | None, typer.Option("-l", "--limit", help="Only these hosts/groups/globs.")
    ] = None,
) -> None:
    """Pin RUN as the baseline of its completely scanned hosts (--compare-to baseline)."""
    from fleetscan.commands.common import config_errors
    from fleetscan.reports.sanitize import visible_controls
    from fleetscan.store import StoreError

    store = _open(db)
    try:
        run_id = store.resolve(run)
        with config_errors():
            pinned = store.set_baseline(run_id, limit)
    except StoreError as exc:
        _fail(str(exc))
        raise
    finally:
        store.close()
    print(
        f"baseline {run_id} pinned for {len(pinned)} hosts: " + visible_controls(", ".join(pinned))
    )


@baseline_app.command("show")
def baseline_show(db: DbOption = None, format: FormatOption = "table") -> None:
    """The pinned baseline of every host that has one."""

    _check_format(format)
    store = _open(db)
    try:
        rows = store.list_baselines()
    finally:
        store.close()
    if format == "json":
        doc = [{"host": h, "run": r, "pinned_at": at} for h, r, at in rows]
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        return
    out = _console()
    if not rows:
        out.print("no baseline pinned (hosts are compared with their first complete scan)")
        return
    from fleetscan.reports.terminal import data_table

    cols = ("host", "baseline run", "pinned at")
    out.print(data_table(cols, ((h, r, at[:19].replace("T", " ")) for h, r, at in rows)))
