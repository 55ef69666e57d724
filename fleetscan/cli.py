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

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fleetscan import __version__
from fleetscan.commands.common import (
    ALLOW_EXEC_HELP,
    CompareToOption,
    DbOption,
    NoHistoryOption,
    config_errors,
)
from fleetscan.commands.config import config_app
from fleetscan.commands.demo import demo
from fleetscan.commands.history import register as register_history
from fleetscan.commands.hostkeys import hostkeys_app
from fleetscan.commands.inventory import inventory_app
from fleetscan.commands.parse import parse
from fleetscan.commands.policy import policy_app
from fleetscan.commands.progress import host_line, scan_and_print
from fleetscan.commands.worker import worker
from fleetscan.options import parse_zones

__all__ = ["app", "host_line", "main"]

EXIT_HELP = (
    "Exit codes: 0 compliant; 1 findings at or above --fail-on; 2 usage/config error; "
    "3 some hosts not fully scanned; 130 interrupted."
)

app = typer.Typer(
    name="fleetscan",
    help="Agentless fleet scanner for listening network services. " + EXIT_HELP,
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
app.add_typer(inventory_app, name="inventory")
app.add_typer(policy_app, name="policy")
app.add_typer(config_app, name="config")
app.add_typer(hostkeys_app, name="hostkeys")
register_history(app)  # history, history prune, diff, report, baseline
app.command()(worker)


@app.command()
def scan(
    ctx: typer.Context,
    inventory: Annotated[
        list[Path] | None,
        typer.Option(
            "-i",
            "--inventory",
            metavar="PATH",
            help="Inventory file or folder (repeatable); '-' reads standard input "
            "(default: inventory in the config).",
        ),
    ] = None,
    policy: Annotated[
        list[Path] | None,
        typer.Option(
            "-p",
            "--policy",
            metavar="FILE|NAME",
            help="Policy YAML file, or a built-in policy name such as baseline "
            "(see 'fleetscan policy list'; repeatable; default: policy in the config).",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", metavar="DIR", help="Report folder.")
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
    from fleetscan import config

    typed = {
        "inventory": tuple(inventory or ()),
        "policy": tuple(policy or ()),
        "output": output,
        "limit": limit,
        "format": format,
        "fail_on": fail_on,
        "concurrency": concurrency,
        "connect_timeout": connect_timeout,
        "host_timeout": host_timeout,
        "max_output_mb": max_output_mb,
        "transport": transport,
        "known_hosts": known_hosts,
        "ssh_config": tuple(ssh_config) if ssh_config is not None else None,
    }
    given = {
        key: value
        for key, value in typed.items()
        if getattr(ctx.get_parameter_source(key), "name", "") == "COMMANDLINE"
    }
    with config_errors():
        options, _sources = config.resolve(given)
        zones = parse_zones(probe_zones) if probe_zones is not None else None
    # trust decisions are made on the command line, for this run only: never from a
    # config file; the history/exposure/distributed options are command-line only too
    options = replace(
        options,
        hostkey_checking=not no_host_key_check,
        allow_exec_inventory=allow_exec_inventory,
        allowed_secret_env=tuple(allow_secret_env or ()),
        trust_inventory_known_hosts=trust_inventory_known_hosts,
        accept_new=accept_new,
        history=not no_history,
        db=db,
        compare_to=compare_to,
        probe=probe,
        probe_zones=zones,
        probe_timeout=probe_timeout,
        probe_deadline=probe_deadline,
        firewall_evidence=firewall_evidence,
        distributed=distributed,
        shard_size=shard_size,
        run_deadline=run_deadline,
    )
    code = scan_and_print(options, console=Console(highlight=False), quiet=quiet, verbose=verbose)
    raise typer.Exit(code)


scan.__doc__ = "Scan every host of the inventory and check policy. " + EXIT_HELP
app.command()(demo)
app.command()(parse)


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


def main() -> None:
    # one program name however started (console script or `python -m fleetscan`):
    # usage lines and the shell-completion variable (_FLEETSCAN_COMPLETE) stay the same
    app(prog_name="fleetscan")
