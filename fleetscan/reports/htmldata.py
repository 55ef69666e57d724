"""The one compact JSON block embedded in ``report.html``.

At 10,000 hosts the report cannot be 300,000 table rows of HTML (a 2,000-host
run made a 42 MB page that took 97 s to render). The page renders its first
screen as HTML (summary, findings per rule, the first page of hosts and
findings) and everything else — further pages, host details on demand —
from this block, with ``textContent`` only (``report.js``).

Compact because it is big: every string is stored once in a string table
(``s``) and referred to by index; rows are arrays, and trailing empty fields
are left out. Schema (``v`` = :data:`VERSION`)::

    s  strings; index 0 is ""
    k  listener kinds: [proto, family, state, bind class] (string indexes)
    h  hosts: [name, address, port, platform, status, verdict, collector,
               listeners count, active findings, waived findings, message,
               [groups], transport, duration (0.1 s), listeners, unparsed,
               evidence]
         listener: [kind, address, port, line, [name, pid, user, ...],
                    raw, zone, [finding indexes]]
         unparsed: [line, text];  evidence: [command, exit, duration, truncated, stderr]
    f  findings, worst first: [severity, host index, rule, kind, listener index
               or -1, message, gating, waiver id, expires, owner, justification]

Strings are made visible (:func:`~fleetscan.reports.sanitize.visible_controls`)
and bounded as the HTML does; the raw evidence line of a listener without
a finding is kept only while the run has at most :data:`RAW_ALL_LIMIT`
listeners (report.json and listeners.csv always have it). :func:`script_safe`
escapes ``<``, ``>``, ``&`` and U+2028/U+2029, so ``</script>`` in a process
name cannot end the block.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fleetscan.addresses import bind_class
from fleetscan.model import Finding, HostScan, Listener, ScanRun
from fleetscan.reports import summary
from fleetscan.reports.sanitize import clip, visible_controls

VERSION = 1
MAX_TEXT = 1_000
MAX_RAW = 500
MAX_BLOCK = 4_000
MAX_UNPARSED = 200
RAW_ALL_LIMIT = 20_000

_SCRIPT_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


#: listener rows turned into JSON text at a time: the rows of a host of
#: 100,000 listeners are never all Python lists at once (23 MB at the peak)
ROWS_PER_DUMP = 1024
_DUMP = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
#: where a host's listener rows go into its JSON text (no data string can be
#: it: every string of a row is an index into the string table)
_ROWS_SLOT = "\x00rows\x00"
_ROWS_SLOT_JSON = _DUMP([_ROWS_SLOT])


def script_safe(text: str) -> str:
    """JSON text made safe as the content of a ``<script>`` element."""
    # replaced one character at a time, and only when present: a run's data
    # block is megabytes, and most runs hold none of these characters
    for char, escaped in _SCRIPT_ESCAPES.items():
        if char in text:
            text = text.replace(char, escaped)
    return text


class _Strings:
    def __init__(self) -> None:
        self.table: list[str] = [""]
        self.index: dict[str, int] = {"": 0}
        # most strings repeat (protocols, states, names, users): sanitise each once
        self.seen: dict[tuple[str, int, str], int] = {}

    def __call__(self, text: str | None, limit: int = MAX_TEXT, keep: str = "") -> int:
        if not text:
            return 0
        key = (text, limit, keep)
        found = self.seen.get(key)
        if found is not None:
            return found
        shown = visible_controls(clip(text, limit), keep=keep)
        found = self.index.get(shown)
        if found is None:
            found = self.index[shown] = len(self.table)
            self.table.append(shown)
        self.seen[key] = found
        return found


def _trim(row: list[Any]) -> list[Any]:
    while row and row[-1] in (0, [], None):
        row.pop()
    return row


class _Encoder:
    def __init__(self, run: ScanRun) -> None:
        self.run = run
        self.s = _Strings()
        self.kinds: dict[tuple[str, int, str, str], int] = {}
        self.bind: dict[str, str] = {}
        self.all_raw = sum(len(x.listeners) for x in run.scans) <= RAW_ALL_LIMIT
        self.findings = summary.sort_findings(run.findings)
        self.host_index = {scan.host: i for i, scan in enumerate(run.scans)}
        # finding index per (host, listener): listener rows point at their findings
        self.by_listener: dict[tuple[str, Listener], list[int]] = {}
        self.listener_pos: dict[tuple[str, Listener], int] = {}
        self.with_findings: set[str] = set()

    def kind(self, x: Listener) -> int:
        bind = self.bind.get(x.address)
        if bind is None:
            bind = self.bind[x.address] = bind_class(x.address)
        key = (x.proto, x.family, x.state, bind)
        found = self.kinds.get(key)
        if found is None:
            found = self.kinds[key] = len(self.kinds)
        return found

    def listener(self, host: str, x: Listener) -> list[Any]:
        s = self.s
        procs: list[Any] = []
        for p in x.processes:
            procs.extend((s(p.name), p.pid, s(p.user)))
        # hashing a Listener hashes all its fields: only for hosts with findings
        own = self.by_listener.get((host, x), []) if host in self.with_findings else []
        raw = s(x.raw, MAX_RAW) if (self.all_raw or own) else 0
        line = x.line if x.line is not None else -1
        return _trim([self.kind(x), s(x.address), x.port, line, procs, raw, s(x.zone or ""), own])

    def host(self, scan: HostScan, verdict: str, own: Sequence[Finding]) -> str:
        """The host's row as JSON text; its listener rows are written a batch
        at a time into the slot left for them."""
        rows = ",".join(
            _DUMP([self.listener(scan.host, x) for x in scan.listeners[i : i + ROWS_PER_DUMP]])[
                1:-1
            ]
            for i in range(0, len(scan.listeners), ROWS_PER_DUMP)
        )
        s, t = self.s, scan.target
        listeners = [_ROWS_SLOT] if rows else []
        unparsed = [[u.line, s(u.text, MAX_RAW)] for u in scan.unparsed[:MAX_UNPARSED]]
        evidence = [
            _trim(
                [
                    s(e.command, MAX_RAW),
                    e.exit_status,
                    round(e.duration, 3),
                    int(e.truncated),
                    s(e.stderr, MAX_BLOCK, keep="\n\t"),
                ]
            )
            for e in scan.evidence
        ]
        text = _DUMP(
            _trim(
                [
                    s(scan.host),
                    s(t.address),
                    t.port or 0,
                    s(scan.platform or ""),
                    s(scan.status.value),
                    s(verdict),
                    s(scan.collector or ""),
                    len(scan.listeners),
                    sum(1 for f in own if not f.waived),
                    sum(1 for f in own if f.waived),
                    s(scan.message, 2_000),
                    [s(g) for g in t.groups],
                    s(t.transport),
                    round(scan.duration * 10),
                    listeners,
                    unparsed,
                    evidence,
                    len(scan.unparsed),
                ]
            )
        )
        return text.replace(_ROWS_SLOT_JSON, f"[{rows}]", 1) if rows else text

    def finding(self, f: Finding) -> list[Any]:
        s, w = self.s, f.waiver
        pos = self.listener_pos.get((f.host, f.listener), -1) if f.listener is not None else -1
        return _trim(
            [
                int(f.severity),
                self.host_index.get(f.host, -1),
                s(f.rule_id),
                s(f.kind),
                pos,
                s(f.message),
                int(summary.is_gating(f, self.run.fail_on)),
                s(w.id) if w else 0,
                s(w.expires or "") if w else 0,
                s(w.owner or "") if w else 0,
                s(w.justification, 500) if w else 0,
            ]
        )

    def text(self) -> str:
        wanted: dict[str, set[Listener]] = {}
        for f in self.findings:
            if f.listener is not None:
                wanted.setdefault(f.host, set()).add(f.listener)
        self.with_findings = set(wanted)
        for scan in self.run.scans:
            own = wanted.get(scan.host)
            if own:  # positions of the listeners with findings only (not 100,000 keys)
                for i, x in enumerate(scan.listeners):
                    if x in own:
                        self.listener_pos.setdefault((scan.host, x), i)
        for n, f in enumerate(self.findings):
            if f.listener is not None:
                self.by_listener.setdefault((f.host, f.listener), []).append(n)
        verdicts = summary.verdicts(self.run)
        by_host = summary.findings_by_host(self.run)
        # hosts first, as JSON text one at a time: their strings fill the table,
        # which is written last (the block is an object: its key order is free)
        hosts = ",".join(
            self.host(scan, verdicts[scan.host], by_host.get(scan.host, []))
            for scan in self.run.scans
        )
        findings = _DUMP([self.finding(f) for f in self.findings])
        s = self.s
        kinds = _DUMP([[s(p), fam, s(st), s(b)] for (p, fam, st, b) in self.kinds])
        return script_safe(
            f'{{"v":{VERSION},"h":[{hosts}],"f":{findings},"k":{kinds},"s":{_DUMP(s.table)}}}'
        )


def page_data(run: ScanRun) -> str:
    """The page data of ``run`` as the text of its ``<script>`` element (see
    the module docstring for the schema; :func:`script_safe`'s escaping)."""
    return _Encoder(run).text()


def encode(run: ScanRun) -> dict[str, Any]:
    """The page data of ``run``, decoded: what report.js reads."""
    decoded: dict[str, Any] = json.loads(page_data(run))
    return decoded
