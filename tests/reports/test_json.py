"""report.json: the documented schema, valid JSON whatever the input, and the
hosts' strings kept exactly (it is the evidence format)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from fleetscan.model import AlertDelivery, AlertReport, Change, ComparedTo, ProbeResult, ScanRun
from fleetscan.reports.json import SCHEMA_VERSION, write_json

from .conftest import HOSTILE_NAMES, OSC, SCRIPT


def load(tmp_path: Path, run: ScanRun) -> dict[str, Any]:
    (path,) = write_json(run, tmp_path)
    assert path.name == "report.json"
    doc: dict[str, Any] = json.loads(path.read_bytes().decode("utf-8"))  # strict UTF-8
    return doc


def test_document_has_the_versioned_envelope(tmp_path: Path, any_run: ScanRun) -> None:
    doc = load(tmp_path, any_run)
    assert list(doc) == [
        "schema",
        "schema_version",
        "run",
        "hosts",
        "findings",
        "changes",
        "exposure",
    ]
    assert doc["schema"] == "fleetscan.report" and doc["schema_version"] == SCHEMA_VERSION == 1
    assert len(doc["hosts"]) == len(any_run.scans)
    assert len(doc["findings"]) == len(any_run.findings)


def test_run_section_carries_provenance_and_summary(tmp_path: Path, realistic_run: ScanRun) -> None:
    run = load(tmp_path, realistic_run)["run"]
    assert run["id"] == realistic_run.id
    assert run["started"] == "2025-03-14T02:00:00+00:00"
    assert run["duration_seconds"] == 187.0
    assert run["fail_on"] == "high" and run["exit_code"] == 1
    assert run["policy_files"] == ["policies/baseline.yaml"]
    assert run["summary"]["by_verdict"] == {"compliant": 1, "non-compliant": 2, "not-scanned": 11}
    assert run["summary"]["by_status"]["ok"] == 3
    assert run["summary"]["waived_findings"] == 2


def test_listeners_use_the_parse_contract_plus_evidence(
    tmp_path: Path, realistic_run: ScanRun
) -> None:
    doc = load(tmp_path, realistic_run)
    web = doc["hosts"][0]
    model = realistic_run.scans[0].listeners[2]
    got = web["listeners"][2]
    assert {k: got[k] for k in model.to_dict()} == model.to_dict()
    assert got["raw"] == model.raw and got["line"] == 3 and got["bind_class"] == "wildcard"
    assert [p["pid"] for p in got["processes"]] == [1201, 1202, 1203]
    assert web["unparsed"] == [{"line": 7, "text": "tcp   LISTEN 0 128 *%lo:9090 *:* weird-column"}]
    assert web["evidence"][1]["command"] == "ss -H -tulnp"


def test_findings_carry_waivers_and_gate(tmp_path: Path, realistic_run: ScanRun) -> None:
    findings = load(tmp_path, realistic_run)["findings"]
    assert findings[0]["severity"] == "critical" and findings[0]["gating"] is True
    waived = [f for f in findings if f["waived"]]
    assert {f["waiver"]["id"] for f in waived} == {"WVR-2025-004", "WVR-2024-001"}
    assert all(f["gating"] is False for f in waived)
    host_level = [f for f in findings if f["kind"] == "host"]
    assert host_level and all(f["listener"] is None and not f["gating"] for f in host_level)


def test_hostile_strings_are_kept_intact_as_data(tmp_path: Path, hostile_run: ScanRun) -> None:
    doc = load(tmp_path, hostile_run)
    evil = doc["hosts"][0]
    names = {p["name"] for x in evil["listeners"] for p in x["processes"]}
    assert names == set(HOSTILE_NAMES)  # including the lone surrogate, via \udcff
    assert evil["message"] == SCRIPT + OSC
    assert [u["text"] for u in evil["unparsed"]] == list(HOSTILE_NAMES)
    assert doc["hosts"][2]["name"] == "odd\"<host>'=1"


def test_control_characters_are_json_escapes_not_raw_bytes(
    tmp_path: Path, hostile_run: ScanRun
) -> None:
    (path,) = write_json(hostile_run, tmp_path)
    text = path.read_text(encoding="utf-8")
    assert "\x1b" not in text and "\x07" not in text
    assert "\\u001b]0;pwned\\u0007" in text


SCHEMA_DOC = Path(__file__).resolve().parents[2] / "docs" / "report-schema.md"


def documented_fields() -> dict[str, list[str]]:
    """Section heading (### `path`) → the field names of its table."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in SCHEMA_DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("### `"):
            current = sections.setdefault(line.split("`")[1], [])
        elif current is not None and line.startswith("| `"):
            current.append(line.split("`")[1])
    return sections


def _with_changes(run: ScanRun) -> ScanRun:
    """The realistic run compared with an earlier one: a widened bind and a new listener."""
    web = run.scans[0]
    was, now = web.listeners[0], web.listeners[1]
    return replace(
        run,
        changes=(
            Change(web.host, "widened", now.proto, now.address, now.port, was, now, "R1"),
            Change(web.host, "new", now.proto, now.address, now.port, None, now, "R1"),
        ),
        compared_to=ComparedTo("previous", "R1", ("R1",), (), (run.scans[-1].host,)),
    )


def test_changes_and_compared_to(tmp_path: Path, realistic_run: ScanRun) -> None:
    doc = load(tmp_path, _with_changes(realistic_run))
    widened, new = doc["changes"]
    assert widened["kind"] == "widened" and widened["before"]["port"] == widened["port"]
    assert new["before"] is None and new["after"] == doc["hosts"][0]["listeners"][1]
    assert doc["run"]["compared_to"]["run"] == "R1"
    plain = load(tmp_path, realistic_run)
    assert plain["changes"] == [] and plain["run"]["compared_to"] is None


def test_schema_doc_lists_every_field(tmp_path: Path, realistic_run: ScanRun) -> None:
    scan = realistic_run.scans[0]
    cell = ProbeResult(scan.host, scan.listeners[0], "office", scan.target.address, "open", "jump")
    alerts = AlertReport(
        1, (AlertDelivery("webhook https://h/…", "R2", 1, False, "HTTP 503", True),)
    )
    run = dataclasses.replace(_with_changes(realistic_run), exposure=(cell,), alerts=alerts)
    doc = load(tmp_path, run)
    web = doc["hosts"][0]
    waived = next(f for f in doc["findings"] if f["waived"])
    actual = {
        "(top level)": doc,
        "run": doc["run"],
        "run.summary": doc["run"]["summary"],
        "hosts[]": web,
        "listener": web["listeners"][0],
        "processes[]": web["listeners"][0]["processes"][0],
        "unparsed[]": web["unparsed"][0],
        "evidence[]": web["evidence"][0],
        "findings[]": waived,
        "waiver": waived["waiver"],
        "run.compared_to": doc["run"]["compared_to"],
        "run.alerts": doc["run"]["alerts"],
        "run.alerts.deliveries[]": doc["run"]["alerts"]["deliveries"][0],
        "changes[]": doc["changes"][0],
        "exposure[]": doc["exposure"][0],
    }
    documented = documented_fields()
    assert set(documented) == set(actual)
    for section, obj in actual.items():
        assert documented[section] == list(obj), section
