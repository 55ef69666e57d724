"""The one-screen summary printed at the end of ``fleetscan scan``.

Hosts by status, the compliance verdicts, findings by severity, the worst
findings and the hosts that were not fully scanned — each list capped so the
summary fits a screen whatever the fleet size; the reports hold the rest.

Every string that came from a host or an inventory goes through
:func:`~fleetscan.reports.sanitize.visible_controls` and into a
:class:`rich.text.Text` (never a markup string), so an ``ESC ]`` sequence is
shown as ``\\x1b]`` instead of retitling the terminal, and ``[bold]`` in a
process name is printed as it is.

The rest of the CLI prints through the same two helpers: :func:`console`
(Rich markup, ``:emoji:`` codes and highlighting off by default, so a plain
string is printed as it is, and no 80-column squeeze when piped) and
:func:`data_table` (every cell an inert :class:`~rich.text.Text`).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence

from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from fleetscan.model import Finding, ScanRun, Severity, Status
from fleetscan.reports import summary
from fleetscan.reports.sanitize import clip, visible_controls

MAX_FINDINGS = 10
MAX_INCOMPLETE = 10
MAX_CELL = 120
#: cell bound of :func:`data_table` (``parse``, ``inventory show``)
MAX_TABLE_CELL = 2_000
#: width of a console whose output is not a terminal: tables keep their
#: natural width in a pipe or a file instead of being squeezed to 80 columns
PIPE_WIDTH = 100_000

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
STATUS_STYLE = {Status.OK: "green", Status.PARTIAL: "yellow"}  # any other: red
VERDICT_STYLE = {"compliant": "green", "non-compliant": "bold red", "not-scanned": "yellow"}


def safe(value: object, limit: int = MAX_CELL) -> Text:
    """Untrusted text as an inert :class:`Text`: controls visible, no markup."""
    return Text(visible_controls(clip(str(value), limit)))


def console(*, stderr: bool = False) -> Console:
    """A console for fleetscan's output. Markup, emoji codes and highlighting
    are off, so a string printed on it is shown exactly (after the caller
    made its controls visible); styles come only from :class:`Text` objects
    built here. Piped or redirected, the width is unbounded (``COLUMNS``
    still wins when set), so table columns are not cut or wrapped to 80."""
    piped = not Console(stderr=stderr).is_terminal
    width = PIPE_WIDTH if piped and not os.environ.get("COLUMNS") else None
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False, width=width)


def data_table(
    columns: Sequence[str], rows: Iterable[Sequence[object]], *, title: str | None = None
) -> Table:
    """A table of untrusted values: each cell is shown as inert text (controls
    visible, markup printed literally), bounded to :data:`MAX_TABLE_CELL`."""
    table = Table(title=safe(title) if title is not None else None)
    for col in columns:
        table.add_column(safe(col), overflow="fold")
    for row in rows:
        table.add_row(*(safe("" if v is None else v, MAX_TABLE_CELL) for v in row))
    return table


def _listener_text(f: Finding) -> Text:
    if f.listener is None:
        return Text("—", style="dim")
    x = f.listener
    host = f"[{x.address}]" if x.family == 6 else x.address
    text = safe(f"{x.proto} {host}:{x.port}")
    if x.process_names:
        text.append(" ")
        text.append_text(safe(",".join(x.process_names), 40))
    return text


def _header(run: ScanRun) -> Text:
    text = Text()
    text.append("fleetscan ", style="bold")
    text.append_text(safe(run.tool_version or ""))
    text.append("  run ")
    text.append_text(safe(run.id))
    text.append(f"  {summary.format_duration(summary.duration_seconds(run))}")
    text.append(f"  fail-on {run.fail_on}")
    return text


def _warnings(run: ScanRun) -> list[Text]:
    out = []
    if run.interrupted:
        out.append(
            Text(
                "INTERRUPTED: the run was stopped before every host finished.",
                style="bold white on red",
            )
        )
    if not run.hostkey_checking:
        out.append(
            Text(
                "WARNING: host-key checking was OFF — results could come from an impostor host.",
                style="bold black on yellow",
            )
        )
    for note in summary.hostkey_trust_notes(run, include_off=False):
        out.append(Text(f"NOTE: {note}.", style="bold black on yellow"))
    return out


def _counts_table(run: ScanRun) -> Table:
    c = summary.counts(run)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("hosts by status")
    table.add_column("", justify="right")
    table.add_column("verdict")
    table.add_column("", justify="right")
    table.add_column("active findings")
    table.add_column("", justify="right")
    status_rows = [
        (Text(st.value, style=STATUS_STYLE.get(st, "red")), Text(str(n)))
        for st, n in c.by_status.items()
    ]
    verdict_rows = [
        (Text(summary.VERDICT_LABELS[v], style=VERDICT_STYLE[v]), Text(str(n)))
        for v, n in c.by_verdict.items()
    ]
    severity_rows = [
        (Text(str(sev), style=SEVERITY_STYLE[sev]), Text(str(n)))
        for sev, n in c.active_by_severity.items()
    ]
    severity_rows.append((Text("waived", style="dim"), Text(str(c.waived))))
    blank = (Text(""), Text(""))
    for i in range(max(len(status_rows), len(verdict_rows), len(severity_rows))):
        cells: list[Text] = []
        for column in (status_rows, verdict_rows, severity_rows):
            cells.extend(column[i] if i < len(column) else blank)
        table.add_row(*cells)
    return table


def _heading(title: str) -> Text:
    return Text(title, style="bold underline")


def _findings_table(run: ScanRun) -> Group | None:
    # Host-level "not fully scanned" findings are listed with their hosts below.
    active = [f for f in summary.sort_findings(run.findings) if not f.waived and f.kind != "host"]
    if not active:
        return None
    table = Table(box=box.SIMPLE_HEAD, expand=False)
    table.add_column("severity", no_wrap=True)
    table.add_column("host", overflow="fold")
    table.add_column("rule", overflow="fold")
    table.add_column("listener", overflow="fold")
    table.add_column("message", overflow="fold", ratio=1)
    for f in active[:MAX_FINDINGS]:
        table.add_row(
            Text(str(f.severity), style=SEVERITY_STYLE[f.severity]),
            safe(f.host, 60),
            safe(f.rule_id, 60),
            _listener_text(f),
            safe(f.message),
        )
    shown = min(len(active), MAX_FINDINGS)
    return Group(_heading(f"worst findings ({shown} of {len(active)})"), table)


def _incomplete_table(run: ScanRun) -> Group | None:
    incomplete = run.incomplete_hosts()
    if not incomplete:
        return None
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("host", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("message", overflow="fold", ratio=1)
    for s in incomplete[:MAX_INCOMPLETE]:
        table.add_row(
            safe(s.host, 60),
            Text(s.status.value, style=STATUS_STYLE.get(s.status, "red")),
            safe(s.message or "—"),
        )
    shown = min(len(incomplete), MAX_INCOMPLETE)
    return Group(_heading(f"hosts not fully scanned ({shown} of {len(incomplete)})"), table)


def _exposure_line(run: ScanRun) -> Text | None:
    """``exposure: zones scanner, office; open 12, refused 3, …`` when the run probed."""
    if not run.probe_zones:
        return None
    tally = Counter(r.result for r in run.exposure)
    results = ", ".join(
        f"{name.replace('_', ' ')} {tally[name]}"
        for name in ("open", "refused", "filtered", "unreachable", "not_probed")
    )
    zones = ", ".join(safe(z, 60).plain for z in run.probe_zones)
    return Text(f"exposure: zones {zones}; {results}")


def _verdict_line(run: ScanRun) -> Text:
    code = summary.exit_code(run)
    style = "bold green" if code == 0 else "bold red"
    return Text(f"exit {code}: {summary.EXIT_MEANINGS.get(code, '')}", style=style)


#: findings listed in the plain (non-terminal) summary; the reports hold all
MAX_PLAIN_FINDINGS = 50


def _plain_lines(run: ScanRun) -> list[str]:
    """The summary as plain lines, one fact per line, for logs and pipes."""
    c = summary.counts(run)
    text = [_header(run).plain, *(w.plain for w in _warnings(run))]
    statuses = ", ".join(f"{st.value} {n}" for st, n in c.by_status.items())
    text.append(f"hosts: {len(run.scans)} ({statuses})")
    verdicts = ", ".join(f"{summary.VERDICT_LABELS[v]} {n}" for v, n in c.by_verdict.items())
    text.append(f"verdicts: {verdicts}")
    severities = ", ".join(f"{sev} {n}" for sev, n in c.active_by_severity.items())
    text.append(f"active findings: {severities}; waived {c.waived}")
    exposure = _exposure_line(run)
    if exposure is not None:
        text.append(exposure.plain)
    active = [f for f in summary.sort_findings(run.findings) if not f.waived and f.kind != "host"]
    for f in active[:MAX_PLAIN_FINDINGS]:
        where = _listener_text(f).plain if f.listener else "-"
        text.append(
            f"finding {f.severity} {safe(f.host, 60).plain} {safe(f.rule_id, 60).plain} "
            f"{where}: {safe(f.message, 300).plain}"
        )
    if len(active) > MAX_PLAIN_FINDINGS:
        text.append(f"... {len(active) - MAX_PLAIN_FINDINGS} more findings in the reports")
    for s in run.incomplete_hosts():
        text.append(
            f"not fully scanned {safe(s.host, 60).plain} {s.status.value}: "
            f"{safe(s.message or '-', 300).plain}"
        )
    text.append(_verdict_line(run).plain)
    return text


def render_summary(run: ScanRun, console: Console) -> None:
    """Print the summary of ``run`` on ``console``: a one-screen panel on a
    terminal, plain lines (one fact each, never wrapped) in a log or a pipe."""
    if not console.is_terminal:
        for line in _plain_lines(run):
            console.print(line, markup=False, highlight=False, soft_wrap=True, emoji=False)
        return
    parts: list[Text | Table | Group] = [_header(run), *_warnings(run), _counts_table(run)]
    exposure = _exposure_line(run)
    if exposure is not None:
        parts.append(exposure)
    for section in (_findings_table(run), _incomplete_table(run)):
        if section is not None:
            parts.append(section)
    parts.append(_verdict_line(run))
    console.print(
        Panel(
            Group(*parts),
            title="fleetscan summary",
            title_align="left",
            border_style="blue",
            expand=False,
        )
    )
