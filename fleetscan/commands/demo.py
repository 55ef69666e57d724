"""``fleetscan demo``: scan the embedded demo fleet (SSH servers on 127.0.0.1)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from fleetscan.commands.common import CompareToOption, DbOption, NoHistoryOption, config_errors
from fleetscan.commands.progress import scan_and_print
from fleetscan.options import parse_severity
from fleetscan.reports.terminal import console as make_console


def demo(
    output: Annotated[
        Path, typer.Option("-o", "--output", metavar="DIR", help="Report folder.")
    ] = Path("demo-report"),
    fail_on: Annotated[
        str, typer.Option(metavar="SEVERITY", help="Lowest severity that fails the run.")
    ] = "high",
    verbose: Annotated[
        int, typer.Option("-v", "--verbose", count=True, metavar="", help="A line per host.")
    ] = 0,
    db: DbOption = None,
    no_history: NoHistoryOption = False,
    compare_to: CompareToOption = "previous",
) -> None:
    """Scan the embedded demo fleet (SSH servers on 127.0.0.1, nothing outside)."""
    from fleetscan.demo import demo_options, running_demo_fleet

    console = make_console()
    with config_errors():
        threshold = parse_severity(fail_on)
    with running_demo_fleet() as fleet:
        console.print(
            f"demo fleet: {len(fleet.hosts)} SSH servers on 127.0.0.1 "
            f"(+1 that does not answer); inventory {fleet.inventory}",
            markup=False,
            soft_wrap=True,
        )
        options = replace(
            demo_options(fleet, output=output, fail_on=threshold),
            history=not no_history,
            db=db,
            compare_to=compare_to,
        )
        code = scan_and_print(options, console=console, quiet=False, verbose=verbose)
    console.print(f"open {output / 'report.html'} in a browser", markup=False, soft_wrap=True)
    raise typer.Exit(code)
