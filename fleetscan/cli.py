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
from typing import Any

import typer

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
    AlertOnOption,
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
    MailFromOption,
    MailToOption,
    MaxOutputMbOption,
    MetricsFileOption,
    NoHostKeyCheckOption,
    OutputOption,
    PolicyOption,
    ProbeDeadlineOption,
    ProbeOption,
    ProbeTimeoutOption,
    ProbeZonesOption,
    QuietOption,
    ReportModeOption,
    ReportUrlOption,
    RunDeadlineOption,
    ShardSizeOption,
    SmtpOption,
    SmtpPasswordEnvOption,
    SmtpSecurityOption,
    SmtpUserOption,
    SshConfigOption,
    TransportOption,
    TrustInventoryKnownHostsOption,
    VerboseOption,
    WebhookFormatOption,
    WebhookOption,
    WebhookTokenEnvOption,
)
from fleetscan.commands.watch import make_watch
from fleetscan.commands.worker import worker
from fleetscan.options import RunOptions, parse_zones
from fleetscan.reports.terminal import console as make_console
from fleetscan.runtime import tune_process

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
    report_mode: ReportModeOption = "0600",
    alert_on: AlertOnOption = "high",
    webhook: WebhookOption = None,
    webhook_format: WebhookFormatOption = "json",
    webhook_token_env: WebhookTokenEnvOption = None,
    smtp: SmtpOption = None,
    smtp_security: SmtpSecurityOption = "starttls",
    smtp_user: SmtpUserOption = None,
    smtp_password_env: SmtpPasswordEnvOption = None,
    mail_from: MailFromOption = None,
    mail_to: MailToOption = None,
    report_url: ReportUrlOption = None,
    metrics_file: MetricsFileOption = None,
) -> None:
    """Scan every host of the inventory and check policy."""
    args = {k: v for k, v in locals().items() if k != "ctx"}
    options = options_from_args(ctx, args)
    code = scan_and_print(options, console=make_console(), quiet=quiet, verbose=verbose)
    raise typer.Exit(code)


#: options read from the config file and FLEETSCAN_* too (command line wins)
CONFIGURABLE = (
    "inventory",
    "policy",
    "output",
    "limit",
    "format",
    "fail_on",
    "concurrency",
    "connect_timeout",
    "host_timeout",
    "max_output_mb",
    "transport",
    "known_hosts",
    "ssh_config",
    "report_mode",
    "alert_on",
    "webhook",
    "webhook_format",
    "webhook_token_env",
    "smtp",
    "smtp_security",
    "smtp_user",
    "smtp_password_env",
    "mail_from",
    "mail_to",
    "report_url",
    "metrics_file",
)


def options_from_args(ctx: typer.Context, args: dict[str, Any]) -> RunOptions:
    """RunOptions from the scan options (``scan`` and ``watch`` share them)."""
    from fleetscan import config

    def plain(key: str) -> Any:
        value = args[key]
        return tuple(value) if isinstance(value, list) else value

    given = {
        key: plain(key)
        for key in CONFIGURABLE
        if getattr(ctx.get_parameter_source(key), "name", "") == "COMMANDLINE"
    }
    with config_errors():
        options, _sources = config.resolve(given)
        zones = parse_zones(args["probe_zones"]) if args["probe_zones"] is not None else None
    # trust decisions are made on the command line, for this run only: never from a
    # config file; the history/exposure/distributed options are command-line only too
    return replace(
        options,
        hostkey_checking=not args["no_host_key_check"],
        allow_exec_inventory=args["allow_exec_inventory"],
        allowed_secret_env=tuple(args["allow_secret_env"] or ()),
        trust_inventory_known_hosts=args["trust_inventory_known_hosts"],
        accept_new=args["accept_new"],
        history=not args["no_history"],
        db=args["db"],
        compare_to=args["compare_to"],
        probe=args["probe"],
        probe_zones=zones,
        probe_timeout=args["probe_timeout"],
        probe_deadline=args["probe_deadline"],
        firewall_evidence=args["firewall_evidence"],
        distributed=args["distributed"],
        shard_size=args["shard_size"],
        run_deadline=args["run_deadline"],
    )


scan.__doc__ = "Scan every host of the inventory and check policy. " + EXIT_HELP
app.command()(demo)
app.command()(parse)
app.command("watch")(make_watch(scan, options_from_args))


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


def main() -> None:
    # collector and allocator settings for a scan's many objects (see runtime)
    tune_process()
    # one program name however started (console script or `python -m fleetscan`):
    # usage lines and the shell-completion variable (_FLEETSCAN_COMPLETE) stay the same
    app(prog_name="fleetscan")
