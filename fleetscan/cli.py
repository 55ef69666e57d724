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

import typer
from rich.console import Console

from fleetscan import __version__
from fleetscan.commands.common import (
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
from fleetscan.commands.scan_options import (
    AcceptNewOption,
    AllowExecInventoryOption,
    AllowSecretEnvOption,
    ConcurrencyOption,
    ConnectTimeoutOption,
    DistributedOption,
    FailOnOption,
    FirewallEvidenceOption,
    FormatOption,
    HostTimeoutOption,
    InventoryOption,
    KnownHostsOption,
    LimitOption,
    MaxOutputMbOption,
    NoHostKeyCheckOption,
    OutputOption,
    PolicyOption,
    ProbeDeadlineOption,
    ProbeOption,
    ProbeTimeoutOption,
    ProbeZonesOption,
    QuietOption,
    RunDeadlineOption,
    ShardSizeOption,
    SshConfigOption,
    TransportOption,
    TrustInventoryKnownHostsOption,
    VerboseOption,
)
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
    inventory: InventoryOption = None,
    policy: PolicyOption = None,
    output: OutputOption = None,
    limit: LimitOption = None,
    concurrency: ConcurrencyOption = 50,
    fail_on: FailOnOption = "high",
    format: FormatOption = "html,csv,json,junit",
    known_hosts: KnownHostsOption = None,
    no_host_key_check: NoHostKeyCheckOption = False,
    ssh_config: SshConfigOption = None,
    connect_timeout: ConnectTimeoutOption = 10.0,
    host_timeout: HostTimeoutOption = 120.0,
    max_output_mb: MaxOutputMbOption = 16,
    transport: TransportOption = None,
    quiet: QuietOption = False,
    verbose: VerboseOption = 0,
    db: DbOption = None,
    no_history: NoHistoryOption = False,
    compare_to: CompareToOption = "previous",
    probe: ProbeOption = False,
    probe_zones: ProbeZonesOption = None,
    probe_timeout: ProbeTimeoutOption = 2.0,
    probe_deadline: ProbeDeadlineOption = 300.0,
    firewall_evidence: FirewallEvidenceOption = False,
    distributed: DistributedOption = None,
    shard_size: ShardSizeOption = 50,
    run_deadline: RunDeadlineOption = None,
    allow_exec_inventory: AllowExecInventoryOption = False,
    allow_secret_env: AllowSecretEnvOption = None,
    trust_inventory_known_hosts: TrustInventoryKnownHostsOption = False,
    accept_new: AcceptNewOption = False,
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
