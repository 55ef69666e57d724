"""``fleetscan policy …``: validate policies without scanning."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleetscan.commands.common import config_errors
from fleetscan.reports.terminal import console

policy_app = typer.Typer(help="Validate policies.", no_args_is_help=True)


@policy_app.command("check")
def policy_check(
    policy: Annotated[
        list[Path], typer.Option("-p", "--policy", metavar="FILE", help="Policy file(s).")
    ],
) -> None:
    """Validate policy files (exit 2 with file, line and field on error)."""
    from fleetscan.policy import load_policies

    with config_errors():
        pol = load_policies(policy)
    console().print(f"ok: {', '.join(pol.files)} (digest {pol.digest[:12]})")
