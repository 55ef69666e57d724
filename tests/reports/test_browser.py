"""The HTML report in a real browser (Debian's headless Chromium): hostile
data is shown as text, nothing from the data runs, and the page renders.

Skipped when chromium is missing, except under CI (``CI=true``), where a
missing browser is a broken test environment and must fail.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from fleetscan.model import ScanRun
from fleetscan.reports import write_reports

from .conftest import FORMULA, IMG_ONERROR, SCRIPT, TITLE_SCRIPT

pytestmark = pytest.mark.browser

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
)


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is not installed (scripts/test-deps.sh installs it)")
        pytest.skip("chromium is not installed")
    return path


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


@pytest.fixture
def hostile_report(tmp_path: Path, hostile_run: ScanRun) -> Path:
    (path,) = write_reports(hostile_run, tmp_path / "out", ["html"])["html"]
    return path


def dump_dom(tmp_path: Path, page: Path, fragment: str = "") -> str:
    # --virtual-time-budget lets onload/onerror handlers and timers run first
    url = page.as_uri() + (f"#{fragment}" if fragment else "")
    return run_chromium(tmp_path, "--virtual-time-budget=3000", "--dump-dom", url).stdout


def test_no_script_from_data_runs(tmp_path: Path, hostile_report: Path) -> None:
    dom = dump_dom(tmp_path, hostile_report)
    (title,) = re.findall(r"<title>(.*?)</title>", dom, flags=re.S)
    assert html.unescape(title) == "fleetscan report hostile-run"  # not 'pwned'
    assert "pwned" not in html.unescape(title)
    assert "<img" not in dom


def test_hostile_names_are_shown_as_text(tmp_path: Path, hostile_report: Path) -> None:
    dom = html.unescape(re.sub(r"<[^>]+>", "", dump_dom(tmp_path, hostile_report)))
    for shown in (SCRIPT, TITLE_SCRIPT, IMG_ONERROR, FORMULA, "\\x1b]0;pwned\\x07"):
        assert shown in dom


def test_the_report_script_ran(tmp_path: Path, hostile_report: Path) -> None:
    """The CSP lets the report's own (hash-pinned) script run: the sort buttons
    and filter boxes it adds are in the live DOM."""
    dom = dump_dom(tmp_path, hostile_report)
    assert 'class="sort"' in dom and 'class="filter"' in dom


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


@pytest.mark.parametrize("fixture", ["hostile_run", "realistic_run"])
def test_screenshot_renders(tmp_path: Path, fixture: str, request: pytest.FixtureRequest) -> None:
    run: ScanRun = request.getfixturevalue(fixture)
    (page,) = write_reports(run, tmp_path / "out", ["html"])["html"]
    shot = tmp_path / f"{fixture}.png"
    run_chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,2000", page.as_uri())
    assert png_size(shot) == (1400, 2000)
    # a blank or error page compresses to a few KB; a rendered report does not
    assert shot.stat().st_size > 50_000
    if os.environ.get("FLEETSCAN_KEEP_SCREENSHOTS"):
        keep = Path(os.environ["FLEETSCAN_KEEP_SCREENSHOTS"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, keep / shot.name)


# --- reports at scale: first screen as HTML, the rest from the data block ----------


@pytest.fixture(scope="module")
def big_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ScanRun]:
    from bench.reports import synthetic_run

    run = synthetic_run(1_500, listeners=12)
    (page,) = write_reports(run, tmp_path_factory.mktemp("big"), ["html"])["html"]
    return page, run


def text_of(dom: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", dom))


def section(dom: str, ident: str) -> str:
    start = dom.index(f'<section id="{ident}"')
    return dom[start : dom.index("</section>", start)]


def test_first_screen_has_summary_rules_and_first_page_of_hosts(
    tmp_path: Path, big_report: tuple[Path, ScanRun]
) -> None:
    page, run = big_report
    dom = dump_dom(tmp_path, page)
    assert "data-ready-ms=" in dom  # the report's script built the first screen
    summary = text_of(section(dom, "summary"))
    assert re.search(r"\b1500\b", summary) and "hosts compliant" in summary
    rules = section(dom, "rules")
    rows = re.findall(r"<tr>(.*?)</tr>", rules[rules.index("<tbody") :], flags=re.S)
    by_rule = {}
    for row in rows:
        cells = [text_of(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
        by_rule[cells[1].split()[0]] = cells
    forbidden = [f for f in run.findings if f.rule_id == "forbidden-ports"]
    assert by_rule["forbidden-ports"][2] == str(len(forbidden))  # active
    assert by_rule["forbidden-ports"][5] == str(len({f.host for f in forbidden}))  # hosts
    waived = [f for f in run.findings if f.waived]
    assert by_rule["db-loopback"][4] == str(len(waived))
    hosts = section(dom, "hosts")
    body = hosts[hosts.index("<tbody") :]
    assert len(re.findall(r"<tr", body)) == 100  # one page
    assert run.scans[0].host in body and run.scans[100].host not in body
    assert "page 1 of 15" in text_of(hosts)


def test_expanding_a_host_beyond_the_first_page_shows_its_listeners(
    tmp_path: Path, big_report: tuple[Path, ScanRun]
) -> None:
    page, run = big_report
    n = 1_234
    scan = run.scans[n - 1]
    assert scan.listeners
    dom = dump_dom(tmp_path, page, f"host-{n}")
    start = dom.index(f'id="host-{n}"')
    detail = dom[dom.rindex("<details", 0, start) : dom.index("</details>", start)]
    assert re.match(r"<details[^>]*\bopen\b", detail)
    shown = text_of(detail)
    assert scan.host in shown
    listener_rows = re.findall(r"<tr>(.*?)</tr>", detail[detail.index("<tbody") :], flags=re.S)
    assert len(listener_rows) == len(scan.listeners)
    for x in scan.listeners:
        assert f">{x.port}<" in detail
        assert x.processes[0].name in shown
    assert f"pid {scan.listeners[0].processes[0].pid}" in shown


def test_a_host_with_more_listeners_than_a_page_holds_opens_on_demand(tmp_path: Path) -> None:
    """One host past INLINE_LISTENER_LIMIT: the page carries no table rows for
    it, and following its link draws every listener from the data block."""
    from bench.reports import synthetic_run
    from fleetscan.reports.html import INLINE_LISTENER_LIMIT

    run = synthetic_run(1, listeners=INLINE_LISTENER_LIMIT + 500)
    (scan,) = run.scans
    (page,) = write_reports(run, tmp_path / "out", ["html"])["html"]
    assert 'class="host-detail"' not in page.read_text()
    dom = dump_dom(tmp_path, page, "host-1")
    start = dom.index('id="host-1"')
    detail = dom[dom.rindex("<details", 0, start) : dom.index("</details>", start)]
    assert re.match(r"<details[^>]*\bopen\b", detail)
    rows = re.findall(r"<tr>(.*?)</tr>", detail[detail.index("<tbody") :], flags=re.S)
    assert len(rows) == len(scan.listeners) > INLINE_LISTENER_LIMIT
    ports = {int(p) for p in re.findall(r'<td class="r">(\d+)</td>', detail)}
    assert {x.port for x in scan.listeners} <= ports


def test_hostile_host_rendered_on_demand_stays_text(tmp_path: Path, hostile_run: ScanRun) -> None:
    """A hostile host beyond the first page is drawn by report.js from the
    data block: its names are still text, nothing runs, and ``</script>`` in
    a process name did not end the data block."""
    import dataclasses

    from bench.reports import synthetic_run

    filler = synthetic_run(120, listeners=3)
    run = dataclasses.replace(
        hostile_run,
        scans=(*filler.scans, *hostile_run.scans),
        findings=(*filler.findings, *hostile_run.findings),
    )
    (page,) = write_reports(run, tmp_path / "out", ["html"])["html"]
    n = len(filler.scans) + 1  # evil-01
    dom = dump_dom(tmp_path, page, f"host-{n}")
    (title,) = re.findall(r"<title>(.*?)</title>", dom, flags=re.S)
    assert html.unescape(title) == "fleetscan report hostile-run"
    assert "<img" not in dom
    start = dom.index(f'id="host-{n}"')
    detail = text_of(dom[start : dom.index("</details>", start)])
    for shown in (SCRIPT, TITLE_SCRIPT, IMG_ONERROR, "\\x1b]0;pwned\\x07"):
        assert shown in detail


# --- printing: wide columns wrap instead of being cut off at the page edge ---------


def pdftotext() -> str:
    path = shutil.which("pdftotext")
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("pdftotext is not installed (scripts/test-deps.sh installs poppler-utils)")
        pytest.skip("pdftotext is not installed")
    return path


def words(n: int) -> str:
    return " ".join(f"word{i:03d}" for i in range(n))


def pdf_lines(pdf: Path) -> list[list[str]]:
    """The words on paper, line by line (``pdftotext -bbox``: a word outside
    the printable page is not there)."""
    xhtml = subprocess.run(
        [pdftotext(), "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    lines: dict[tuple[int, int], list[str]] = {}
    for page, body in enumerate(re.findall(r"<page [^>]*>(.*?)</page>", xhtml, flags=re.S)):
        for y, word in re.findall(r'<word xMin="[\d.]+" yMin="([\d.]+)"[^>]*>(.*?)</word>', body):
            lines.setdefault((page, round(float(y))), []).append(html.unescape(word))
    return list(lines.values())


def test_printed_report_keeps_every_column_and_long_text(
    tmp_path: Path, realistic_run: ScanRun
) -> None:
    """Print to PDF as a browser does (Chromium's default page) and read the
    words back with their positions: every table's header row is whole on
    one line of paper, and the last words of a long host message, finding
    message and waiver justification are printed, where the screen layout
    would cut the right-hand columns off at the page edge."""
    import dataclasses

    from fleetscan.model import WaiverRef

    web, db, *rest = realistic_run.scans
    findings = [
        dataclasses.replace(
            f,
            message=f"{f.message} {words(80)} findingtail",
            waiver=WaiverRef(f.waiver.id, f"{words(40)} waivertail", "2099-12-31", "ops"),
        )
        if f.waiver is not None and f.host == "db-01"
        else f
        for f in realistic_run.findings
    ]
    run = dataclasses.replace(
        realistic_run,
        scans=(web, dataclasses.replace(db, message=f"{words(30)} hostmsgtail"), *rest),
        findings=tuple(findings),
    )
    (page,) = write_reports(run, tmp_path / "out", ["html"])["html"]
    pdf = tmp_path / "report.pdf"
    run_chromium(tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.as_uri())
    lines = pdf_lines(pdf)
    printed = [w for line in lines for w in line]
    source = page.read_text(encoding="utf-8")
    tables = re.findall(r"<thead>(.*?)</thead>", source, flags=re.S)
    assert len(tables) >= 6
    for table in tables:
        headers = [html.unescape(h).split()[0] for h in re.findall(r"<th[^>]*>(.*?)</th>", table)]
        assert any(all(h in line for h in headers) for line in lines), (
            f"header row {headers} is not whole on paper"
        )
    # hosts table and host details; findings table; findings table and waivers section
    assert printed.count("hostmsgtail") >= 2
    assert printed.count("findingtail") >= 1
    assert printed.count("waivertail") >= 2
