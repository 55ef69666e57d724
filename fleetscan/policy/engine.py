"""The policy engine: scans + policy + a clock → findings. Pure, no I/O.

Semantics (pinned by ``tests/policy/test_engine.py``):

* **Fail closed.** Every host whose status is not ``ok`` gets a host-level
  ``scan-incomplete`` finding. ``partial`` hosts still have their listeners
  evaluated. Only a waiver for rule ``scan-incomplete`` that names the host
  literally can waive it.
* **Undocumented.** A host covered by at least one ``expected`` entry must have
  every listener documented by one of the entries covering it; a host no entry
  covers gets no undocumented findings (the map is opt-in per host).
  When a listener's owner is unknown, an entry's ``process``/``user`` cannot be
  checked and is not held against it: the gap is reported by
  ``scan-incomplete`` (partial host) and by owner rules ("owner unknown").
* **Owners.** Every process on a socket must be allowed; a socket with no
  process information (or a process whose name is unknown) is an "owner
  unknown" finding at the rule's ``unknown_severity``, never a silent pass.
* **Socket activation** (:mod:`fleetscan.policy.activation`). pid 1
  (systemd, launchd) beside a service on a socket is its holder, not its
  owner: owner rules and the map judge the service. pid 1 alone means the
  service has not started: an owner rule that does not allow the activator
  reports an unverifiable owner at ``unknown_severity``.
* **Waivers.** A waiver valid through its ``expires`` date (inclusive, compared
  with ``now.date()``) marks matching findings as waived; they stay in the
  result. The first valid waiver in policy order wins. An expired waiver no
  longer waives and is itself reported (``waiver-expired``) on every scanned
  host in its scope. A waiver that matches nothing is not an error.
* **Order.** Findings are sorted by host, severity (highest first), rule id,
  port, then the rest of the listener, so equal inputs give equal output.

Process names, users and addresses come from scanned hosts and are hostile
input: they are matched literally (they are never patterns) and are escaped
and bounded before they go into a message.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from fnmatch import fnmatchcase
from typing import Any, TypeVar, cast

from fleetscan.addresses import bind_class, is_wildcard
from fleetscan.model import (
    Change,
    Finding,
    HostScan,
    Listener,
    ProbeResult,
    Process,
    Severity,
    Target,
    WaiverRef,
)
from fleetscan.policy.activation import holders

# _describe is also used by the drift and exposure rules (explicit re-export)
from fleetscan.policy.messages import _clean, _owner_text, _ports_text, _procs_text
from fleetscan.policy.messages import _describe as _describe
from fleetscan.policy.schema import (
    SCAN_INCOMPLETE,
    UNDOCUMENTED,
    WAIVER_EXPIRED,
    BindRule,
    ExpectedEntry,
    ExpectedListener,
    ForbiddenRule,
    OwnerRule,
    Policy,
    PortRange,
    Waiver,
)

#: Linux keeps only the first 15 characters of a process name (TASK_COMM_LEN - 1):
#: ss shows "systemd-resolve" for systemd-resolved
COMM_LEN = 15


def evaluate(
    policy: Policy,
    scans: Iterable[HostScan],
    *,
    now: datetime,
    changes: Iterable[Change] = (),
    exposure: Iterable[ProbeResult] = (),
) -> tuple[Finding, ...]:
    """Every finding for ``scans`` under ``policy``, waivers applied, sorted.

    ``now`` only decides which waivers have expired (by its date). ``changes``
    (from :mod:`fleetscan.drift`) are checked against the policy's drift rules;
    ``exposure`` is the probe matrix, judged by the ``exposure`` rules.
    """
    # imported here: these rule modules reuse this module's matching helpers
    from fleetscan.policy.drift_rules import drift_findings
    from fleetscan.policy.exposure_rules import exposure_findings

    scans = tuple(scans)
    targets = {s.host: s.target for s in scans}
    raw: list[Finding] = []
    for scan in scans:
        raw.extend(host_findings(policy, scan))
    raw.extend(drift_findings(policy, changes, targets))
    raw.extend(exposure_findings(policy, scans, exposure))
    findings, revived = _apply_waivers(policy, raw, targets, now.date())
    findings.extend(_expired_waiver_findings(policy, scans, revived, now.date()))
    return tuple(sorted(findings, key=_sort_key))


def host_findings(policy: Policy, scan: HostScan) -> list[Finding]:
    """The findings of one host before waivers are applied."""
    out: list[Finding] = []
    if not scan.status.complete:
        detail = f": {_clean(scan.message, 300)}" if scan.message else ""
        out.append(
            Finding(
                rule_id=SCAN_INCOMPLETE,
                severity=policy.scan_incomplete.severity,
                host=scan.host,
                message=f"host not fully scanned (status {scan.status.value}){detail}",
                kind="host",
            )
        )
    if not scan.status.scanned:
        return out
    target = scan.target
    rules = policy.forbidden
    index = _derived(rules, _RuleIndex)
    forbidden = {i for i, r in enumerate(rules) if _in_scope(r.hosts, r.groups, target)}
    bind = [r for r in policy.bind if _in_scope(r.hosts, r.groups, target)]
    owner = [r for r in policy.owner if _in_scope(r.hosts, r.groups, target)]
    expected = [e for e in policy.expected if _in_scope(e.hosts, e.groups, target)]
    for listener in scan.listeners:
        # only the forbidden rules whose ports can match this listener's, in rule order
        for i in index.candidates(listener.port):
            if i in forbidden:
                out.extend(_check_forbidden(rules[i], scan.host, listener))
        for b_rule in bind:
            out.extend(_check_bind(b_rule, scan.host, listener))
        for o_rule in owner:
            out.extend(_check_owner(o_rule, scan.host, listener))
        if expected and policy.undocumented.enabled:
            out.extend(_check_documented(policy, expected, scan.host, listener))
    return out


# --- rule checks ----------------------------------------------------------------


def _check_forbidden(rule: ForbiddenRule, host: str, lst: Listener) -> list[Finding]:
    if not _proto_ok(rule.proto, lst) or (rule.ports and not _port_in(lst.port, rule.ports)):
        return []
    if rule.process:
        hits = [p for p in lst.processes if _name_in(p.name, rule.process)]
        if not hits:
            return []
        what = f"runs forbidden process {_clean(hits[0].name)}"
        if rule.ports:
            what = f"listens on forbidden port {lst.port} and {what}"
    else:
        what = f"listens on forbidden port {lst.port}"
    return [_finding(rule.id, rule.severity, host, lst, f"{_describe(lst)} {what}", rule.reason)]


def _check_bind(rule: BindRule, host: str, lst: Listener) -> list[Finding]:
    if not _proto_ok(rule.proto, lst):
        return []
    if rule.ports and not _port_in(lst.port, rule.ports):
        return []
    if _port_in(lst.port, rule.except_ports):
        return []
    cls = bind_class(lst.address)
    if rule.allow:
        if any(_bind_matches(lst.address, spec) for spec in rule.allow):
            return []
        why = f"rule allows {', '.join(rule.allow)}"
    else:
        if not any(_bind_matches(lst.address, spec) for spec in rule.deny):
            return []
        why = f"rule denies {', '.join(rule.deny)}"
        if rule.except_ports:
            why += f" except ports {_ports_text(rule.except_ports)}"
    msg = f"{_describe(lst)} binds {cls}; {why}"
    return [_finding(rule.id, rule.severity, host, lst, msg, rule.reason)]


def _check_owner(rule: OwnerRule, host: str, lst: Listener) -> list[Finding]:
    if not _proto_ok(rule.proto, lst) or not _port_in(lst.port, rule.ports):
        return []
    wanted = _owner_text(rule)
    if not lst.processes:
        msg = f"{_describe(lst)} owner unknown (no process information); rule requires {wanted}"
        return [_finding(rule.id, rule.unknown_severity, host, lst, msg, None)]
    held = holders(lst.processes)
    if held.activator_only and not all(
        p.name is not None and _process_allowed(p, rule.process, rule.user) for p in held.service
    ):
        msg = (
            f"{_describe(lst)} is held only by the init process (socket activation): the "
            f"service it starts is not running, so its program is unknown; rule requires {wanted}"
        )
        return [_finding(rule.id, rule.unknown_severity, host, lst, msg, None)]
    known = [p for p in held.service if p.name is not None or not rule.process]
    bad = [p for p in known if not _process_allowed(p, rule.process, rule.user)]
    if bad:
        msg = f"{_describe(lst)} is held by {_procs_text(bad, users=True)}; rule allows {wanted}"
        return [_finding(rule.id, rule.severity, host, lst, msg, rule.reason)]
    if len(known) < len(held.service):
        msg = f"{_describe(lst)} owner name unknown; rule requires {wanted}"
        return [_finding(rule.id, rule.unknown_severity, host, lst, msg, None)]
    if rule.user and any(p.user is None for p in held.service):
        msg = f"{_describe(lst)} owner user unknown; rule requires {wanted}"
        return [_finding(rule.id, rule.unknown_severity, host, lst, msg, None)]
    return []


def _check_documented(
    policy: Policy, entries: Sequence[ExpectedEntry], host: str, lst: Listener
) -> list[Finding]:
    for entry in entries:
        if any(_expected_matches(want, lst) for want in entry.listeners):
            return []
    names = ", ".join(e.id for e in entries)
    msg = f"{_describe(lst)} is not in the infrastructure map for this host (entries: {names})"
    return [_finding(UNDOCUMENTED, policy.undocumented.severity, host, lst, msg, None)]


def _expected_matches(want: ExpectedListener, lst: Listener) -> bool:
    if not _proto_ok(want.proto, lst) or lst.port not in want.port:
        return False
    if not any(_bind_matches(lst.address, spec) for spec in want.bind):
        return False
    # unknown owners are not held against the map (see module docstring), nor
    # is the init process that holds a socket for a service (socket activation)
    held = holders(lst.processes)
    known = [] if held.activator_only else [p for p in held.service if p.name]
    if want.process and not all(_name_in(p.name, want.process) for p in known):
        return False
    return not want.user or all(p.user is None or _glob_in(p.user, want.user) for p in known)


# --- waivers ----------------------------------------------------------------------


def _apply_waivers(
    policy: Policy, raw: list[Finding], targets: dict[str, Target], today: date
) -> tuple[list[Finding], Counter[tuple[str, str]]]:
    """Mark waived findings; count, per (expired waiver, host), the findings it
    would have covered that are now active again."""
    out: list[Finding] = []
    revived: Counter[tuple[str, str]] = Counter()
    for finding in raw:
        target = targets[finding.host]
        matching = [w for w in policy.waivers if _waiver_covers(w, finding, target)]
        valid = next((w for w in matching if not _expired(w, today)), None)
        if valid is not None:
            ref = WaiverRef(
                id=valid.id,
                justification=valid.justification,
                expires=valid.expires.isoformat(),
                owner=valid.owner,
            )
            out.append(_with_waiver(finding, ref))
            continue
        for w in matching:
            revived[(w.id, finding.host)] += 1
        out.append(finding)
    return out, revived


def _expired_waiver_findings(
    policy: Policy, scans: Sequence[HostScan], revived: Counter[tuple[str, str]], today: date
) -> list[Finding]:
    out: list[Finding] = []
    for w in policy.waivers:
        if not _expired(w, today):
            continue
        for scan in scans:
            if not _in_scope(w.hosts, w.groups, scan.target):
                continue
            n = revived[(w.id, scan.host)]
            effect = (
                f"{n} finding{'s' if n != 1 else ''} it covered on this host "
                f"{'are' if n != 1 else 'is'} active again"
                if n
                else "it covers nothing on this host now; renew or remove it"
            )
            msg = (
                f"waiver {w.id} for rule {w.rule} (owner {_clean(w.owner)}) expired on "
                f"{w.expires.isoformat()}; {effect}"
            )
            out.append(
                Finding(
                    rule_id=WAIVER_EXPIRED,
                    severity=Severity.LOW,
                    host=scan.host,
                    message=msg,
                    kind="waiver",
                )
            )
    return out


def _expired(w: Waiver, today: date) -> bool:
    return w.expires < today  # valid through the expiry date inclusive


def _waiver_covers(w: Waiver, finding: Finding, target: Target) -> bool:
    if w.rule != finding.rule_id or finding.kind == "waiver":
        return False
    if w.rule == SCAN_INCOMPLETE:
        # fail closed: only a waiver naming the host itself excuses an incomplete scan
        if finding.host not in w.hosts:
            return False
    elif not _in_scope(w.hosts, w.groups, target):
        return False
    lst = finding.listener
    if w.ports and (lst is None or not _port_in(lst.port, w.ports)):
        return False
    return w.proto == "any" or (lst is not None and lst.proto == w.proto)


def _with_waiver(f: Finding, ref: WaiverRef) -> Finding:
    return Finding(
        rule_id=f.rule_id,
        severity=f.severity,
        host=f.host,
        message=f.message,
        listener=f.listener,
        waiver=ref,
        kind=f.kind,
    )


# --- matching helpers ---------------------------------------------------------------


def _in_scope(hosts: Sequence[str], groups: Sequence[str], target: Target) -> bool:
    """No hosts and no groups: every host. Otherwise any host glob or group glob."""
    if not hosts and not groups:
        return True
    if any(fnmatchcase(target.name, h) for h in hosts):
        return True
    return any(fnmatchcase(g, pat) for g in target.groups for pat in groups)


def _proto_ok(spec: str, lst: Listener) -> bool:
    return spec == "any" or spec == lst.proto


def _port_in(port: int, ranges: Sequence[PortRange]) -> bool:
    # called for every listener x rule: a set lookup once the rule's ports are known
    if not isinstance(port, int):
        return False
    ports = _derived(ranges, _ports_of)
    return port in ports if ports is not None else any(r.lo <= port <= r.hi for r in ranges)


_PORT_SET_SPAN = 4096


def _ports_of(ranges: Sequence[PortRange]) -> frozenset[int] | None:
    """The ports of ``ranges`` as a set; None for a span too wide to list."""
    if sum(r.hi - r.lo + 1 for r in ranges) > _PORT_SET_SPAN:
        return None
    return frozenset(p for r in ranges for p in range(r.lo, r.hi + 1))


class _RuleIndex:
    """Which forbidden rules a port can match: a fleet's listeners meet a
    handful of forbidden ports, so most listeners need no rule check at all."""

    __slots__ = ("_always", "_by_port")

    def __init__(self, rules: Sequence[ForbiddenRule]) -> None:
        by_port: dict[int, list[int]] = {}
        always: list[int] = []
        for i, rule in enumerate(rules):
            ports = _derived(rule.ports, _ports_of) if rule.ports else None
            if ports is None:  # every port, or a span too wide to list
                always.append(i)
                continue
            for port in ports:
                by_port.setdefault(port, []).append(i)
        self._always = tuple(always)
        self._by_port = {port: tuple(ids) for port, ids in by_port.items()}

    def candidates(self, port: int | None) -> tuple[int, ...]:
        hits = self._by_port.get(port, ()) if isinstance(port, int) else ()
        if not self._always:
            return hits
        if not hits:
            return self._always
        return tuple(sorted((*hits, *self._always)))


_T = TypeVar("_T")
_K = TypeVar("_K")
#: (id(source), derive) -> (source, what was derived from it). A policy's
#: tuples are immutable, so what is derived from one stays true; the source is
#: kept so that its id is never reused while cached.
_DERIVED: dict[tuple[int, Callable[[Any], Any]], tuple[Any, Any]] = {}


def _derived(source: _K, derive: Callable[[_K], _T]) -> _T:
    """``derive(source)``, computed once per source object."""
    key = (id(source), derive)
    hit = _DERIVED.get(key)
    if hit is None or hit[0] is not source:
        if len(_DERIVED) >= 4096:  # policies reloaded by a long watch: start over
            _DERIVED.clear()
        hit = _DERIVED[key] = (source, derive(source))
    return cast(_T, hit[1])


def _bind_matches(address: str, spec: str) -> bool:
    """``spec`` is ``any``, a bind class, or a CIDR. A wildcard socket listens on
    every interface, so it matches only ``wildcard``/``any``, never a CIDR."""
    if spec == "any":
        return True
    if "/" not in spec:
        return bind_class(address) == spec
    if is_wildcard(address):
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    net = ipaddress.ip_network(spec)
    return ip.version == net.version and ip in net


def _name_in(name: str | None, patterns: Sequence[str]) -> bool:
    """An unknown name (None) matches no pattern."""
    return name is not None and any(_name_matches(name, pat) for pat in patterns)


def _name_matches(name: str, pattern: str) -> bool:
    if fnmatchcase(name, pattern):
        return True
    # a literal name longer than Linux's comm limit also matches its truncation
    return (
        len(name) == COMM_LEN
        and len(pattern) > COMM_LEN
        and not any(c in pattern for c in "*?[")
        and pattern.startswith(name)
    )


def _glob_in(value: str, patterns: Sequence[str]) -> bool:
    return any(fnmatchcase(value, pat) for pat in patterns)


def _process_allowed(p: Process, names: Sequence[str], users: Sequence[str]) -> bool:
    if names and not _name_in(p.name, names):
        return False
    # an unknown user is reported separately, as "owner user unknown"
    return not users or p.user is None or _glob_in(p.user, users)


# --- messages ------------------------------------------------------------------------


def _finding(
    rule_id: str, severity: Severity | None, host: str, lst: Listener, msg: str, reason: str | None
) -> Finding:
    if reason:
        msg = f"{msg} ({reason.strip()})"
    return Finding(
        rule_id=rule_id,
        severity=severity if severity is not None else Severity.MEDIUM,
        host=host,
        message=msg,
        listener=lst,
    )


def _sort_key(f: Finding) -> tuple[str, int, str, int, str, str, str]:
    lst = f.listener
    return (
        f.host,
        -int(f.severity),
        f.rule_id,
        lst.port if lst else -1,
        lst.proto if lst else "",
        lst.address if lst else "",
        f.message,
    )
