"""junit.xml: one testcase per host scan and one per check (rule × listener)
with a stable name, failures for gating findings, errors for hosts not fully
scanned, skipped for waived findings, well-formed XML 1.0 whatever the hosts
sent."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

from fleetscan.model import Finding, Process, ScanRun, Severity
from fleetscan.reports.junit import write_junit

from .conftest import WEB_LISTENERS

# Characters XML 1.0 forbids (a conforming parser must reject the file).
XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def parse(tmp_path: Path, run: ScanRun) -> ET.Element:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (path,) = write_junit(run, tmp_path)
    assert path.name == "junit.xml"
    assert not XML_FORBIDDEN.search(path.read_bytes().decode("utf-8"))
    return ET.parse(path).getroot()


def cases(root: ET.Element) -> dict[tuple[str, str], ET.Element]:
    """(host, testcase name) → testcase."""
    return {
        (c.get("classname", "").removeprefix("fleetscan."), c.get("name", "")): c
        for c in root.iter("testcase")
    }


def failed(root: ET.Element) -> set[tuple[str, str]]:
    return {k for k, c in cases(root).items() if c.find("failure") is not None}


def test_one_scan_testcase_per_host_and_one_per_check(tmp_path: Path, any_run: ScanRun) -> None:
    root = parse(tmp_path, any_run)
    assert root.tag == "testsuite" and root.get("name") == "fleetscan"
    all_cases = list(root.iter("testcase"))
    assert root.get("tests") == str(len(all_cases))
    scans = [c for c in all_cases if c.get("name") == "scan"]
    assert len(scans) == len(any_run.scans)
    checks = [f for f in any_run.findings if f.kind != "host"]
    assert len(all_cases) == len(any_run.scans) + len(checks)
    assert len(cases(root)) == len(all_cases)  # every (host, name) is unique


def test_gating_findings_fail_and_incomplete_hosts_error(
    tmp_path: Path, realistic_run: ScanRun
) -> None:
    root = parse(tmp_path, realistic_run)
    by_key = cases(root)
    (failure,) = by_key[("web-01", "forbidden-ports tcp 0.0.0.0:4444")].findall("failure")
    assert failure.get("type") == "forbidden-ports"
    assert "nc" in (failure.text or "") and "4444" in (failure.text or "")
    assert failed(root) == {
        ("web-01", "forbidden-ports tcp 0.0.0.0:4444"),
        ("db-01", "db-loopback tcp 0.0.0.0:5432"),
    }
    # below fail-on (info, medium) passes; the expired waiver is its own check
    info = by_key[("web-01", "undocumented udp 127.0.0.1:323")]
    assert info.find("failure") is None and "below --fail-on high" in (
        info.findtext("system-out") or ""
    )
    assert any(name.startswith("waiver-expired: ") for host, name in by_key if host == "web-01")
    for scan in realistic_run.scans:
        error = by_key[(scan.host, "scan")].find("error")
        assert (error is None) == scan.status.complete
        if error is not None:
            assert error.get("type") == scan.status.value
    assert root.get("failures") == "2" and root.get("errors") == "11"


def test_waived_findings_are_skipped_checks(tmp_path: Path, realistic_run: ScanRun) -> None:
    root = parse(tmp_path, realistic_run)
    case = cases(root)[("db-01", "undocumented tcp 127.0.0.1:6379")]
    skipped = case.find("skipped")
    assert skipped is not None and skipped.get("message") == (
        "waived by WVR-2025-004 until 2099-12-31"
    )
    assert "redis-server" in (case.findtext("system-out") or "")
    assert case.find("failure") is None
    assert root.get("skipped") == "2"


def test_a_new_finding_on_a_failing_host_is_a_newly_failed_test(
    tmp_path: Path, realistic_run: ScanRun
) -> None:
    """What a merge-request view compares: test names. The base run already
    fails web-01 (port 4444); the head run adds a finding on web-01. The new
    check is a new failed testcase; the old failing one keeps its name even
    though its pid and process changed."""
    web = realistic_run.scans[0]
    moved = replace(WEB_LISTENERS[5], processes=(Process("nc", 4242, "root"),))
    extra = Finding("forbidden-ports", Severity.HIGH, "web-01", "telnet", WEB_LISTENERS[3])
    old = [f for f in realistic_run.findings if f.listener is not WEB_LISTENERS[5]]
    first = next(f for f in realistic_run.findings if f.listener is WEB_LISTENERS[5])
    head_run = replace(
        realistic_run,
        scans=(replace(web, listeners=(*web.listeners[:5], moved)), *realistic_run.scans[1:]),
        findings=(replace(first, listener=moved), extra, *old),
    )
    base = failed(parse(tmp_path / "base", realistic_run))
    head = failed(parse(tmp_path / "head", head_run))
    assert head - base == {("web-01", "forbidden-ports tcp 0.0.0.0:443")}
    assert base <= head


def test_properties_record_provenance(tmp_path: Path, realistic_run: ScanRun) -> None:
    props = {p.get("name"): p.get("value") for p in parse(tmp_path, realistic_run).iter("property")}
    assert props["run_id"] == realistic_run.id
    assert props["fail_on"] == "high" and props["exit_code"] == "1"
    assert props["hostkey_checking"] == "true"


def test_hostile_strings_stay_well_formed_and_visible(tmp_path: Path, hostile_run: ScanRun) -> None:
    root = parse(tmp_path, hostile_run)
    hosts = {host for host, _ in cases(root)}
    assert "odd\"<host>'=1" in hosts
    evil = [c for (host, _), c in cases(root).items() if host == "evil-01"]
    texts = "\n".join(f.text or "" for c in evil for f in c.findall("failure"))
    assert "<script>alert(1)</script>" in texts  # as text: ElementTree escaped it
    assert "\\x1b]0;pwned\\x07" in texts
    assert "bad\\udcffbyte" in texts
    assert "\x1b" not in ET.tostring(root, encoding="unicode")
    error = cases(root)[("evil-02", "scan")].find("error")
    assert error is not None and "\n" not in (error.get("message") or "")


def test_suite_counts_are_what_its_testcases_say(tmp_path: Path, any_run: ScanRun) -> None:
    """The suite's totals are taken from the findings before the testcases are
    written (one at a time); they must equal counting the written testcases."""
    for run in (any_run, replace(any_run, fail_on=Severity.LOW)):
        root = parse(tmp_path, run)
        testcases = root.findall("testcase")
        assert root.get("tests") == str(len(testcases))
        for kind in ("failure", "error", "skipped"):
            counted = sum(1 for c in testcases if c.find(kind) is not None)
            assert root.get(kind + "s" if kind != "skipped" else kind) == str(counted), kind
