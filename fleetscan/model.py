"""The data that flows between fleetscan's stages.

Every stage (inventory → runner → collector → parser → policy → reports) hands
the next one frozen, typed values from this module and nothing else. Parsers
and the policy engine are pure functions of these values; only transports and
reporters do I/O.

Principles encoded here (see docs/architecture.md):

* a host always ends in exactly one :class:`Status`; only ``ok`` counts as a
  complete scan (fail closed);
* every :class:`Listener` keeps the raw line it came from (evidence);
* lines a parser could not read are kept as :class:`UnparsedLine`, never
  dropped.

The module is over 450 lines on purpose: it is the one vocabulary every
stage shares (host, listener, finding, change, probe result, alert delivery,
run), and one file keeps the stages from each growing a private copy.
"""

from __future__ import annotations

import enum
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from fleetscan.masking import mask_value

#: process and user names up to this length are interned (a Linux comm is at
#: most 15 characters, a user name 32): a hostile long name is never kept for good
_INTERN_MAX = 64

Proto = Literal["tcp", "udp"]
Family = Literal[4, 6]


class Status(enum.StrEnum):
    """The one outcome of scanning a host."""

    OK = "ok"
    PARTIAL = "partial"  # scanned, but something is missing (e.g. process owners)
    UNREACHABLE = "unreachable"
    AUTH_FAILED = "auth_failed"
    HOSTKEY_MISMATCH = "hostkey_mismatch"  # a recorded key changed (or was revoked)
    HOSTKEY_UNKNOWN = "hostkey_unknown"  # no key recorded for the host yet
    TIMEOUT = "timeout"
    NO_COLLECTOR = "no_collector"  # no usable socket-listing command on the host
    PARSE_ERROR = "parse_error"
    INTERNAL_ERROR = "internal_error"
    INTERRUPTED = "interrupted"  # the run was stopped (Ctrl-C/SIGTERM) before this host ended
    # distributed runs: no worker of the host's site took it, or its worker was
    # lost / the broker went away before a result came back
    NOT_SCANNED = "not_scanned"

    @property
    def complete(self) -> bool:
        """True only for a full scan: every other status is never compliant."""
        return self is Status.OK

    @property
    def scanned(self) -> bool:
        """True when listeners were collected at all (ok or partial)."""
        return self in (Status.OK, Status.PARTIAL)


class Severity(enum.IntEnum):
    """Finding severity; ordered so that ``--fail-on`` is a comparison."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {text!r} (one of: {names})") from None

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Process:
    """A process holding a socket. ``name`` is what the host printed (comm, argv0
    or image name, possibly truncated by the tool); name, pid and user may each
    be unknown: None (``null`` in JSON), never an empty string."""

    name: str | None
    pid: int | None = None
    user: str | None = None

    def __post_init__(self) -> None:
        # the one guard for every parser: an empty name or user means "unknown";
        # short names are shared (sys.intern): 10,000 hosts' "root" and "sshd"
        # are one string each, not one per host and socket
        if not self.name:
            object.__setattr__(self, "name", None)
        elif len(self.name) <= _INTERN_MAX and type(self.name) is str:
            object.__setattr__(self, "name", sys.intern(self.name))
        if not self.user:
            object.__setattr__(self, "user", None)
        elif len(self.user) <= _INTERN_MAX and type(self.user) is str:
            object.__setattr__(self, "user", sys.intern(self.user))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "pid": self.pid, "user": self.user}


@dataclass(frozen=True, slots=True)
class Listener:
    """One listening socket (TCP LISTEN, or a bound UDP socket).

    ``address`` is normalised by :func:`fleetscan.addresses.normalise_address`:
    no brackets, no ``%scope`` (kept in ``zone``), wildcards as ``0.0.0.0`` or
    ``::``. ``raw`` is the line (or lines) of command output it came from and
    ``line`` the 1-based line number of that output.
    """

    proto: Proto
    family: Family
    address: str
    port: int
    state: str = "LISTEN"
    processes: tuple[Process, ...] = ()
    zone: str | None = None
    raw: str = ""
    line: int | None = None

    @property
    def key(self) -> tuple[str, int, str, int]:
        """Identity of the socket across scans (for de-duplication and drift)."""
        return (self.proto, self.family, self.address, self.port)

    @property
    def process_names(self) -> tuple[str, ...]:
        """Known process names, without repeats (unknown names are left out)."""
        return tuple(dict.fromkeys(p.name for p in self.processes if p.name is not None))

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON contract of ``fleetscan parse`` (see README)."""
        return {
            "proto": self.proto,
            "family": self.family,
            "address": self.address,
            "port": self.port,
            "state": self.state,
            "processes": [p.to_dict() for p in self.processes],
        }


@dataclass(frozen=True, slots=True)
class UnparsedLine:
    """A line of command output that no rule of the parser could read."""

    line: int
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "text": self.text}


@dataclass(frozen=True, slots=True)
class ParseResult:
    """What a parser makes of one command output.

    ``owners_known`` is False when the output format carries no process
    information at all (e.g. ``netstat -an``, ``ss`` without ``-p``); the
    collector then marks the host ``partial``.
    """

    parser: str
    listeners: tuple[Listener, ...] = ()
    unparsed: tuple[UnparsedLine, ...] = ()
    owners_known: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "parser": self.parser,
            "listeners": [x.to_dict() for x in self.listeners],
            "unparsed": [u.to_dict() for u in self.unparsed],
        }


@dataclass(frozen=True, slots=True)
class Origin:
    """Where something was written: file and 1-based line (None when unknown)."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True, slots=True)
class Target:
    """A host to scan, as resolved from the inventory (all variables merged)."""

    name: str
    address: str
    port: int | None = None  # None: let ~/.ssh/config or the default (22) decide
    user: str | None = None
    platform: str | None = None  # hint: linux, windows, darwin, freebsd
    groups: tuple[str, ...] = ()
    # not in repr (an inline password must never reach a log) nor in the hash
    vars: Mapping[str, Any] = field(default_factory=dict, repr=False, hash=False, compare=False)
    transport: str = "asyncssh"
    become: bool = False
    become_method: str = "sudo"
    key_files: tuple[str, ...] = ()
    jump_host: str | None = None
    known_hosts: str | None = None
    password_env: str | None = None  # name of an env var holding the password; never the value
    passphrase_env: str | None = None  # name of an env var holding the private keys' passphrase
    site: str = "default"  # network zone whose workers scan it (``fleetscan_site``)
    source: Origin | None = None  # where the host was defined

    def identity(self) -> dict[str, Any]:
        """Who and how to reach: the fields every view of a target shares
        (reports, the history, the wire to workers, ``inventory show``).
        Never its variables: they may hold secrets."""
        return {
            "name": self.name,
            "address": self.address,
            "port": self.port,
            "user": self.user,
            "platform": self.platform,
            "groups": list(self.groups),
            "transport": self.transport,
        }

    def public_vars(self) -> dict[str, Any]:
        """Variables safe to print: secrets masked by name and inside values, at any depth."""
        masked: dict[str, Any] = mask_value(dict(self.vars))
        return masked


@dataclass(frozen=True, slots=True)
class CommandEvidence:
    """A command run on a host and what came back (bounded)."""

    command: str
    exit_status: int | None
    stdout: str
    stderr: str
    duration: float
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class HostScan:
    """The outcome of scanning one host. ``status`` decides compliance."""

    target: Target
    status: Status
    message: str = ""
    platform: str | None = None
    collector: str | None = None  # the command that produced the listeners
    listeners: tuple[Listener, ...] = ()
    unparsed: tuple[UnparsedLine, ...] = ()
    evidence: tuple[CommandEvidence, ...] = ()
    started: float = 0.0
    finished: float = 0.0

    @property
    def host(self) -> str:
        return self.target.name

    @property
    def duration(self) -> float:
        return max(0.0, self.finished - self.started)


@dataclass(frozen=True, slots=True)
class WaiverRef:
    """The waiver that covers a finding (copied so reports need no policy)."""

    id: str
    justification: str
    expires: str | None
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """A policy result: a rule broken by a listener, or a host-level problem
    (``listener`` is None, e.g. "host not fully scanned")."""

    rule_id: str
    severity: Severity
    host: str
    message: str
    listener: Listener | None = None
    waiver: WaiverRef | None = None
    kind: str = "listener"  # listener | host | waiver

    @property
    def waived(self) -> bool:
        return self.waiver is not None

    @property
    def evidence(self) -> str:
        return self.listener.raw if self.listener else ""


#: the kinds of :class:`Change` (see :mod:`fleetscan.drift`)
CHANGE_KINDS = ("new", "gone", "owner_changed", "widened", "narrowed")


@dataclass(frozen=True, slots=True)
class Change:
    """How one listener of a host differs from that host's previous complete scan
    (or its pinned baseline). ``before``/``after`` are None for ``new``/``gone``."""

    host: str
    kind: str  # one of CHANGE_KINDS
    proto: Proto
    address: str
    port: int
    before: Listener | None
    after: Listener | None
    since_run: str  # the run compared with

    @property
    def listener(self) -> Listener:
        """The listener the change is about: the new one, or the one that went."""
        found = self.after or self.before
        assert found is not None
        return found


@dataclass(frozen=True, slots=True)
class ComparedTo:
    """What this run's changes were computed against (``report.json`` ``run.compared_to``).

    ``run`` is the newest run any host was compared with (None when no host had
    an earlier complete scan); ``baseline_hosts`` are hosts whose first complete
    scan this is (their baseline, so no changes); ``unknown_hosts`` were not fully
    scanned now, so their changes are unknown (never "all gone")."""

    mode: str  # previous | baseline
    run: str | None = None
    runs: tuple[str, ...] = ()
    baseline_hosts: tuple[str, ...] = ()
    unknown_hosts: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """``report.json`` ``run.compared_to`` (also how the store keeps it)."""
        return {
            "mode": self.mode,
            "run": self.run,
            "runs": list(self.runs),
            "baseline_hosts": list(self.baseline_hosts),
            "unknown_hosts": list(self.unknown_hosts),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ComparedTo:
        return cls(
            mode=doc["mode"],
            run=doc["run"],
            runs=tuple(doc["runs"]),
            baseline_hosts=tuple(doc["baseline_hosts"]),
            unknown_hosts=tuple(doc["unknown_hosts"]),
        )


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """One earlier (or this) run, summarised for the report's trend chart."""

    run: str
    started: datetime
    by_status: Mapping[str, int]
    active_by_severity: Mapping[str, int]
    listeners: int
    changes: int


#: outcomes of one exposure probe (see fleetscan.exposure)
ProbeOutcome = Literal["open", "refused", "filtered", "unreachable", "not_probed"]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """Whether one listener of ``host`` answered a TCP connect from ``zone``.

    ``address`` is the address connected to (the inventory's, never the bind
    address); ``probe_host`` is the inventory host the connection left from
    (None for the ``scanner`` zone, or when nothing was probed). ``reason``
    says why a listener was ``not_probed`` or what the probe saw (e.g.
    "Connection refused"). ``rtt_ms`` is the connect time when measured.
    """

    host: str
    listener: Listener
    zone: str
    address: str
    result: ProbeOutcome
    probe_host: str | None = None
    reason: str = ""
    rtt_ms: float | None = None

    @property
    def port(self) -> int:
        return self.listener.port

    @property
    def proto(self) -> str:
        return self.listener.proto


@dataclass(frozen=True, slots=True)
class LearnedKey:
    """A host key recorded by ``--accept-new`` (OpenSSH accept-new semantics)."""

    host: str  # inventory name
    name: str  # known_hosts name: host or [host]:port
    key_type: str
    fingerprint: str  # SHA256:...


@dataclass(frozen=True, slots=True)
class AlertDelivery:
    """One message handed to one alert destination (or owed to it)."""

    destination: str  # label without secrets, e.g. "webhook https://hooks.example/…"
    run_id: str  # the run whose alerts the message carries (older for outbox messages)
    alerts: int
    ok: bool
    error: str = ""
    queued: bool = False  # kept in the outbox; the next run tries again

    def to_dict(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "run_id": self.run_id,
            "alerts": self.alerts,
            "ok": self.ok,
            "error": self.error,
            "queued": self.queued,
        }


@dataclass(frozen=True, slots=True)
class AlertReport:
    """What the alert stage of a run raised and delivered."""

    raised: int
    deliveries: tuple[AlertDelivery, ...] = ()

    @property
    def failures(self) -> int:
        return sum(1 for d in self.deliveries if not d.ok)

    def to_dict(self) -> dict[str, Any]:
        return {"raised": self.raised, "deliveries": [d.to_dict() for d in self.deliveries]}


def new_run_id(started: datetime) -> str:
    """``20261130T001521Z-4c2a1f3b``: the UTC second, then eight hex digits —
    five of them the microsecond and three random. Ids (and the report folders
    named after them) sort in the order the runs started, also within one
    second; the random digits keep two runs of the same microsecond apart."""
    utc = started.astimezone(UTC)
    return f"{utc:%Y%m%dT%H%M%SZ}-{utc.microsecond:05x}{secrets.randbits(12):03x}"


@dataclass(frozen=True, slots=True)
class ScanRun:
    """A whole run: every host's scan and every finding, plus provenance."""

    id: str
    started: datetime
    finished: datetime
    scans: tuple[HostScan, ...]
    findings: tuple[Finding, ...]
    inventory_digest: str = ""
    policy_digest: str = ""
    policy_files: tuple[str, ...] = ()
    inventory_files: tuple[str, ...] = ()
    hostkey_checking: bool = True
    #: the operator let inventory-named known_hosts files decide (--trust-inventory-known-hosts)
    inventory_known_hosts_trusted: bool = False
    #: --accept-new: the file unknown keys were recorded in, and the keys learned this run
    accept_new_file: str | None = None
    keys_learned: tuple[LearnedKey, ...] = ()
    interrupted: bool = False
    fail_on: Severity = Severity.HIGH
    tool_version: str = ""
    # history (fleetscan.store): None/empty when the run was not compared (--no-history)
    changes: tuple[Change, ...] = ()
    compared_to: ComparedTo | None = None
    trend: tuple[TrendPoint, ...] = ()
    exposure: tuple[ProbeResult, ...] = ()
    probe_zones: tuple[str, ...] = ()  # zones of the probe phase; empty: it did not run
    alerts: AlertReport | None = None  # None: no alert destination configured

    def active_findings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.waived)

    def incomplete_hosts(self) -> tuple[HostScan, ...]:
        return tuple(s for s in self.scans if not s.status.complete)
