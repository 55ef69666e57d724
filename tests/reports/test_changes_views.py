"""The history parts of the reports: "Changes since <run>" and the inline SVG
trend in the HTML, changes.csv — with hostile process names kept inert."""

from __future__ import annotations

import csv
import re
from dataclasses import replace
from datetime import timedelta
from html import unescape
from pathlib import Path

import pytest

from fleetscan.model import Change, ComparedTo, Process, ScanRun, TrendPoint
from fleetscan.reports.csv import write_csv
from fleetscan.reports.html import render_html

EVIL = '=HYPERLINK("http://x")<script>alert(1)</script>'


def _compared(run: ScanRun) -> ScanRun:
    web = run.scans[0]
    loop = replace(web.listeners[0], address="127.0.0.1", family=4)
    wide = replace(loop, address="0.0.0.0")
    bad = replace(web.listeners[1], port=4444, processes=(Process(EVIL, 7, "root"),))
    trend = tuple(
        TrendPoint(
            run=f"R{i}",
            started=run.started - timedelta(days=3 - i),
            by_status={"ok": 3, "unreachable": i},
            active_by_severity={"critical": i, "high": 2, "medium": 0, "low": 0, "info": 0},
            listeners=20 + i,
            changes=i,
        )
        for i in range(4)
    )
    return replace(
        run,
        changes=(
            Change(web.host, "new", "tcp", bad.address, 4444, None, bad, "R2"),
            Change(web.host, "widened", "tcp", "0.0.0.0", wide.port, loop, wide, "R2"),
        ),
        compared_to=ComparedTo("previous", "R2", ("R2",), ("fresh-host",), ("down-host",)),
        trend=trend,
    )


def _section(html: str) -> str:
    m = re.search(r'<section id="changes".*?</section>', html, re.S)
    assert m, "no changes section"
    return m.group(0)


def test_html_opens_with_changes_since_the_compared_run(realistic_run: ScanRun) -> None:
    html = render_html(_compared(realistic_run))
    main = html.split('<main id="main">', 1)[1]
    assert main.lstrip().startswith('<section id="changes"')
    part = _section(html)
    assert "Changes since <code>R2</code>" in part
    assert part.count('<tr class="chg-row chg-widened">') == 1  # the widening is highlighted
    assert "Changes unknown" in part and "down-host" in part
    assert "fresh-host" in part and "baseline" in part
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)" in part


def test_trend_is_inline_svg_without_style_attributes(realistic_run: ScanRun) -> None:
    html = render_html(_compared(realistic_run))
    part = _section(html)
    assert part.count('<svg class="trend"') == 3
    assert part.count("<rect") >= 3 * 4
    assert "R3: 3 ok, 0 partial, 3 not scanned" in part  # per-run tooltip text
    # nothing the CSP would block or that fetches: no style attribute, script or URL
    assert " style=" not in part and "<script" not in part
    assert " src=" not in part and 'href="http' not in part
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp and "default-src 'none'" in unescape(csp.group(1))


def test_first_run_says_it_is_the_baseline(realistic_run: ScanRun) -> None:
    first = replace(
        realistic_run,
        compared_to=ComparedTo(
            "previous", None, (), tuple(s.host for s in realistic_run.scans), ()
        ),
    )
    part = _section(render_html(first))
    assert "First scan." in part and "nothing is reported as new" in part
    assert "<table" not in part


def test_no_history_is_said(realistic_run: ScanRun) -> None:
    assert "--no-history" in _section(render_html(realistic_run))


def test_changes_csv_one_row_per_change_formulas_neutralised(
    tmp_path: Path, realistic_run: ScanRun
) -> None:
    write_csv(_compared(realistic_run), tmp_path)
    with (tmp_path / "changes.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["kind"], r["port"]) for r in rows] == [("new", "4444"), ("widened", rows[1]["port"])]
    assert rows[0]["after_processes"].startswith("'=")  # not a formula
    assert rows[1]["before_address"] == "127.0.0.1" and rows[1]["after_address"] == "0.0.0.0"
    assert rows[0]["before_address"] == "" and rows[0]["since_run"] == "R2"


@pytest.mark.browser
def test_changes_and_trend_render_in_a_real_browser(tmp_path: Path, realistic_run: ScanRun) -> None:
    from fleetscan.reports import write_reports

    from .test_browser import png_size, run_chromium

    (page,) = write_reports(_compared(realistic_run), tmp_path / "out", ["html"])["html"]
    dom = run_chromium(tmp_path, "--virtual-time-budget=3000", "--dump-dom", page.as_uri()).stdout
    assert dom.count('<svg class="trend"') == 3 and "Changes since" in dom
    assert "<script>alert(1)" not in dom  # the hostile process name stayed text
    shot = tmp_path / "changes.png"
    run_chromium(tmp_path, f"--screenshot={shot}", "--window-size=1300,1100", page.as_uri())
    assert png_size(shot) == (1300, 1100) and shot.stat().st_size > 50_000
