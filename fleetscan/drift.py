"""Drift: how each host's listeners differ from its previous complete scan. Pure, no I/O.

What identifies a listener across scans is what matters to a defender: protocol,
bind address (with its IPv6 zone) and port. What owns it is compared by process
*names* and *users* only — never pid or inode, so a restarted daemon (new pid,
same name, user, address and port) is not a change. Wazuh's port-change rule
diffs raw ``netstat`` text and alerts on every restart (wazuh-packages#2594);
this module is the answer to that.

Change kinds (:data:`fleetscan.model.CHANGE_KINDS`):

* ``new``            a listener that was not there;
* ``gone``           a listener that is no longer there;
* ``owner_changed``  same proto/address/port, different process names or users;
* ``widened``        the same proto/port now binds a more exposed address
  (``127.0.0.1:5432`` → ``0.0.0.0:5432``): one change with ``before`` and
  ``after``, not a ``gone`` plus a ``new``;
* ``narrowed``       the reverse (``0.0.0.0`` → ``127.0.0.1``).

Which hosts are compared at all (:func:`compare`): only a host scanned
completely (status ``ok``) now. A host not fully scanned has *unknown*
changes — never "all gone". A host without an earlier complete scan is at its
baseline: this scan becomes the reference, and it has no changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from fleetscan.addresses import bind_class
from fleetscan.model import Change, ComparedTo, HostScan, Listener

#: how far a bind reaches; a move up this scale is a widening
EXPOSURE = {"loopback": 0, "link-local": 1, "private": 2, "public": 3, "wildcard": 4}

Identity = tuple[str, str, str, int]  # proto, address, zone, port
Owners = frozenset[tuple[str | None, str | None]]  # (name, user); either may be unknown


@dataclass(frozen=True, slots=True)
class Reference:
    """The scan a host is compared with: the run it came from and its listeners."""

    run: str
    listeners: tuple[Listener, ...]


def identity(x: Listener) -> Identity:
    """What makes two listeners "the same socket" across scans."""
    return (x.proto, x.address, x.zone or "", x.port)


def owners(x: Listener) -> Owners:
    """Process names and users holding the socket; pids deliberately left out."""
    return frozenset((p.name, p.user) for p in x.processes)


def exposure(address: str) -> int:
    return EXPOSURE[bind_class(address)]


def host_changes(
    host: str, before: Sequence[Listener], after: Sequence[Listener], since_run: str
) -> list[Change]:
    """The changes of one host between two complete scans, sorted by port."""
    if before is after:  # the store found the very same listener set
        return []
    old = _index(before)
    now = _index(after)
    out: list[Change] = []
    gone = [old[k][0] for k in old if k not in now]
    new = [now[k][0] for k in now if k not in old]
    for key in old.keys() & now.keys():
        if _owners_of(old[key]) != _owners_of(now[key]):
            out.append(_change(host, "owner_changed", old[key][0], now[key][0], since_run))
    for was, became in _pair_rebinds(gone, new):
        kind = "widened" if exposure(became.address) > exposure(was.address) else "narrowed"
        out.append(_change(host, kind, was, became, since_run))
        gone.remove(was)
        new.remove(became)
    out += [_change(host, "gone", x, None, since_run) for x in gone]
    out += [_change(host, "new", None, x, since_run) for x in new]
    return sorted(out, key=change_sort_key)


def compare(
    scans: Iterable[HostScan], references: Mapping[str, Reference], mode: str = "previous"
) -> tuple[tuple[Change, ...], ComparedTo]:
    """Changes of every host of a run against ``references`` (host name → the
    scan to compare with; a host missing there is at its baseline)."""
    changes: list[Change] = []
    baseline: list[str] = []
    unknown: list[str] = []
    used: dict[str, None] = {}
    for scan in scans:
        if not scan.status.complete:
            unknown.append(scan.host)
            continue
        ref = references.get(scan.host)
        if ref is None:
            baseline.append(scan.host)
            continue
        used[ref.run] = None
        changes += host_changes(scan.host, ref.listeners, scan.listeners, ref.run)
    runs = tuple(sorted(used))  # run ids start with their UTC start time
    compared = ComparedTo(
        mode=mode,
        run=runs[-1] if runs else None,
        runs=runs,
        baseline_hosts=tuple(baseline),
        unknown_hosts=tuple(unknown),
    )
    return tuple(sorted(changes, key=change_sort_key)), compared


def change_sort_key(c: Change) -> tuple[str, int, str, str, str]:
    return (c.host, c.port, c.proto, c.address, c.kind)


def _index(listeners: Iterable[Listener]) -> dict[Identity, list[Listener]]:
    out: dict[Identity, list[Listener]] = {}
    for x in listeners:
        out.setdefault(identity(x), []).append(x)
    return out


def _owners_of(group: Sequence[Listener]) -> Owners:
    # SO_REUSEPORT and pre-forked daemons list one address:port several times
    return frozenset().union(*(owners(x) for x in group))


def _pair_rebinds(
    gone: Sequence[Listener], new: Sequence[Listener]
) -> list[tuple[Listener, Listener]]:
    """Pairs (was, became) of the same proto/port whose bind moved to a more or
    less exposed address; a move within one exposure class stays gone + new."""
    pairs: list[tuple[Listener, Listener]] = []
    taken: set[int] = set()
    for became in sorted(new, key=lambda x: (x.port, x.proto, x.address)):
        candidates = [
            (i, was)
            for i, was in enumerate(gone)
            if i not in taken
            and (was.proto, was.port) == (became.proto, became.port)
            and exposure(was.address) != exposure(became.address)
        ]
        if not candidates:
            continue
        # prefer the same address family (127.0.0.1 → 0.0.0.0 over ::1 → 0.0.0.0)
        i, was = min(candidates, key=lambda c: (c[1].family != became.family, c[0]))
        taken.add(i)
        pairs.append((was, became))
    return pairs


def _change(
    host: str, kind: str, before: Listener | None, after: Listener | None, since_run: str
) -> Change:
    x = after or before
    assert x is not None
    return Change(
        host=host,
        kind=kind,
        proto=x.proto,
        address=x.address,
        port=x.port,
        before=before,
        after=after,
        since_run=since_run,
    )
