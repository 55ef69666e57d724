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


def dump_dom(tmp_path: Path, page: Path) -> str:
    # --virtual-time-budget lets onload/onerror handlers and timers run first
    return run_chromium(tmp_path, "--virtual-time-budget=3000", "--dump-dom", page.as_uri()).stdout


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
