"""``fleetscan worker``: scan the shards of one site (see docs/distributed.md).

Only option checking lives here; the worker itself is
:mod:`fleetscan.distributed.worker`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleetscan.commands.common import config_errors, err_console
from fleetscan.errors import ConfigError


def worker(
    site: Annotated[
        str, typer.Option(metavar="SITE", help="The site (fleetscan_site) whose hosts it scans.")
    ],
    broker: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Broker URL (default $FLEETSCAN_BROKER_URL); password from "
            "$FLEETSCAN_BROKER_PASSWORD, never on the command line.",
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(metavar="N", help="Shards scanned at once.")] = 2,
    host_concurrency: Annotated[
        int, typer.Option(metavar="N", help="Hosts at once within a shard.")
    ] = 50,
    known_hosts: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="This zone's known_hosts (default ~/.ssh/known_hosts)."),
    ] = None,
    ssh_config: Annotated[
        list[Path] | None, typer.Option(metavar="FILE", help="This zone's ssh_config file(s).")
    ] = None,
    key: Annotated[
        list[Path] | None,
        typer.Option(metavar="FILE", help="Private key offered to every host (repeatable)."),
    ] = None,
    no_host_key_check: Annotated[
        bool, typer.Option("--no-host-key-check", metavar="", help="Accept any host key. Insecure.")
    ] = False,
    allow_secret_env: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME",
            help="Secret variable a shard may name (repeatable); password variables not "
            "listed are refused, even FLEETSCAN_* ones.",
        ),
    ] = None,
    trust_inventory_known_hosts: Annotated[
        bool,
        typer.Option(
            "--trust-inventory-known-hosts",
            metavar="",
            help="Use a known_hosts file a shard names (fleetscan_known_hosts); off: ignored.",
        ),
    ] = False,
    visibility_timeout: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            help="Seconds before a shard of a lost worker goes to another worker.",
        ),
    ] = 300.0,
    loglevel: Annotated[str, typer.Option(metavar="LEVEL", help="Celery log level.")] = "INFO",
    name: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="Node name (default fleetscan-<site>-<pid>@<host>)."),
    ] = None,
) -> None:
    """Run a scan worker for one site (a Celery worker); it blocks until stopped."""
    from fleetscan.configfile import check_config_file
    from fleetscan.distributed.engine import broker_url
    from fleetscan.distributed.worker import WorkerConfig, run_worker
    from fleetscan.inventory.values import parse_site
    from fleetscan.model import Origin
    from fleetscan.transports.trust import check_env_names

    with config_errors():
        site_name = parse_site(site, Origin("command line", None), "--site")
        url = broker_url(broker, field="--broker")
        for opt, value in (
            ("--concurrency", concurrency),
            ("--host-concurrency", host_concurrency),
        ):
            if value < 1:
                raise ConfigError("must be at least 1", field=opt)
        if not visibility_timeout > 0:
            raise ConfigError("must be a positive number of seconds", field="--visibility-timeout")
        # regular files, size-bounded: a FIFO or a device would hang the worker
        if known_hosts is not None:
            check_config_file(known_hosts, field="--known-hosts")
        for path in ssh_config or []:
            check_config_file(path, field="--ssh-config")
        for path in key or []:
            check_config_file(path, field="--key")
        config = WorkerConfig(
            site=site_name,
            concurrency=concurrency,
            host_concurrency=host_concurrency,
            known_hosts=str(known_hosts) if known_hosts else None,
            ssh_config=tuple(str(p) for p in ssh_config) if ssh_config is not None else None,
            client_keys=tuple(str(p) for p in key or []),
            hostkey_checking=not no_host_key_check,
            allow_secret_env=tuple(
                check_env_names(allow_secret_env or [], field="--allow-secret-env")
            ),
            trust_inventory_known_hosts=trust_inventory_known_hosts,
            visibility_timeout=visibility_timeout,
            name=name or "",
        )
    if no_host_key_check:
        err_console.print("[bold red]WARNING:[/] host-key checking is OFF on this worker.")
    run_worker(url, config, loglevel=loglevel)
