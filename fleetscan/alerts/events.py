"""Which alerts a run raises: a pure function of the run and what was alerted before.

The rules (issue "continuous monitoring"; see docs/architecture.md):

* an *active* finding at or above the alert threshold that was not already
  alerted raises a ``finding`` alert; findings of drift rules (``kind ==
  "drift"``) always do, whatever their severity, because the operator wrote
  the rule to be told of that change;
* a host that is not fully scanned raises a ``host`` alert once per status
  (``hostkey_mismatch`` is a security event, a timeout an outage);
* an alerted finding that is gone raises one ``resolved`` notice — but only
  when its host was fully scanned this time: a host we could not read has
  *unknown* findings, never "everything resolved";
* the first run of a fleet (no earlier run in the history) raises one
  ``summary`` instead of a storm, and so do hosts scanned completely for the
  first time (new to the fleet): their findings are folded into that one
  summary and then remembered as alerted.

Deduplication is by :func:`alert_key` (host, rule, proto, address, port), so
a restarted daemon (new pid) or a reworded message is not a new alert.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fleetscan.model import Finding, HostScan, ScanRun, Severity

SCAN_INCOMPLETE = "scan-incomplete"
SUMMARY_ITEMS = 50


class AlertKind(enum.StrEnum):
    FINDING = "finding"  # a new active finding (policy, drift, exposure …)
    HOST = "host"  # a host that became not fully scanned
    RESOLVED = "resolved"  # an alerted finding or host problem is gone
    SUMMARY = "summary"  # first run of a fleet: one message, not a storm


@dataclass(frozen=True, slots=True)
class Alert:
    """One thing to tell people. Text fields hold untrusted host data as
    received; every destination escapes for its own format."""

    kind: AlertKind
    key: str
    severity: Severity
    host: str | None
    message: str
    rule_id: str | None = None
    listener: Mapping[str, Any] | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    #: for a summary: the alerts it stands for (at most SUMMARY_ITEMS of them)
    items: tuple[Alert, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "key": self.key,
            "severity": str(self.severity),
            "host": self.host,
            "rule": self.rule_id,
            "listener": dict(self.listener) if self.listener is not None else None,
            "message": self.message,
            **({"counts": dict(self.counts)} if self.counts else {}),
            **(
                {"items": [i.to_dict() for i in self.items]}
                if self.kind is AlertKind.SUMMARY
                else {}
            ),
        }


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """An alert that was raised and not yet resolved (kept in the store)."""

    key: str
    host: str | None
    severity: Severity
    rule_id: str | None
    message: str
    listener: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AlertPlan:
    """What to send for one run, and the open set to remember afterwards."""

    alerts: tuple[Alert, ...]
    open_after: tuple[OpenAlert, ...]


def alert_key(finding: Finding) -> str:
    """The identity of a finding across runs (never pid, message or time)."""
    if finding.rule_id == SCAN_INCOMPLETE:
        # one episode per status: timeout → hostkey_mismatch is news
        status = finding.message.split("(status ", 1)[-1].split(")", 1)[0]
        return f"host\x1f{finding.host}\x1f{status}"
    lst = finding.listener
    where = f"{lst.proto}\x1f{lst.address}\x1f{lst.port}" if lst is not None else ""
    return f"finding\x1f{finding.host}\x1f{finding.rule_id}\x1f{where}"


def _listener_dict(finding: Finding) -> dict[str, Any] | None:
    return finding.listener.to_dict() if finding.listener is not None else None


def _wanted(finding: Finding, threshold: Severity) -> bool:
    if finding.waived:
        return False
    if finding.rule_id == SCAN_INCOMPLETE:
        return True
    return finding.kind == "drift" or finding.severity >= threshold


def plan_alerts(
    run: ScanRun,
    open_before: Sequence[OpenAlert],
    *,
    threshold: Severity = Severity.HIGH,
    fold: Collection[str] | None = (),
) -> AlertPlan:
    """Decide the alerts of ``run`` given the alerts still open from earlier runs.

    New alerts of the hosts in ``fold`` (hosts scanned completely for the first
    time) are folded into one summary; ``fold=None`` folds every host (the
    history holds no earlier run: the first run of a fleet)."""
    scans: Mapping[str, HostScan] = {s.host: s for s in run.scans}
    previous = {a.key: a for a in open_before}
    current: dict[str, OpenAlert] = {}
    new: list[Alert] = []
    for finding in run.findings:
        if not _wanted(finding, threshold):
            continue
        key = alert_key(finding)
        if key in current:
            continue
        current[key] = OpenAlert(
            key=key,
            host=finding.host,
            severity=finding.severity,
            rule_id=finding.rule_id,
            message=finding.message,
            listener=_listener_dict(finding),
        )
        if key not in previous:
            kind = AlertKind.HOST if finding.rule_id == SCAN_INCOMPLETE else AlertKind.FINDING
            new.append(
                Alert(
                    kind=kind,
                    key=key,
                    severity=finding.severity,
                    host=finding.host,
                    message=finding.message,
                    rule_id=finding.rule_id,
                    listener=_listener_dict(finding),
                )
            )

    resolved: list[Alert] = []
    kept: list[OpenAlert] = []
    for key, old in previous.items():
        if key in current:
            continue
        scan = scans.get(old.host or "")
        host_problem = key.startswith("host\x1f")
        # a finding on a host we could not read this time is unknown, not gone;
        # a host that left the run (--limit, inventory edit) is not judged either
        if scan is None or (not host_problem and not scan.status.complete):
            kept.append(old)
            continue
        resolved.append(
            Alert(
                kind=AlertKind.RESOLVED,
                key=key,
                severity=old.severity,
                host=old.host,
                message=f"resolved: {old.message}",
                rule_id=old.rule_id,
                listener=old.listener,
            )
        )

    open_after = (*current.values(), *kept)
    folded = [a for a in new if fold is None or a.host in fold]
    single = [a for a in new if not (fold is None or a.host in fold)]
    summary = _summary(run, folded, whole_fleet=fold is None) if (folded or fold is None) else ()
    return AlertPlan(alerts=(*summary, *single, *resolved), open_after=open_after)


def _summary(run: ScanRun, folded: Sequence[Alert], *, whole_fleet: bool) -> tuple[Alert, ...]:
    counts: dict[str, int] = {}
    hosts = {a.host for a in folded}
    for scan in run.scans:
        if whole_fleet or scan.host in hosts:
            name = f"hosts_{scan.status.value}"
            counts[name] = counts.get(name, 0) + 1
    for alert in folded:
        name = f"{alert.kind.value}_{alert.severity}"
        counts[name] = counts.get(name, 0) + 1
    worst = max((a.severity for a in folded), default=Severity.INFO)
    what = (
        f"first scan of this fleet: {len(run.scans)} hosts"
        if whole_fleet
        else (f"first complete scan of {len(hosts)} host(s)")
    )
    message = (
        f"{what}; {sum(1 for a in folded if a.kind is AlertKind.FINDING)} findings and "
        f"{sum(1 for a in folded if a.kind is AlertKind.HOST)} hosts not fully scanned "
        "recorded as the starting point; later runs alert on what changes"
    )
    return (
        Alert(
            kind=AlertKind.SUMMARY,
            key=f"summary\x1f{run.id}",
            severity=worst,
            host=None,
            message=message,
            counts=counts,
            items=tuple(folded[:SUMMARY_ITEMS]),
        ),
    )
