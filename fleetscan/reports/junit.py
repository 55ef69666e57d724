"""``junit.xml``: the run as test results, for CI systems.

One ``<testsuite name="fleetscan">`` with one ``<testcase>`` per host
(``classname="fleetscan.<host>"``):

* a ``<failure>`` per gating finding (active, at or above ``fail_on``; see
  :mod:`fleetscan.reports.summary`), ``type`` = the rule id;
* an ``<error>`` when the host was not fully scanned (``type`` = its status);
* everything else about the host — waived findings, findings below
  ``fail_on``, listener count — in ``<system-out>``, so it is visible in the
  CI's test view without failing the build.

The suite's ``failures`` counts hosts with failures but no error, ``errors``
the hosts with an error, as JUnit consumers expect one outcome per test.
Text goes through :func:`~fleetscan.reports.sanitize.visible_controls`, so the
file is well-formed XML 1.0 whatever a host printed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import IO

from fleetscan.model import Finding, HostScan, ScanRun
from fleetscan.reports import summary
from fleetscan.reports.files import DEFAULT_MODE, atomic_open
from fleetscan.reports.sanitize import clip, visible_controls

FILENAME = "junit.xml"
MAX_TEXT = 16_000


def _text(value: str, limit: int = MAX_TEXT) -> str:
    return visible_controls(clip(value, limit), keep="\t\n")


def _attr(value: str) -> str:
    # Attributes are one line in every CI viewer: escape newlines too.
    return visible_controls(clip(value, 1_000))


def _describe(f: Finding) -> str:
    parts = [f"[{f.severity}] {f.rule_id}: {f.message}"]
    if f.listener is not None:
        x = f.listener
        procs = ", ".join(x.process_names) or "unknown process"
        parts.append(f"  listener: {x.proto} {x.address}:{x.port} ({procs})")
        if x.raw:
            parts.append(f"  evidence: {x.raw}")
    if f.waiver is not None:
        w = f.waiver
        parts.append(f"  waived by {w.id} (expires {w.expires or 'never'}): {w.justification}")
    return "\n".join(parts)


def _testcase(run: ScanRun, scan: HostScan, findings: list[Finding]) -> ET.Element:
    case = ET.Element(
        "testcase",
        {
            "classname": _attr(f"fleetscan.{scan.host}"),
            "name": _attr(f"{scan.host} listening services comply with policy"),
            "time": f"{scan.duration:.3f}",
        },
    )
    gating = [f for f in findings if summary.is_gating(f, run.fail_on)]
    for f in gating:
        failure = ET.SubElement(
            case,
            "failure",
            {"type": _attr(f.rule_id), "message": _attr(f"[{f.severity}] {f.message}")},
        )
        failure.text = _text(_describe(f))
    if not scan.status.complete:
        error = ET.SubElement(
            case,
            "error",
            {
                "type": scan.status.value,
                "message": _attr(f"host not fully scanned ({scan.status.value}): {scan.message}"),
            },
        )
        error.text = _text(scan.message or scan.status.value)
    other = [f for f in findings if not summary.is_gating(f, run.fail_on)]
    out_lines = [
        f"status: {scan.status.value}",
        f"address: {scan.target.address}",
        f"platform: {scan.platform or 'unknown'}; collector: {scan.collector or 'none'}",
        f"listeners: {len(scan.listeners)}; unparsed lines: {len(scan.unparsed)}",
    ]
    if other:
        out_lines.append(
            "findings that do not fail the gate (waived, below fail-on, or host-level):"
        )
        out_lines.extend(_describe(f) for f in other)
    ET.SubElement(case, "system-out").text = _text("\n".join(out_lines))
    return case


def build_tree(run: ScanRun) -> ET.ElementTree[ET.Element]:
    """The JUnit document (pure; :func:`write_junit` only serialises it)."""
    by_host = summary.findings_by_host(run)
    suite = ET.Element("testsuite", {"name": "fleetscan"})
    failures = errors = 0
    for scan in run.scans:
        case = _testcase(run, scan, by_host.get(scan.host, []))
        if case.find("error") is not None:
            errors += 1
        elif case.find("failure") is not None:
            failures += 1
        suite.append(case)
    suite.attrib.update(
        {
            "tests": str(len(run.scans)),
            "failures": str(failures),
            "errors": str(errors),
            "skipped": "0",
            "time": f"{summary.duration_seconds(run):.3f}",
            "timestamp": run.started.isoformat(timespec="seconds"),
            "id": _attr(run.id),
        }
    )
    props = ET.Element("properties")
    for name, value in (
        ("run_id", run.id),
        ("tool_version", run.tool_version),
        ("fail_on", str(run.fail_on)),
        ("hostkey_checking", str(run.hostkey_checking).lower()),
        ("interrupted", str(run.interrupted).lower()),
        ("inventory_digest", run.inventory_digest),
        ("policy_digest", run.policy_digest),
        ("exit_code", str(summary.exit_code(run))),
    ):
        ET.SubElement(props, "property", {"name": name, "value": _attr(value)})
    suite.insert(0, props)
    ET.indent(suite)
    return ET.ElementTree(suite)


def stream_junit(run: ScanRun, out: IO[str]) -> None:
    # the declaration by hand: ElementTree would take the stream's encoding name
    out.write("<?xml version='1.0' encoding='utf-8'?>\n")
    build_tree(run).write(out, encoding="unicode")
    out.write("\n")


def write_junit(run: ScanRun, outdir: Path, mode: int = DEFAULT_MODE) -> list[Path]:
    path = outdir / FILENAME
    with atomic_open(path, mode=mode) as out:
        stream_junit(run, out)
    return [path]
