"""Parser for Linux ``netstat`` output: net-tools and BusyBox.

Reads ``netstat -tulnp``, ``-tulpen``, ``-lnp``, ``-l``, ``-p``, ``-aeep`` and
plain ``netstat``, old and new layouts. Quirks it copes with:

* several sections (``Active Internet connections``, ``Active UNIX domain
  sockets``, ``Active Bluetooth connections``), each with its own header; an
  Internet table may even continue without a repeated header;
* UDP rows have an EMPTY State column (a bound UDP socket: written ``UNCONN``
  like ss does), connected UDP says ``ESTABLISHED``; ``raw``/``raw6`` rows
  carry a numeric state and are not TCP/UDP listeners;
* columns overflow (``systemd-resolve 26985`` in the ``-e`` User column) and
  hand-edited samples are mis-aligned, so rows are split on whitespace, never
  on fixed offsets;
* IPv6 is printed without brackets (``:::22``, ``::1:25``: the port is after
  the LAST colon) except in non-numeric mode (``[::]:ssh``); IPv4-mapped
  sockets show a bare IPv4 address under ``tcp6``; without ``-W`` net-tools
  cuts long addresses (``fe80::42:acff:fe11::123``): such an address is kept
  as printed (it is not a valid IP) rather than guessed;
* service and host names instead of numbers (``localhost:smtp``);
* ``PID/Program name``: one pid and the argv0-derived name cut to fit, which
  may hold spaces (``600/sshd: /usr/sbin``) — everything after the first
  ``/`` up to the end of the line; ``-`` means unknown (not root).
  A name holding a newline goes on on the next line (within the 19
  characters of ``PID/Program name``) and is read as part of it.

A row repeated word for word shares its first reading and listener, line
number included (:class:`~fleetscan.parsers.base.RepeatedRows`); a name's
next piece goes to the row just above it (by identity), shared or not.

Schema (see :mod:`fleetscan.parsers.base`): one process per socket, name and
pid from ``PID/Program name``, user from the ``-e`` User column.

Example::

    $ netstat -tulnpW
    Active Internet connections (only servers)
    Proto Recv-Q Send-Q Local Address   Foreign Address  State   PID/Program name
    tcp        0      0 0.0.0.0:22      0.0.0.0:*        LISTEN  600/sshd: /usr/sbin
    udp6       0      0 :::5353         :::*                     -

    [{"proto": "tcp", "family": 4, "address": "0.0.0.0", "port": 22, "state": "LISTEN",
      "processes": [{"name": "sshd: /usr/sbin", "pid": 600, "user": null}]},
     {"proto": "udp", "family": 6, "address": "::", "port": 5353, "state": "UNCONN",
      "processes": []}]
"""

from __future__ import annotations

from dataclasses import replace

from fleetscan.addresses import split_host_port
from fleetscan.model import Listener, ParseResult, Process, UnparsedLine
from fleetscan.parsers.base import (
    REPEAT_WINDOW,
    AddressCache,
    ParserInfo,
    RepeatedRows,
    is_number,
    make_listener,
    split_lines,
)
from fleetscan.parsers.services import port_of

info = ParserInfo(
    name="linux-netstat",
    description="net-tools and BusyBox netstat (netstat -tulnpW, -tulpen, -lnp, plain)",
    commands=(
        "netstat -tulnp",
        "netstat -tulpen",
        "netstat -tulnpW",
        "netstat -lnp",
        "netstat -l",
        "netstat -p",
        "netstat -aeep",
        "netstat",
    ),
)

#: net-tools (and BusyBox) print ``PID/Program name`` into a 20-byte buffer
PROGNAME_WIDTH = 20

#: protocol column → address family (udpl = UDP-Lite)
INET_PROTOS: dict[str, int] = {"tcp": 4, "tcp6": 6, "udp": 4, "udp6": 6, "udpl": 4, "udpl6": 6}
RAW_PROTOS = frozenset({"raw", "raw6"})
#: TCP state names as net-tools and BusyBox print them
STATES = frozenset(
    {
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT1",
        "FIN_WAIT2",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "CLOSING",
        "UNKNOWN",
    }
)
#: section titles (net-tools and BusyBox); a row of another section is not a listener
_TITLES = (
    "Active Internet connections",
    "Active UNIX domain sockets",
    "Active Bluetooth connections",
    "Active IPX sockets",
    "Active AX.25 sockets",
    "Active NET/ROM sockets",
)
# printed (to stdout) by net-tools when run without root with -p
_NOT_ALL_NOTES = (
    "(Not all processes could be identified",
    "(No info could be read for",
    "will not be shown, you would have to be root",
)


class _RowError(ValueError):
    """A row that looks like an Internet socket but cannot be read."""


def _next(rest: str) -> tuple[str, str]:
    """The next whitespace-separated token of ``rest`` and what follows it."""
    parts = rest.split(None, 1)
    if not parts:
        return "", ""
    return parts[0], (parts[1] if len(parts) > 1 else "")


def _read_owner(rest: str) -> tuple[str, str | None, str | None]:
    """Split what follows the State column: ``[User Inode] [PID/Program name]``.

    Returns (user, pid_field, error). Layout is inferred per row, so a table
    without a header (or a hand-aligned one) reads the same.
    """
    user = ""
    rest = rest.lstrip()
    token, after = _next(rest)
    if token and token != "-" and not _is_pid_field(token):
        # -e: User (name or numeric uid) then Inode
        inode, rest = _next(after)
        if not inode.isdigit():
            return "", None, f"unexpected column {token!r}"
        user = token
        token, after = _next(rest)
    if not token:
        return user, None, None
    if token == "-" and not after.strip():
        return user, "-", None
    if _is_pid_field(token):
        # the program name may hold spaces: keep everything up to the line end
        return user, rest.rstrip(), None
    return user, None, f"unexpected column {token!r}"


def _is_pid_field(token: str) -> bool:
    pid, sep, _ = token.partition("/")
    return bool(sep) and is_number(pid)


def _parse_row(line: str, number: int, cache: AddressCache) -> tuple[Listener | None, bool, int]:
    """One Internet row → (listener or None when not listening, has_pid_field,
    length of its ``PID/Program name`` field, 0 without one)."""
    parts = line.split(None, 5)
    if len(parts) < 5:
        raise _RowError("too few columns")
    proto, recv_q, send_q, local, _foreign = parts[:5]
    rest = parts[5] if len(parts) > 5 else ""
    if not (recv_q.isdigit() and send_q.isdigit()):
        raise _RowError("queue columns are not numbers")
    state, after = _next(rest)
    if state in STATES:
        rest = after
    else:
        state = ""  # UDP: the State column is empty
    user, owner, error = _read_owner(rest)
    if error:
        raise _RowError(error)
    has_pid = owner is not None and owner != "-"
    owner_len = len(owner) if has_pid and owner is not None else 0

    is_tcp = proto.startswith("tcp")
    if is_tcp:
        if state != "LISTEN":
            if not state:
                raise _RowError("TCP row without a state")
            return None, has_pid, owner_len
    elif state:
        return None, has_pid, owner_len  # connected UDP (ESTABLISHED)
    try:
        host, port_text = split_host_port(local)
    except ValueError as exc:
        raise _RowError(str(exc)) from None
    if port_text == "*":
        return None, has_pid, owner_len  # not bound to a port
    port = port_of(port_text)
    if port is None:
        raise _RowError(f"unknown port or service {port_text!r}")
    address = cache.get(host, INET_PROTOS[proto])

    processes: tuple[Process, ...] = ()
    if owner is not None and owner != "-":
        pid_text, _, name = owner.partition("/")
        processes = (Process(name=name, pid=int(pid_text), user=user or None),)
    listener = make_listener(
        tcp=is_tcp, address=address, port=port, processes=processes, raw=line, line=number
    )
    return listener, has_pid, owner_len


def _continue_name(listener: Listener, piece: str, line: str) -> Listener:
    """The row's program name went on after a newline it holds: add ``piece``
    (``line`` without its padding) to the name and ``line`` to the evidence."""
    (proc,) = listener.processes
    name = f"{proc.name or ''}\n{piece}"
    return replace(listener, processes=(replace(proc, name=name),), raw=f"{listener.raw}\n{line}")


def parse(text: str, first_line: int = 1) -> ParseResult:
    """Parse Linux ``netstat`` output into listeners."""
    listeners: list[Listener] = []
    unparsed: list[UnparsedLine] = []
    cache = AddressCache()
    above: Listener | None = None
    recent: RepeatedRows[tuple[Listener | None, bool, int]] = RepeatedRows(REPEAT_WINDOW)
    pid_column = False
    not_all_note = False
    in_inet = True  # outputs cut before their first title are Internet rows
    # room left in the `PID/Program name` field of the row above: a program name
    # holding a newline goes on on the next line, which is read as part of it
    # (before anything else: `a\nActive UNIX` must not end the Internet section)
    name_room = 0

    lines = split_lines(text)
    # an unterminated last line is a cut row (dropped connection), not a name's end
    cut_at = len(lines) + first_line - 1 if not text.endswith("\n") else 0
    for number, line in enumerate(lines, first_line):
        piece = line.rstrip()
        if name_room and len(piece) < name_room and number != cut_at:
            name_room -= len(piece) + 1
            if above is not None and listeners and listeners[-1] is above:
                listeners[-1] = above = _continue_name(above, piece, line)
            continue
        name_room = 0
        stripped = line.strip()
        if not stripped:
            continue
        first = stripped.split(None, 1)[0]
        if stripped.startswith(_TITLES):
            in_inet = stripped.startswith("Active Internet connections")
            continue
        if first == "Proto":
            if "Recv-Q" in stripped:
                in_inet = True
                pid_column = pid_column or "PID/Program name" in stripped
            continue
        if stripped.startswith(_NOT_ALL_NOTES):
            not_all_note = True
            continue
        if not in_inet or first in RAW_PROTOS:
            continue  # UNIX / Bluetooth tables, raw sockets: not TCP/UDP listeners
        if first not in INET_PROTOS:
            unparsed.append(UnparsedLine(number, line))
            continue
        # a row repeated word for word: its reading is shared (RepeatedRows)
        row = recent.get(line)
        if row is None:
            try:
                row = _parse_row(line, number, cache)
            except _RowError:
                unparsed.append(UnparsedLine(number, line))
                continue
            recent.keep(line, row)
        listener, has_pid, owner_len = row
        pid_column = pid_column or has_pid
        name_room = max(0, PROGNAME_WIDTH - 1 - owner_len) if has_pid else 0
        above = listener  # the row a name's next piece belongs to
        if listener is not None:
            listeners.append(listener)

    owners_known = pid_column
    if not_all_note and any(not x.processes for x in listeners):
        # not root: the `-` rows belong to other users, their owners are unknown
        owners_known = False
    return ParseResult(
        parser=info.name,
        listeners=tuple(listeners),
        unparsed=tuple(unparsed),
        owners_known=owners_known,
    )


def detect(text: str) -> float:
    """Confidence that ``text`` is Linux ``netstat`` output.

    Kept specific: Windows netstat has no Recv-Q column and upper-case
    ``TCP``; BSD/macOS netstat says ``(state)``, ``tcp4``/``tcp46`` and puts
    the port after a dot.
    """
    score = 0.0
    checked = 0
    for line in split_lines(text[:20000]):
        tokens = line.split()
        if not tokens:
            continue
        checked += 1
        if tokens[0] in ("tcp4", "tcp46", "udp4", "udp46") or "(state)" in line:
            return 0.05  # BSD / macOS
        if tokens[0] == "Proto" and "Recv-Q" in line and "Local Address" in line:
            score = max(score, 0.9 if "State" in line else 0.5)
        elif (
            len(tokens) >= 5
            and tokens[0] in INET_PROTOS
            and tokens[1].isdigit()
            and tokens[2].isdigit()
            and ":" in tokens[3]
        ):
            score = max(score, 0.7)
        if checked >= 30:
            break
    return score
