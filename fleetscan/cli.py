"""fleetscan's command line (typer): parse arguments, call the library, print.

The run itself is :mod:`fleetscan.app` (one entry for scan, demo, workers and
Python users); this module turns options into a
:class:`~fleetscan.options.RunOptions` and the result into a summary and an
exit code. Other commands live in :mod:`fleetscan.commands`.

Exit codes (the CI contract, also in README):

  0  every host scanned and compliant at --fail-on
  1  findings at or above --fail-on
  2  usage or configuration error (bad inventory, bad policy, bad option)
  3  some hosts could not be fully scanned (and no finding at/above --fail-on)
  130 interrupted (Ctrl-C / SIGTERM); reports cover the hosts that finished
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from fleetscan import __version__
from fleetscan.commands.common import ALLOW_EXEC_HELP, config_errors, err_console
from fleetscan.commands.history import history_summary
from fleetscan.commands.history import register as register_history
from fleetscan.commands.hostkeys import hostkeys_app
from fleetscan.commands.inventory import inventory_app
from fleetscan.commands.parse import parse
from fleetscan.commands.policy import policy_app
from fleetscan.commands.progress import ScanProgress, host_line
from fleetscan.commands.worker import worker
from fleetscan.options import RunOptions, parse_formats, parse_severity, parse_zones
from fleetscan.reports.files import parse_mode
from fleetscan.reports.terminal import console as make_console

__all__ = ["app", "host_line", "main"]

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
app.add_typer(inventory_app, name="inventory")
app.add_typer(policy_app, name="policy")
app.add_typer(hostkeys_app, name="hostkeys")
app.command()(parse)
register_history(app)  # history, history prune, diff, report, baseline
app.command()(worker)


def scan_and_print(options: RunOptions, *, console: Console, quiet: bool, verbose: int) -> int:
    """Prepare (config errors → exit 2), scan with progress, print the summary;
    the exit code of the run."""
    from fleetscan import app as pipeline
    from fleetscan.reports import render_summary
    from fleetscan.reports.files import is_stdout

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
        files = ", ".join(str(p) for paths in result.reports.values() for p in paths)
        files = files or f"{', '.join(result.reports)} on standard output"
        console.print(f"reports: {files}", markup=False, highlight=False, soft_wrap=True)
    return result.exit_code


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


@app.command()
def scan(
    inventory: Annotated[
        list[Path],
        typer.Option(
            "-i",
            "--inventory",
            metavar="PATH",
            help="Inventory file or folder (repeatable); '-' reads standard input.",
        ),
    ],
    policy: Annotated[
        list[Path],
        typer.Option("-p", "--policy", metavar="FILE", help="Policy YAML file (repeatable)."),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            metavar="DIR",
            help="Report folder (default fleetscan-reports/RUN-ID); '-' writes the one "
            "--format (json, junit or html) to standard output and the summary to stderr.",
        ),
    ] = None,
    limit: Annotated[
        str | None,
        typer.Option(
            "-l",
            "--limit",
            metavar="PATTERN",
            help="Hosts, groups or globs; ',' separated; !x excludes.",
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(metavar="N", help="Hosts scanned at once.")] = 50,
    fail_on: Annotated[
        str, typer.Option(metavar="SEVERITY", help="Lowest severity that fails the run (exit 1).")
    ] = "high",
    format: Annotated[
        str, typer.Option("--format", metavar="LIST", help="Report formats: html,csv,json,junit.")
    ] = "html,csv,json,junit",
    known_hosts: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="known_hosts file (default ~/.ssh/known_hosts)."),
    ] = None,
    no_host_key_check: Annotated[
        bool,
        typer.Option(
            "--no-host-key-check",
            metavar="",
            help="Accept any host key. Insecure; printed in every report.",
        ),
    ] = False,
    ssh_config: Annotated[
        list[Path] | None,
        typer.Option(
            metavar="FILE", help="ssh_config file(s) (default ~/.ssh/config when present)."
        ),
    ] = None,
    connect_timeout: Annotated[
        float,
        typer.Option(metavar="SECONDS", help="Seconds for TCP + banner + key exchange + auth."),
    ] = 10.0,
    host_timeout: Annotated[
        float,
        typer.Option(
            metavar="SECONDS", help="Seconds for a whole host (connect and every command)."
        ),
    ] = 120.0,
    max_output_mb: Annotated[
        int, typer.Option(metavar="MIB", help="Output cap per command, MiB.")
    ] = 16,
    transport: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="Force a transport: asyncssh, paramiko, local."),
    ] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", metavar="", help="No summary.")] = False,
    verbose: Annotated[
        int,
        typer.Option(
            "-v",
            "--verbose",
            count=True,
            metavar="",
            help="-v: a line per host; -vv: also the SSH log.",
        ),
    ] = 0,
    report_mode: Annotated[
        str,
        typer.Option(
            metavar="MODE",
            help="Permissions of report files, octal (default 0600); created folders get x bits.",
        ),
    ] = "0600",
    db: DbOption = None,
    no_history: NoHistoryOption = False,
    compare_to: CompareToOption = "previous",
    probe: Annotated[
        bool,
        typer.Option(
            "--probe",
            metavar="",
            help="Exposure probes from this machine (zone 'scanner'): connect once to each "
            "TCP listener a host reported.",
        ),
    ] = False,
    probe_zones: Annotated[
        str | None,
        typer.Option(
            metavar="LIST",
            help="Zones to probe from, ',' separated: scanner and zones the policy declares.",
        ),
    ] = None,
    probe_timeout: Annotated[
        float,
        typer.Option(metavar="SECONDS", help="Seconds a probe connect may take (else filtered)."),
    ] = 2.0,
    probe_deadline: Annotated[
        float, typer.Option(metavar="SECONDS", help="Seconds for the whole probe phase.")
    ] = 300.0,
    firewall_evidence: Annotated[
        bool,
        typer.Option(
            "--firewall-evidence",
            metavar="",
            help="Also collect each host's firewall ruleset (nft, iptables-save, pfctl, "
            "netsh) as evidence in its report detail.",
        ),
    ] = False,
    distributed: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Broker URL (redis://host:6379/0): hosts are scanned by `fleetscan worker`s "
            "of their fleetscan_site. Password from $FLEETSCAN_BROKER_PASSWORD.",
        ),
    ] = None,
    shard_size: Annotated[
        int, typer.Option(metavar="N", help="With --distributed: most hosts per shard.")
    ] = 50,
    run_deadline: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            help="With --distributed: seconds until hosts without a result end not_scanned "
            "(default: derived from the shards and the workers).",
        ),
    ] = None,
    allow_exec_inventory: Annotated[
        bool, typer.Option("--allow-exec-inventory", metavar="", help=ALLOW_EXEC_HELP)
    ] = False,
    allow_secret_env: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-secret-env",
            metavar="NAME",
            help="Let the inventory read this environment variable as a password or key "
            "passphrase (repeatable; FLEETSCAN_* names are always allowed).",
        ),
    ] = None,
    trust_inventory_known_hosts: Annotated[
        bool,
        typer.Option(
            "--trust-inventory-known-hosts",
            help="Let known_hosts files named in the inventory decide host keys. "
            "Printed in every report.",
        ),
    ] = False,
    accept_new: Annotated[
        bool,
        typer.Option(
            "--accept-new",
            help="Record unknown host keys in the --known-hosts file and scan those hosts "
            "(OpenSSH accept-new); changed keys are still refused. Printed in every report.",
        ),
    ] = False,
) -> None:
    """Scan every host of the inventory and check policy."""
    with config_errors():
        options = RunOptions(
            inventory=tuple(inventory),
            policies=tuple(policy),
            limit=limit,
            output=output,
            formats=parse_formats(format),
            report_mode=parse_mode(report_mode),
            fail_on=parse_severity(fail_on),
            concurrency=concurrency,
            connect_timeout=connect_timeout,
            host_timeout=host_timeout,
            max_output_mb=max_output_mb,
            transport=transport,
            known_hosts=known_hosts,
            hostkey_checking=not no_host_key_check,
            ssh_config=tuple(ssh_config) if ssh_config is not None else None,
            history=not no_history,
            db=db,
            compare_to=compare_to,
            probe=probe,
            probe_zones=parse_zones(probe_zones) if probe_zones is not None else None,
            probe_timeout=probe_timeout,
            probe_deadline=probe_deadline,
            firewall_evidence=firewall_evidence,
            distributed=distributed,
            shard_size=shard_size,
            run_deadline=run_deadline,
            allow_exec_inventory=allow_exec_inventory,
            allowed_secret_env=tuple(allow_secret_env or ()),
            trust_inventory_known_hosts=trust_inventory_known_hosts,
            accept_new=accept_new,
        )
    code = scan_and_print(options, console=make_console(), quiet=quiet, verbose=verbose)
    raise typer.Exit(code)


scan.__doc__ = "Scan every host of the inventory and check policy. " + EXIT_HELP


@app.command()
def demo(
    output: Annotated[
        Path, typer.Option("-o", "--output", metavar="DIR", help="Report folder.")
    ] = Path("demo-report"),
    fail_on: Annotated[
        str, typer.Option(metavar="SEVERITY", help="Lowest severity that fails the run.")
    ] = "high",
    verbose: Annotated[
        int, typer.Option("-v", "--verbose", count=True, metavar="", help="A line per host.")
    ] = 0,
    db: DbOption = None,
    no_history: NoHistoryOption = False,
    compare_to: CompareToOption = "previous",
) -> None:
    """Scan the embedded demo fleet (SSH servers on 127.0.0.1, nothing outside)."""
    from fleetscan.demo import demo_options, running_demo_fleet

    console = make_console()
    with config_errors():
        threshold = parse_severity(fail_on)
    with running_demo_fleet() as fleet:
        console.print(
            f"demo fleet: {len(fleet.hosts)} SSH servers on 127.0.0.1 "
            f"(+1 that does not answer); inventory {fleet.inventory}",
            markup=False,
            soft_wrap=True,
        )
        options = replace(
            demo_options(fleet, output=output, fail_on=threshold),
            history=not no_history,
            db=db,
            compare_to=compare_to,
        )
        code = scan_and_print(options, console=console, quiet=False, verbose=verbose)
    console.print(f"open {output / 'report.html'} in a browser", markup=False, soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


def main() -> None:
    app()
