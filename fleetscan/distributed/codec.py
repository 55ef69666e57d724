"""The wire format between coordinator and workers: JSON text, never pickle.

Two documents cross the broker:

* a **shard** (coordinator → worker): the targets of one site, without their
  inventory variables (those may hold secrets the worker does not need), and
  the few scan settings the run decides (timeouts, output cap, transport).
  Key files and password/passphrase variables travel as *names*; the worker
  resolves them on its own disk and in its own environment.
* a **result** (worker → coordinator): one scan per target of the shard.

Both are decoded strictly (unknown fields, wrong types, out-of-range numbers,
oversized text are refused) because anyone who can write to the broker can
write either document. A result never carries the target back: the
coordinator pairs each scan with its *own* :class:`~fleetscan.model.Target`
by name, so a worker (or an intruder) can report about the hosts it was sent
and nothing else.

Text is encoded with ``ensure_ascii`` so the lone surrogates fleetscan keeps
for undecodable host bytes survive any transport as ``\\udcXX`` escapes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from fleetscan import __version__
from fleetscan.distributed import wire as schema
from fleetscan.distributed.wire import MAX_DOCUMENT, MAX_SHORT, MAX_WIRE_TEXT
from fleetscan.errors import ConfigError
from fleetscan.inventory.values import (
    SITE_NAME,
    check_address,
    check_host_name,
    check_jump,
    check_text,
    check_user,
)
from fleetscan.model import (
    CommandEvidence,
    HostScan,
    Listener,
    Origin,
    Process,
    Status,
    Target,
    UnparsedLine,
)
from fleetscan.reports.sanitize import clip
from fleetscan.transports import REGISTRY as TRANSPORTS

#: bump on any incompatible change of the documents below
PROTOCOL = 1
SHARD_KIND = "fleetscan.shard"
RESULT_KIND = "fleetscan.result"


class WireError(ValueError):
    """A document from the broker that fleetscan refuses (named, never a traceback)."""


@dataclass(frozen=True, slots=True)
class ShardSettings:
    """What the coordinator decides about how a shard's hosts are scanned."""

    connect_timeout: float
    host_timeout: float
    max_output: int
    transport: str | None = None


@dataclass(frozen=True, slots=True)
class Shard:
    """A decoded shard: which hosts, for which site, scanned how."""

    id: str
    site: str
    settings: ShardSettings
    targets: tuple[Target, ...]
    version: str = __version__


@dataclass(frozen=True, slots=True)
class ShardResult:
    """A decoded result: scans by host name, plus who produced them."""

    shard: str
    site: str
    worker: str
    version: str
    hostkey_checking: bool
    error: str | None
    scans: dict[str, HostScan]


def compatible(protocol: int, version: str) -> str | None:
    """None when a peer speaking ``protocol`` at ``version`` can work with us;
    otherwise why not. The protocol number decides; releases of the same
    major.minor series are required as well, so a mixed rollout is visible."""
    if protocol != PROTOCOL:
        return f"wire protocol {protocol}, this fleetscan {__version__} speaks {PROTOCOL}"
    if version.split(".")[:2] != __version__.split(".")[:2]:
        return f"fleetscan {version}, this side runs {__version__} (major.minor must match)"
    return None


def _dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def _loads(text: object, what: str) -> Any:
    if not isinstance(text, str):
        raise WireError(f"{what}: expected JSON text, got {type(text).__name__}")
    if len(text) > MAX_DOCUMENT:
        raise WireError(f"{what}: {len(text)} characters, more than the {MAX_DOCUMENT} allowed")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise WireError(f"{what}: not valid JSON ({exc})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _validation(what: str, exc: ValidationError) -> WireError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "document"
    return WireError(f"{what}: {where}: {first['msg']} ({exc.error_count()} problem(s))")


# --- shards ------------------------------------------------------------------------------


def encode_shard(shard: Shard) -> str:
    """The JSON text of a shard. Inventory variables are left out on purpose."""
    s = shard.settings
    return _dumps(
        {
            "kind": SHARD_KIND,
            "protocol": PROTOCOL,
            "version": __version__,
            "shard": shard.id,
            "site": shard.site,
            "settings": {
                "connect_timeout": s.connect_timeout,
                "host_timeout": s.host_timeout,
                "max_output": s.max_output,
                "transport": s.transport,
            },
            "targets": [_target_to_wire(t) for t in shard.targets],
        }
    )


def _target_to_wire(t: Target) -> dict[str, Any]:
    return {
        **t.identity(),
        "become": t.become,
        "become_method": t.become_method,
        "key_files": list(t.key_files),
        "jump_host": t.jump_host,
        "known_hosts": t.known_hosts,
        "password_env": t.password_env,
        "passphrase_env": t.passphrase_env,
        "site": t.site,
        "source": str(t.source) if t.source else "",
    }


def decode_shard(text: object) -> Shard:
    """A shard from the broker, checked as strictly as an inventory would be.

    Raises :class:`WireError` naming the field; an incompatible peer raises
    too (the worker turns that into a result carrying the error)."""
    doc = _loads(text, "shard")
    try:
        wire = schema.Shard.model_validate(doc)
    except ValidationError as exc:
        raise _validation("shard", exc) from None
    why = compatible(wire.protocol, wire.version)
    if why:
        raise WireError(f"shard {wire.shard}: incompatible coordinator: {why}")
    if not SITE_NAME.fullmatch(wire.site):
        raise WireError(f"shard {wire.shard}: invalid site {wire.site!r}")
    origin = Origin(f"shard {wire.shard}", None)
    try:
        targets = tuple(_target_from_wire(t, origin) for t in wire.targets)
    except ConfigError as exc:
        raise WireError(str(exc)) from None
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise WireError(f"shard {wire.shard}: a host appears twice")
    if wire.settings.transport is not None and wire.settings.transport not in TRANSPORTS:
        raise WireError(f"shard {wire.shard}: unknown transport {wire.settings.transport!r}")
    st = wire.settings
    return Shard(
        id=wire.shard,
        site=wire.site,
        settings=ShardSettings(st.connect_timeout, st.host_timeout, st.max_output, st.transport),
        targets=targets,
        version=wire.version,
    )


def _target_from_wire(t: schema.WireTarget, origin: Origin) -> Target:
    def opt(value: str | None, field: str) -> str | None:
        return None if value is None else check_text(value, origin, field)

    if t.transport not in TRANSPORTS:
        raise ConfigError(f"unknown transport {t.transport!r}", file=origin.file, field="transport")
    return Target(
        name=check_host_name(t.name, origin),
        address=check_address(t.address, origin, "address"),
        port=t.port,
        user=None if t.user is None else check_user(t.user, origin, "user"),
        platform=opt(t.platform, "platform"),
        groups=tuple(check_text(g, origin, "groups") for g in t.groups),
        transport=t.transport,
        become=t.become,
        become_method=check_text(t.become_method, origin, "become_method"),
        key_files=tuple(check_text(k, origin, "key_files") for k in t.key_files),
        jump_host=None if t.jump_host is None else check_jump(t.jump_host, origin, "jump_host"),
        known_hosts=opt(t.known_hosts, "known_hosts"),
        password_env=opt(t.password_env, "password_env"),
        passphrase_env=opt(t.passphrase_env, "passphrase_env"),
        site=t.site,
        source=Origin(t.source) if t.source else None,
    )


# --- results -----------------------------------------------------------------------------


def encode_result(
    shard_id: str,
    site: str,
    worker: str,
    scans: Sequence[HostScan],
    *,
    hostkey_checking: bool,
    error: str | None = None,
) -> str:
    """The JSON text of a worker's answer for one shard."""
    return _dumps(
        {
            "kind": RESULT_KIND,
            "protocol": PROTOCOL,
            "version": __version__,
            "shard": shard_id,
            "site": site,
            "worker": clip(worker, MAX_SHORT),
            "hostkey_checking": hostkey_checking,
            "error": None if error is None else clip(error, MAX_SHORT),
            "scans": [_scan_to_wire(s) for s in scans],
        }
    )


def _scan_to_wire(s: HostScan) -> dict[str, Any]:
    return {
        "name": s.target.name,
        "status": s.status.value,
        "message": clip(s.message, MAX_WIRE_TEXT),
        "platform": s.platform,
        "collector": s.collector,
        "listeners": [
            {
                "proto": x.proto,
                "family": x.family,
                "address": x.address,
                "port": x.port,
                "state": x.state,
                "processes": [p.to_dict() for p in x.processes],
                "zone": x.zone,
                "raw": clip(x.raw, MAX_WIRE_TEXT),
                "line": x.line,
            }
            for x in s.listeners
        ],
        "unparsed": [{"line": u.line, "text": clip(u.text, MAX_WIRE_TEXT)} for u in s.unparsed],
        "evidence": [
            {
                "command": clip(e.command, MAX_SHORT),
                "exit_status": e.exit_status,
                "stdout": clip(e.stdout, MAX_WIRE_TEXT),
                "stderr": clip(e.stderr, MAX_WIRE_TEXT),
                "duration": _finite(e.duration),
                "truncated": e.truncated,
            }
            for e in s.evidence
        ],
        "started": _finite(s.started),
        "finished": _finite(s.finished),
    }


def _finite(value: float) -> float:
    return value if math.isfinite(value) and value >= 0 else 0.0


def decode_result(text: object, shard: Shard) -> ShardResult:
    """A worker's answer for ``shard``, validated against what was sent.

    It must name this shard and site, speak a compatible protocol, and hold
    at most one scan per host of the shard and none for any other host; the
    coordinator's own targets are attached. Hosts it leaves out stay pending
    (the caller decides their fate). ``not_scanned`` is the coordinator's
    status and is refused from a worker."""
    doc = _loads(text, f"result of shard {shard.id}")
    what = f"result of shard {shard.id}"
    try:
        wire = schema.Result.model_validate(doc)
    except ValidationError as exc:
        raise _validation(what, exc) from None
    why = compatible(wire.protocol, wire.version)
    if why:
        raise WireError(f"{what}: incompatible worker {wire.worker}: {why}")
    if wire.shard != shard.id or wire.site != shard.site:
        raise WireError(f"{what}: it answers shard {wire.shard!r} of site {wire.site!r}")
    targets = {t.name: t for t in shard.targets}
    scans: dict[str, HostScan] = {}
    for s in wire.scans:
        if s.name not in targets:
            raise WireError(f"{what}: host {s.name!r} was not in the shard")
        if s.name in scans:
            raise WireError(f"{what}: host {s.name!r} appears twice")
        if s.status is Status.NOT_SCANNED:
            raise WireError(f"{what}: host {s.name!r}: a worker cannot report not_scanned")
        scans[s.name] = _scan_from_wire(s, targets[s.name])
    return ShardResult(
        shard=wire.shard,
        site=wire.site,
        worker=wire.worker,
        version=wire.version,
        hostkey_checking=wire.hostkey_checking,
        error=wire.error,
        scans=scans,
    )


def _scan_from_wire(s: schema.Scan, target: Target) -> HostScan:
    return HostScan(
        target=target,
        status=s.status,
        message=s.message,
        platform=s.platform,
        collector=s.collector,
        listeners=tuple(
            Listener(
                proto=x.proto,
                family=x.family,
                address=x.address,
                port=x.port,
                state=x.state,
                processes=tuple(Process(p.name, p.pid, p.user) for p in x.processes),
                zone=x.zone,
                raw=x.raw,
                line=x.line,
            )
            for x in s.listeners
        ),
        unparsed=tuple(UnparsedLine(u.line, u.text) for u in s.unparsed),
        evidence=tuple(
            CommandEvidence(e.command, e.exit_status, e.stdout, e.stderr, e.duration, e.truncated)
            for e in s.evidence
        ),
        started=s.started,
        finished=s.finished,
    )
