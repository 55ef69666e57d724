"""macOS and FreeBSD ``netstat`` (``-an``, ``-anv``, ``-Aa``, ``-AanP``, ``-aT``, ``-Abn`` ...).

BSD netstat prints ``host.port`` (port after the LAST dot), protocols
``tcp4``/``tcp6``/``tcp46``/``udp4``/``udp6``/``udp46`` and many sections, of
which only ``Active Internet connections`` matters (UNIX, Multipath, kernel
event/control sections are skipped). Columns vary by flag, so a row is read
by shape: optional leading pcb/socket and flowhash columns, the protocol,
numeric counters, then the local and foreign address; what follows is
interpreted with the column names of the section header.

Decisions (each pinned by a test):

* ``tcp46``/``udp46`` are dual-stack sockets: reported as family 6 ``::``.
* Listening: a TCP row in state ``LISTEN``; in layouts WITHOUT a state column
  (FreeBSD ``-T``, ``-x``) a TCP row whose foreign address is ``*.*`` (no
  peer). That also counts a socket that is bound but not yet listening, a
  short-lived and rare case: over-reporting is the safe side for an audit.
  A UDP row with a bound port and foreign ``*.*`` is a bound socket
  (state ``UNCONN``); ``*.*`` locals (unbound sockets) are skipped.
* Truncation: without ``-W`` netstat cuts host names/IPv6 to 16 characters (12
  with ``-A`` and service names) and the whole ``host.port`` to the column
  width (18 with ``-A``, so ``192.168.1.221.5486`` may be port 54860). A
  LISTENING row whose host or port may have been cut cannot be reported
  truthfully, so it becomes an unparsed line (the host is then not reported
  complete: rerun with ``-W``). Truncated connections are skipped as usual.
* Service names (``*.ssh``, ``localhost.smtp``) are mapped with a small
  built-in table; an unknown name makes the row unparsed, never guessed.
* Owners: only ``-v`` shows them. Up to macOS 11 a numeric ``pid`` column
  (name unknown: ``Process(name=None, pid=N)``); macOS 12+ a ``process:pid``
  column whose name may contain spaces and parentheses (``Google
  Chrome:66713``): it is located by counting the header's columns from both
  sides, and the pid is read after the last ``:``. ``owners_known`` is True
  only when such a column is present.
* Rows describing the same proto/address/port are merged (one per socket is
  printed, e.g. several ``udp4 *.5353``).
* A ``process:pid`` holding newlines breaks its row: the row is read whole;
  an owner that cannot be read leaves the socket with no process and its
  line unparsed.

Schema (see :mod:`fleetscan.parsers.base`): with ``-v`` the pid (and, macOS
12+, the name); user never.

Example::

    $ netstat -anv
    Active Internet connections (including servers)
    Proto Recv-Q Send-Q  Local Address   Foreign Address (state)  rhiwat shiwat   pid  epid
    tcp4       0      0  *.22            *.*             LISTEN   131072 131072     1     0

    [{"proto": "tcp", "family": 4, "address": "0.0.0.0", "port": 22, "state": "LISTEN",
      "processes": [{"name": null, "pid": 1, "user": null}]}]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial

from fleetscan.addresses import normalise_address, split_bsd_host_port
from fleetscan.model import Listener, ParseResult, Process, UnparsedLine
from fleetscan.parsers.base import (
    REPEAT_WINDOW,
    OwnerUnread,
    ParserInfo,
    RepeatedRows,
    bsd_family_hint,
    join_continuation,
    make_listener,
    merge_duplicates,
    split_lines,
)
from fleetscan.parsers.services import port_of

info = ParserInfo(
    name="bsd-netstat",
    description="macOS and FreeBSD netstat (-an, -anv, -Aa, -AanP, -aT, -Abn, -W)",
    commands=(
        "netstat -an",
        "netstat -anv",
        "netstat -Aa",
        "netstat -AanP",
        "netstat -AaT",
        "netstat -Aax",
        "netstat -aT",
        "netstat -An",
        "netstat -Abn",
        "netstat -anW",
        "netstat",
    ),
)

_PROTO = re.compile(r"^(tcp|udp)(4|6|46)?$")
_OTHER_PROTO = re.compile(r"^(icm4|icm6|icmp|icmp6|raw|raw4|raw6|rip6|divert|div|sctp\d*|mptcp)$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_STATE = re.compile(r"^[A-Z][A-Z0-9_]+$")
_INET_TITLE = re.compile(r"^Active Internet6? connections")
_OTHER_TITLE = re.compile(r"^(Active |Registered )")
_TOKEN = re.compile(r"\S+")
_HOST_CAP = 16  # netstat's "%.16s" for host names without -W
_HOST_CAP_A_NAMES = 12  # "%.12s" with -A and service names
_DEFAULT_WIDTH = 22
_A_WIDTH = 18


@dataclass(frozen=True, slots=True)
class _Layout:
    """What a section header says about the rows below it."""

    has_state: bool = True
    after: tuple[str, ...] = ()  # column names after "Foreign Address", without "(state)"
    width: int | None = None  # width of the local address column (None: unknown)
    leading: bool = False  # -A: socket/pcb columns before Proto

    @property
    def owner_column(self) -> str | None:
        for name in ("process:pid", "pid"):
            if name in self.after:
                return name
        return None


def parse(text: str, first_line: int = 1) -> ParseResult:
    """Parse BSD/macOS netstat output."""
    section: str | None = None  # None (before any title), "inet" or "other"
    layout: _Layout | None = None
    owners_known: bool | None = None
    listeners: list[Listener] = []
    unparsed: list[UnparsedLine] = []
    shift = first_line - 1  # line numbers are of the whole output (see base)
    recent: RepeatedRows[Listener] = RepeatedRows(REPEAT_WINDOW)
    lines = split_lines(text)
    joined_up_to = 0
    for number, line in enumerate(lines, 1):
        if number <= joined_up_to:
            continue
        stripped = line.strip()
        if not stripped:
            continue
        if _INET_TITLE.match(stripped):
            section, layout = "inet", None
            recent.forget()  # a row reads by its table's layout
            continue
        if _OTHER_TITLE.match(stripped):
            section = "other"
            continue
        if section == "other":
            continue  # UNIX / Multipath / kernel sections: not internet sockets
        if "Local Address" in line and "Foreign Address" in line:
            layout = _read_header(line)
            recent.forget()
            owners_known = (owners_known or False) or layout.owner_column is not None
            continue
        row_layout = layout or _guess_layout(line)
        # a row repeated word for word under one layout: its reading is shared
        outcome: Listener | OwnerUnread | str | None = recent.get(line)
        if outcome is None:
            outcome = _read_row(line, number + shift, row_layout)
            if isinstance(outcome, Listener):
                recent.keep(line, outcome)
        if isinstance(outcome, OwnerUnread):
            # a process name holding newlines breaks the row over several lines
            found = join_continuation(
                lines,
                number - 1,
                partial(_whole_row, number=number + shift, layout=row_layout),
                stop=_starts_row,
            )
            if found is not None:
                outcome, extra = found
                joined_up_to = number + extra
            else:
                unparsed.append(UnparsedLine(number + shift, line))
                outcome = outcome.listener
        if isinstance(outcome, Listener):
            listeners.append(outcome)
        elif outcome == "unreadable":
            unparsed.append(UnparsedLine(number + shift, line))
    return ParseResult(
        parser=info.name,
        listeners=merge_duplicates(listeners),
        unparsed=tuple(unparsed),
        owners_known=bool(owners_known),
    )


def _read_header(line: str) -> _Layout:
    local_at = line.find("Local Address")
    foreign_at = line.find("Foreign Address")
    tail = line[foreign_at + len("Foreign Address") :].split()
    width = foreign_at - local_at - 1 if foreign_at > local_at >= 0 else None
    return _Layout(
        has_state="(state)" in tail,
        after=tuple(word for word in tail if word != "(state)" and word != "ID"),
        width=width,
        leading=not line.lstrip().startswith("Proto"),
    )


def _guess_layout(line: str) -> _Layout:
    """No header seen (e.g. ``netstat -an | grep LISTEN``): default widths."""
    first = line.split()[0] if line.split() else ""
    leading = bool(_HEX.match(first)) and not _PROTO.match(first)
    return _Layout(width=_A_WIDTH if leading else _DEFAULT_WIDTH, leading=leading)


def _whole_row(text: str, number: int, layout: _Layout) -> Listener | None:
    outcome = _read_row(text, number, layout)
    return outcome if isinstance(outcome, Listener) else None


def _starts_row(line: str) -> bool:
    """A line that begins a row of its own (pcb columns, then a protocol)."""
    words = line.split()[:3]
    return any(_PROTO.match(w) or _OTHER_PROTO.match(w) for w in words)


def _read_row(line: str, number: int, layout: _Layout) -> Listener | OwnerUnread | str:
    """A Listener, "skip" (a recognised non-listening row), "unreadable", or
    OwnerUnread (the socket is known, its owner columns are not)."""
    spans = list(_TOKEN.finditer(line))
    words = [m.group() for m in spans]
    proto_at = next(
        (i for i, w in enumerate(words[:3]) if _PROTO.match(w) or _OTHER_PROTO.match(w)), None
    )
    if proto_at is None or not all(_HEX.match(w) for w in words[:proto_at]):
        return "unreadable"
    proto_word = words[proto_at]
    if _OTHER_PROTO.match(proto_word):
        return "skip"
    at = proto_at + 1
    while at < len(words) and words[at].isdigit():
        at += 1
    if at + 1 >= len(words):
        return "unreadable"
    local, foreign = words[at], words[at + 1]
    rest_at = at + 2
    try:
        host, port_text = split_bsd_host_port(local)
        split_bsd_host_port(foreign)
    except ValueError:
        return "unreadable"
    state: str | None = None
    if layout.has_state and rest_at < len(words) and _STATE.match(words[rest_at]):
        state = words[rest_at]
        rest_at += 1
    is_tcp = proto_word.startswith("tcp")
    if port_text == "*":
        return "skip"  # not bound to a port: neither listening nor bound
    if is_tcp:
        listening = state == "LISTEN" if state is not None else foreign == "*.*"
    else:
        listening = foreign == "*.*"
    if not listening:
        return "skip"
    port = port_of(port_text.strip())
    if port is None or _maybe_truncated(local, host, port_text, layout):
        return "unreadable"
    processes = _owner(line, spans[rest_at:], layout)
    listener = make_listener(
        tcp=is_tcp,
        address=normalise_address(host, bsd_family_hint(proto_word, host)),
        port=port,
        processes=processes or (),
        raw=line,
        line=number,
    )
    return listener if processes is not None else OwnerUnread(listener)


def _maybe_truncated(local: str, host: str, port_text: str, layout: _Layout) -> bool:
    """True when netstat may have cut this address (see the module docstring)."""
    width = layout.width
    if width is None or width > _DEFAULT_WIDTH:  # -W: nothing is cut
        return False
    cap = _HOST_CAP_A_NAMES if layout.leading and not port_text.isdigit() else _HOST_CAP
    if host != "*" and len(host) >= cap:
        return True
    if len(local) >= width:
        # the port is complete only if it could not have been longer
        return not (port_text.isdigit() and len(port_text) >= 5)
    return False


def _owner(line: str, rest: list[re.Match[str]], layout: _Layout) -> tuple[Process, ...] | None:
    """The owning process from ``-v`` columns; () without them, None if unreadable."""
    column = layout.owner_column
    if column is None:
        return ()
    index = layout.after.index(column)
    trailing = len(layout.after) - index - 1
    end = len(rest) - trailing  # exclusive end of the owner field
    if column == "pid":
        if end < 1 or end > len(rest) or not rest[end - 1].group().isdigit():
            return None
        return (Process(name=None, pid=int(rest[end - 1].group())),)
    if index >= end or end > len(rest):
        return None
    field = line[rest[index].start() : rest[end - 1].end()]
    name, sep, pid = field.rpartition(":")
    if not sep or not pid.isdigit():
        return None
    return (Process(name=name.strip(), pid=int(pid)),)


_DETECT_ROW = re.compile(
    r"^\s*(?:[0-9a-f]+\s+){0,2}(?:tcp|udp)(?:4|6|46)\s+(?:\d+\s+)*(\S+)\s+(\S+)"
)


def detect(text: str) -> float:
    """tcp4/tcp6/tcp46/udp4 rows with dotted ``host.port`` addresses (Linux
    netstat's ``tcp6`` rows use ``:port``), plus the ``(state)`` header."""
    rows = 0
    for line in split_lines(text)[:400]:
        match = _DETECT_ROW.match(line)
        if match and _dotted(match.group(1)) and _dotted(match.group(2)):
            rows += 1
    if rows == 0:
        return 0.0
    score = 0.7 + 0.1 * min(rows, 5) / 5
    if "(state)" in text:
        score += 0.15
    return min(score, 1.0)


def _dotted(token: str) -> bool:
    return token.rfind(".") > token.rfind(":")
