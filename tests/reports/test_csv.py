"""hosts.csv, listeners.csv, findings.csv: stable columns, numbers stay
numbers, and no cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetscan.model import (
    Finding,
    HostScan,
    Listener,
    Process,
    ScanRun,
    Severity,
    Status,
    Target,
    WaiverRef,
)
from fleetscan.reports.csv import (
    CHANGE_COLUMNS,
    FINDING_COLUMNS,
    HOST_COLUMNS,
    LISTENER_COLUMNS,
    write_csv,
)

from .conftest import FINISHED, FORMULA, FORMULAS, STARTED

COLUMNS = {
    "hosts.csv": HOST_COLUMNS,
    "listeners.csv": LISTENER_COLUMNS,
    "findings.csv": FINDING_COLUMNS,
    "changes.csv": CHANGE_COLUMNS,
}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_files_have_the_documented_columns_in_order(tmp_path: Path, any_run: ScanRun) -> None:
    paths = write_csv(any_run, tmp_path)
    assert [p.name for p in paths] == list(COLUMNS)
    for path in paths:
        with path.open(newline="", encoding="utf-8") as fh:
            assert tuple(next(csv.reader(fh))) == COLUMNS[path.name]


def test_one_row_per_host_listener_and_finding(tmp_path: Path, realistic_run: ScanRun) -> None:
    write_csv(realistic_run, tmp_path)
    assert len(read_rows(tmp_path / "hosts.csv")) == len(realistic_run.scans)
    assert len(read_rows(tmp_path / "listeners.csv")) == sum(
        len(s.listeners) for s in realistic_run.scans
    )
    findings = read_rows(tmp_path / "findings.csv")
    assert len(findings) == len(realistic_run.findings)
    assert findings[0]["severity"] == "critical"  # worst first
    waived = [r for r in findings if r["waived"] == "yes"]
    assert {r["waiver_id"] for r in waived} == {"WVR-2025-004", "WVR-2024-001"}
    assert {r["waiver_expires"] for r in waived} == {"2099-12-31", ""}
    assert {r["waived"] for r in findings} == {"yes", "no"}


def test_numbers_stay_numeric(tmp_path: Path, realistic_run: ScanRun) -> None:
    write_csv(realistic_run, tmp_path)
    listeners = pd.read_csv(tmp_path / "listeners.csv")
    assert listeners["port"].dtype.kind == "i" and listeners["family"].dtype.kind == "i"
    assert listeners["line"].dtype.kind == "i"
    hosts = pd.read_csv(tmp_path / "hosts.csv")
    assert hosts["listeners"].dtype.kind == "i" and hosts["ssh_port"].dtype.kind == "i"
    findings = pd.read_csv(tmp_path / "findings.csv", dtype={"port": "Int64"})
    # host-level findings have no listener: the port cell is empty, not 0 or -1
    assert findings["port"].isna().sum() == sum(1 for f in realistic_run.findings if not f.listener)


def test_shared_socket_lists_every_process(tmp_path: Path, realistic_run: ScanRun) -> None:
    write_csv(realistic_run, tmp_path)
    rows = read_rows(tmp_path / "listeners.csv")
    (http,) = [r for r in rows if r["host"] == "web-01" and r["port"] == "80"]
    assert http["process_names"] == "nginx"  # names de-duplicated
    assert http["pids"] == "1201;1202;1203"
    assert http["users"] == "root;www-data;www-data"
    assert http["bind_class"] == "wildcard"


@pytest.mark.parametrize("reader", ["csv", "pandas"])
def test_hostile_formula_comes_back_as_text(
    tmp_path: Path, hostile_run: ScanRun, reader: str
) -> None:
    write_csv(hostile_run, tmp_path)
    path = tmp_path / "listeners.csv"
    if reader == "csv":
        names = [r["process_names"] for r in read_rows(path)]
    else:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        names = list(frame["process_names"])
    assert "'" + FORMULA in names
    for formula in FORMULAS:
        assert formula not in names


def test_no_cell_anywhere_starts_a_formula(tmp_path: Path, hostile_run: ScanRun) -> None:
    for path in write_csv(hostile_run, tmp_path):
        for row in read_rows(path):
            for column, cell in row.items():
                assert cell.startswith("'") or not cell.lstrip().startswith(FORMULA_START), (
                    path.name,
                    column,
                    cell,
                )


def test_no_terminal_escape_reaches_the_file(tmp_path: Path, hostile_run: ScanRun) -> None:
    for path in write_csv(hostile_run, tmp_path):
        data = path.read_bytes().decode("utf-8")  # strict: valid UTF-8
        assert "\x1b" not in data and "\x07" not in data and "\u202e" not in data
    text = (tmp_path / "hosts.csv").read_text(encoding="utf-8")
    assert "\\x1b]0;pwned\\x07" in text


def test_hostile_host_name_survives_quoting(tmp_path: Path, hostile_run: ScanRun) -> None:
    write_csv(hostile_run, tmp_path)
    hosts = [r["host"] for r in read_rows(tmp_path / "hosts.csv")]
    assert hosts == ["evil-01", "evil-02", "odd\"<host>'=1"]


def test_hosts_csv_says_when_host_keys_were_not_checked(
    tmp_path: Path, realistic_run: ScanRun
) -> None:
    write_csv(replace(realistic_run, hostkey_checking=False), tmp_path)
    hosts = pd.read_csv(tmp_path / "hosts.csv")
    assert set(hosts["hostkey_checking"]) == {"NO (insecure)"}


# --- every reading: comma, semicolon, tab (issue 7, item 9) -----------------

#: what a spreadsheet skips before a cell's value: whitespace and CSV quotes
_SKIPPED = ' \t\n"'
_HOSTILE_TEXT = st.text(alphabet=st.sampled_from("=+-@;,\t\n\r \"'x1|("), max_size=12)


def formula_cells(text: str) -> list[tuple[str, str]]:
    """(separator, cell) for every cell that starts a formula when ``text`` is
    read as CSV split on ``,``, on ``;`` or on TAB, and when its raw lines
    are split on those separators without any CSV quoting rules."""
    bad = []
    for sep in (",", ";", "\t"):
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=sep):
            bad.extend((sep, cell) for cell in row if _starts_formula(cell))
    for line in text.split("\n"):
        bad.extend(("raw", cell) for cell in re.split("[,;\t]", line) if _starts_formula(cell))
    return bad


def _starts_formula(cell: str) -> bool:
    return cell.startswith("\r") or cell.lstrip(_SKIPPED).startswith(("=", "+", "-", "@"))


def run_with(names: list[str], message: str, justification: str) -> ScanRun:
    procs = tuple(Process(n, 100 + i, n) for i, n in enumerate(names))
    x = Listener("tcp", 4, "0.0.0.0", 80, processes=procs, raw=";".join(names), line=1)
    scan = HostScan(
        Target("h1", "10.0.0.1", groups=tuple(names)), Status.OK, message=message, listeners=(x,)
    )
    waiver = WaiverRef(message, justification, None, justification)
    finding = Finding("rule", Severity.HIGH, "h1", message, x, waiver=waiver)
    return ScanRun(id="r", started=STARTED, finished=FINISHED, scans=(scan,), findings=(finding,))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(_HOSTILE_TEXT, min_size=1, max_size=4), message=_HOSTILE_TEXT, just=_HOSTILE_TEXT
)
def test_no_reading_of_any_file_starts_a_formula(names: list[str], message: str, just: str) -> None:
    """Process names, users, groups, messages and waiver text, joined with
    fleetscan's own ';': no comma-, semicolon- or tab-separated reading of
    hosts.csv, listeners.csv or findings.csv yields a formula cell."""
    with tempfile.TemporaryDirectory() as tmp:
        for path in write_csv(run_with(names, message, just), Path(tmp)):
            text = path.read_text(encoding="utf-8")
            assert formula_cells(text) == [], (path.name, text)


def test_semicolon_join_of_hostile_names_is_neutral(tmp_path: Path) -> None:
    write_csv(run_with(["x;=1+1;", "@SUM(A1)"], "m", "j"), tmp_path)
    text = (tmp_path / "listeners.csv").read_text(encoding="utf-8")
    assert formula_cells(text) == []
    assert "x;'=1+1;;'@SUM(A1)" in text  # shown, neutralised, not dropped


# --- the exact bytes (the format pandas' to_csv wrote, now the csv module's) --------


def test_exact_bytes_of_a_hostile_run_with_unknown_numbers(tmp_path: Path) -> None:
    """Minimal quoting with doubled quotes, ``\\n`` line ends, an unknown port or
    line an empty cell (not ``nan``, ``0`` or ``22.0``), floats as ``repr``,
    formulas neutralised, control characters escaped: pinned byte for byte."""
    base = run_with(["=cmd|' /C calc'!A0", 'ok,"q"'], "msg;@x\n-1", "just")
    x = replace(base.scans[0].listeners[0], line=None, raw="tcp 0.0.0.0:80 \x1b[31m")
    scan = replace(base.scans[0], listeners=(x,), started=0.0, finished=1.25)
    on_listener = replace(base.findings[0], listener=x)
    host_level = replace(base.findings[0], listener=None, waiver=None, kind="host")
    write_csv(replace(base, scans=(scan,), findings=(on_listener, host_level)), tmp_path)
    names = '"\'=cmd|\' /C calc\'!A0;ok,""q"""'
    message = "\"msg;'@x\n'-1\""
    assert (tmp_path / "hosts.csv").read_bytes().decode() == (
        ",".join(HOST_COLUMNS) + f"\nh1,10.0.0.1,,{names},,ok,compliant,,1,1,1,1.25,yes,{message}\n"
    )
    assert (tmp_path / "listeners.csv").read_bytes().decode() == (
        ",".join(LISTENER_COLUMNS) + "\n"
        f"h1,tcp,4,0.0.0.0,80,,wildcard,LISTEN,{names},100;101,{names},,"
        "tcp 0.0.0.0:80 \\x1b[31m\n"
    )
    assert (tmp_path / "findings.csv").read_bytes().decode() == (
        ",".join(FINDING_COLUMNS) + "\n"
        f"high,h1,rule,host,no,,,,,{message},,no,,,,\n"
        f"high,h1,rule,listener,no,tcp,0.0.0.0,80,{names},{message},"
        f"tcp 0.0.0.0:80 \\x1b[31m,yes,{message},just,,just\n"
    )
    assert (tmp_path / "changes.csv").read_bytes().decode() == ",".join(CHANGE_COLUMNS) + "\n"


def test_writing_every_report_imports_neither_pandas_nor_numpy() -> None:
    """The CSV files are written with the standard library: a run does not pay
    pandas' and numpy's import (about half a second of CPU and tens of MB)."""
    code = (
        "import sys, tempfile\n"
        "from pathlib import Path\n"
        "from tests.reports.conftest import build_realistic_run\n"
        "from fleetscan.reports import FORMATS, write_reports\n"
        "write_reports(build_realistic_run(), Path(tempfile.mkdtemp()), FORMATS)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'numpy')))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout
