"""The options of ``fleetscan scan``, declared once (typer ``Annotated`` types).

:mod:`fleetscan.cli` lists them in ``scan``'s signature (that order is the
help's); the help text and metavar of each live here: what to scan and how,
history, exposure probes, distributed runs, and trust (command line only,
never from a config file). Options shared with ``demo`` (history) are in
:mod:`fleetscan.commands.common`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleetscan.commands.common import ALLOW_EXEC_HELP

InventoryOption = Annotated[
    list[Path] | None,
    typer.Option(
        "-i",
        "--inventory",
        metavar="PATH",
        help="Inventory file or folder (repeatable); '-' reads standard input "
        "(default: inventory in the config).",
    ),
]

PolicyOption = Annotated[
    list[Path] | None,
    typer.Option(
        "-p",
        "--policy",
        metavar="FILE|NAME",
        help="Policy YAML file, or a built-in policy name such as baseline "
        "(see 'fleetscan policy list'; repeatable; default: policy in the config).",
    ),
]

OutputOption = Annotated[
    Path | None, typer.Option("-o", "--output", metavar="DIR", help="Report folder.")
]

LimitOption = Annotated[
    str | None,
    typer.Option(
        "-l",
        "--limit",
        metavar="PATTERN",
        help="Hosts, groups or globs; ',' separated; !x excludes.",
    ),
]

ConcurrencyOption = Annotated[int, typer.Option(metavar="N", help="Hosts scanned at once.")]

FailOnOption = Annotated[
    str, typer.Option(metavar="SEVERITY", help="Lowest severity that fails the run (exit 1).")
]

FormatOption = Annotated[
    str, typer.Option("--format", metavar="LIST", help="Report formats: html,csv,json,junit.")
]

KnownHostsOption = Annotated[
    Path | None,
    typer.Option(metavar="FILE", help="known_hosts file (default ~/.ssh/known_hosts)."),
]

NoHostKeyCheckOption = Annotated[
    bool,
    typer.Option(
        "--no-host-key-check",
        metavar="",
        help="Accept any host key. Insecure; printed in every report.",
    ),
]

SshConfigOption = Annotated[
    list[Path] | None,
    typer.Option(metavar="FILE", help="ssh_config file(s) (default ~/.ssh/config when present)."),
]

ConnectTimeoutOption = Annotated[
    float,
    typer.Option(metavar="SECONDS", help="Seconds for TCP + banner + key exchange + auth."),
]

HostTimeoutOption = Annotated[
    float,
    typer.Option(metavar="SECONDS", help="Seconds for a whole host (connect and every command)."),
]

MaxOutputMbOption = Annotated[int, typer.Option(metavar="MIB", help="Output cap per command, MiB.")]

TransportOption = Annotated[
    str | None,
    typer.Option(metavar="NAME", help="Force a transport: asyncssh, paramiko, local."),
]

QuietOption = Annotated[bool, typer.Option("-q", "--quiet", metavar="", help="No summary.")]

VerboseOption = Annotated[
    int,
    typer.Option(
        "-v",
        "--verbose",
        count=True,
        metavar="",
        help="-v: a line per host; -vv: also the SSH log.",
    ),
]

ProbeOption = Annotated[
    bool,
    typer.Option(
        "--probe",
        metavar="",
        help="Exposure probes from this machine (zone 'scanner'): connect once to each "
        "TCP listener a host reported.",
    ),
]

ProbeZonesOption = Annotated[
    str | None,
    typer.Option(
        metavar="LIST",
        help="Zones to probe from, ',' separated: scanner and zones the policy declares.",
    ),
]

ProbeTimeoutOption = Annotated[
    float,
    typer.Option(metavar="SECONDS", help="Seconds a probe connect may take (else filtered)."),
]

ProbeDeadlineOption = Annotated[
    float, typer.Option(metavar="SECONDS", help="Seconds for the whole probe phase.")
]

FirewallEvidenceOption = Annotated[
    bool,
    typer.Option(
        "--firewall-evidence",
        metavar="",
        help="Also collect each host's firewall ruleset (nft, iptables-save, pfctl, "
        "netsh) as evidence in its report detail.",
    ),
]

DistributedOption = Annotated[
    str | None,
    typer.Option(
        metavar="URL",
        help="Broker URL (redis://host:6379/0): hosts are scanned by `fleetscan worker`s "
        "of their fleetscan_site. Password from $FLEETSCAN_BROKER_PASSWORD.",
    ),
]

ShardSizeOption = Annotated[
    int, typer.Option(metavar="N", help="With --distributed: most hosts per shard.")
]

RunDeadlineOption = Annotated[
    float | None,
    typer.Option(
        metavar="SECONDS",
        help="With --distributed: seconds until hosts without a result end not_scanned "
        "(default: derived from the shards and the workers).",
    ),
]

AllowExecInventoryOption = Annotated[
    bool, typer.Option("--allow-exec-inventory", metavar="", help=ALLOW_EXEC_HELP)
]

AllowSecretEnvOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-secret-env",
        metavar="NAME",
        help="Let the inventory read this environment variable as a password or key "
        "passphrase (repeatable; FLEETSCAN_* names are always allowed).",
    ),
]

TrustInventoryKnownHostsOption = Annotated[
    bool,
    typer.Option(
        "--trust-inventory-known-hosts",
        help="Let known_hosts files named in the inventory decide host keys. "
        "Printed in every report.",
    ),
]

AcceptNewOption = Annotated[
    bool,
    typer.Option(
        "--accept-new",
        help="Record unknown host keys in the --known-hosts file and scan those hosts "
        "(OpenSSH accept-new); changed keys are still refused. Printed in every report.",
    ),
]

ReportModeOption = Annotated[
    str,
    typer.Option(
        metavar="MODE",
        help="Octal permissions of report files (folders get the matching search bits).",
    ),
]

# --- alerts and metrics ---------------------------------------------------------------

AlertOnOption = Annotated[
    str,
    typer.Option(metavar="SEVERITY", help="Lowest severity of a new finding that alerts."),
]

WebhookOption = Annotated[
    list[str] | None,
    typer.Option(
        metavar="URL",
        help="POST alerts to this URL (repeatable). A chat hook URL is a secret: "
        "prefer the config file or $FLEETSCAN_WEBHOOK.",
    ),
]

WebhookFormatOption = Annotated[
    str, typer.Option(metavar="json|slack", help="Alert payload: fleetscan JSON or Slack text.")
]

WebhookTokenEnvOption = Annotated[
    str | None,
    typer.Option(metavar="NAME", help="Environment variable with a bearer token."),
]

SmtpOption = Annotated[
    str | None, typer.Option(metavar="HOST[:PORT]", help="Mail alerts through this relay.")
]

SmtpSecurityOption = Annotated[
    str, typer.Option(metavar="starttls|tls|none", help="SMTP transport security.")
]

SmtpUserOption = Annotated[str | None, typer.Option(metavar="USER", help="SMTP login.")]

SmtpPasswordEnvOption = Annotated[
    str | None,
    typer.Option(metavar="NAME", help="Environment variable with the SMTP password."),
]

MailFromOption = Annotated[str | None, typer.Option(metavar="ADDR", help="Sender.")]

MailToOption = Annotated[
    list[str] | None, typer.Option(metavar="ADDR", help="Recipient (repeatable).")
]

ReportUrlOption = Annotated[
    str | None,
    typer.Option(metavar="URL", help="Link to the report in alerts; {run_id} is replaced."),
]

MetricsFileOption = Annotated[
    Path | None,
    typer.Option(
        metavar="FILE",
        help="Write Prometheus metrics here after the run (node_exporter textfile).",
    ),
]
