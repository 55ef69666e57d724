"""A real process named ``x;=1+1;`` on this machine, scanned through the local
transport: no reading of the CSV reports — comma, semicolon or tab separated
— gives a spreadsheet a formula cell (issue 7, item 9)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from fleetscan.reports.sanitize import csv_cell
from tests.cli import named_listener, run_cli
from tests.reports.test_csv import formula_cells

#: this machine, scanned through the local transport, is compliant (0) or, when a
#: process ends between the listing and the owner lookup, partial (3)
SCANNED = (0, 3)
POLICY = "version: 1\nforbidden:\n  - id: irc\n    ports: 6667\n"


@pytest.mark.skipif(shutil.which("ss") is None, reason="iproute2 ss not installed")
@pytest.mark.parametrize("name", ["x;=1+1;", "a,@SUM-1", "-x\t=1", "ok;+cmd|"])
def test_hostile_process_name_is_no_formula_in_any_reading(tmp_path: Path, name: str) -> None:
    (tmp_path / "inv.ini").write_text("localhost ansible_connection=local\n")
    (tmp_path / "policy.yaml").write_text(POLICY)
    with named_listener(name) as (comm, port):
        out = run_cli(
            ["scan", "-i", "inv.ini", "-p", "policy.yaml", "--format", "csv", "-o", "out"],
            cwd=tmp_path,
        )
    assert out.returncode in SCANNED, out.stdout
    with (tmp_path / "out" / "listeners.csv").open(newline="", encoding="utf-8") as fh:
        (row,) = [r for r in csv.DictReader(fh) if r["port"] == str(port)]
    assert row["process_names"] == csv_cell(comm)  # shown, neutralised, not dropped
    for path in sorted((tmp_path / "out").glob("*.csv")):
        assert formula_cells(path.read_text(encoding="utf-8")) == [], path.name
