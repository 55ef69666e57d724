"""Drift rules: changes since a host's previous scan → findings. Pure, no I/O.

A change matches a rule when its kind is in ``when``, its host is in the
rule's scope and its listener (the new one, or the one that went) is on one of
``ports`` with ``proto``. The finding carries that listener, so waivers
(by rule, hosts, groups, ports, proto) apply exactly as to every other rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fleetscan.model import Change, Finding, Severity, Target
from fleetscan.policy.engine import _describe, _in_scope, _port_in, _proto_ok
from fleetscan.policy.schema import DriftRule, Policy

#: what each kind means in a message
KIND_TEXT = {
    "new": "new listener",
    "gone": "listener gone",
    "owner_changed": "owner changed",
    "widened": "bind widened",
    "narrowed": "bind narrowed",
}


def drift_findings(
    policy: Policy, changes: Iterable[Change], targets: Mapping[str, Target]
) -> list[Finding]:
    """One finding per (change, matching drift rule), before waivers."""
    out: list[Finding] = []
    for change in changes:
        target = targets.get(change.host)
        if target is None:
            continue
        lst = change.listener
        for rule in policy.drift:
            if change.kind not in rule.when or not _in_scope(rule.hosts, rule.groups, target):
                continue
            if not _proto_ok(rule.proto, lst) or (
                rule.ports and not _port_in(lst.port, rule.ports)
            ):
                continue
            out.append(_finding(rule, change, _what(change)))
    return out


def _what(change: Change) -> str:
    text = f"{KIND_TEXT.get(change.kind, change.kind)} since run {change.since_run}: "
    if change.before is not None and change.after is not None:
        return text + f"{_describe(change.before)} → {_describe(change.after)}"
    return text + _describe(change.listener)


def _finding(rule: DriftRule, change: Change, message: str) -> Finding:
    if rule.reason:
        message = f"{message} ({rule.reason.strip()})"
    return Finding(
        rule_id=rule.id,
        severity=rule.severity if rule.severity is not None else Severity.MEDIUM,
        host=change.host,
        message=message,
        listener=change.listener,
        kind="drift",
    )
