"""``fleetscan inventory …``: inspect inventories without scanning."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from fleetscan.commands.common import ALLOW_EXEC_HELP, cell, config_errors
from fleetscan.errors import ConfigError
from fleetscan.reports.terminal import console, data_table

inventory_app = typer.Typer(help="Inspect inventories.", no_args_is_help=True)


@inventory_app.command("show")
def inventory_show(
    inventory: Annotated[
        list[Path],
        typer.Option("-i", "--inventory", metavar="PATH", help="Inventory file(s); '-' for stdin."),
    ],
    limit: Annotated[str | None, typer.Option("-l", "--limit", metavar="PATTERN")] = None,
    format: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="table or json.")
    ] = "table",
    allow_exec_inventory: Annotated[
        bool, typer.Option("--allow-exec-inventory", metavar="", help=ALLOW_EXEC_HELP)
    ] = False,
) -> None:
    """Print the resolved hosts with their effective variables."""
    from fleetscan.inventory import format_inventory, load_inventory

    with config_errors():
        if format not in ("table", "json"):
            raise ConfigError(f"choose table or json, got {format!r}", field="--format")
        inv = load_inventory(inventory, allow_exec=allow_exec_inventory)
        targets = inv.select(limit, check_files=False)
    rows = format_inventory(targets)
    if format == "json":
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    cols = ["name", "address", "port", "user", "platform", "groups", "become", "vars"]
    console().print(data_table(cols, ([cell(row.get(c)) for c in cols] for row in rows)))
