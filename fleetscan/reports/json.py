"""``report.json``: the whole run as data, for programs (schema in
``docs/report-schema.md``; bump :data:`SCHEMA_VERSION` on any incompatible
change).

Strings from hosts are kept exactly as received — this is the evidence
format — and :func:`json.dumps` escapes control characters. Lone surrogates
(from undecodable bytes) are written as ``\\udcXX`` JSON escapes, so the file
is valid UTF-8 JSON whatever a host printed. Only sizes are bounded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from fleetscan.addresses import bind_class
from fleetscan.model import (
    Change,
    CommandEvidence,
    Finding,
    HostScan,
    Listener,
    ProbeResult,
    ScanRun,
    Severity,
)
from fleetscan.reports import summary
from fleetscan.reports.files import DEFAULT_MODE, atomic_open
from fleetscan.reports.jsonout import dump_indented
from fleetscan.reports.sanitize import clip

SCHEMA = "fleetscan.report"
SCHEMA_VERSION = 1
FILENAME = "report.json"

#: how the document's long arrays are made: ``list`` (:func:`run_to_dict`) or ``iter``
Array = Callable[[Iterable[Any]], Any]

# Per-string bounds; collectors bound evidence already, this is the backstop.
MAX_TEXT = 64_000
MAX_RAW = 4_000


def listener_to_dict(listener: Listener) -> dict[str, Any]:
    """``Listener.to_dict()`` plus zone, bind class and the evidence line."""
    out = listener.to_dict()
    out["zone"] = listener.zone
    out["bind_class"] = bind_class(listener.address)
    out["raw"] = clip(listener.raw, MAX_RAW)
    out["line"] = listener.line
    return out


def evidence_to_dict(ev: CommandEvidence) -> dict[str, Any]:
    return {
        "command": ev.command,
        "exit_status": ev.exit_status,
        "stdout": clip(ev.stdout, MAX_TEXT),
        "stderr": clip(ev.stderr, MAX_TEXT),
        "duration_seconds": round(ev.duration, 3),
        "truncated": ev.truncated,
    }


def host_to_dict(scan: HostScan, verdict: str, array: Array = list) -> dict[str, Any]:
    t = scan.target
    return {
        "name": t.name,
        "address": t.address,
        "port": t.port,
        "groups": list(t.groups),
        "transport": t.transport,
        "status": scan.status.value,
        "complete": scan.status.complete,
        "scanned": scan.status.scanned,
        "verdict": verdict,
        "message": clip(scan.message, MAX_TEXT),
        "platform": scan.platform,
        "collector": scan.collector,
        "duration_seconds": round(scan.duration, 3),
        "listeners": array(listener_to_dict(x) for x in scan.listeners),
        "unparsed": array({"line": u.line, "text": clip(u.text, MAX_RAW)} for u in scan.unparsed),
        "evidence": [evidence_to_dict(e) for e in scan.evidence],
    }


def finding_to_dict(finding: Finding, fail_on: Severity) -> dict[str, Any]:
    w = finding.waiver
    return {
        "rule_id": finding.rule_id,
        "severity": str(finding.severity),
        "severity_level": int(finding.severity),
        "kind": finding.kind,
        "host": finding.host,
        "message": clip(finding.message, MAX_TEXT),
        "listener": listener_to_dict(finding.listener) if finding.listener else None,
        "waived": finding.waived,
        "waiver": (
            {"id": w.id, "justification": w.justification, "expires": w.expires, "owner": w.owner}
            if w
            else None
        ),
        "gating": summary.is_gating(finding, fail_on),
    }


def change_to_dict(change: Change) -> dict[str, Any]:
    """One ``changes[]`` entry (also ``fleetscan diff --format json``)."""
    return {
        "host": change.host,
        "kind": change.kind,
        "proto": change.proto,
        "address": change.address,
        "port": change.port,
        "before": listener_to_dict(change.before) if change.before else None,
        "after": listener_to_dict(change.after) if change.after else None,
        "since_run": change.since_run,
    }


def probe_to_dict(r: ProbeResult) -> dict[str, Any]:
    """One cell of the exposure matrix: a listener of a host, seen from a zone."""
    return {
        "host": r.host,
        "proto": r.listener.proto,
        "address": r.listener.address,
        "port": r.listener.port,
        "zone": r.zone,
        "probed_address": r.address,
        "probe_host": r.probe_host,
        "result": r.result,
        "reason": clip(r.reason, MAX_RAW),
        "rtt_ms": r.rtt_ms,
    }


def run_to_dict(run: ScanRun, array: Array = list) -> dict[str, Any]:
    """The report document (pure; :func:`write_json` only serialises it).
    ``array`` makes its long arrays (hosts, listeners, unparsed lines,
    findings, changes, exposure): lists, or ``iter`` to stream them."""
    c = summary.counts(run)
    verdicts = summary.verdicts(run)
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "run": {
            "id": run.id,
            "started": run.started.isoformat(),
            "finished": run.finished.isoformat(),
            "duration_seconds": round(summary.duration_seconds(run), 3),
            "tool_version": run.tool_version,
            "inventory_digest": run.inventory_digest,
            "inventory_files": list(run.inventory_files),
            "policy_digest": run.policy_digest,
            "policy_files": list(run.policy_files),
            "hostkey_checking": run.hostkey_checking,
            "inventory_known_hosts_trusted": run.inventory_known_hosts_trusted,
            "accept_new": (
                None
                if run.accept_new_file is None
                else {
                    "file": run.accept_new_file,
                    "keys_learned": [
                        {
                            "host": k.host,
                            "name": k.name,
                            "key_type": k.key_type,
                            "fingerprint": k.fingerprint,
                        }
                        for k in run.keys_learned
                    ],
                }
            ),
            "hostkey_trust_notes": summary.hostkey_trust_notes(run),
            "interrupted": run.interrupted,
            "fail_on": str(run.fail_on),
            "exit_code": summary.exit_code(run),
            "summary": {
                "hosts": c.hosts,
                "by_status": {st.value: n for st, n in c.by_status.items()},
                "by_verdict": dict(c.by_verdict),
                "active_findings_by_severity": {
                    str(sev): n for sev, n in c.active_by_severity.items()
                },
                "waived_findings": c.waived,
                "gating_findings": c.gating,
            },
            "compared_to": run.compared_to.to_dict() if run.compared_to else None,
            "alerts": run.alerts.to_dict() if run.alerts is not None else None,
        },
        "hosts": array(host_to_dict(s, verdicts[s.host], array) for s in run.scans),
        "findings": array(
            finding_to_dict(f, run.fail_on) for f in summary.sort_findings(run.findings)
        ),
        "changes": array(change_to_dict(x) for x in run.changes),
        "exposure": array(probe_to_dict(r) for r in run.exposure),
    }


def dumps(run: ScanRun) -> str:
    return json.dumps(run_to_dict(run), ensure_ascii=False, indent=2) + "\n"


def stream_json(run: ScanRun, out: IO[str]) -> None:
    """The report to ``out``: the bytes of ``json.dump(..., ensure_ascii=False,
    indent=2)``, written by the faster :func:`~fleetscan.reports.jsonout.dump_indented`
    while the document is made: its long arrays are generators (``array=iter``),
    so a listener's object is the biggest thing made at once, never the whole
    document of a 100,000-listener host."""
    # the stream's backslashreplace turns a lone surrogate into the JSON escape \udcXX
    dump_indented(run_to_dict(run, iter), out)
    out.write("\n")


def write_json(run: ScanRun, outdir: Path, mode: int = DEFAULT_MODE) -> list[Path]:
    path = outdir / FILENAME
    with atomic_open(path, mode=mode) as out:
        stream_json(run, out)
    return [path]
