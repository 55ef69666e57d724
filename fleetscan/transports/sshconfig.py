"""ssh_config as fleetscan reads it, for every transport: only what a scanner needs.

The operator's ssh_config files are read here, once per version, and handed to
the SSH libraries as a *filtered* text:

* ``Include`` is expanded here (globs, ``~``, relative to ``~/.ssh``; at most
  16 levels), so the libraries never read a file this filter did not see.
* ``Match`` blocks with an ``exec`` criterion are **never evaluated**: the
  block is turned into one that never applies. Evaluating them means running
  a local shell with ``%h`` (a name from the inventory) expanded in it.
* Only the directives of :data:`HONOURED` pass; every other line is dropped.
  Above all a scanner never forwards anything (``ForwardAgent``,
  ``ForwardX11``, ``LocalForward``/``RemoteForward``/``DynamicForward``),
  never runs ``RemoteCommand``/``LocalCommand`` (``PermitLocalCommand``), never
  sends local environment variables (``SendEnv``/``SetEnv``), and takes its
  host-key rules and timeouts from the command line, not from the config.

It also holds the one ProxyJump parser (``[user@]host[:port]``,
``ssh://[user@]host[:port]``, ``[v6]:port``) and the chain expansion both
transports use.
"""

from __future__ import annotations

import atexit
import glob
import hashlib
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from fleetscan.errors import TransportError
from fleetscan.transports.hostkeys import file_stamp, read_stamped

#: lower-case directive names passed on to the SSH libraries
HONOURED = frozenset(
    {
        "host",
        "match",
        "hostname",
        "port",
        "user",
        "identityfile",
        "identitiesonly",
        "certificatefile",
        "identityagent",
        "proxyjump",
        "proxycommand",
        "hostkeyalias",
        "kexalgorithms",
        "ciphers",
        "macs",
        "pubkeyacceptedalgorithms",
        "pubkeyacceptedkeytypes",
        "addressfamily",
        "bindaddress",
        "compression",
        "serveraliveinterval",
        "serveralivecountmax",
        "rekeylimit",
    }
)
#: a Match line that matches no host in OpenSSH, asyncssh or paramiko
NEVER_MATCH = "Match host !*,*"
MAX_INCLUDE_DEPTH = 16
MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_CHAIN = 8

_LINE = re.compile(r"\s*([A-Za-z][A-Za-z0-9]*)\s*(?:=\s*|\s+|$)(.*)$")


def _include_paths(args: str) -> list[Path]:
    out: list[Path] = []
    for word in shlex.split(args, comments=False):
        path = Path(word).expanduser()
        if not path.is_absolute():
            path = Path.home() / ".ssh" / path
        out.extend(Path(p) for p in sorted(glob.glob(str(path))))
    return out


def _read(path: Path) -> str:
    with path.open("rb") as handle:
        return handle.read(MAX_CONFIG_BYTES).decode("utf-8", "replace")


def _filter(text: str, depth: int, never: bool, out: list[str]) -> bool:
    """Append the honoured lines of ``text`` to ``out``; True when it opened a
    Host/Match block (the caller then restores its own)."""
    header = ""
    opened = False
    for raw in text.splitlines():
        m = _LINE.match(raw)
        if not m or raw.lstrip().startswith("#"):
            continue
        key, args = m.group(1).lower(), m.group(2).strip()
        if key in ("host", "match"):
            opened = True
            words = shlex.split(args, comments=True) if key == "match" else []
            runs_exec = any(w.lower().lstrip("!") == "exec" for w in words)
            header = NEVER_MATCH if (never or runs_exec) else raw.strip()
            out.append(header)
        elif key == "include":
            if depth >= MAX_INCLUDE_DEPTH:
                raise TransportError("ssh config: Include nested more than 16 levels")
            inner_never = never or header == NEVER_MATCH
            for path in _include_paths(args):
                if path.is_file() and _filter(_read(path), depth + 1, inner_never, out) and header:
                    out.append(header)  # OpenSSH: the includer's block goes on after it
        elif key in HONOURED:
            out.append(raw.strip())
    return opened


def filtered_text(files: list[str] | tuple[str, ...]) -> str:
    """The honoured part of ``files`` as one config text (cached per version)."""
    return _filtered(file_stamp(files))


@lru_cache(maxsize=16)
def _filtered(stamp: tuple[tuple[str, int, int], ...]) -> str:
    out: list[str] = []
    for name, text in read_stamped(stamp, MAX_CONFIG_BYTES, "ssh config"):
        try:
            _filter(text, 0, False, out)
        except ValueError as exc:  # unbalanced quotes
            raise TransportError(f"ssh config {name}: {exc}") from None
        out.append("Host *")  # the next file starts outside any block
    return "\n".join(out) + "\n"


_workdir: str | None = None


def filtered_files(files: list[str] | tuple[str, ...]) -> list[str]:
    """The filtered config as a private file, for libraries that only read
    paths (asyncssh); an empty list when no config is read."""
    global _workdir
    if not files:
        return []
    text = filtered_text(files)
    if _workdir is None:
        _workdir = tempfile.mkdtemp(prefix="fleetscan-sshconfig-")
        atexit.register(shutil.rmtree, _workdir, True)
    path = Path(_workdir) / (hashlib.sha256(text.encode()).hexdigest()[:24] + ".conf")
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.chmod(0o600)
        tmp.replace(path)
    return [str(path)]


def names_keyword(files: list[str] | tuple[str, ...], keyword: str) -> bool:
    """Whether any of ``files`` (already filtered) sets ``keyword`` anywhere, in
    any Host or Match block (OpenSSH keywords are case-insensitive, and
    ``Keyword=value`` is the same as ``Keyword value``)."""
    want = keyword.lower()
    for _name, text in read_stamped(file_stamp(files), MAX_CONFIG_BYTES, "ssh config"):
        for line in text.splitlines():
            m = _LINE.match(line)
            if m and m.group(1).lower() == want:
                return True
    return False


def parse_jump(spec: str) -> tuple[str | None, str, int | None]:
    """``[user@]host[:port]`` or ``ssh://[user@]host[:port]`` (v6 in brackets)."""
    text = spec.strip().removeprefix("ssh://")
    user, at, rest = text.rpartition("@")
    host, port = rest, None
    if rest.startswith("["):
        close = rest.find("]")
        host = rest[1:close] if close > 0 else rest
        tail = rest[close + 1 :] if close > 0 else ""
        port = int(tail[1:]) if tail.startswith(":") and tail[1:].isdigit() else None
    elif rest.count(":") == 1:
        name, _, digits = rest.partition(":")
        if digits.isdigit():
            host, port = name, int(digits)
    return (user if at else None), host, port


def split_jumps(spec: str | None) -> list[str]:
    """A ProxyJump value as its hops (``none`` and empty: no hop)."""
    if not spec or spec.strip().lower() == "none":
        return []
    return [j.strip() for j in spec.split(",") if j.strip()]


def full_chain(jumps: list[str], config_jumps: Callable[[str], list[str]]) -> list[str]:
    """Every hop to open, outermost first, as OpenSSH opens them: the first hop
    of a chain is itself reached through *its* ssh_config ProxyJump (the later
    hops are reached through the ones before them). Refused when longer than
    :data:`MAX_CHAIN` (a loop in the config)."""
    chain = list(jumps)
    while chain:
        parents = config_jumps(chain[0])
        if not parents:
            return chain
        chain = parents + chain
        if len(chain) > MAX_CHAIN:
            raise TransportError(
                f"ProxyJump chain longer than {MAX_CHAIN} hops (a loop in ssh config?): "
                + " -> ".join(chain[:MAX_CHAIN])
            )
    return chain
