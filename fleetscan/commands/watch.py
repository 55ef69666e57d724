"""``fleetscan watch``: every option of ``scan``, plus the schedule (see :mod:`fleetscan.watch`).

The command is built from ``scan``'s own signature, so the two can never
drift apart: whatever ``scan`` accepts (and reads from the config file),
``watch`` accepts too.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from fleetscan.commands.common import config_errors
from fleetscan.options import RunOptions

HELP = (
    "Scan again and again on a schedule: each cycle a full run (history, drift, alerts, "
    "reports, metrics). Takes every option of 'scan'. SIGTERM/SIGINT stop it within "
    "seconds; exit 0 when stopped, 2 on a bad configuration at start."
)

_WATCH_OPTIONS: dict[str, tuple[Any, Any]] = {
    "every": (
        Annotated[
            str,
            typer.Option(
                "--every", metavar="DURATION", help="Interval between runs' starts: 30s, 5m, 1h."
            ),
        ],
        inspect.Parameter.empty,
    ),
    "jitter": (
        Annotated[
            str,
            typer.Option(metavar="DURATION", help="Random extra wait per cycle, up to this."),
        ],
        "0s",
    ),
    "keep_reports": (
        Annotated[int, typer.Option(metavar="N", help="Run report folders kept under -o.")],
        24,
    ),
    "metrics_port": (
        Annotated[
            int | None,
            typer.Option(metavar="PORT", help="Serve Prometheus /metrics on this port."),
        ],
        None,
    ),
    "metrics_address": (
        Annotated[str, typer.Option(metavar="ADDR", help="Address /metrics binds (loopback).")],
        "127.0.0.1",
    ),
    "cycles": (
        Annotated[
            int | None,
            typer.Option(metavar="N", help="Stop after N runs (default: until stopped)."),
        ],
        None,
    ),
}


def make_watch(
    scan: Callable[..., None],
    options_from_args: Callable[[typer.Context, dict[str, Any]], RunOptions],
) -> Callable[..., None]:
    """The ``watch`` command: ``scan``'s parameters followed by the schedule's."""

    def watch(ctx: typer.Context, **args: Any) -> None:
        from fleetscan.watch import WatchSettings, parse_duration
        from fleetscan.watch import watch as loop

        logging.basicConfig(
            stream=sys.stderr, level=logging.INFO, format="fleetscan watch: %(message)s"
        )
        with config_errors():
            settings = WatchSettings(
                every=parse_duration(args.pop("every"), "--every"),
                jitter=parse_duration(args.pop("jitter"), "--jitter"),
                keep_reports=args.pop("keep_reports"),
                metrics_port=args.pop("metrics_port"),
                metrics_address=args.pop("metrics_address"),
                max_cycles=args.pop("cycles"),
            )
            settings.check()
            options = options_from_args(ctx, args)
            code = loop(options, settings)
        raise typer.Exit(code)

    base = inspect.signature(scan, eval_str=True)
    params = list(base.parameters.values())
    for name, (annotation, default) in _WATCH_OPTIONS.items():
        params.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
            )
        )
    watch.__signature__ = base.replace(  # type: ignore[attr-defined]
        parameters=[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]
    )
    watch.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    watch.__doc__ = HELP
    return watch
