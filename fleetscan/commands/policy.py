"""``fleetscan policy …``: validate policies without scanning, list the built-in ones."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleetscan.commands.common import config_errors
from fleetscan.reports.terminal import console

policy_app = typer.Typer(help="Validate and list policies.", no_args_is_help=True)


@policy_app.command("list")
def policy_list() -> None:
    """List the built-in policies (use them by name: -p baseline)."""
    from fleetscan.policy import builtin_policies

    items = builtin_policies()
    width = max(len(item.name) for item in items)
    out = console()
    for item in items:  # plain lines: readable in a pipe as on a terminal
        out.print(f"{item.name:<{width}}  {len(item.rule_ids):>3} rules  {item.description}")
        out.print(f"{'':<{width}}  {item.path}")


@policy_app.command("check")
def policy_check(
    policy: Annotated[
        list[Path],
        typer.Option(
            "-p",
            "--policy",
            metavar="FILE|NAME",
            help="Policy file(s) or built-in policy names.",
        ),
    ],
) -> None:
    """Validate policy files (exit 2 with file, line and field on error)."""
    from fleetscan.policy import load_policies

    with config_errors():
        pol = load_policies(policy)
    console().print(f"ok: {', '.join(pol.files)} (digest {pol.digest[:12]})")
