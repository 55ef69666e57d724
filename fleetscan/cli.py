"""fleetscan's command line (typer).

Exit codes (the CI contract, also in README):

  0  every host scanned and compliant at --fail-on
  1  findings at or above --fail-on
  2  usage or configuration error (bad inventory, bad policy, bad option)
  3  some hosts could not be fully scanned (and no finding at/above --fail-on)
  130 interrupted (Ctrl-C / SIGTERM); reports cover the hosts that finished
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from fleetscan import __version__
from fleetscan.errors import ConfigError
from fleetscan.model import HostScan, ParseResult, Severity, Target
from fleetscan.reports.terminal import console as make_console
from fleetscan.reports.terminal import data_table

EXIT_HELP = (
    "Exit codes: 0 compliant; 1 findings at or above --fail-on; 2 usage/config error; "
    "3 some hosts not fully scanned; 130 interrupted."
)

app = typer.Typer(
    name="fleetscan",
    help="Agentless fleet scanner for listening network services. " + EXIT_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
inventory_app = typer.Typer(help="Inspect inventories.", no_args_is_help=True)
policy_app = typer.Typer(help="Validate policies.", no_args_is_help=True)
app.add_typer(inventory_app, name="inventory")
app.add_typer(policy_app, name="policy")

err_console = make_console(stderr=True)
#: where reports go without --output: one sub-folder per run
DEFAULT_REPORTS = Path("fleetscan-reports")


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


def _formats(text: str) -> list[str]:
    from fleetscan.reports import FORMATS

    wanted = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in wanted if f not in FORMATS]
    if bad or not wanted:
        raise ConfigError(
            f"unknown report format {', '.join(bad) or text!r} (choose from {', '.join(FORMATS)})",
            field="--format",
        )
    return wanted


def _severity(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError as exc:
        raise ConfigError(str(exc), field="--fail-on") from None


class _Progress:
    """A progress bar on a terminal; silence otherwise (machine-friendly).
    With ``--verbose``, one line per host on stderr as each finishes."""

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

    def __enter__(self) -> _Progress:
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


def _execute(
    *,
    inventory: list[Path],
    policies: list[Path],
    output: Path | None,
    limit: str | None,
    concurrency: int,
    fail_on: str,
    formats: str,
    known_hosts: Path | None,
    no_hostkey_check: bool,
    ssh_config: list[Path] | None,
    connect_timeout: float,
    host_timeout: float,
    max_output_mb: int,
    transport: str | None,
    quiet: bool,
    console: Console,
    verbose: int = 0,
    report_mode: str = "0600",
) -> int:
    from fleetscan.app import RunInputs, run_with_signals
    from fleetscan.inventory import load_inventory
    from fleetscan.policy import load_policies
    from fleetscan.reports import exit_code, prepare_output, render_summary, write_reports
    from fleetscan.reports.files import is_stdout, parse_mode
    from fleetscan.runner import ScanSettings
    from fleetscan.transports.base import ConnectSettings

    with config_errors():
        fmt = _formats(formats)
        threshold = _severity(fail_on)
        if concurrency < 1:
            raise ConfigError("must be at least 1", field="--concurrency")
        for name, value in (
            ("--connect-timeout", connect_timeout),
            ("--host-timeout", host_timeout),
        ):
            if not value > 0:
                raise ConfigError(f"must be a positive number of seconds, got {value}", field=name)
        if max_output_mb < 1:
            raise ConfigError(
                f"must be at least 1 (MiB), got {max_output_mb}", field="--max-output-mb"
            )
        for path in ssh_config or []:
            if not path.exists():
                raise ConfigError("ssh config file not found", file=str(path), field="--ssh-config")
        if known_hosts is not None and not known_hosts.exists():
            raise ConfigError(
                "known_hosts file not found", file=str(known_hosts), field="--known-hosts"
            )
        inv = load_inventory(inventory)
        targets = inv.select(limit)
        _check_key_files(targets)
        policy = load_policies(policies)
        mode = parse_mode(report_mode)
        # last check, so a config error writes nothing; no -o: checks ./fleetscan-reports
        prepare_output(output or DEFAULT_REPORTS, fmt, mode)
        settings = ScanSettings(
            connect=ConnectSettings(
                known_hosts=str(known_hosts) if known_hosts else None,
                hostkey_checking=not no_hostkey_check,
                connect_timeout=connect_timeout,
                ssh_config=tuple(str(p) for p in ssh_config) if ssh_config is not None else None,
            ),
            concurrency=concurrency,
            host_timeout=host_timeout,
            max_output=max_output_mb * 1024 * 1024,
            transport=transport,
        )
        inputs = RunInputs(
            targets=targets,
            policy=policy,
            settings=settings,
            fail_on=threshold,
            inventory_files=inv.files,
            inventory_digest=inv.digest,
        )
    if no_hostkey_check:
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
    with _Progress(len(targets), show, verbose=verbose >= 1) as progress:
        run = run_with_signals(inputs, on_result=progress.update)
    outdir = output if output is not None else DEFAULT_REPORTS / run.id
    with config_errors():  # e.g. the disk filled up during the scan: one line, exit 2
        written = write_reports(run, outdir, fmt, mode)
    if is_stdout(outdir):  # standard output holds the report alone
        console = make_console(stderr=True)
    if not quiet:
        render_summary(run, console)
        files = ", ".join(str(p) for paths in written.values() for p in paths)
        files = files or f"{', '.join(written)} on standard output"
        console.print(f"reports: {files}", markup=False, highlight=False, soft_wrap=True)
    return exit_code(run)


def _check_key_files(targets: Sequence[Target]) -> None:
    """A private key named in the inventory must exist: a typo is a config
    error for the whole run, not an 'unreachable' host found after connecting."""
    for target in targets:
        for key in target.key_files:
            if not Path(key).expanduser().exists():
                file, _, line = target.source.rpartition(":")
                raise ConfigError(
                    f"host {target.name}: private key file {key!r} not found",
                    file=file or None,
                    line=int(line) if line.isdigit() else None,
                    field="key file",
                )


@app.command()
def scan(
    inventory: Annotated[
        list[Path], typer.Option("-i", "--inventory", help="Inventory file or folder (repeatable).")
    ],
    policy: Annotated[
        list[Path], typer.Option("-p", "--policy", help="Policy YAML file (repeatable).")
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Report folder (default fleetscan-reports/RUN-ID); '-' writes the one "
            "--format (json, junit or html) to standard output and the summary to stderr.",
        ),
    ] = None,
    limit: Annotated[
        str | None,
        typer.Option("-l", "--limit", help="Hosts, groups or globs; ',' separated; !x excludes."),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Hosts scanned at once.")] = 50,
    fail_on: Annotated[
        str, typer.Option(help="Lowest severity that fails the run (exit 1).")
    ] = "high",
    format: Annotated[
        str, typer.Option("--format", help="Report formats: html,csv,json,junit.")
    ] = "html,csv,json,junit",
    known_hosts: Annotated[
        Path | None, typer.Option(help="known_hosts file (default ~/.ssh/known_hosts).")
    ] = None,
    no_host_key_check: Annotated[
        bool,
        typer.Option(
            "--no-host-key-check",
            help="Accept any host key. Insecure; printed in every report.",
        ),
    ] = False,
    ssh_config: Annotated[
        list[Path] | None,
        typer.Option(help="ssh_config file(s) (default ~/.ssh/config when present)."),
    ] = None,
    connect_timeout: Annotated[
        float, typer.Option(help="Seconds for TCP + banner + key exchange + auth.")
    ] = 10.0,
    host_timeout: Annotated[float, typer.Option(help="Seconds for a whole host.")] = 120.0,
    max_output_mb: Annotated[int, typer.Option(help="Output cap per command, MiB.")] = 16,
    transport: Annotated[
        str | None, typer.Option(help="Force a transport: asyncssh, paramiko, local.")
    ] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No summary.")] = False,
    verbose: Annotated[
        int,
        typer.Option(
            "-v", "--verbose", count=True, help="-v: a line per host; -vv: also the SSH log."
        ),
    ] = 0,
    report_mode: Annotated[
        str,
        typer.Option(help="Permissions of report files (octal); folders created get x bits."),
    ] = "0600",
) -> None:
    """Scan every host of the inventory and check policy."""
    code = _execute(
        inventory=inventory,
        policies=policy,
        output=output,
        limit=limit,
        concurrency=concurrency,
        fail_on=fail_on,
        formats=format,
        known_hosts=known_hosts,
        no_hostkey_check=no_host_key_check,
        ssh_config=ssh_config,
        connect_timeout=connect_timeout,
        host_timeout=host_timeout,
        max_output_mb=max_output_mb,
        transport=transport,
        quiet=quiet,
        console=make_console(),
        verbose=verbose,
        report_mode=report_mode,
    )
    raise typer.Exit(code)


scan.__doc__ = "Scan every host of the inventory and check policy. " + EXIT_HELP


@app.command()
def demo(
    output: Annotated[Path, typer.Option("-o", "--output", help="Report folder.")] = Path(
        "demo-report"
    ),
    fail_on: Annotated[str, typer.Option(help="Lowest severity that fails the run.")] = "high",
    verbose: Annotated[
        int, typer.Option("-v", "--verbose", count=True, help="A line per host.")
    ] = 0,
) -> None:
    """Scan the embedded demo fleet (SSH servers on 127.0.0.1, nothing outside)."""
    from fleetscan.demo import start_demo_fleet
    from fleetscan.policy import builtin_policy_path

    console = make_console()
    with tempfile.TemporaryDirectory(prefix="fleetscan-demo-") as tmp:
        work = Path(tmp)
        loop = asyncio.new_event_loop()
        try:
            fleet = loop.run_until_complete(start_demo_fleet(work))
            console.print(
                f"demo fleet: {len(fleet.hosts)} SSH servers on 127.0.0.1 "
                f"(+1 that does not answer); inventory {fleet.inventory}",
                markup=False,
                soft_wrap=True,
            )

            def in_thread() -> int:
                return _execute(
                    inventory=[fleet.inventory],
                    policies=[builtin_policy_path("baseline"), builtin_policy_path("demo")],
                    output=output,
                    limit=None,
                    concurrency=10,
                    fail_on=fail_on,
                    formats="html,csv,json,junit",
                    known_hosts=fleet.known_hosts,
                    no_hostkey_check=False,
                    ssh_config=[],
                    connect_timeout=5.0,
                    host_timeout=30.0,
                    max_output_mb=16,
                    transport=None,
                    quiet=False,
                    console=console,
                    verbose=verbose,
                )

            # the servers run on this loop in a thread while the scan runs its own loop
            code = loop.run_until_complete(asyncio.to_thread(in_thread))
            loop.run_until_complete(fleet.stop())
        finally:
            loop.close()
    console.print(f"open {output / 'report.html'} in a browser", markup=False, soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def parse(
    file: Annotated[Path, typer.Argument(help="Saved command output ('-' for stdin).")],
    command: Annotated[
        str | None, typer.Option(help="The command that produced it, e.g. 'ss -tulnp'.")
    ] = None,
    parser: Annotated[str | None, typer.Option(help="Parser name (see --list).")] = None,
    tasklist: Annotated[
        Path | None, typer.Option(help="tasklist /FO CSV /NH output, for Windows netstat -ano.")
    ] = None,
    format: Annotated[str, typer.Option("--format", help="json, csv or table.")] = "json",
) -> None:
    """Parse a saved socket listing offline (format detected when not given)."""
    from fleetscan import parsers

    with config_errors():
        text = sys.stdin.read() if str(file) == "-" else _read_output(file)
        try:
            if parser:
                spec = parsers.get(parser)
            elif command:
                spec = parsers.for_command(command)
            else:
                spec = parsers.detect(text)
        except KeyError as exc:
            raise ConfigError(str(exc.args[0]), file=str(file)) from None
        result = spec.parse(text)
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


def _parse_csv(result: ParseResult) -> str:
    """The parse result as CSV: one row per listener, untrusted cells neutralised."""
    import pandas as pd

    from fleetscan.reports.sanitize import csv_cell

    rows = [
        {
            "proto": x.proto,
            "family": x.family,
            "address": csv_cell(x.address),
            "port": x.port,
            "state": csv_cell(x.state),
            "processes": csv_cell(
                "; ".join(f"{p.name}[{p.pid if p.pid is not None else '?'}]" for p in x.processes)
            ),
            "line": x.line,
        }
        for x in result.listeners
    ]
    cols = ["proto", "family", "address", "port", "state", "processes", "line"]
    return str(pd.DataFrame(rows, columns=cols).to_csv(index=False))


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
    return data.decode("latin-1")


def _print_table(result: ParseResult) -> None:
    from fleetscan.reports.sanitize import visible_controls as terminal_safe

    rows = [
        (
            x.proto,
            x.address,
            x.port,
            x.state,
            ", ".join(f"{p.name}[{p.pid}]" if p.pid is not None else p.name for p in x.processes),
        )
        for x in result.listeners
    ]
    cols = ("proto", "address", "port", "state", "processes")
    console = make_console()
    console.print(data_table(cols, rows, title=f"parser: {result.parser}"))
    for u in result.unparsed:
        console.print(f"unparsed line {u.line}: {terminal_safe(u.text)}", soft_wrap=True)


@inventory_app.command("show")
def inventory_show(
    inventory: Annotated[list[Path], typer.Option("-i", "--inventory", help="Inventory file(s).")],
    limit: Annotated[str | None, typer.Option("-l", "--limit")] = None,
    format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Print the resolved hosts with their effective variables."""
    from fleetscan.inventory import format_inventory, load_inventory

    with config_errors():
        if format not in ("table", "json"):
            raise ConfigError(f"choose table or json, got {format!r}", field="--format")
        targets = load_inventory(inventory).select(limit)
    rows = format_inventory(targets)
    if format == "json":
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    cols = ["name", "address", "port", "user", "platform", "groups", "become", "vars"]
    make_console().print(data_table(cols, ([_cell(row.get(c)) for c in cols] for row in rows)))


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


@policy_app.command("check")
def policy_check(
    policy: Annotated[list[Path], typer.Option("-p", "--policy", help="Policy file(s).")],
) -> None:
    """Validate policy files (exit 2 with file, line and field on error)."""
    from fleetscan.policy import load_policies

    with config_errors():
        pol = load_policies(policy)
    make_console().print(f"ok: {', '.join(pol.files)} (digest {pol.digest[:12]})")


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


def main() -> None:
    app()
