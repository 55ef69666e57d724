"""Model values ↔ the JSON documents kept in the history database. Pure.

Every document is canonical JSON (sorted keys, no spaces, ASCII) so equal
content has equal text and so an equal :func:`digest`: that is what lets an
unchanged host's listener set, findings and evidence be stored once.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fleetscan.model import (
    Change,
    CommandEvidence,
    Finding,
    HostScan,
    LearnedKey,
    Listener,
    Origin,
    Process,
    ScanRun,
    Severity,
    Status,
    Target,
    UnparsedLine,
    WaiverRef,
)
from fleetscan.store.schema import DIGEST_LEN


def canonical(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def digest(body: str) -> str:
    return hashlib.sha256(body.encode("ascii")).hexdigest()[:DIGEST_LEN]


# --- listeners ---------------------------------------------------------------------


def listener_doc(x: Listener) -> dict[str, Any]:
    return {
        "proto": x.proto,
        "family": x.family,
        "address": x.address,
        "port": x.port,
        "state": x.state,
        "zone": x.zone,
        "raw": x.raw,
        "line": x.line,
        "processes": [[p.name, p.pid, p.user] for p in x.processes],
    }


def listener_from(doc: dict[str, Any]) -> Listener:
    return Listener(
        proto=doc["proto"],
        family=doc["family"],
        address=doc["address"],
        port=doc["port"],
        state=doc["state"],
        processes=tuple(Process(name=n, pid=pid, user=u) for n, pid, u in doc["processes"]),
        zone=doc["zone"],
        raw=doc["raw"],
        line=doc["line"],
    )


def listeners_doc(listeners: tuple[Listener, ...]) -> list[dict[str, Any]]:
    return [listener_doc(x) for x in listeners]


def listeners_from(doc: list[dict[str, Any]]) -> tuple[Listener, ...]:
    return tuple(listener_from(d) for d in doc)


class ListenerSets:
    """(digest, body) of each host's listener set, computed once per run and
    shared by the comparison (an equal digest needs no comparison) and the
    save. Keyed by the tuple's identity (the tuple is held, so its id stays
    unique): hashing every listener again would cost more than the JSON."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[tuple[Listener, ...], str, str]] = {}

    def get(self, listeners: tuple[Listener, ...]) -> tuple[str, str]:
        hit = self._seen.get(id(listeners))
        if hit is None:
            body = canonical(listeners_doc(listeners))
            hit = (listeners, digest(body), body)
            self._seen[id(listeners)] = hit
        return hit[1], hit[2]

    def clear(self) -> None:
        self._seen.clear()


# --- targets, findings, host details -----------------------------------------------


def target_doc(t: Target) -> dict[str, Any]:
    """What the reports show of a target; never its variables (they may hold secrets)."""
    return {
        **t.identity(),
        "become": t.become,
        "source": [t.source.file, t.source.line] if t.source else None,
    }


def target_from(doc: dict[str, Any]) -> Target:
    return Target(
        name=doc["name"],
        address=doc["address"],
        port=doc["port"],
        user=doc["user"],
        platform=doc["platform"],
        groups=tuple(doc["groups"]),
        transport=doc["transport"],
        become=doc["become"],
        source=Origin(*doc["source"]) if doc["source"] else None,
    )


def finding_doc(f: Finding) -> dict[str, Any]:
    w = f.waiver
    return {
        "rule_id": f.rule_id,
        "severity": int(f.severity),
        "message": f.message,
        "listener": listener_doc(f.listener) if f.listener else None,
        "waiver": [w.id, w.justification, w.expires, w.owner] if w else None,
        "kind": f.kind,
    }


def finding_from(host: str, doc: dict[str, Any]) -> Finding:
    w = doc["waiver"]
    return Finding(
        rule_id=doc["rule_id"],
        severity=Severity(doc["severity"]),
        host=host,
        message=doc["message"],
        listener=listener_from(doc["listener"]) if doc["listener"] else None,
        waiver=WaiverRef(id=w[0], justification=w[1], expires=w[2], owner=w[3]) if w else None,
        kind=doc["kind"],
    )


def detail_doc(scan: HostScan, findings: list[Finding]) -> dict[str, Any]:
    """Everything of a host scan but its listeners and timings (those vary or
    are stored apart), so an unchanged host reuses yesterday's document."""
    return {
        "message": scan.message,
        "platform": scan.platform,
        "collector": scan.collector,
        "unparsed": [[u.line, u.text] for u in scan.unparsed],
        "evidence": [
            [e.command, e.exit_status, e.stdout, e.stderr, e.truncated] for e in scan.evidence
        ],
        "findings": [finding_doc(f) for f in findings],
    }


def timings_doc(scan: HostScan) -> list[Any]:
    return [scan.started, scan.finished, [e.duration for e in scan.evidence]]


def host_scan_from(
    status: str,
    target: dict[str, Any],
    listeners: list[dict[str, Any]],
    detail: dict[str, Any],
    timings: list[Any],
) -> tuple[HostScan, list[Finding]]:
    started, finished, durations = timings
    tgt = target_from(target)
    evidence = tuple(
        CommandEvidence(
            command=cmd, exit_status=rc, stdout=out, stderr=err, duration=d, truncated=cut
        )
        for (cmd, rc, out, err, cut), d in zip(detail["evidence"], durations, strict=True)
    )
    scan = HostScan(
        target=tgt,
        status=Status(status),
        message=detail["message"],
        platform=detail["platform"],
        collector=detail["collector"],
        listeners=listeners_from(listeners),
        unparsed=tuple(UnparsedLine(line=n, text=t) for n, t in detail["unparsed"]),
        evidence=evidence,
        started=started,
        finished=finished,
    )
    return scan, [finding_from(tgt.name, d) for d in detail["findings"]]


def trust_doc(run: ScanRun) -> dict[str, Any]:
    return {
        "inventory_known_hosts_trusted": run.inventory_known_hosts_trusted,
        "accept_new_file": run.accept_new_file,
        "keys_learned": [[k.host, k.name, k.key_type, k.fingerprint] for k in run.keys_learned],
    }


def trust_fields(doc: dict[str, Any] | None) -> dict[str, Any]:
    """ScanRun keyword arguments from :func:`trust_doc` (none for older runs)."""
    if not doc:
        return {}
    return {
        "inventory_known_hosts_trusted": doc["inventory_known_hosts_trusted"],
        "accept_new_file": doc["accept_new_file"],
        "keys_learned": tuple(LearnedKey(*k) for k in doc["keys_learned"]),
    }


def change_from(host: str, row: Any) -> Change:
    return Change(
        host=host,
        kind=row.kind,
        proto=row.proto,
        address=row.address,
        port=row.port,
        before=listener_from(row.before) if row.before else None,
        after=listener_from(row.after) if row.after else None,
        since_run=row.since_run,
    )
