"""The parser contract, its one guard, and the helpers every parser shares.

A parser is a module of this package, listed in
:data:`fleetscan.parsers.MODULES`, that defines (the jc layout):

* a module docstring: the formats it reads, the quirks it copes with, which
  fields of the schema it fills, and an ``Example::`` block (a command, its
  output, and the listeners it gives as JSON) that
  ``tests/parsers/test_contract.py`` runs;
* ``info``: a :class:`ParserInfo` (stable name, description, commands);
* ``parse(text, first_line=1) -> ParseResult``: pure, and must not raise;
  ``first_line`` is the number of the text's first line in the output it was
  cut from (a collector's listing is one section of its script's output), so
  listeners and unparsed lines are numbered as that whole output, with no
  second pass over them;
* ``detect(text) -> float``: confidence 0..1 that ``text`` is its format.

The registry (:mod:`fleetscan.parsers`) wraps every ``parse`` in
:func:`never_raises`, once, and hands out :class:`ParserSpec`.

Schema (the JSON contract of ``fleetscan parse``, see README): a result is
``{"parser", "listeners": [...], "unparsed": [{"line", "text"}]}``; a listener
is ``{"proto": "tcp"|"udp", "family": 4|6, "address", "port", "state":
"LISTEN"|"UNCONN", "processes": [{"name", "pid", "user"}]}``; an owner field
the output does not show is ``null``, never an empty string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Generic, Protocol, TypeVar

from fleetscan.addresses import Address, normalise_address
from fleetscan.model import Listener, ParseResult, Process, UnparsedLine


class ParseFn(Protocol):
    """A parser's ``parse``: see the module docstring."""

    def __call__(self, text: str, first_line: int = 1) -> ParseResult: ...


DetectFn = Callable[[str], float]


@dataclass(frozen=True, slots=True)
class ParserInfo:
    """What a parser module declares about itself (its ``info``).

    name:        stable id, printed as ``"parser"`` in the JSON contract
                 (e.g. ``linux-ss``).
    description: one line for ``fleetscan parse --help`` and the docs.
    commands:    the command lines it reads (first word + flags), used to pick
                 a parser from ``--command``; matching ignores flag order.
    """

    name: str
    description: str
    commands: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ParserSpec:
    """A registered parser: the module's ``info``, its guarded ``parse`` and
    its ``detect``."""

    info: ParserInfo
    parse: ParseFn
    detect: DetectFn

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def commands(self) -> tuple[str, ...]:
        return self.info.commands


def never_raises(name: str, parse: ParseFn) -> ParseFn:
    """The one guard, applied by the registry to every parser: an unforeseen
    error turns every line into an unparsed line (one host's garbage must never
    break a run). Defence in depth; tests show the parsers themselves do not
    raise."""

    def guarded(text: str, first_line: int = 1) -> ParseResult:
        try:
            return parse(text, first_line)
        except Exception:
            lines = split_lines(text) if isinstance(text, str) else []
            return ParseResult(
                parser=name,
                unparsed=tuple(UnparsedLine(i, t) for i, t in enumerate(lines, first_line)),
                owners_known=False,
            )

    guarded.__doc__ = parse.__doc__
    return guarded


def split_lines(text: str) -> list[str]:
    """Lines without their endings (LF or CRLF), as the host printed them.

    Splits on ``\n`` only: ``str.splitlines()`` would also split on ``\x1c``,
    ``\x85`` or ``\u2028``, which a hostile process name can contain.
    """
    # one list of the final strings: splitting first and then cutting each
    # CR held two lists of every line at once (a 16 MiB CRLF flood: +27 MB)
    lines = _LINE_END.split(text) if "\r" in text else text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines and lines[-1].endswith("\r"):
        lines[-1] = lines[-1][:-1]
    return lines


_LINE_END = re.compile("\r?\n")


#: most extra lines one row may span when process names hold newlines (a Linux
#: comm is at most 15 bytes, netstat's program column 19, sockstat's command 10)
MAX_CONTINUATION = 16
#: longest line that can be the inside of a name broken by newlines (a Linux
#: comm is at most 15 bytes, a FreeBSD one 19, netstat's program column 19):
#: a longer line can only be a row's last line, so the joining stops there
MAX_NAME_FRAGMENT = 32

_T = TypeVar("_T")


def join_continuation(
    lines: Sequence[str],
    index: int,
    read: Callable[[str], _T | None],
    *,
    stop: Callable[[str], bool] | None = None,
    limit: int = MAX_CONTINUATION,
) -> tuple[_T, int] | None:
    """Re-read ``lines[index]`` joined (by ``\n``, as the host printed them)
    with the lines after it, one more at a time, until ``read`` accepts the
    text: a process name holding newlines breaks its row over several lines.
    A line for which ``stop`` is true (a complete row of its own, which no
    short name fragment can be) is never swallowed. Returns what ``read``
    gave and how many extra lines it took, or None.

    Only the last line of a broken row holds the rest of the row; the lines
    between are pieces of one name, at most :data:`MAX_NAME_FRAGMENT` long.
    So a longer line that does not complete the row ends the search: garbage
    costs one more reading per line, not ``limit`` growing ones (a hostile
    host's 16 MiB of it would otherwise hold the CPU for minutes)."""
    text = lines[index]
    for extra in range(1, limit + 1):
        if index + extra >= len(lines):
            return None
        line = lines[index + extra]
        if stop is not None and stop(line):
            return None
        text += "\n" + line
        got = read(text)
        if got is not None:
            return got, extra
        if len(line) > MAX_NAME_FRAGMENT:
            return None
    return None


@dataclass(frozen=True, slots=True)
class OwnerUnread:
    """A row whose socket was read but whose owner columns were not: the socket
    is still reported (no process name may hide it), with its owner unknown,
    and the line is kept as unparsed evidence so the host is not complete."""

    listener: Listener


#: evidence lines kept per merged listener (a flood of one socket stays small)
MAX_RAW_LINES = 16
#: distinct rows a parser remembers (:class:`RepeatedRows`) to share the
#: reading of a row printed again word for word (ss, both netstats, sockstat):
#: a flood of one row, or cycling through a few, holds one Listener per
#: distinct row, not one per row
REPEAT_WINDOW = 64


class RepeatedRows(Generic[_T]):
    """What the last rows read to, by their text: a row printed again word for
    word is the same socket (the collector merges repeats in any case), so its
    first reading is shared. At most ``window`` rows are kept; then the memory
    starts over (a flood cycling through a few rows is still one reading per
    row; 100,000 distinct rows keep no more than ``window``)."""

    __slots__ = ("_rows", "_window")

    def __init__(self, window: int) -> None:
        self._rows: dict[str, _T] = {}
        self._window = window

    def get(self, line: str) -> _T | None:
        return self._rows.get(line)

    def keep(self, line: str, value: _T) -> None:
        if len(self._rows) < self._window:
            self._rows[line] = value
        else:
            self._rows.clear()

    def forget(self) -> None:
        """Start over (a new table layout reads rows differently)."""
        self._rows.clear()


_Key = tuple[object, ...]


def unique_processes(processes: Iterable[Process]) -> tuple[Process, ...]:
    """Processes without repeats, in first-seen order."""
    return tuple(dict.fromkeys(processes))


def merge_duplicates(listeners: Iterable[Listener]) -> tuple[Listener, ...]:
    """One listener per (proto, family, address, zone, port), in first-seen order.

    Windows prints one row per socket (``UDP 0.0.0.0:5353`` forty times), lsof
    one per thread, ``SO_REUSEPORT`` gives several sockets on one port: policy
    and reports care about who listens on proto/address/port. Processes are
    united (a named process replaces the same pid with an empty name), ``raw``
    keeps up to :data:`MAX_RAW_LINES` distinct source lines, ``line`` the
    first. Linear in the number of rows, so a flood of one socket is cheap.

    Most hosts have no repeats: a first pass keeps only each key's hash (an
    int) and hands the listeners back as they are when no two hashes meet;
    a dictionary of key tuples for 100,000 sockets cost 14 MB at the peak.
    """
    listeners = tuple(listeners)
    hashes: set[int] = set()
    for item in listeners:
        h = hash((item.proto, item.family, item.address, item.zone, item.port))
        if h in hashes:
            break  # a repeat, or two keys of one hash: the exact merge decides
        hashes.add(h)
    else:
        return listeners
    del hashes
    first: dict[_Key, Listener] = {}
    # only keys seen twice get their lines and processes collected: a host
    # of 100,000 distinct sockets makes no per-socket dictionaries here
    more: dict[_Key, tuple[dict[str, None], dict[Process, None]]] = {}
    for item in listeners:
        key = (item.proto, item.family, item.address, item.zone, item.port)
        found = first.setdefault(key, item)
        if found is item:
            continue
        seen = more.get(key)
        if seen is None:
            seen = more[key] = (dict.fromkeys([found.raw]), dict.fromkeys(found.processes))
        raws, procs = seen
        if len(raws) < MAX_RAW_LINES:
            raws[item.raw] = None
        for p in item.processes:
            procs[p] = None
    out = []
    for k, item in first.items():
        seen = more.get(k)
        if seen is None:
            out.append(item)
            continue
        raws, procs = seen
        merged = tuple(procs)
        if len(raws) == 1 and merged == item.processes:
            out.append(item)
            continue
        named = {(p.pid, p.user) for p in merged if p.name and p.pid is not None}
        merged = tuple(p for p in merged if p.name or p.pid is None or (p.pid, p.user) not in named)
        out.append(replace(item, processes=merged, raw="\n".join(raws)))
    return tuple(out)


#: port numbers above 256 are an int object each; shared, every listener of
#: every host on port 8080 holds the same one (at most 65,536 of them)
_PORTS: dict[int, int] = {}


def make_listener(
    *,
    tcp: bool,
    address: Address,
    port: int,
    processes: Iterable[Process],
    raw: str,
    line: int,
) -> Listener:
    """The one way a parser builds a Listener from a normalised address (see
    :func:`~fleetscan.addresses.normalise_address` and :class:`AddressCache`):
    TCP listeners are ``LISTEN``, bound UDP sockets ``UNCONN``."""
    return Listener(
        "tcp" if tcp else "udp",
        6 if address.family == 6 else 4,
        address.address,
        _PORTS.setdefault(port, port) if 0 <= port <= 65535 else port,
        "LISTEN" if tcp else "UNCONN",
        tuple(processes),
        address.zone,
        raw,
        line,
    )


class AddressCache:
    """Memoises :func:`normalise_address`, which (through :mod:`ipaddress`) is the
    costliest step per row; real outputs repeat the same few addresses."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[tuple[str, int | None], Address] = {}

    def get(self, host: str, family_hint: int | None = None) -> Address:
        key = (host, family_hint)
        found = self._seen.get(key)
        if found is None:
            found = normalise_address(host, family_hint)
            self._seen[key] = found
        return found


def is_number(text: str) -> bool:
    """True for a plain ASCII decimal (``str.isdigit`` also accepts ``²``,
    which ``int`` then rejects)."""
    return text.isdigit() and text.isascii()


_BSD_PROTO = re.compile(r"^(tcp|udp)(4|6|46)?$")


def bsd_family_hint(proto_word: str, host: str) -> int:
    """BSD protocol words carry the family: tcp4, tcp6, tcp46 (dual-stack:
    written as IPv6); a bare tcp/udp falls back to the address's shape."""
    match = _BSD_PROTO.match(proto_word)
    version = match.group(2) if match else None
    if version in ("6", "46"):
        return 6
    if version == "4":
        return 4
    return 6 if ":" in host else 4
