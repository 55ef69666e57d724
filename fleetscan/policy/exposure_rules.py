"""Exposure rules: judge the probe matrix (listener × zone) against policy. Pure.

Findings (all of kind ``listener``, waivable and gating like any rule):

* **reachable from a forbidden zone** (the firewall leaks): a listener in a
  rule's scope is ``open`` from a zone in ``not_reachable_from``, or from a
  zone that is not in ``reachable_from`` (when the rule has one);
* **not reachable from a required zone** (the service is blocked): the
  probe from a zone in ``reachable_from`` came back ``refused``,
  ``filtered`` or ``unreachable`` (not for ``required: false``);
* **bound to every interface but filtered everywhere probed** (built-in,
  ``info``): a wildcard listener that every zone that probed it failed to
  reach — the firewall compensates for a wide bind; worth knowing, not wrong.

A ``not_probed`` result proves nothing either way and never makes a finding;
a zone that was not probed in this run is simply absent from the matrix.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from fleetscan.addresses import is_wildcard
from fleetscan.model import Finding, HostScan, Listener, ProbeResult, Severity
from fleetscan.policy.engine import _describe, _finding, _in_scope, _port_in, _proto_ok
from fleetscan.policy.schema import EXPOSURE_WIDE_BIND_FILTERED, ExposureRule, Policy

NOT_REACHED = ("refused", "filtered", "unreachable")


def exposure_findings(
    policy: Policy, scans: Sequence[HostScan], results: Iterable[ProbeResult]
) -> list[Finding]:
    """Findings of the probe matrix before waivers are applied."""
    targets = {s.host: s.target for s in scans}
    by_listener: dict[tuple[str, Listener], list[ProbeResult]] = defaultdict(list)
    for r in results:
        by_listener[(r.host, r.listener)].append(r)
    out: list[Finding] = []
    for (host, lst), rows in by_listener.items():
        target = targets.get(host)
        if target is None:
            continue
        for rule in policy.exposure:
            if _in_scope(rule.hosts, rule.groups, target) and _applies(rule, lst):
                out.extend(_judge(rule, host, lst, rows))
        out.extend(_wide_bind_filtered(host, lst, rows))
    return out


def _applies(rule: ExposureRule, lst: Listener) -> bool:
    if not _proto_ok(rule.proto, lst):
        return False
    if rule.ports and not _port_in(lst.port, rule.ports):
        return False
    return not _port_in(lst.port, rule.except_ports)


def _judge(
    rule: ExposureRule, host: str, lst: Listener, rows: Sequence[ProbeResult]
) -> list[Finding]:
    out = []
    for r in rows:
        if r.result == "open":
            forbidden = r.zone in rule.not_reachable_from or (
                bool(rule.reachable_from) and r.zone not in rule.reachable_from
            )
            if forbidden:
                allowed = (
                    f"policy allows only {', '.join(rule.reachable_from)}"
                    if rule.reachable_from
                    else f"policy forbids {', '.join(rule.not_reachable_from)}"
                )
                msg = f"{_describe(lst)} is reachable from zone {r.zone} ({_via(r)}); {allowed}"
                out.append(_finding(rule.id, rule.severity, host, lst, msg, rule.reason))
        elif r.result in NOT_REACHED and rule.required and r.zone in rule.reachable_from:
            msg = (
                f"{_describe(lst)} is not reachable from zone {r.zone} ({r.result}, "
                f"{_via(r)}); policy requires it to be reachable from "
                f"{', '.join(rule.reachable_from)}"
            )
            out.append(_finding(rule.id, rule.severity, host, lst, msg, rule.reason))
    return out


def _wide_bind_filtered(host: str, lst: Listener, rows: Sequence[ProbeResult]) -> list[Finding]:
    probed = [r for r in rows if r.result != "not_probed"]
    if not is_wildcard(lst.address) or not probed:
        return []
    if any(r.result not in NOT_REACHED for r in probed):
        return []
    zones = ", ".join(sorted({r.zone for r in probed}))
    msg = (
        f"{_describe(lst)} is bound to every interface but was not reachable from any "
        f"zone probed ({zones}): the firewall compensates for the wide bind"
    )
    return [_finding(EXPOSURE_WIDE_BIND_FILTERED, Severity.INFO, host, lst, msg, None)]


def _via(r: ProbeResult) -> str:
    where = f"from probe host {r.probe_host}" if r.probe_host else "from the scanner"
    return f"{where} to {r.address}"
