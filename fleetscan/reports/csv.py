"""``hosts.csv``, ``listeners.csv``, ``findings.csv``: the run as spreadsheets.

Written with the standard library's :mod:`csv` writer (UTF-8, comma, minimal
quoting, ``\n`` line ends, header row; the bytes pandas' ``to_csv`` wrote
before, without importing pandas and numpy on every run). The column order
is stable and part of the contract:

``hosts.csv`` — one row per host:
    host, address, ssh_port, groups, platform, status, verdict, collector,
    listeners, active_findings, waived_findings, duration_seconds, hostkey_checking,
    message

``listeners.csv`` — one row per listening socket:
    host, proto, family, address, port, zone, bind_class, state,
    process_names, pids, users, line, raw

``exposure.csv`` — only when the run probed (``--probe``); one row per
listener and zone:
    host, proto, address, port, zone, probed_address, probe_host, result,
    reason, rtt_ms

``findings.csv`` — one row per finding, worst first:
    severity, host, rule_id, kind, gating, proto, address, port,
    process_names, message, evidence, waived, waiver_id,
    waiver_justification, waiver_expires, waiver_owner

``changes.csv`` — one row per change since the compared run (history):
    host, kind, proto, address, port, before_address, before_processes,
    before_users, after_address, after_processes, after_users, since_run

Lists inside a cell (groups, process names, pids, users) are joined with
``;``. Numbers stay numbers (``port``, ``family``, ``line``, counts; empty
when unknown; floats as Python's shortest ``repr``). Every text cell goes through
:func:`fleetscan.reports.sanitize.csv_cell`: a value that would start a
formula gets a leading ``'`` (OWASP CSV-injection guidance), so does every
part of a cell after a ``,`` ``;`` TAB or newline (spreadsheets that split on
``;`` or TAB, and the ``;`` join above, would start a new cell there), and
control characters become visible escapes.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from fleetscan.addresses import bind_class
from fleetscan.model import ScanRun
from fleetscan.reports import summary
from fleetscan.reports.files import DEFAULT_MODE, atomic_open
from fleetscan.reports.sanitize import clip, csv_cell

HOST_COLUMNS = (
    "host",
    "address",
    "ssh_port",
    "groups",
    "platform",
    "status",
    "verdict",
    "collector",
    "listeners",
    "active_findings",
    "waived_findings",
    "duration_seconds",
    "hostkey_checking",
    "message",
)
LISTENER_COLUMNS = (
    "host",
    "proto",
    "family",
    "address",
    "port",
    "zone",
    "bind_class",
    "state",
    "process_names",
    "pids",
    "users",
    "line",
    "raw",
)
FINDING_COLUMNS = (
    "severity",
    "host",
    "rule_id",
    "kind",
    "gating",
    "proto",
    "address",
    "port",
    "process_names",
    "message",
    "evidence",
    "waived",
    "waiver_id",
    "waiver_justification",
    "waiver_expires",
    "waiver_owner",
)
CHANGE_COLUMNS = (
    "host",
    "kind",
    "proto",
    "address",
    "port",
    "before_address",
    "before_processes",
    "before_users",
    "after_address",
    "after_processes",
    "after_users",
    "since_run",
)
EXPOSURE_COLUMNS = (
    "host",
    "proto",
    "address",
    "port",
    "zone",
    "probed_address",
    "probe_host",
    "result",
    "reason",
    "rtt_ms",
)
MAX_CELL = 4_000  # spreadsheets choke on huge cells (Excel's limit is 32767)

Row = dict[str, Any]


def _cell(value: Any) -> Any:
    """What the writer gets for one cell: text neutralised and clipped, unknown
    (None) empty, numbers as they are (ints stay ``22``, floats ``repr``)."""
    if isinstance(value, str):
        return csv_cell(value if len(value) <= MAX_CELL else clip(value, MAX_CELL))
    if value is None or (isinstance(value, float) and value != value):
        return ""  # unknown, or a NaN: an empty cell (as pandas' na_rep wrote it)
    return value


def write_rows(out: IO[str], rows: Iterable[Row | list[Any]], columns: tuple[str, ...]) -> None:
    """A header row, then one line per row: a dict (missing keys are empty
    cells), or a list of cells already made by :func:`_cell`, in column order."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writerow = writer.writerow
    for row in rows:
        writerow(row if isinstance(row, list) else [_cell(row.get(c)) for c in columns])


def _join(items: Sequence[object]) -> str:
    return ";".join("" if i is None else str(i) for i in items)


def hosts_rows(run: ScanRun) -> Iterator[Row]:
    verdicts = summary.verdicts(run)
    by_host = summary.findings_by_host(run)
    for s in run.scans:
        own = by_host.get(s.host, [])
        yield (
            {
                "host": s.host,
                "address": s.target.address,
                "ssh_port": s.target.port,
                "groups": _join(s.target.groups),
                "platform": s.platform or "",
                "status": s.status.value,
                "verdict": verdicts[s.host],
                "collector": s.collector or "",
                "listeners": len(s.listeners),
                "active_findings": sum(1 for f in own if not f.waived),
                "waived_findings": sum(1 for f in own if f.waived),
                "duration_seconds": round(s.duration, 3),
                # every report says when host keys were not checked (--no-host-key-check)
                "hostkey_checking": _hostkey_checking(run),
                "message": s.message,
            }
        )


def listeners_rows(run: ScanRun) -> Iterator[list[Any]]:
    """The one big file (a row per socket) as finished cells in
    :data:`LISTENER_COLUMNS` order: no dict per row, numbers as they are, the
    host's cell made once per host."""
    cell = _cell
    for s in run.scans:
        host = cell(s.host)
        for x in s.listeners:
            processes = x.processes
            yield [
                host,
                cell(x.proto),
                x.family,
                cell(x.address),
                x.port,
                cell(x.zone or ""),
                cell(bind_class(x.address)),
                cell(x.state),
                cell(_join(x.process_names)),
                cell(_join([p.pid for p in processes])),
                cell(_join([p.user for p in processes])),
                cell(x.line),
                cell(x.raw),
            ]


def findings_rows(run: ScanRun) -> Iterator[Row]:
    for f in summary.sort_findings(run.findings):
        x, w = f.listener, f.waiver
        yield (
            {
                "severity": str(f.severity),
                "host": f.host,
                "rule_id": f.rule_id,
                "kind": f.kind,
                "gating": "yes" if summary.is_gating(f, run.fail_on) else "no",
                "proto": x.proto if x else "",
                "address": x.address if x else "",
                "port": x.port if x else None,
                "process_names": _join(x.process_names) if x else "",
                "message": f.message,
                "evidence": f.evidence,
                "waived": "yes" if w else "no",
                "waiver_id": w.id if w else "",
                "waiver_justification": w.justification if w else "",
                "waiver_expires": (w.expires or "") if w else "",
                "waiver_owner": (w.owner or "") if w else "",
            }
        )


def changes_rows(run: ScanRun) -> Iterator[Row]:
    for c in run.changes:
        row: dict[str, Any] = {
            "host": c.host,
            "kind": c.kind,
            "proto": c.proto,
            "address": c.address,
            "port": c.port,
            "since_run": c.since_run,
        }
        for side, x in (("before", c.before), ("after", c.after)):
            row[f"{side}_address"] = x.address if x else ""
            row[f"{side}_processes"] = _join(x.process_names) if x else ""
            row[f"{side}_users"] = (
                _join(list(dict.fromkeys(p.user for p in x.processes))) if x else ""
            )
        yield row


def exposure_rows(run: ScanRun) -> Iterator[Row]:
    from fleetscan.reports.json import probe_to_dict

    return (
        {k: ("" if v is None and k == "probe_host" else v) for k, v in probe_to_dict(r).items()}
        for r in run.exposure
    )


#: the rows of one file, made one at a time as the writer asks for them (a
#: 300,000-listener run never holds its listener rows all at once)
Builder = Callable[[ScanRun], Iterator[Row] | Iterator[list[Any]]]

FILES: dict[str, tuple[Builder, tuple[str, ...]]] = {
    "hosts.csv": (hosts_rows, HOST_COLUMNS),
    "listeners.csv": (listeners_rows, LISTENER_COLUMNS),
    "findings.csv": (findings_rows, FINDING_COLUMNS),
    "changes.csv": (changes_rows, CHANGE_COLUMNS),
}


def write_csv(run: ScanRun, outdir: Path, mode: int = DEFAULT_MODE) -> list[Path]:
    files = dict(FILES)
    if run.probe_zones:
        files["exposure.csv"] = (exposure_rows, EXPOSURE_COLUMNS)
    paths = []
    for name, (build, columns) in files.items():
        path = outdir / name
        with atomic_open(path, mode=mode) as out:
            write_rows(out, build(run), columns)
        paths.append(path)
    return paths


def _hostkey_checking(run: ScanRun) -> str:
    if not run.hostkey_checking:
        return "NO (insecure)"
    extra = summary.hostkey_trust_notes(run, include_off=False)
    return "yes" + "".join(f"; {n}" for n in extra)
