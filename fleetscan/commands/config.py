"""``fleetscan config …``: the effective scan defaults and where each comes from."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from fleetscan.commands.common import config_errors

config_app = typer.Typer(
    help="Show the scan defaults from fleetscan.toml, ~/.config/fleetscan/config.toml "
    "and FLEETSCAN_* variables.",
    no_args_is_help=True,
)


def _shown(value: Any) -> Any:
    """A value as TOML/JSON shows it (paths as text, severities by name)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, tuple | list):
        return [_shown(v) for v in value]
    return value


@config_app.command("show")
def config_show(
    as_json: Annotated[
        bool, typer.Option("--json", metavar="", help="Print JSON instead of text.")
    ] = False,
) -> None:
    """Print every effective scan default and where it came from (command line
    > environment > ./fleetscan.toml > ~/.config/fleetscan/config.toml > built-in)."""
    import os

    from fleetscan import config
    from fleetscan.reports.sanitize import visible_controls

    with config_errors():
        values = config.load()
    files = [str(p) for p in config.config_files(Path.cwd(), os.environ)]
    if as_json:
        out = {
            "files": files,
            "settings": {
                k: {"value": _shown(v.value), "source": v.source, "env": config.BY_KEY[k].env}
                for k, v in values.items()
            },
        }
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    lines = [f"# config files read: {', '.join(files) or 'none'}"]
    width = max(len(k) for k in values)
    for key, v in values.items():
        shown = "(not set)" if v.value is None else json.dumps(_shown(v.value))
        lines.append(f"{key:<{width}} = {shown}  # {v.source}")
    sys.stdout.write("".join(visible_controls(line) + "\n" for line in lines))
