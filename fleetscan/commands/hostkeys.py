"""``fleetscan hostkeys scan``: learn the fleet's host keys for review.

Fetches every selected host's keys through the same transports and jump
chains as a scan (no authentication to the host, no command), prints each as
``ssh-keygen -lf`` does, and writes OpenSSH known_hosts lines for review
(``-o FILE``) or, only when asked, appends the new ones to a trusted file
(``--append PATH``, printing exactly what was added). A key that differs from
a recorded one is listed as changed and never written.

Exit codes: 0 every host's keys fetched, none changed; 2 config error; 3 some
host unreachable, or a changed / revoked key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleetscan import runtime
from fleetscan.commands.common import ALLOW_EXEC_HELP, config_errors
from fleetscan.errors import ConfigError
from fleetscan.keyscan import fetch_all, keygen_line, lines_for, write_review_file
from fleetscan.reports.sanitize import visible_controls
from fleetscan.transports.hostkeys import append_lines

hostkeys_app = typer.Typer(help="Learn and review SSH host keys.", no_args_is_help=True)


@hostkeys_app.command("scan")
def scan_keys(
    inventory: Annotated[
        list[Path],
        typer.Option(
            "-i", "--inventory", metavar="PATH", help="Inventory (repeatable; '-': stdin)."
        ),
    ],
    limit: Annotated[
        str | None, typer.Option("-l", "--limit", metavar="PATTERN", help="Hosts/groups.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", metavar="FILE", help="Write known_hosts lines for review."),
    ] = None,
    hashed: Annotated[
        bool, typer.Option("--hash", metavar="", help="Hash host names in the written lines.")
    ] = False,
    append: Annotated[
        Path | None,
        typer.Option(
            "--append", metavar="PATH", help="Append the NEW keys to this (trusted) known_hosts."
        ),
    ] = None,
    known_hosts: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Trusted known_hosts (default ~/.ssh/known_hosts)."),
    ] = None,
    ssh_config: Annotated[
        list[Path] | None, typer.Option(metavar="FILE", help="ssh_config file(s).")
    ] = None,
    transport: Annotated[
        str | None, typer.Option(metavar="NAME", help="Force a transport: asyncssh, paramiko.")
    ] = None,
    connect_timeout: Annotated[
        float, typer.Option(metavar="SECONDS", help="Per hop and key type.")
    ] = 10.0,
    concurrency: Annotated[int, typer.Option(metavar="N", help="Hosts at once.")] = 50,
    allow_exec_inventory: Annotated[
        bool, typer.Option("--allow-exec-inventory", metavar="", help=ALLOW_EXEC_HELP)
    ] = False,
) -> None:
    """Fetch every host's SSH keys (no command runs) and print their fingerprints."""
    from fleetscan import app as pipeline
    from fleetscan.inventory import load_inventory
    from fleetscan.options import RunOptions

    with config_errors():
        options = RunOptions(
            inventory=tuple(inventory),
            policies=(),
            limit=limit,
            known_hosts=known_hosts,
            ssh_config=tuple(ssh_config) if ssh_config is not None else None,
            connect_timeout=connect_timeout,
            concurrency=concurrency,
            transport=transport,
        )
        options.validate()
        settings = options.connect_settings()
        trusted = {Path(f).expanduser().resolve() for f in settings.known_hosts_files()}
        if output is not None and output.expanduser().resolve() in trusted:
            raise ConfigError(
                "is a trusted known_hosts file; review into another file, or use --append",
                file=str(output),
                field="--output",
            )
        inv = load_inventory(options.inventory, allow_exec=allow_exec_inventory)
        targets = inv.select(limit)
        pipeline.check_transports(targets, transport)
    results = runtime.run(
        fetch_all(targets, settings, transport=transport, concurrency=concurrency)
    )
    for r in results:
        label = visible_controls(f"{r.target.name} {r.name}".strip())
        if r.error:
            typer.echo(f"{label}: not fetched: {visible_controls(r.error)}")
            continue
        typer.echo(f"{label}:")
        for k in r.keys:
            note = f" — {visible_controls(k.detail)}" if k.detail else ""
            typer.echo(f"  {keygen_line(r.name, k.blob)} {k.state}{note}")
    if output is not None:
        lines = lines_for(results, {"known", "new"}, hashed)
        write_review_file(output, lines)
        typer.echo(f"wrote {len(lines)} known_hosts lines to {output} (changed keys left out)")
    if append is not None:
        new = lines_for(results, {"new"}, hashed)
        if new:
            append_lines(str(append), new)
        typer.echo(f"added {len(new)} lines to {append}:")
        for line in new:
            typer.echo("  " + line.rstrip("\n"))
    raise typer.Exit(3 if any(r.problem for r in results) else 0)
