"""known_hosts as OpenSSH reads it: one parser and one decision for every transport.

Both transports ask :func:`verdict` whether a server key is trusted, so the
asyncssh and paramiko transports and the real ``ssh -o StrictHostKeyChecking=yes``
client agree host by host:

* The key is looked up under the *name and port connected to* — ``host`` for
  port 22, ``[host]:port`` otherwise — or under ``HostKeyAlias`` (no port) when
  ssh_config sets one. Never under the peer's IP address (OpenSSH's
  ``CheckHostIP`` is off by default since 8.5). Like OpenSSH (checked against
  the real client in tests/real/test_hostkey_agreement.py), a port-less entry
  for the host can confirm the key of another port only when nothing at all is
  recorded under ``[host]:port``; it can never make a key "changed".
* Host patterns as OpenSSH matches them: comma lists, ``*`` and ``?``
  wildcards, ``!`` negation, hashed names (``|1|salt|hash``), case-insensitive.
* ``@revoked`` keys are refused whatever else the file says. ``@cert-authority``
  lines trust host *certificates* signed by that CA for the matching names
  (asyncssh verifies them; paramiko cannot, and a host known only through a CA
  is refused with a message saying so). A plain key is never trusted through a
  CA line.

The outcome separates an *unknown* host (no key recorded for the name: nobody
vouched for it yet) from a *changed* one (a recorded key of the same type
differs, or the host cannot show any type that is recorded: possible attack).
"""

from __future__ import annotations

import base64
import binascii
import enum
import fcntl
import hashlib
import hmac
import os
import re
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from fleetscan.errors import TransportError
from fleetscan.model import LearnedKey

SSH_PORT = 22
CERT_SUFFIX = "-cert-v01@openssh.com"
#: a known_hosts file bigger than this is not a known_hosts file
MAX_KNOWN_HOSTS_BYTES = 64 * 1024 * 1024

HOSTKEY_ADVICE = (
    "if the host was reinstalled, check the new key out of band and update known_hosts "
    "(fleetscan never prompts and never accepts unknown keys by default)"
)


class Verdict(enum.Enum):
    TRUSTED = "trusted"
    UNKNOWN = "unknown"  # no key recorded for this name
    CHANGED = "changed"  # a recorded key differs, or no recorded type is offered
    REVOKED = "revoked"


def known_hosts_name(host: str, port: int) -> str:
    """The name a known_hosts line uses for a server: OpenSSH writes
    ``[host]:port`` for any port but 22."""
    return host if port == SSH_PORT else f"[{host}]:{port}"


@dataclass(frozen=True, slots=True)
class LookupName:
    """What OpenSSH looks a server up under: ``name`` (the HostKeyAlias as is,
    else host / [host]:port), and for another port than 22 the bare host as a
    ``fallback`` that may only *confirm* a key when nothing is recorded under
    ``[host]:port`` ("found matching key w/out port" in ``ssh -v``)."""

    name: str
    fallback: str | None = None

    def __str__(self) -> str:
        return self.name


def lookup_name(host: str, port: int, alias: str | None = None) -> LookupName:
    if alias:
        return LookupName(alias)
    name = known_hosts_name(host, port)
    return LookupName(name, host if name != host else None)


def fingerprint(blob: bytes) -> str:
    """``SHA256:...`` as ``ssh-keygen -lf`` and ``ssh`` print it."""
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def blob_type(blob: bytes) -> str:
    """The key type written inside a public-key blob (``ssh-ed25519`` ...)."""
    if len(blob) < 4:
        return ""
    (size,) = struct.unpack(">I", blob[:4])
    return blob[4 : 4 + size].decode("ascii", "replace")


@lru_cache(maxsize=4096)
def _glob(pattern: str) -> re.Pattern[str]:
    """OpenSSH's match_pattern: only ``*`` and ``?`` are special (brackets of
    ``[host]:port`` are literal)."""
    parts = ["." if c == "?" else ".*" if c == "*" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _hashed_match(pattern: str, name: str) -> bool:
    try:
        _, magic, salt64, hash64 = pattern.split("|")
        salt, wanted = base64.b64decode(salt64), base64.b64decode(hash64)
    except (ValueError, binascii.Error):
        return False
    if magic != "1":
        return False
    got = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return hmac.compare_digest(got, wanted)


@dataclass(frozen=True, slots=True)
class Entry:
    """One usable known_hosts line."""

    marker: str | None  # None, "cert-authority" or "revoked"
    patterns: str
    blob: bytes
    origin: str  # file:line

    @property
    def key_type(self) -> str:
        return blob_type(self.blob)

    def openssh_key(self) -> str:
        return f"{self.key_type} {base64.b64encode(self.blob).decode()}"

    def matches(self, name: str) -> bool:
        name = name.lower()
        if self.patterns.startswith("|"):
            return _hashed_match(self.patterns, name)
        positive = False
        for pattern in self.patterns.split(","):
            negated = pattern.startswith("!")
            if _glob(pattern[1:] if negated else pattern).fullmatch(name):
                if negated:
                    return False
                positive = True
        return positive


def parse_line(text: str, origin: str) -> Entry | None:
    """One known_hosts line; comments, blank and unreadable lines give None
    (OpenSSH skips them too)."""
    fields = text.split()
    if not fields or fields[0].startswith("#"):
        return None
    marker = None
    if fields[0].startswith("@"):
        marker = fields.pop(0)[1:]
        if marker not in ("cert-authority", "revoked"):
            return None
    if len(fields) < 3:
        return None
    try:
        blob = base64.b64decode(fields[2], validate=True)
    except (ValueError, binascii.Error):
        return None
    entry = Entry(marker, fields[0], blob, origin)
    return entry if entry.key_type == fields[1] else None


@dataclass(frozen=True, slots=True)
class KnownHosts:
    """Every entry of a set of known_hosts files.

    Looked up once per host of a run: entries whose patterns are plain names
    (``[ip]:port``, the common case) are indexed by name, so a fleet of N hosts
    against an N-line file costs N lookups, not N² pattern matches, and an
    index hit needs no pattern match at all (the name IS one of its patterns).
    Hashed, wildcard and negated entries are still matched one by one; the
    ``@revoked`` keys are a set."""

    entries: tuple[Entry, ...]
    _plain: dict[str, list[int]] = field(init=False, repr=False, compare=False)
    _other: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _revoked: frozenset[bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        plain: dict[str, list[int]] = {}
        other: list[int] = []
        for i, entry in enumerate(self.entries):
            patterns = entry.patterns
            if patterns.startswith("|") or any(c in patterns for c in "*?!"):
                other.append(i)
                continue
            for name in dict.fromkeys(patterns.lower().split(",")):
                plain.setdefault(name, []).append(i)
        object.__setattr__(self, "_plain", plain)
        object.__setattr__(self, "_other", tuple(other))
        revoked = frozenset(e.blob for e in self.entries if e.marker == "revoked")
        object.__setattr__(self, "_revoked", revoked)

    def for_name(self, name: str, marker: str | None = None) -> list[Entry]:
        plain = self._plain.get(name.lower(), ())
        if not self._other:  # the common case: every hit is an exact name
            return [e for e in (self.entries[i] for i in plain) if e.marker == marker]
        exact = set(plain)
        hits = sorted({*exact, *self._other})
        return [
            e
            for i, e in ((i, self.entries[i]) for i in hits)
            if e.marker == marker and (i in exact or e.matches(name))
        ]

    def key_types(self, lookup: LookupName | str) -> list[str]:
        """Key types recorded for the server, first seen first (asked for first)."""
        if isinstance(lookup, str):
            lookup = LookupName(lookup)
        entries = self.for_name(lookup.name)
        if not entries and lookup.fallback:
            entries = self.for_name(lookup.fallback)
        return list(dict.fromkeys(e.key_type for e in entries))

    def revoked(self, blob: bytes) -> bool:
        return blob in self._revoked


def file_stamp(files: list[str] | tuple[str, ...]) -> tuple[tuple[str, int, int], ...]:
    """Which version of each file (path, mtime, size; -1 when missing): a cache
    keyed on it notices edits, so a long-running scheduler sees a known_hosts
    or ssh config that changed."""
    out = []
    for name in files:
        path = os.path.expanduser(name)  # os.path: called for every host
        try:
            st = os.stat(path)
        except OSError:
            out.append((path, -1, -1))
        else:
            out.append((path, st.st_mtime_ns, st.st_size))
    return tuple(out)


def load_known_hosts(files: list[str] | tuple[str, ...]) -> KnownHosts:
    """The entries of ``files`` (missing files are empty), parsed once per version."""
    return _parse(file_stamp(files))


def read_stamped(
    stamp: tuple[tuple[str, int, int], ...], limit: int, what: str
) -> Iterator[tuple[str, str]]:
    """(name, text) of each regular file of ``stamp`` that exists, read up to
    ``limit`` bytes; an unreadable one is a TransportError naming it."""
    for name, _mtime, size in stamp:
        path = Path(name)
        if size < 0 or not path.is_file():
            continue  # missing, or not a regular file (a FIFO would hang)
        try:
            with path.open("rb") as handle:
                yield name, handle.read(limit).decode("utf-8", "replace")
        except OSError as exc:
            raise TransportError(f"cannot read {what} {name}: {exc.strerror}") from None


@lru_cache(maxsize=16)
def _parse(stamp: tuple[tuple[str, int, int], ...]) -> KnownHosts:
    entries: list[Entry] = []
    for name, text in read_stamped(stamp, MAX_KNOWN_HOSTS_BYTES, "known_hosts"):
        for number, line in enumerate(text.splitlines(), 1):
            if entry := parse_line(line, f"{name}:{number}"):
                entries.append(entry)
    return KnownHosts(tuple(entries))


def verdict(known: KnownHosts, lookup: LookupName | str, blob: bytes) -> tuple[Verdict, str]:
    """Is the plain key ``blob`` the one recorded for ``lookup``? With the reason."""
    if isinstance(lookup, str):
        lookup = LookupName(lookup)
    name = lookup.name
    offered = blob_type(blob)
    if known.revoked(blob):
        return Verdict.REVOKED, (
            f"the {offered} key of {name} ({fingerprint(blob)}) is marked @revoked in known_hosts"
        )
    entries = known.for_name(name)
    if any(e.blob == blob for e in entries):
        return Verdict.TRUSTED, ""
    fallback = known.for_name(lookup.fallback) if lookup.fallback and not entries else []
    if any(e.blob == blob for e in fallback):
        return Verdict.TRUSTED, ""
    same_type = [e for e in entries if e.key_type == offered]
    if same_type:
        return Verdict.CHANGED, (
            f"the {offered} key of {name} changed: the host showed {fingerprint(blob)}, "
            f"known_hosts has {fingerprint(same_type[0].blob)} ({same_type[0].origin})"
        )
    if entries:
        types = ", ".join(known.key_types(name))
        return Verdict.CHANGED, (
            f"the host offered only a {offered} key ({fingerprint(blob)}); known_hosts has "
            f"only {types} for {name}, and the host did not show that key"
        )
    if known.for_name(name, "cert-authority"):
        return Verdict.UNKNOWN, (
            f"no key for {name} in known_hosts, only a @cert-authority line; the host showed "
            f"a plain {offered} key ({fingerprint(blob)}), not a certificate signed by it"
        )
    return Verdict.UNKNOWN, (
        f"no key for {name} in known_hosts (unknown host; it showed {offered} {fingerprint(blob)})"
    )


def hostkey_message(reason: str, where: str = "") -> str:
    """The one wording of a host-key refusal, for every transport."""
    return f"{where}host key not verified against known_hosts ({reason}); {HOSTKEY_ADVICE}"


# --------------------------------------------------------------------------- accept-new

_journal_lock = threading.Lock()
_journal: list[tuple[str, LearnedKey]] = []


def known_hosts_line(name: str, blob: bytes, hashed: bool = False) -> str:
    """One OpenSSH known_hosts line (``|1|salt|hash`` host with ``hashed``)."""
    host = name
    if hashed:
        salt = os.urandom(20)
        digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
        host = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"
    return f"{host} {blob_type(blob)} {base64.b64encode(blob).decode()}\n"


def append_lines(path: str, lines: list[str]) -> None:
    """Append to a known_hosts file (created 0600), locked against other writers."""
    target = Path(path).expanduser()
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write("".join(lines))


def decide(
    known: KnownHosts,
    lookup: LookupName,
    blob: bytes,
    *,
    accept_new: str | None = None,
    host: str = "",
) -> tuple[Verdict, str]:
    """:func:`verdict`, with OpenSSH's ``StrictHostKeyChecking=accept-new`` when
    ``accept_new`` names a file: an unknown key is recorded there and trusted;
    a changed or revoked key is still refused."""
    outcome = verdict(known, lookup, blob)
    if outcome[0] is not Verdict.UNKNOWN or accept_new is None:
        return outcome
    name = lookup.name
    with _journal_lock:
        append_lines(accept_new, [known_hosts_line(name, blob)])
        _journal.append(
            (accept_new, LearnedKey(host or name, name, blob_type(blob), fingerprint(blob)))
        )
    return Verdict.TRUSTED, ""


def learned_keys(path: str, since: int = 0) -> tuple[int, tuple[LearnedKey, ...]]:
    """Keys recorded in ``path`` by this process from journal position ``since``
    on, and the position now."""
    with _journal_lock:
        items = _journal[since:]
        return len(_journal), tuple(k for p, k in items if p == path)
