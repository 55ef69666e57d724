"""Host-key onboarding: fetch every host's keys the way a scan would reach it.

``fleetscan hostkeys scan`` (:mod:`fleetscan.cli_hostkeys`) uses this: the same
transports and ProxyJump chains as a scan (jump hosts are verified against
the operator's known_hosts as always), one handshake per key type that stops
at the host-key check — no authentication to the host, no command. Each key
is compared with the operator's known_hosts: ``known``, ``new`` (nothing
recorded for that type), ``changed`` (a recorded key of that type differs, or
the host shows none of the recorded ones) or ``revoked``. Changed and revoked
keys are listed, never written.
"""

from __future__ import annotations

import asyncio
import os
import struct
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from fleetscan.errors import TransportError
from fleetscan.model import Target
from fleetscan.transports import get_transport
from fleetscan.transports.base import ConnectSettings
from fleetscan.transports.hostkeys import (
    KnownHosts,
    LookupName,
    Verdict,
    blob_type,
    fingerprint,
    known_hosts_line,
    load_known_hosts,
    verdict,
)

#: asked for one by one, as ssh-keyscan does
KEY_ALGORITHMS = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
]
_ECDSA_BITS = {"nistp256": 256, "nistp384": 384, "nistp521": 521}


class KeyFetcher(Protocol):
    async def host_keys(
        self, target: Target, settings: ConnectSettings, algs: list[str]
    ) -> tuple[LookupName, list[bytes]]: ...


@dataclass(frozen=True, slots=True)
class FoundKey:
    blob: bytes
    state: str  # known | new | changed | revoked
    detail: str = ""


@dataclass(frozen=True, slots=True)
class HostKeys:
    target: Target
    name: str = ""  # known_hosts name: host, [host]:port or HostKeyAlias
    keys: tuple[FoundKey, ...] = ()
    error: str = ""

    @property
    def problem(self) -> bool:
        return bool(self.error) or any(k.state in ("changed", "revoked") for k in self.keys)


def key_bits(blob: bytes) -> int:
    """The size ``ssh-keygen -l`` prints."""
    kind = blob_type(blob)
    if kind == "ssh-ed25519":
        return 256
    if kind.startswith("ecdsa-sha2-"):
        return _ECDSA_BITS.get(kind.rsplit("-", 1)[-1], 0)
    if kind == "ssh-rsa":
        fields: list[bytes] = []
        at = 0
        while at < len(blob) and len(fields) < 3:
            (size,) = struct.unpack(">I", blob[at : at + 4])
            fields.append(blob[at + 4 : at + 4 + size])
            at += 4 + size
        return int.from_bytes(fields[2], "big").bit_length() if len(fields) == 3 else 0
    return 0


def keygen_line(name: str, blob: bytes) -> str:
    """One key as ``ssh-keygen -lf known_hosts`` prints it."""
    kind = blob_type(blob).removeprefix("ssh-").split("-")[0].upper()
    return f"{key_bits(blob)} {fingerprint(blob)} {name} ({kind})"


def classify(known: KnownHosts, name: LookupName, blobs: list[bytes]) -> tuple[FoundKey, ...]:
    outcomes = [(blob, *verdict(known, name, blob)) for blob in blobs]
    any_trusted = any(v is Verdict.TRUSTED for _, v, _ in outcomes)
    recorded_types = set(known.key_types(name))
    out = []
    for blob, v, reason in outcomes:
        if v is Verdict.TRUSTED:
            out.append(FoundKey(blob, "known"))
        elif v is Verdict.REVOKED:
            out.append(FoundKey(blob, "revoked", reason))
        elif v is Verdict.UNKNOWN or (any_trusted and blob_type(blob) not in recorded_types):
            out.append(FoundKey(blob, "new"))  # another type of a host that proved itself
        else:
            out.append(FoundKey(blob, "changed", reason))
    return tuple(out)


async def fetch_all(
    targets: Sequence[Target],
    settings: ConnectSettings,
    *,
    transport: str | None = None,
    concurrency: int = 50,
) -> list[HostKeys]:
    """Every target's keys, at most ``concurrency`` hosts at once, in order."""
    known = load_known_hosts(settings.known_hosts_files())
    gate = asyncio.Semaphore(max(1, concurrency))
    fetchers: dict[str, KeyFetcher] = {}

    async def one(target: Target) -> HostKeys:
        name = transport or target.transport
        if name not in fetchers:
            fetchers[name] = get_transport(name)  # type: ignore[assignment]
        fetcher = fetchers[name]
        if not hasattr(fetcher, "host_keys"):
            return HostKeys(target, error=f"transport {name!r} has no SSH host keys")
        async with gate:
            try:
                lookup, blobs = await fetcher.host_keys(target, settings, KEY_ALGORITHMS)
            except TransportError as exc:
                return HostKeys(target, error=str(exc))
        if not blobs:
            return HostKeys(target, str(lookup), error="the host showed no host key")
        return HostKeys(target, str(lookup), classify(known, lookup, blobs))

    return list(await asyncio.gather(*(one(t) for t in targets)))


def lines_for(results: Sequence[HostKeys], states: set[str], hashed: bool) -> list[str]:
    out = []
    for r in results:
        for k in r.keys:
            if k.state in states:
                out.append(known_hosts_line(r.name, k.blob, hashed))
    return out


def write_review_file(path: Path, lines: list[str]) -> None:
    """Write ``lines`` as a new known_hosts file (atomically, mode 0600,
    never following a symlink at ``path``)."""
    path = path.expanduser()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("".join(lines))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
