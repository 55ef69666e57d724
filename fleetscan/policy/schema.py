"""The policy language: what a policy YAML file may contain, as pydantic models.

A policy file is validated completely before any host is contacted, so a typo
stops the run with a message naming file, line, rule and field instead of
silently weakening the audit. Every model forbids unknown keys; lists that
users naturally write as one value (``process: sshd``) accept a scalar too.

The models here are both the schema and the compiled form the engine reads:
validators normalise ports to :class:`PortRange` tuples and severities to
:class:`~fleetscan.model.Severity`, so the engine never re-parses text.

Rule kinds (see ``policies/example-infra.yaml`` for a documented example):

* ``forbidden``  known-bad listeners (ports and/or process names);
* ``expected``   the infrastructure map; on a host covered by at least one
  entry, every listener no entry documents is ``undocumented``;
* ``bind``       which bind classes / CIDRs a port may (``allow``) or may not
  (``deny``) listen on;
* ``owner``      which processes (and users) may hold a port;
* ``drift``      a severity for changes since the host's previous scan
  (``new``, ``gone``, ``owner_changed``, ``widened``, ``narrowed``);
* ``waivers``    time-limited, justified exceptions for one rule;
* ``zones``      network vantage points for exposure probes (probe hosts);
* ``exposure``   from which zones a listener may / must / must not be
  reachable, judged on the probe matrix (see :mod:`fleetscan.exposure`).

The module is over 450 lines on purpose: each rule kind is a small model, and
keeping every section of the policy language in one file keeps the loader's
error paths (file, line, rule, field) and the "did you mean" lists in one place.
"""

from __future__ import annotations

import ipaddress
import re
import typing
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    model_validator,
)

from fleetscan.model import CHANGE_KINDS, Severity

#: rule ids the engine itself emits; user rules may not reuse them
UNDOCUMENTED = "undocumented"
SCAN_INCOMPLETE = "scan-incomplete"
WAIVER_EXPIRED = "waiver-expired"
#: informational: a wildcard-bound listener that no probed zone could reach
EXPOSURE_WIDE_BIND_FILTERED = "exposure-wide-bind-filtered"
BUILTIN_RULE_IDS = (UNDOCUMENTED, SCAN_INCOMPLETE, WAIVER_EXPIRED, EXPOSURE_WIDE_BIND_FILTERED)
#: built-in rules a waiver may name (waiving "waiver-expired" would hide stale waivers)
WAIVABLE_BUILTINS = (UNDOCUMENTED, SCAN_INCOMPLETE, EXPOSURE_WIDE_BIND_FILTERED)
#: the zone that is always the machine fleetscan runs on
SCANNER_ZONE = "scanner"

#: bind classes produced by fleetscan.addresses.bind_class, plus "any"
BIND_CLASSES = ("loopback", "wildcard", "private", "link-local", "public")

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
_RANGE_RE = re.compile(r"^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$")

ProtoSpec = Literal["tcp", "udp", "any"]


class _Frozen(BaseModel):
    # built when first used: a run validates policy files (PolicyFile) and builds
    # one Policy; building all 17 models at import cost ~140 ms of start-up
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# --- small value types -------------------------------------------------------


class PortRange(_Frozen):
    """An inclusive port range; a single port is ``lo == hi``."""

    lo: int
    hi: int

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.lo <= port <= self.hi

    def __str__(self) -> str:
        return str(self.lo) if self.lo == self.hi else f"{self.lo}-{self.hi}"


def _check_port(value: int) -> int:
    if not 0 <= value <= 65535:
        raise ValueError(f"port {value} is out of range 0..65535")
    return value


def _port_range(value: Any) -> PortRange:
    if isinstance(value, PortRange):
        return value
    # bool is an int subclass: `port: yes` must not become port 1
    if isinstance(value, int) and not isinstance(value, bool):
        return PortRange(lo=_check_port(value), hi=_check_port(value))
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            port = _check_port(int(text))
            return PortRange(lo=port, hi=port)
        m = _RANGE_RE.match(text)
        if m:
            lo, hi = _check_port(int(m.group(1))), _check_port(int(m.group(2)))
            if lo > hi:
                raise ValueError(f"port range {text!r}: low end {lo} is above high end {hi}")
            return PortRange(lo=lo, hi=hi)
        raise ValueError(f"{value!r} is not a port or a range like '6667-6669'")
    raise ValueError(f"{value!r} is not a port (an integer 0..65535 or a range 'lo-hi')")


def _one_or_list(value: Any) -> Any:
    """Accept ``ports: 22`` as well as ``ports: [22, "6667-6669"]``."""
    return value if isinstance(value, list | tuple) else [value]


def _one_or_many(value: Any) -> Any:
    """Accept ``process: sshd`` as well as ``process: [sshd, dropbear]``."""
    return [value] if isinstance(value, str) else value


def _severity(value: Any) -> Severity:
    if isinstance(value, Severity):
        return value
    names = [s.name.lower() for s in Severity]
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a severity ({', '.join(names)})")
    try:
        return Severity.parse(value)
    except ValueError as exc:
        from fleetscan.yamlsrc import suggest

        raise ValueError(f"{exc}{suggest(value.strip().lower(), names)}") from None


def _date_only(value: Any) -> Any:
    # YAML turns 2026-12-31T10:00 into a datetime, and pydantic would read an
    # integer as a Unix timestamp; a waiver lasts whole days, written as a date
    if isinstance(value, datetime) or not isinstance(value, date | str):
        shown = str(value) if isinstance(value, datetime) else repr(value)
        raise ValueError(f"must be a date like 2026-12-31, without a time (got {shown})")
    return value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _rule_id(value: str) -> str:
    if not _ID_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid id (letters, digits and . _ : -, "
            "starting with a letter or digit, at most 100 characters)"
        )
    return value


def _bind_spec(value: str) -> str:
    """A bind class name or a CIDR/address (normalised, e.g. ``10.0.0.0/8``)."""
    text = value.strip().lower()
    if text in BIND_CLASSES or text == "any":
        return text
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        from fleetscan.yamlsrc import suggest

        raise ValueError(
            f"{value!r} is neither a bind class ({', '.join(BIND_CLASSES)}, any) "
            f"nor a CIDR like '10.0.0.0/8'{suggest(text, BIND_CLASSES)}"
        ) from None


Port = Annotated[PortRange, BeforeValidator(_port_range)]
# validated item by item so an error points at the bad element (ports[1])
Ports = Annotated[tuple[Port, ...], BeforeValidator(_one_or_list)]
SeverityField = Annotated[Severity, BeforeValidator(_severity)]
Names = Annotated[tuple[StrictStr, ...], BeforeValidator(_one_or_many)]
BindSpecs = Annotated[
    tuple[Annotated[StrictStr, AfterValidator(_bind_spec)], ...], BeforeValidator(_one_or_many)
]
RuleId = Annotated[StrictStr, AfterValidator(_rule_id)]
Text = Annotated[StrictStr, AfterValidator(_non_empty)]


# --- rules ------------------------------------------------------------------


class _Rule(_Frozen):
    """Fields every rule shares. No ``hosts``/``groups`` means every host."""

    id: RuleId
    severity: SeverityField | None = None  # None: the file's defaults.severity
    reason: StrictStr | None = None
    hosts: Names = ()  # host names or globs ("web-*")
    groups: Names = ()


class ForbiddenRule(_Rule):
    """A known-bad listener: matches when the port (and process, if given) match."""

    ports: Ports = ()
    proto: ProtoSpec = "any"
    process: Names = ()  # e.g. [nc, ncat, socat]: any of them listening is a finding

    @model_validator(mode="after")
    def _needs_something(self) -> ForbiddenRule:
        if not self.ports and not self.process:
            raise ValueError("a forbidden rule needs 'ports' and/or 'process'")
        return self


class ExpectedListener(_Frozen):
    """One documented listener of an infrastructure-map entry."""

    proto: ProtoSpec = "any"
    port: Port
    bind: BindSpecs = ("any",)
    process: Names = ()  # empty: any process
    user: Names = ()  # empty: any user


class ExpectedEntry(_Frozen):
    """An infrastructure-map entry: the listeners documented for some hosts."""

    id: RuleId
    description: StrictStr | None = None
    hosts: Names = ()
    groups: Names = ()
    listeners: tuple[ExpectedListener, ...]

    @model_validator(mode="after")
    def _needs_scope(self) -> ExpectedEntry:
        # an unscoped entry would silently put every host under the map; ask for
        # `hosts: ["*"]` so that is a deliberate choice
        if not self.hosts and not self.groups:
            raise ValueError("an expected entry needs 'hosts' and/or 'groups' (hosts: ['*'] = all)")
        return self


class BindRule(_Rule):
    """Where a port may listen.

    ``allow``: listeners on ``ports`` must bind one of these classes/CIDRs.
    ``deny``:  listeners on ``ports`` (default: all) must not bind these,
    except on ``except_ports``. (Not ``on:`` — YAML 1.1 reads ``on`` as True.)
    """

    ports: Ports = ()  # empty: every port
    except_ports: Ports = ()
    proto: ProtoSpec = "any"
    allow: BindSpecs = ()
    deny: BindSpecs = ()

    @model_validator(mode="after")
    def _allow_xor_deny(self) -> BindRule:
        if bool(self.allow) == bool(self.deny):
            raise ValueError("a bind rule needs exactly one of 'allow' or 'deny'")
        if self.allow and not self.ports:
            raise ValueError("an 'allow' bind rule needs 'ports' (which ports it restricts)")
        return self


class OwnerRule(_Rule):
    """Who may hold a port: every process on the socket must be allowed."""

    ports: Ports
    proto: ProtoSpec = "any"
    process: Names = ()
    user: Names = ()
    unknown_severity: SeverityField = Severity.LOW  # listener with no process information

    @model_validator(mode="after")
    def _needs_something(self) -> OwnerRule:
        if not self.process and not self.user:
            raise ValueError("an owner rule needs 'process' and/or 'user'")
        return self


ChangeKind = Literal["new", "gone", "owner_changed", "widened", "narrowed"]
assert set(typing.get_args(ChangeKind)) == set(CHANGE_KINDS)  # one list of kinds


class DriftRule(_Rule):
    """Changes since a host's previous complete scan (or its baseline) that are
    findings: ``when`` lists the change kinds, ``ports``/``proto`` narrow it."""

    when: Annotated[tuple[ChangeKind, ...], BeforeValidator(_one_or_many)] = Field(min_length=1)
    ports: Ports = ()  # empty: every port
    proto: ProtoSpec = "any"


class Waiver(_Frozen):
    """A justified, owned, expiring exception to one rule on some hosts.

    Valid through ``expires`` inclusive; from the next day the findings it
    covered are active again and the waiver itself is reported.
    """

    id: RuleId
    rule: RuleId
    hosts: Names = ()
    groups: Names = ()
    ports: Ports = ()  # empty: every port
    proto: ProtoSpec = "any"
    justification: Text
    owner: Text
    expires: Annotated[date, BeforeValidator(_date_only)]

    @model_validator(mode="after")
    def _scope(self) -> Waiver:
        if not self.hosts and not self.groups:
            raise ValueError("a waiver needs 'hosts' and/or 'groups' (hosts: ['*'] = all)")
        if self.rule == SCAN_INCOMPLETE:
            # fail closed: a host that was not scanned is only excused by name
            if self.groups or any(_is_glob(h) for h in self.hosts):
                raise ValueError(
                    "a 'scan-incomplete' waiver must name its hosts literally (no groups, no globs)"
                )
            if self.ports:
                raise ValueError("a 'scan-incomplete' waiver cannot have 'ports'")
        return self


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _zone_name(value: str) -> str:
    if not _ID_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid zone name (letters, digits and . _ : -, "
            "starting with a letter or digit)"
        )
    return value


ZoneName = Annotated[StrictStr, AfterValidator(_zone_name)]
ZoneNames = Annotated[tuple[ZoneName, ...], BeforeValidator(_one_or_many)]


class Zone(_Frozen):
    """A network vantage point: probes leave from the first of ``probe_hosts``
    (inventory host names) that can run them. ``address_var`` names an
    inventory variable holding the address a target has *as seen from this
    zone* (e.g. its office-VLAN address); a target without it is probed at
    its inventory address. Addresses always come from the inventory."""

    probe_hosts: Names = ()
    address_var: StrictStr | None = None
    description: StrictStr | None = None
    #: listeners this zone never probes ("excluded by policy")
    skip_hosts: Names = ()
    skip_groups: Names = ()
    skip_ports: Ports = ()

    @model_validator(mode="after")
    def _needs_probe_hosts(self) -> Zone:
        if not self.probe_hosts:
            raise ValueError("a zone needs 'probe_hosts' (inventory hosts that probe from it)")
        return self


class ExposureRule(_Rule):
    """Where a listener may be reached from, judged on the probe matrix.

    ``reachable_from``: the zones that may reach ``ports`` (open anywhere else
    is a finding) and must (refused/filtered/unreachable there is a finding,
    unless ``required: false``). ``not_reachable_from``: zones from which
    ``ports`` (default: every port but ``except_ports``) must not be open.
    """

    ports: Ports = ()  # empty: every port
    except_ports: Ports = ()
    proto: Literal["tcp", "any"] = "any"
    reachable_from: ZoneNames = ()
    not_reachable_from: ZoneNames = ()
    required: StrictBool = True

    @model_validator(mode="after")
    def _needs_zones(self) -> ExposureRule:
        if not self.reachable_from and not self.not_reachable_from:
            raise ValueError("an exposure rule needs 'reachable_from' and/or 'not_reachable_from'")
        both = set(self.reachable_from) & set(self.not_reachable_from)
        if both:
            raise ValueError(
                f"zone {sorted(both)[0]!r} is both in 'reachable_from' and 'not_reachable_from'"
            )
        return self


class Defaults(_Frozen):
    severity: SeverityField = Severity.MEDIUM


class UndocumentedSettings(_Frozen):
    severity: SeverityField = Severity.MEDIUM
    enabled: StrictBool = True


class ScanIncompleteSettings(_Frozen):
    severity: SeverityField = Severity.HIGH


class PolicyFile(_Frozen):
    """One policy YAML file as written."""

    version: Literal[1]
    description: StrictStr | None = None
    defaults: Defaults = Defaults()
    forbidden: tuple[ForbiddenRule, ...] = ()
    expected: tuple[ExpectedEntry, ...] = ()
    undocumented: UndocumentedSettings | None = None  # None: not set in this file
    bind: tuple[BindRule, ...] = ()
    owner: tuple[OwnerRule, ...] = ()
    drift: tuple[DriftRule, ...] = ()
    waivers: tuple[Waiver, ...] = ()
    scan_incomplete: ScanIncompleteSettings | None = None
    zones: dict[ZoneName, Zone] = Field(default_factory=dict)
    exposure: tuple[ExposureRule, ...] = ()


#: the top-level sections holding rules (each a list of items with an ``id``)
RULE_SECTIONS = ("forbidden", "expected", "bind", "owner", "drift", "exposure", "waivers")

AnyRule = ForbiddenRule | BindRule | OwnerRule | DriftRule | ExposureRule


class Policy(_Frozen):
    """The merged rules of one or more policy files, ready for the engine.

    Severities are resolved (a rule without one took its file's default).
    ``sources`` maps every rule, expected-entry and waiver id to the
    ``file:line`` it was defined at, for reports and error messages.
    """

    forbidden: tuple[ForbiddenRule, ...] = ()
    expected: tuple[ExpectedEntry, ...] = ()
    bind: tuple[BindRule, ...] = ()
    owner: tuple[OwnerRule, ...] = ()
    drift: tuple[DriftRule, ...] = ()
    exposure: tuple[ExposureRule, ...] = ()
    zones: Mapping[str, Zone] = Field(default_factory=dict)
    waivers: tuple[Waiver, ...] = ()
    undocumented: UndocumentedSettings = UndocumentedSettings()
    scan_incomplete: ScanIncompleteSettings = ScanIncompleteSettings()
    files: tuple[str, ...] = ()
    digest: str = ""
    sources: Mapping[str, str] = Field(default_factory=dict)
    zone_sources: Mapping[str, str] = Field(default_factory=dict)  # zone → file:line

    def rule_ids(self) -> tuple[str, ...]:
        """Ids a waiver may name: every rule plus the waivable built-ins."""
        rules: list[AnyRule] = [
            *self.forbidden,
            *self.bind,
            *self.owner,
            *self.drift,
            *self.exposure,
        ]
        return (*(r.id for r in rules), *WAIVABLE_BUILTINS)

    def zone_names(self) -> tuple[str, ...]:
        """Every zone a run can probe from: ``scanner`` and the declared ones."""
        return (SCANNER_ZONE, *(z for z in self.zones if z != SCANNER_ZONE))
