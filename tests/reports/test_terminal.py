"""The terminal summary: one screen, and data never drives the terminal."""

from __future__ import annotations

import dataclasses
import io

import pytest
from rich.console import Console

from fleetscan.model import HostScan, ScanRun, Status, Target
from fleetscan.reports import render_summary
from fleetscan.reports.terminal import MAX_INCOMPLETE

from .conftest import QUOTES


def render(run: ScanRun) -> tuple[str, str]:
    """(bytes the terminal receives, plain text a person reads)."""
    out = io.StringIO()
    console = Console(
        file=out, record=True, force_terminal=True, width=120, color_system="standard"
    )
    render_summary(run, console)
    return out.getvalue(), console.export_text(styles=False)


def test_summary_of_a_realistic_run(realistic_run: ScanRun) -> None:
    _, text = render(realistic_run)
    for expected in (
        "3m 07s",
        "fail-on high",
        "compliant",
        "non-compliant",
        "not fully scanned",
        "forbidden-ports",
        "tcp 0.0.0.0:4444 nc",
        "exit 1",
    ):
        assert expected in text
    incomplete = realistic_run.incomplete_hosts()
    for scan in incomplete[:MAX_INCOMPLETE]:  # one screen: the rest are in the reports
        assert scan.host in text and scan.status.value in text
    assert (
        f"hosts not fully scanned ({min(len(incomplete), MAX_INCOMPLETE)} of {len(incomplete)})"
        in text
    )
    assert "No route to host" in text


def test_hostile_escapes_are_shown_not_sent(hostile_run: ScanRun) -> None:
    raw, text = render(hostile_run)
    assert "\x1b]" not in raw  # no OSC (window title, hyperlink, clipboard) from data
    assert "\x07" not in raw
    assert "\x1b[31mRED" not in raw  # rich's own colours are fine; the host's are not
    assert "\u202e" not in raw
    assert "\\x1b]0;pwned\\x07" in text
    assert "\\x1b[31mRED\\x1b[0m" in text


def test_rich_markup_in_data_is_printed_literally(hostile_run: ScanRun) -> None:
    _, text = render(hostile_run)
    assert QUOTES.replace("\n", "\\n").split("[")[0] in text
    assert "[bold red]markup[/]" in text


def test_banners_for_interrupted_and_unchecked_host_keys(hostile_run: ScanRun) -> None:
    _, text = render(hostile_run)
    assert "INTERRUPTED" in text and "host-key checking was OFF" in text
    assert "exit 130" in text


@pytest.mark.parametrize("hosts", [50, 2000])
def test_summary_stays_one_screen_for_big_fleets(realistic_run: ScanRun, hosts: int) -> None:
    down = tuple(
        HostScan(Target(f"h{i:04d}", "10.0.0.1"), Status.TIMEOUT, message="deadline")
        for i in range(hosts)
    )
    _, text = render(dataclasses.replace(realistic_run, scans=down, findings=()))
    assert f"hosts not fully scanned (10 of {hosts})" in text
    assert "h0009" in text and "h0010" not in text
    assert len(text.splitlines()) < 40


def test_summary_in_a_pipe_is_plain_lines_with_controls_visible(hostile_run: ScanRun) -> None:
    """Not a terminal (CI logs, pipes): one fact per line, no box, never wrapped,
    and hostile text still inert."""

    buf = io.StringIO()
    render_summary(hostile_run, Console(file=buf, width=60, force_terminal=False))
    out = buf.getvalue()
    assert "╭" not in out and "│" not in out
    assert "\x1b" not in out
    lines = out.splitlines()
    assert lines[0].startswith("fleetscan ")
    assert any(line.startswith("hosts: ") for line in lines)
    assert lines[-1].startswith("exit ")
    assert any(len(line) > 60 for line in lines)  # long facts are not wrapped


def test_every_console_and_table_comes_from_the_terminal_module() -> None:
    """The class of the markup bug (issue 7, item 8): a Rich Console made
    elsewhere would read host text as markup again. Every console and table
    in the product is made by reports/terminal.py (markup off, inert cells)."""
    import re
    from pathlib import Path

    import fleetscan

    root = Path(fleetscan.__file__).parent
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for path in root.rglob("*.py")
        if path.name != "terminal.py" and "from rich" in (text := path.read_text(encoding="utf-8"))
        for n, line in enumerate(text.splitlines(), 1)
        if re.search(r"\b(Console|Table)\(", line) or "markup=True" in line
    ]
    assert offenders == []


def test_terminal_console_prints_markup_literally() -> None:
    from fleetscan.reports.terminal import console, data_table

    out = console()
    out.file = io.StringIO()
    out.print("[link=https://evil]x[/link] [/x] :thumbs_up:")
    out.print(data_table(["a"], [["[/x]"], ["[bold]b[/]"]]))
    text = out.file.getvalue()
    assert "[link=https://evil]x[/link] [/x] :thumbs_up:" in text
    assert "[/x]" in text and "[bold]b[/]" in text
