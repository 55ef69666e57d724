"""junit.xml: one testcase per host, failures for gating findings, errors for
hosts not fully scanned, well-formed XML 1.0 whatever the hosts sent."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from fleetscan.model import ScanRun
from fleetscan.reports.junit import write_junit

# Characters XML 1.0 forbids (a conforming parser must reject the file).
XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def parse(tmp_path: Path, run: ScanRun) -> ET.Element:
    (path,) = write_junit(run, tmp_path)
    assert path.name == "junit.xml"
    assert not XML_FORBIDDEN.search(path.read_bytes().decode("utf-8"))
    return ET.parse(path).getroot()


def cases(root: ET.Element) -> dict[str, ET.Element]:
    return {c.get("classname", "").removeprefix("fleetscan."): c for c in root.iter("testcase")}


def test_one_suite_one_testcase_per_host(tmp_path: Path, any_run: ScanRun) -> None:
    root = parse(tmp_path, any_run)
    assert root.tag == "testsuite" and root.get("name") == "fleetscan"
    assert root.get("tests") == str(len(any_run.scans))
    assert len(list(root.iter("testcase"))) == len(any_run.scans)


def test_gating_findings_fail_and_incomplete_hosts_error(
    tmp_path: Path, realistic_run: ScanRun
) -> None:
    root = parse(tmp_path, realistic_run)
    by_host = cases(root)
    web = by_host["web-01"]
    (failure,) = web.findall("failure")  # the critical 4444; info/low/medium do not fail
    assert failure.get("type") == "forbidden-ports"
    assert "nc" in (failure.text or "") and "4444" in (failure.text or "")
    assert web.find("error") is None
    assert [f.get("type") for f in by_host["db-01"].findall("failure")] == ["db-loopback"]
    clean = by_host["bastion-01"]
    assert clean.find("failure") is None and clean.find("error") is None
    for scan in realistic_run.scans:
        error = by_host[scan.host].find("error")
        assert (error is None) == scan.status.complete
        if error is not None:
            assert error.get("type") == scan.status.value
    assert root.get("failures") == "2" and root.get("errors") == "10"


def test_waived_findings_go_to_system_out(tmp_path: Path, realistic_run: ScanRun) -> None:
    db = cases(parse(tmp_path, realistic_run))["db-01"]
    out = db.findtext("system-out") or ""
    assert "waived by WVR-2025-004 (expires 2099-12-31)" in out
    assert "redis-server" in out


def test_properties_record_provenance(tmp_path: Path, realistic_run: ScanRun) -> None:
    props = {p.get("name"): p.get("value") for p in parse(tmp_path, realistic_run).iter("property")}
    assert props["run_id"] == realistic_run.id
    assert props["fail_on"] == "high" and props["exit_code"] == "1"
    assert props["hostkey_checking"] == "true"


def test_hostile_strings_stay_well_formed_and_visible(tmp_path: Path, hostile_run: ScanRun) -> None:
    root = parse(tmp_path, hostile_run)
    by_host = cases(root)
    assert "odd\"<host>'=1" in by_host
    evil = by_host["evil-01"]
    texts = "\n".join(f.text or "" for f in evil.findall("failure"))
    assert "<script>alert(1)</script>" in texts  # as text: ElementTree escaped it
    assert "\\x1b]0;pwned\\x07" in texts
    assert "bad\\udcffbyte" in texts
    assert "\x1b" not in ET.tostring(root, encoding="unicode")
    error = by_host["evil-02"].find("error")
    assert error is not None and "\n" not in (error.get("message") or "")
