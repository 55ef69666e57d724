"""FreeBSD ``sockstat`` (``-46l``, ``-46lL``, ``-l``, ``-4c``).

::

    USER     COMMAND    PID   FD PROTO  LOCAL ADDRESS         FOREIGN ADDRESS
    root     sshd       668   4  tcp6   *:22                  *:*
    ?        ?          ?     ?  udp6   *:2049                *:*

* ``? ? ? ?``: a socket whose owner sockstat could not find (e.g. the kernel
  NFS server) -- a listener with no process.
* sockstat pads USER to column 9 and COMMAND (cut to 10 characters) to
  column 20 but never inserts a space when a value overflows, so a long user
  name glues COMMAND and PID: ``salt-master python2.781106 35 tcp4`` is
  command ``python2.7``, pid ``81106``. The split is ambiguous; we prefer a
  command seen un-glued elsewhere in the same output, then the longest pid
  that is a valid FreeBSD pid (at most 99999, no leading zero).
* ``tcp46``/``udp46`` are dual-stack: family 6, wildcard ``::``. IPv6 is
  printed unbracketed (``::1:25``, port after the last colon) or bracketed.
* Listening: a state column (``-s``: ``LISTEN``) when present, else a TCP
  socket with foreign ``*:*``; a UDP socket with a bound port and foreign
  ``*:*`` is a bound socket (``UNCONN``). UNIX rows (``stream``, ``dgram``)
  and unbound sockets are skipped. Extra columns of newer releases
  (``PATH STATE``, ``CONN STATE``, ``STACK`` ...) are ignored.
* The same socket shared by several processes is merged into one listener.
* A command holding newlines breaks its row: the row is read whole.

Schema (see :mod:`fleetscan.parsers.base`): user, name (COMMAND) and pid.

Example::

    $ sockstat -46l
    USER     COMMAND    PID   FD PROTO  LOCAL ADDRESS         FOREIGN ADDRESS
    root     sshd       668   4  tcp6   *:22                  *:*

    [{"proto": "tcp", "family": 6, "address": "::", "port": 22, "state": "LISTEN",
      "processes": [{"name": "sshd", "pid": 668, "user": "root"}]}]
"""

from __future__ import annotations

import re
from functools import partial

from fleetscan.addresses import normalise_address, split_host_port
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
    name="freebsd-sockstat",
    description="FreeBSD sockstat (-46l, -46lL, -l, -4c)",
    commands=("sockstat -46l", "sockstat -46lL", "sockstat -l", "sockstat -4c"),
)

_HEADER = re.compile(r"^\s*USER\s+COMMAND\s+PID\s+FD\s+PROTO\s+LOCAL ADDRESS\s+FOREIGN ADDRESS")
_PROTO = re.compile(r"^(tcp|udp)(4|6|46)?$")
_OTHER_PROTO = re.compile(r"^(sctp|udplite|div|raw|icmp)\w*$|^(stream|dgram|seqpac\w*)$")
_TOKEN = re.compile(r"\S+")
_TCP_STATES = frozenset(
    {
        "CLOSED",
        "LISTEN",
        "SYN_SENT",
        "SYN_RCVD",
        "ESTABLISHED",
        "CLOSE_WAIT",
        "FIN_WAIT_1",
        "CLOSING",
        "LAST_ACK",
        "FIN_WAIT_2",
        "TIME_WAIT",
    }
)
_PID_MAX = 99999  # FreeBSD's PID_MAX
_COMMAND_MAX = 10  # sockstat prints "%.10s"
#: the PROTO column is at most this far in (a 10-character command has <= 5 words)
_MAX_PROTO_AT = 16


def parse(text: str, first_line: int = 1) -> ParseResult:
    """Parse FreeBSD sockstat output."""
    shift = first_line - 1  # line numbers are of the whole output (see base)
    lines = split_lines(text)
    known_commands = _plain_commands(lines)
    recent: RepeatedRows[Listener] = RepeatedRows(REPEAT_WINDOW)
    listeners: list[Listener] = []
    unparsed: list[UnparsedLine] = []
    joined_up_to = 0
    for number, line in enumerate(lines, 1):
        if number <= joined_up_to or not line.strip() or _HEADER.match(line):
            continue
        # a row repeated word for word: its reading is shared (RepeatedRows)
        outcome: Listener | OwnerUnread | str | None = recent.get(line)
        if outcome is None:
            outcome = _read_row(line, number + shift, known_commands)
            if isinstance(outcome, Listener):
                recent.keep(line, outcome)
        if outcome == "unreadable":
            # a command holding newlines breaks its row: USER and the start of
            # COMMAND on this line, the rest (PID ... PROTO ...) below
            found: tuple[Listener | str, int] | None = join_continuation(
                lines,
                number - 1,
                partial(_whole_row, number=number + shift, known=known_commands),
                stop=lambda t: isinstance(_read_row(t, 0, known_commands), Listener),
            )
            if found is not None:
                outcome, extra = found
                joined_up_to = number + extra
        elif isinstance(outcome, OwnerUnread):
            unparsed.append(UnparsedLine(number + shift, line))
            outcome = outcome.listener
        if isinstance(outcome, Listener):
            listeners.append(outcome)
        elif outcome == "unreadable":
            unparsed.append(UnparsedLine(number + shift, line))
    return ParseResult(
        parser=info.name, listeners=merge_duplicates(listeners), unparsed=tuple(unparsed)
    )


def _proto_index(words: list[str]) -> int | None:
    """The PROTO column: the LAST inet protocol word followed by an address (a
    command may itself hold ``tcp4`` or spaces), else the first protocol word."""
    first: int | None = None
    for i in range(min(len(words), _MAX_PROTO_AT) - 1, -1, -1):
        word = words[i]
        if _PROTO.match(word) and i + 1 < len(words) and ":" in words[i + 1]:
            return i
        if _PROTO.match(word) or _OTHER_PROTO.match(word):
            first = i
    return first


def _plain_commands(lines: list[str]) -> set[str]:
    """Commands printed un-glued (4 owner columns), to resolve glued ones."""
    found: set[str] = set()
    for line in lines:
        words = line.split()
        at = _proto_index(words)
        if at == 4 and words[2].isdigit():
            found.add(words[1])
    return found


def _whole_row(text: str, number: int, known: set[str]) -> Listener | str | None:
    outcome = _read_row(text, number, known)
    return outcome if isinstance(outcome, Listener) or outcome == "skip" else None


def _read_row(line: str, number: int, known: set[str]) -> Listener | OwnerUnread | str:
    """A Listener, "skip" (recognised, not listening), "unreadable", or
    OwnerUnread (the socket is known, its owner columns are not)."""
    spans = list(_TOKEN.finditer(line))
    words = [m.group() for m in spans]
    at = _proto_index(words)  # 3 owner columns when COMMAND and PID are glued
    if at is None or at + 1 >= len(words):
        return "unreadable"
    proto_word = words[at]
    if _OTHER_PROTO.match(proto_word):
        return "skip"
    # fewer than 3 owner columns: a command holding a newline cut the row
    owner = _owner(line, spans[:at], known) if at >= 3 else "unreadable"
    local = words[at + 1]
    foreign = words[at + 2] if at + 2 < len(words) else "*:*"
    extra = words[at + 3 :]
    try:
        host, port_text = split_host_port(local)
    except ValueError:
        return "unreadable"
    if port_text == "*":
        return "skip"
    is_tcp = proto_word.startswith("tcp")
    state = next((w for w in extra if w in _TCP_STATES), None)
    # without a state column, "no peer" is the only sign of a listening socket
    listening = foreign == "*:*" if not (is_tcp and state) else state == "LISTEN"
    if not listening:
        return "skip"
    port = port_of(port_text.strip())
    if port is None:
        return "unreadable"
    listener = make_listener(
        tcp=is_tcp,
        address=normalise_address(host, bsd_family_hint(proto_word, host)),
        port=port,
        processes=(owner,) if isinstance(owner, Process) else (),
        raw=line,
        line=number,
    )
    return OwnerUnread(listener) if owner == "unreadable" else listener


def _owner(line: str, spans: list[re.Match[str]], known: set[str]) -> Process | str | None:
    """USER COMMAND PID FD -> Process; None for ``? ? ? ?``; "unreadable"."""
    words = [m.group() for m in spans]
    if all(w == "?" for w in words):
        return None
    user = words[0]
    if len(words) == 3:
        split = _unglue(words[1], user, known)
        if split is None:
            return "unreadable"
        return Process(name=split[0], pid=split[1], user=user)
    if len(words) < 3 or not words[-2].isdigit():
        return "unreadable"
    command = line[spans[1].start() : spans[-3].end()]  # a command may contain spaces
    return Process(name=command, pid=int(words[-2]), user=user)


def _unglue(token: str, user: str, known: set[str]) -> tuple[str, int] | None:
    """Split ``python2.781106`` into (command, pid); see the module docstring."""
    start = max(9, len(user) + 1)  # column where COMMAND was printed
    candidates: list[tuple[str, int]] = []
    for cut in range(len(token) - 1, 0, -1):
        command, pid_text = token[:cut], token[cut:]
        if len(command) > _COMMAND_MAX or not pid_text.isdigit() or pid_text[0] == "0":
            continue
        # the glue only happens when COMMAND reached column 20
        if start + len(command) < 20 or int(pid_text) > _PID_MAX:
            continue
        candidates.append((command, int(pid_text)))
    if not candidates:
        return None
    for command, pid in candidates:
        if command in known:
            return command, pid
    return min(candidates, key=lambda c: len(c[0]))


_DETECT_ROW = re.compile(r"^\S+\s+\S+\s+\d+\s+\d+\s+(?:tcp|udp)(?:4|6|46)\s+\S+:\S+\s+\S+:\S+")


def detect(text: str) -> float:
    """The ``USER COMMAND PID FD PROTO`` header, or rows shaped like it."""
    lines = split_lines(text)[:400]
    if any(_HEADER.match(line) for line in lines):
        return 0.95
    rows = sum(1 for line in lines if _DETECT_ROW.match(line))
    return 0.6 if rows else 0.0
