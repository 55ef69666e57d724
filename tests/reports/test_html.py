"""report.html: complete, self-contained, and inert whatever the hosts sent."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fleetscan.model import HostScan, ScanRun, Status, Target
from fleetscan.reports.html import render_html, write_html

from .conftest import FORMULA, IMG_ONERROR, OSC, SCRIPT, SGR, TITLE_SCRIPT

REPO = Path(__file__).resolve().parents[2]


class Doc(HTMLParser):
    """Every start tag with its attributes, the text nodes, and the raw
    content of <script>/<style> elements."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.raw: dict[str, list[str]] = {"script": [], "style": []}
        self._in: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in self.raw:
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.raw[self._in].append(data)
        else:
            self.text.append(data)

    def all_text(self) -> str:
        return "".join(self.text)


def test_every_host_status_and_section_is_in_the_report(realistic_run: ScanRun) -> None:
    # distributed runs add not_scanned (a host no worker of its site scanned)
    lost = HostScan(
        Target("dc1-lost", "10.20.0.90", site="dc1"),
        Status.NOT_SCANNED,
        "worker lost: no worker left for site dc1",
    )
    realistic_run = dataclasses.replace(realistic_run, scans=(*realistic_run.scans, lost))
    doc = Doc(render_html(realistic_run))
    text = doc.all_text()
    ids = {a.get("id") for _, a in doc.tags}
    assert {"summary", "hosts", "findings", "waivers", "details"} <= ids
    for scan in realistic_run.scans:
        assert scan.host in text
    for status in Status:
        # colour is never the only signal: the status name is written out
        assert f"st-{status.value}" in {
            c for _, a in doc.tags for c in (a.get("class") or "").split()
        }
        assert status.value in text
    assert "WVR-2025-004" in text and "legacy monitoring agent" in text  # waiver + justification
    assert "waiver-expired" in text
    assert "weird-column" in text  # unparsed line kept as evidence
    assert "sudo: a password is required" in text  # stderr evidence
    assert "sha256:abab" in text and "inventories/prod.ini" in text
    assert "WARNING" not in text and "INTERRUPTED" not in text


def test_listener_details_show_processes_and_bind_class(realistic_run: ScanRun) -> None:
    text = Doc(render_html(realistic_run)).all_text()
    # the shared :80 socket lists the nginx master and both workers
    assert "pid 1201, root" in text and "pid 1202, www-data" in text and "pid 1203" in text
    for bind in ("wildcard", "loopback", "private"):
        assert bind in text


def test_banners_for_disabled_hostkey_checking_and_interruption(hostile_run: ScanRun) -> None:
    doc = Doc(render_html(hostile_run))
    alerts = [a for t, a in doc.tags if a.get("role") == "alert"]
    assert len(alerts) == 2
    text = doc.all_text()
    assert "WARNING: host-key checking was disabled." in text
    assert "INTERRUPTED." in text


def test_hostile_text_is_escaped_never_markup(hostile_run: ScanRun) -> None:
    page = render_html(hostile_run)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in page
    assert "<script>document" not in page
    assert "<img" not in page
    assert "\x1b" not in page and "\x07" not in page
    doc = Doc(page)
    scripts = [a for t, a in doc.tags if t == "script"]
    # the report's own code, and its data block (which a browser never runs)
    assert scripts == [{"type": "application/json", "id": "fleetscan-data"}, {}]
    data = doc.raw["script"][0]
    assert "<" not in data and ">" not in data and "&" not in data
    assert "</script>" in json.dumps(json.loads(data))  # the name is there, as data
    assert not [t for t, _ in doc.tags if t in ("img", "iframe", "object", "embed", "b")]
    handlers = [k for _, a in doc.tags for k in a if k.startswith("on")]
    assert handlers == []


def test_hostile_text_is_shown_as_text(hostile_run: ScanRun) -> None:
    text = Doc(render_html(hostile_run)).all_text()
    for shown in (SCRIPT, TITLE_SCRIPT, IMG_ONERROR, FORMULA, "odd\"<host>'=1"):
        assert shown in text
    # control characters are made visible, as in the terminal
    assert "\\x1b]0;pwned\\x07" in text
    assert "\\x1b[31mRED\\x1b[0m" in text
    assert "evil\\u202egpj.exe" in text
    assert "bad\\udcffbyte" in text
    assert OSC not in text and SGR not in text


def test_report_loads_nothing_from_outside(hostile_run: ScanRun) -> None:
    doc = Doc(render_html(hostile_run))
    for tag, attrs in doc.tags:
        for name in ("src", "href", "action", "data", "poster"):
            value = attrs.get(name)
            assert value is None or value.startswith("#"), (tag, name, value)
    assert not [t for t, a in doc.tags if t == "link"]


def test_csp_pins_the_inline_css_and_js(realistic_run: ScanRun) -> None:
    doc = Doc(render_html(realistic_run))
    csp = next(
        a["content"] for t, a in doc.tags if a.get("http-equiv") == "Content-Security-Policy"
    )
    assert csp is not None and "default-src 'none'" in csp
    (style,) = doc.raw["style"]
    _data, script = doc.raw["script"]  # the data block is not a script a browser runs
    for content, directive in ((style, "style-src"), (script, "script-src")):
        digest = base64.b64encode(hashlib.sha256(content.encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}'" in csp
    assert "unsafe-inline" not in csp


def test_written_file_is_valid_utf8_even_with_undecodable_input(
    tmp_path: Path, hostile_run: ScanRun
) -> None:
    (path,) = write_html(hostile_run, tmp_path)
    assert path.name == "report.html"
    path.read_bytes().decode("utf-8")  # strict: raises on any invalid sequence


def test_page_title_is_the_report_and_not_data(hostile_run: ScanRun) -> None:
    page = render_html(hostile_run)
    (title,) = re.findall(r"<title>(.*?)</title>", page, flags=re.S)
    assert html.unescape(title) == "fleetscan report hostile-run"


def test_large_outputs_are_bounded(realistic_run: ScanRun) -> None:
    import dataclasses

    from fleetscan.model import CommandEvidence, UnparsedLine

    web = realistic_run.scans[0]
    flooded = dataclasses.replace(
        web,
        unparsed=tuple(UnparsedLine(i, f"junk {i}") for i in range(5000)),
        evidence=(CommandEvidence("ss -tulnp", 0, "", "E" * 1_000_000, 1.0),),
    )
    run = dataclasses.replace(realistic_run, scans=(flooded, *realistic_run.scans[1:]))
    page = render_html(run)
    assert len(page) < 400_000
    assert "4800 more unparsed lines not shown" in page
    assert "more characters not shown" in page


@pytest.mark.slow
def test_templates_and_policies_are_found_when_installed_from_the_wheel(tmp_path: Path) -> None:
    """Build the real wheel, unpack it away from the source tree, then render
    and load the built-in policies from there: proves the wheel ships the
    top-level reports/templates/ and policies/ as package resources, read by
    the same code as in a checkout."""
    wheels = tmp_path / "wheels"
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)]
    if importlib.util.find_spec("hatchling") is not None:
        cmd.append("--no-build-isolation")  # offline-friendly when the backend is at hand
    build = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("fleetscan-*.whl")
    site = tmp_path / "site"  # no reports/templates nor policies/ beside it
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "fleetscan/_templates/report.html.j2" in names
        for policy in ("baseline", "demo", "example-infra"):
            assert f"fleetscan/_policies/{policy}.yaml" in names
        # the files themselves, not links to folders outside the package
        assert all(not n.startswith(("policies/", "reports/")) for n in names)
        zf.extractall(site)
    out = tmp_path / "out"
    script = (
        "import pathlib, fleetscan, fleetscan.reports as r\n"
        f"assert fleetscan.__file__.startswith({str(site)!r}), fleetscan.__file__\n"
        "from reports.conftest import build_realistic_run\n"
        f"r.write_reports(build_realistic_run(), pathlib.Path({str(out)!r}), ['html'])\n"
        "from fleetscan.policy import builtin_policy_names, builtin_policy_path, load_policies\n"
        "names = set(builtin_policy_names())\n"
        "assert {'baseline', 'demo', 'example-infra', 'example-exposure'} <= names, names\n"
        f"assert str(builtin_policy_path('baseline')).startswith({str(site)!r})\n"
        "pol = load_policies(['baseline', 'example-infra'])\n"
        "assert 'ssh-is-sshd' in pol.rule_ids(), pol.rule_ids()\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO / "tests")]),
        "PYTHONNOUSERSITE": "1",
    }
    # -S: skip site-packages .pth files (the editable install would win), then
    # add the venv's site-packages back *after* the unpacked wheel for jinja2 etc.
    deps = [p for p in sys.path if p.endswith("site-packages")]
    env["PYTHONPATH"] += os.pathsep + os.pathsep.join(deps)
    run = subprocess.run(
        [sys.executable, "-S", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "web-01" in (out / "report.html").read_text(encoding="utf-8")


def test_a_host_with_more_listeners_than_a_page_holds_gets_its_details_on_demand() -> None:
    """One host, or a few, can hold more listeners than a page can draw as
    table rows (a load balancer's 100,000 made a 67 MB page): past
    INLINE_LISTENER_LIMIT the details come from the data block, as they do
    past one page of hosts, and the page stays small. At the limit they are
    still HTML."""
    from bench.reports import synthetic_run
    from fleetscan.reports import htmldata
    from fleetscan.reports.html import INLINE_LISTENER_LIMIT

    def one_host(listeners: int) -> ScanRun:
        run = synthetic_run(1, listeners=listeners)
        (scan,) = run.scans
        assert scan.status is Status.OK
        return run

    small = one_host(INLINE_LISTENER_LIMIT // 2)
    small_page = render_html(small)
    assert small_page.count('class="host-detail"') == 1
    assert "open on demand" not in small_page

    big = one_host(INLINE_LISTENER_LIMIT * 2)
    total = len(big.scans[0].listeners)
    assert total > INLINE_LISTENER_LIMIT
    page = render_html(big)
    assert 'class="host-detail"' not in page
    assert f"1 host, {total} listeners: a host's details open on demand" in page
    # every listener is still in the page, in the data block report.js draws from
    (block,) = re.findall(
        r'<script type="application/json" id="fleetscan-data">(.*?)</script>', page, re.S
    )
    assert len(json.loads(block)["h"][0][14]) == total
    assert len(page) < 200 * total  # not thousands of bytes of table row per listener
    assert htmldata.RAW_ALL_LIMIT >= INLINE_LISTENER_LIMIT
