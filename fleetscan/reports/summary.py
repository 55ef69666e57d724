"""What every report agrees on: host verdicts, counts, ordering, exit code.

Pure functions of a :class:`~fleetscan.model.ScanRun`. The HTML, CSV, JSON,
JUnit and terminal writers all take their numbers from here, so a host that
is "non-compliant" in the HTML is non-compliant in the JUnit XML and in the
exit code too.

A host's verdict (one of :data:`VERDICTS`), in this order:

1. ``non-compliant`` — it has an active (not waived) finding at or above the
   run's ``fail_on`` that is about a listener or a waiver (not the
   host-level "not fully scanned" finding);
2. ``not-scanned`` — otherwise, its status is anything but ``ok`` (fail
   closed: a partial or failed scan is never compliant);
3. ``compliant`` — a complete scan with no such finding.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from fleetscan.model import Finding, HostScan, ScanRun, Severity, Status

VERDICTS = ("compliant", "non-compliant", "not-scanned")
VERDICT_LABELS = {
    "compliant": "compliant",
    "non-compliant": "non-compliant",
    "not-scanned": "not fully scanned",
}

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_CONFIG = 2  # produced by the CLI for bad inventory/policy, never here
EXIT_INCOMPLETE = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


def is_gating(finding: Finding, fail_on: Severity) -> bool:
    """True when ``finding`` fails the gate: active, at/above ``fail_on``, and
    not the host-level "not fully scanned" kind (that one maps to exit 3)."""
    return not finding.waived and finding.kind != "host" and finding.severity >= fail_on


def gating_findings(run: ScanRun) -> tuple[Finding, ...]:
    return tuple(f for f in run.findings if is_gating(f, run.fail_on))


def host_verdict(scan: HostScan, findings: Iterable[Finding], fail_on: Severity) -> str:
    """The verdict of one host given the findings about it (see module doc)."""
    if any(f.host == scan.host and is_gating(f, fail_on) for f in findings):
        return "non-compliant"
    if not scan.status.complete:
        return "not-scanned"
    return "compliant"


def findings_by_host(run: ScanRun) -> Mapping[str, Sequence[Finding]]:
    """Host name → its findings, worst first (shared by every report of the
    run: computed once per run, read-only)."""
    return _per_run(run)[0]


def verdicts(run: ScanRun) -> Mapping[str, str]:
    """Host name → verdict, for every scanned host, in scan order."""
    return _per_run(run)[1]


_last: tuple[ScanRun, Mapping[str, Sequence[Finding]], Mapping[str, str]] | None = None


def forget() -> None:
    """Drop the per-run cache (and with it the reference to the last run)."""
    global _last
    _last = None


def _per_run(run: ScanRun) -> tuple[Mapping[str, Sequence[Finding]], Mapping[str, str]]:
    # the run is frozen: what is derived from it stays true while it is the same object
    global _last
    last = _last
    if last is not None and last[0] is run:
        return last[1], last[2]
    by_host: dict[str, list[Finding]] = {s.host: [] for s in run.scans}
    for f in sort_findings(run.findings):
        by_host.setdefault(f.host, []).append(f)
    verdict = {s.host: host_verdict(s, by_host.get(s.host, ()), run.fail_on) for s in run.scans}
    frozen = MappingProxyType({host: tuple(fs) for host, fs in by_host.items()})
    _last = (run, frozen, MappingProxyType(verdict))
    return frozen, _last[2]


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Worst first; then host, rule and port so the order is stable."""

    def key(f: Finding) -> tuple[int, str, str, int, str]:
        port = f.listener.port if f.listener else -1
        return (-int(f.severity), f.host, f.rule_id, port, f.message)

    return sorted(findings, key=key)


@dataclass(frozen=True, slots=True)
class Counts:
    """The numbers on the summary cards and in the terminal summary."""

    hosts: int
    by_status: dict[Status, int]
    by_verdict: dict[str, int]
    active_by_severity: dict[Severity, int]
    waived: int
    gating: int


@dataclass(frozen=True)
class RuleRollup:
    """All findings of one rule: the report's "findings by rule" row."""

    rule_id: str
    kind: str
    severity: Severity  # the worst
    active: int
    gating: int
    waived: int
    hosts: int
    example: Finding  # the worst one


def rollup(run: ScanRun) -> list[RuleRollup]:
    """One row per rule (and kind) with counts, worst severity first."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in sort_findings(run.findings):
        groups.setdefault((f.rule_id, f.kind), []).append(f)
    rows = [
        RuleRollup(
            rule_id=rule,
            kind=kind,
            severity=fs[0].severity,
            active=sum(1 for f in fs if not f.waived),
            gating=sum(1 for f in fs if is_gating(f, run.fail_on)),
            waived=sum(1 for f in fs if f.waived),
            hosts=len({f.host for f in fs}),
            example=fs[0],
        )
        for (rule, kind), fs in groups.items()
    ]
    return sorted(rows, key=lambda r: (-int(r.severity), -r.gating, -r.active, r.rule_id))


def counts(run: ScanRun) -> Counts:
    status_counter = Counter(s.status for s in run.scans)
    verdict_counter = Counter(verdicts(run).values())
    active = Counter(f.severity for f in run.findings if not f.waived)
    return Counts(
        hosts=len(run.scans),
        by_status={st: status_counter[st] for st in Status if status_counter[st]},
        by_verdict={v: verdict_counter[v] for v in VERDICTS},
        active_by_severity={sev: active[sev] for sev in sorted(Severity, reverse=True)},
        waived=sum(1 for f in run.findings if f.waived),
        gating=len(gating_findings(run)),
    )


def exit_code(run: ScanRun) -> int:
    """The CI contract, decided from the run alone.

    * ``130`` — the run was interrupted (Ctrl-C/SIGTERM): nothing else can be
      trusted to be complete;
    * ``1`` — an active (not waived) finding at or above ``run.fail_on``
      exists. This wins over 3: a CI gate must fail on a backdoor even when
      another host was down;
    * ``3`` — no such finding, but some host was not fully scanned (any status
      but ``ok``). Host-level "not fully scanned" findings are excluded from
      the exit-1 check so that 1 and 3 stay distinguishable;
    * ``0`` — every host scanned completely and compliant at ``fail_on``.

    ``2`` (usage or configuration error) belongs to the CLI and is never
    returned here.
    """
    if run.interrupted:
        return EXIT_INTERRUPTED
    if gating_findings(run):
        return EXIT_FINDINGS
    if run.incomplete_hosts():
        return EXIT_INCOMPLETE
    return EXIT_OK


EXIT_MEANINGS = {
    EXIT_OK: "all hosts scanned and compliant",
    EXIT_FINDINGS: "findings at or above the fail-on severity",
    EXIT_INCOMPLETE: "some hosts could not be fully scanned",
    EXIT_INTERRUPTED: "the run was interrupted",
}


def duration_seconds(run: ScanRun) -> float:
    return max(0.0, (run.finished - run.started).total_seconds())


def format_duration(seconds: float) -> str:
    """``42.3s``, ``3m 07s``, ``2h 05m`` — short and unambiguous."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def hostkey_trust_notes(run: ScanRun, *, include_off: bool = True) -> list[str]:
    """What widened host-key trust in this run, one sentence each; every
    report prints them (empty: only the operator's known_hosts decided)."""
    notes = []
    if not run.hostkey_checking and include_off:
        notes.append("host-key checking was OFF (--no-host-key-check)")
    if run.inventory_known_hosts_trusted:
        notes.append(
            "known_hosts files named in the inventory were trusted (--trust-inventory-known-hosts)"
        )
    if run.accept_new_file is not None:
        learned = "; ".join(
            f"{k.host} ({k.name}) {k.key_type} {k.fingerprint}" for k in run.keys_learned
        )
        notes.append(
            f"unknown host keys were accepted and recorded in {run.accept_new_file} "
            f"(--accept-new); learned this run: {learned or 'none'}"
        )
    return notes
