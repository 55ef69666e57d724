"""``junit.xml``: the run as test results, for CI systems.

One ``<testsuite name="fleetscan">``; per host (``classname="fleetscan.<host>"``):

* one ``scan`` testcase: an ``<error>`` when the host was not fully scanned
  (``type`` = its status), else passed; host facts in ``<system-out>``;
* one testcase per *check* that produced a finding — a rule × a listener,
  named ``<rule> <proto> <address>:<port>`` (or the rule alone for a
  host-level finding such as an expired waiver). The name holds no pid, no
  process name, no count: the same check has the same name in every run, so a
  new finding on a host that already failed is a *newly failed test* in
  GitLab's and Jenkins' merge-request views, not a longer message in an old
  one. A gating finding (active, at or above ``fail_on``; see
  :mod:`fleetscan.reports.summary`) is a ``<failure>`` (``type`` = the rule
  id); a waived one is ``<skipped>`` (the waiver in its message); one below
  ``fail_on`` passes, with the finding in ``<system-out>``.

The suite's counts (``tests``, ``failures``, ``errors``, ``skipped``) count
these testcases. Text goes through
:func:`~fleetscan.reports.sanitize.visible_controls`, so the file is
well-formed XML 1.0 whatever a host printed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
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


def check_name(f: Finding) -> str:
    """A finding's stable testcase name: rule × listener (no pid or process)."""
    if f.listener is None:
        return f.rule_id if f.kind != "waiver" else f"{f.rule_id}: {f.message}"
    x = f.listener
    address = f"[{x.address}]" if x.family == 6 else x.address
    zone = f"%{x.zone}" if x.zone else ""
    return f"{f.rule_id} {x.proto} {address}{zone}:{x.port}"


def _case(scan: HostScan, name: str, time: float = 0.0) -> ET.Element:
    return ET.Element(
        "testcase",
        {
            "classname": _attr(f"fleetscan.{scan.host}"),
            "name": _attr(name),
            "time": f"{time:.3f}",
        },
    )


def _scan_case(scan: HostScan, findings: Sequence[Finding]) -> ET.Element:
    case = _case(scan, "scan", scan.duration)
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
    out_lines = [
        f"status: {scan.status.value}",
        f"address: {scan.target.address}",
        f"platform: {scan.platform or 'unknown'}; collector: {scan.collector or 'none'}",
        f"listeners: {len(scan.listeners)}; unparsed lines: {len(scan.unparsed)}",
        f"findings: {sum(1 for f in findings if not f.waived)} active, "
        f"{sum(1 for f in findings if f.waived)} waived",
    ]
    ET.SubElement(case, "system-out").text = _text("\n".join(out_lines))
    return case


def _check_case(run: ScanRun, scan: HostScan, f: Finding, name: str) -> ET.Element:
    case = _case(scan, name)
    if summary.is_gating(f, run.fail_on):
        failure = ET.SubElement(
            case,
            "failure",
            {"type": _attr(f.rule_id), "message": _attr(f"[{f.severity}] {f.message}")},
        )
        failure.text = _text(_describe(f))
    elif f.waiver is not None:
        ET.SubElement(
            case,
            "skipped",
            {"message": _attr(f"waived by {f.waiver.id} until {f.waiver.expires or 'never'}")},
        )
        ET.SubElement(case, "system-out").text = _text(_describe(f))
    else:  # below fail-on: passes, and says why it is there
        ET.SubElement(case, "system-out").text = _text(
            f"below --fail-on {run.fail_on}:\n{_describe(f)}"
        )
    return case


def host_cases(run: ScanRun, scan: HostScan, findings: Sequence[Finding]) -> list[ET.Element]:
    """The scan testcase, then one per check with a finding (stable names;
    a second finding of the same rule on the same listener gets ``#2``)."""
    return list(_host_cases(run, scan, findings))


def _host_cases(run: ScanRun, scan: HostScan, findings: Sequence[Finding]) -> Iterator[ET.Element]:
    yield _scan_case(scan, findings)
    seen: dict[str, int] = {}
    for f in summary.sort_findings(findings):
        if f.kind == "host":  # "not fully scanned": the scan testcase's error says it
            continue
        name = check_name(f)
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name} #{seen[name]}"
        yield _check_case(run, scan, f, name)


def _totals(run: ScanRun, by_host: Mapping[str, Sequence[Finding]]) -> dict[str, str]:
    """The suite's counts, from the findings alone (the testcases they make
    are written one at a time, so they cannot be counted afterwards)."""
    tests = errors = failures = skipped = 0
    for scan in run.scans:
        tests += 1
        errors += not scan.status.complete
        for f in by_host.get(scan.host, []):
            if f.kind == "host":
                continue
            tests += 1
            if summary.is_gating(f, run.fail_on):
                failures += 1
            elif f.waiver is not None:
                skipped += 1
    return {
        "tests": str(tests),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(skipped),
    }


def _suite(run: ScanRun, by_host: Mapping[str, Sequence[Finding]]) -> ET.Element:
    """The ``<testsuite>`` element with its attributes, no testcases."""
    suite = ET.Element("testsuite", {"name": "fleetscan"})
    suite.attrib.update(
        {
            **_totals(run, by_host),
            "time": f"{summary.duration_seconds(run):.3f}",
            "timestamp": run.started.isoformat(timespec="seconds"),
            "id": _attr(run.id),
        }
    )
    return suite


def _properties(run: ScanRun) -> ET.Element:
    props = ET.Element("properties")
    for name, value in (
        ("run_id", run.id),
        ("tool_version", run.tool_version),
        ("fail_on", str(run.fail_on)),
        ("hostkey_checking", str(run.hostkey_checking).lower()),
        ("hostkey_trust", " | ".join(summary.hostkey_trust_notes(run)) or "operator known_hosts"),
        ("interrupted", str(run.interrupted).lower()),
        ("inventory_digest", run.inventory_digest),
        ("policy_digest", run.policy_digest),
        ("exit_code", str(summary.exit_code(run))),
    ):
        ET.SubElement(props, "property", {"name": name, "value": _attr(value)})
    return props


def _children(run: ScanRun, by_host: Mapping[str, Sequence[Finding]]) -> Iterator[ET.Element]:
    yield _properties(run)
    for scan in run.scans:
        yield from _host_cases(run, scan, by_host.get(scan.host, []))


def build_tree(run: ScanRun) -> ET.ElementTree[ET.Element]:
    """The JUnit document (pure; :func:`stream_junit` writes the same one
    testcase at a time)."""
    by_host = summary.findings_by_host(run)
    suite = _suite(run, by_host)
    suite.extend(_children(run, by_host))
    ET.indent(suite)
    return ET.ElementTree(suite)


def stream_junit(run: ScanRun, out: IO[str]) -> None:
    """Write :func:`build_tree`'s document, byte for byte, holding one
    testcase at a time (a run with a finding on each of 100,000 listeners
    is 100,000 testcases)."""
    # the declaration by hand: ElementTree would take the stream's encoding name
    out.write("<?xml version='1.0' encoding='utf-8'?>\n")
    by_host = summary.findings_by_host(run)
    suite = _suite(run, by_host)
    suite.text = "\n  "  # as ET.indent leaves it: there is always <properties>
    head = ET.tostring(suite, encoding="unicode")
    out.write(head[: head.rindex("</testsuite>")])
    previous: ET.Element | None = None
    for child in _children(run, by_host):
        if previous is not None:
            previous.tail = "\n  "
            out.write(ET.tostring(previous, encoding="unicode"))
        ET.indent(child, level=1)
        previous = child
    assert previous is not None
    previous.tail = "\n"
    out.write(ET.tostring(previous, encoding="unicode"))
    out.write("</testsuite>\n")


def write_junit(run: ScanRun, outdir: Path, mode: int = DEFAULT_MODE) -> list[Path]:
    path = outdir / FILENAME
    with atomic_open(path, mode=mode) as out:
        stream_junit(run, out)
    return [path]
