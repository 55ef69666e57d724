"""The exposure matrix in every report: exposure.csv, the HTML per-host
matrix, the terminal line — with a probe host's hostile text kept inert."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

from rich.console import Console

from fleetscan.model import ProbeResult, ScanRun
from fleetscan.reports import render_summary, write_reports
from fleetscan.reports.html import render_html

from .conftest import SCRIPT

FORMULA = '=HYPERLINK("http://x")'


def _probed(run: ScanRun) -> ScanRun:
    scan = next(s for s in run.scans if s.listeners)
    a, b = scan.listeners[0], scan.listeners[1]
    cells = (
        ProbeResult(scan.host, a, "scanner", scan.target.address, "open", None, "handshake", 0.4),
        ProbeResult(scan.host, a, "office", scan.target.address, "filtered", "jump", SCRIPT),
        ProbeResult(scan.host, b, "scanner", scan.target.address, "not_probed", None, FORMULA),
        ProbeResult(
            scan.host, b, "office", scan.target.address, "refused", "jump", "bash: refused"
        ),
    )
    return dataclasses.replace(run, exposure=cells, probe_zones=("scanner", "office"))


def test_exposure_csv_has_one_row_per_cell_and_neutralises_cells(
    tmp_path: Path, realistic_run: ScanRun
) -> None:
    run = _probed(realistic_run)
    write_reports(run, tmp_path, ["csv"])
    with (tmp_path / "exposure.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["result"] for r in rows] == ["open", "filtered", "not_probed", "refused"]
    assert list(rows[0]) == [
        "host",
        "proto",
        "address",
        "port",
        "zone",
        "probed_address",
        "probe_host",
        "result",
        "reason",
        "rtt_ms",
    ]
    assert rows[2]["reason"] == "'" + FORMULA
    assert rows[0]["probe_host"] == "" and rows[1]["probe_host"] == "jump"


def test_no_exposure_csv_when_the_run_did_not_probe(tmp_path: Path, realistic_run: ScanRun) -> None:
    write_reports(realistic_run, tmp_path, ["csv"])
    assert not (tmp_path / "exposure.csv").exists()


def test_html_shows_a_listener_by_zone_matrix_with_inert_text(realistic_run: ScanRun) -> None:
    html = render_html(_probed(realistic_run))
    assert html.count('class="data compact exposure"') == 1
    assert '<th scope="col">scanner</th><th scope="col">office</th>' in html
    assert "probe-filtered" in html and "probe-refused" in html and "probe-open" in html
    assert SCRIPT not in html and "&lt;script&gt;" in html
    assert (
        "exposure" not in render_html(realistic_run).split("<main", 1)[1].split("Host details")[0]
    )


def test_terminal_summary_counts_the_matrix(realistic_run: ScanRun) -> None:
    console = Console(record=True, width=200, force_terminal=False)
    render_summary(_probed(realistic_run), console)
    text = console.export_text()
    assert (
        "exposure: zones scanner, office; "
        "open 1, refused 1, filtered 1, unreachable 0, not probed 1" in text
    )
