"""The parser registry: one module per platform + command.

Every module listed in :data:`MODULES` follows the contract of
:mod:`fleetscan.parsers.base` (docstring with schema and example, ``info``,
``parse``, ``detect``). Look a parser up by name (:func:`get`), by the command
that produced the output (:func:`for_command`) or by the output itself
(:func:`detect`); :func:`parse` does all three, and is what ``fleetscan
parse`` and the collectors call.
"""

from __future__ import annotations

import importlib
import shlex
from functools import cache

from fleetscan.model import ParseResult
from fleetscan.parsers.base import ParserSpec, never_raises

#: every parser module (each defines ``info``, ``parse`` and ``detect``)
MODULES: tuple[str, ...] = (
    "fleetscan.parsers.linux_ss",
    "fleetscan.parsers.linux_netstat",
    "fleetscan.parsers.linux_proc",
    "fleetscan.parsers.lsof",
    "fleetscan.parsers.windows_netstat",
    "fleetscan.parsers.bsd_netstat",
    "fleetscan.parsers.freebsd_sockstat",
)


@cache
def all_parsers() -> tuple[ParserSpec, ...]:
    """Every registered parser, its ``parse`` guarded by :func:`never_raises`."""
    specs = []
    for name in MODULES:
        module = importlib.import_module(name)
        info = module.info
        specs.append(ParserSpec(info, never_raises(info.name, module.parse), module.detect))
    return tuple(specs)


def get(name: str) -> ParserSpec:
    for spec in all_parsers():
        if spec.name == name:
            return spec
    known = ", ".join(p.name for p in all_parsers())
    raise KeyError(f"unknown parser {name!r} (known: {known})")


def _command_key(command: str) -> tuple[str, frozenset[str]]:
    """``sudo ss -tulnp`` and ``ss -nltpu`` give the same key: program + flag letters."""
    words = [w for w in shlex.split(command) if w not in ("sudo", "-n", "env", "LC_ALL=C")]
    if not words:
        return ("", frozenset())
    program = words[0].rsplit("/", 1)[-1]
    flags: set[str] = set()
    for w in words[1:]:
        if w.startswith("--"):
            flags.add(w)
        elif w.startswith("-"):
            flags.update(w[1:])
    return program, frozenset(flags)


def for_command(command: str) -> ParserSpec:
    """The parser for the output of ``command`` (exact flags, else same program)."""
    program, flags = _command_key(command)
    candidates: list[ParserSpec] = []
    for spec in all_parsers():
        for known in spec.commands:
            kprog, kflags = _command_key(known)
            if kprog == program and kflags == flags:
                return spec
            if kprog == program:
                candidates.append(spec)
    if candidates:
        return candidates[0]
    raise KeyError(f"no parser for command {command!r}")


def detect(text: str) -> ParserSpec:
    """The parser whose format ``text`` most looks like."""
    best: tuple[float, ParserSpec] | None = None
    for spec in all_parsers():
        try:
            score = spec.detect(text)
        except Exception:  # a detector must never break detection
            score = 0.0
        if best is None or score > best[0]:
            best = (score, spec)
    if best is None or best[0] <= 0.0:
        raise KeyError("could not recognise the format of this output; pass --command")
    return best[1]


def parse(text: str, *, command: str | None = None, parser: str | None = None) -> ParseResult:
    """Parse ``text`` with the named parser, the one for ``command``, or the detected one."""
    if parser:
        spec = get(parser)
    elif command:
        spec = for_command(command)
    else:
        spec = detect(text)
    return spec.parse(text)
