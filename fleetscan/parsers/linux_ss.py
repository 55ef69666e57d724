"""Parser for iproute2 ``ss`` output (``ss -tulnp``, ``ss -tulpen``, ``ss -a`` …).

What it reads, and the real-world quirks it copes with:

* old and new headers (new ss glues ``Process`` to ``Peer Address:Port``),
  ``-H`` (no header at all), and no ``Netid`` column when a single protocol
  was asked for (``ss -tlnp``: the protocol follows from the state);
* an empty State column (very old ss);
* addresses: ``0.0.0.0:22``, ``[::]:22``, ``[::1]:631``, unbracketed old-ss
  IPv6 (``::ffff:10.0.2.15:9200``, port after the LAST colon), devices
  (``127.0.0.53%lo:53``, ``[fe80::1]%eth0:123``) and service names
  (``*:ssh``) read with :mod:`fleetscan.parsers.services`;
* ``*`` as a local address: new ss prints it for an IPv6 socket bound to
  ``::`` with ``v6only:0`` (dual stack) and we write it as ``::`` family 6
  (the JSON contract). Old ss (iproute2 < 4.13) printed ``*`` for IPv4's
  0.0.0.0 instead; when the output itself proves it is that old (IPv4 rows
  with a ``*:*`` peer, or unbracketed IPv6) ``*`` is read as ``0.0.0.0``;
* ``users:(("name",pid=1,fd=6),("name",pid=2,fd=6))`` (many processes per
  socket) and very old ``users:(("sendmail",3965,4))``. Process names are the
  kernel comm, printed raw: they may hold spaces, quotes and parentheses, so
  the field is read by locating ``",pid=N,…)`` rather than by balancing quotes;
* ``-e`` extras (``uid:``, ``ino:``, ``sk:``, ``cgroup:``, ``v6only:``, ``<->``):
  ``uid:N`` is the uid of the SOCKET's owner (who created it), and ss leaves
  it out when that uid is 0, so a row with ``ino:`` and no ``uid:`` is root's.

Only listening sockets become listeners: TCP ``LISTEN`` and UDP ``UNCONN``.
Other states, other families (``nl``, ``u_str``, ``raw``, ``icmp6`` …) and
headers are recognised and skipped; any other line is kept as unparsed.

Speed matters (hosts with 100,000 listeners): the common row is read by one
regex, users fields are memoised by their text without fd numbers, and hosts
by their text, and a row repeated word for word shares the first one's
listener, line number included (:class:`~fleetscan.parsers.base.RepeatedRows`:
a flood of one row is one Listener). Every other row takes the general,
token-by-token path. The parser is linear in the input; its regexes use
possessive quantifiers, so a hostile line cannot make them backtrack. (The
module is over 450 lines: the fast path, the general path and the
users-field reader share one grammar — its regexes and memo tables — which
is clearer in one file than in two.)

Schema (see :mod:`fleetscan.parsers.base`): name and pid from ``users:``
(several processes per socket); with ``-e``, user is the socket's numeric uid
for every process holding it (the collector names it from ``/etc/passwd``).
That is the socket owner, not each process's user: a pre-fork server that
binds as root and runs its workers as ``www-data`` shows root for all of them.
Without ``-e`` extras user is unknown.
A name holding newlines breaks its row over several lines: the row is read
whole; a users field that cannot be read leaves the socket with no process
and its line unparsed.

Example::

    $ ss -tulnp
    Netid State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess
    tcp   LISTEN 0      128          0.0.0.0:22         0.0.0.0:*    users:(("sshd",pid=812,fd=3))
    udp   UNCONN 0      0      127.0.0.53%lo:53         0.0.0.0:*

    [{"proto": "tcp", "family": 4, "address": "0.0.0.0", "port": 22, "state": "LISTEN",
      "processes": [{"name": "sshd", "pid": 812, "user": null}]},
     {"proto": "udp", "family": 4, "address": "127.0.0.53", "port": 53, "state": "UNCONN",
      "processes": []}]
"""

from __future__ import annotations

import dataclasses
import re
from functools import partial

from fleetscan.addresses import WILDCARD_V4, WILDCARD_V6, Address, normalise_address
from fleetscan.model import Listener, ParseResult, Process, UnparsedLine
from fleetscan.parsers.base import (
    REPEAT_WINDOW,
    ParserInfo,
    RepeatedRows,
    join_continuation,
    make_listener,
    split_lines,
)
from fleetscan.parsers.services import port_of

info = ParserInfo(
    name="linux-ss",
    description="iproute2 ss (ss -tulnp, -tulpen, -a, -H), old and new layouts",
    commands=(
        "ss -tulnpe",
        "ss -tulnp",
        "ss -tulpen",
        "ss -a",
        "ss -tlnp",
        "ss -ulnp",
        "ss -Htulnp",
    ),
)

#: the state names ss prints (``UNCONN`` is TCP_CLOSE: a bound UDP socket)
STATES = frozenset(
    {
        "UNCONN",
        "LISTEN",
        "ESTAB",
        "SYN-SENT",
        "SYN-RECV",
        "FIN-WAIT-1",
        "FIN-WAIT-2",
        "TIME-WAIT",
        "CLOSE-WAIT",
        "LAST-ACK",
        "CLOSING",
        "UNKNOWN",
        "BOUND-INACTIVE",
    }
)

#: socket families ``ss -a`` lists that are not TCP/UDP listeners
OTHER_NETIDS = frozenset(
    {
        "nl",
        "u_str",
        "u_dgr",
        "u_seq",
        "p_raw",
        "p_dgr",
        "raw",
        "icmp",
        "icmp6",
        "v_str",
        "v_dgr",
        "tipc",
        "xdp",
        "sctp",
        "dccp",
        "mptcp",
        "???",
    }
)

# The end of one users:(...) entry: `",pid=123,fd=4)` (new) or `",3965,4)` (old),
# possibly with more labelled fields (`proc_ctx=` with -Z) before the `)`.
_ENTRY_END = re.compile(r'",(?:pid=)?([0-9]+),[^()]*\)')
# A whole modern users:(...) field. A name runs up to the first `",pid=`; the
# possessive `*+` forbids backtracking, so hostile names cost linear time.
_NAME_BODY = r'[^"]*+(?:"(?!,pid=)[^"]*+)*+'  # "unrolled": no per-character alternation
_NAME = rf'"{_NAME_BODY}"'
_ENTRIES = rf"\({_NAME},pid=[0-9]+,fd=[0-9]+\)(?:,\({_NAME},pid=[0-9]+,fd=[0-9]+\))*+"
_MODERN_FIELD = re.compile(rf"users:\(({_ENTRIES})\)")
_NAME_PID = re.compile(rf'\("({_NAME_BODY})",pid=([0-9]+),')
_FD_LABEL = re.compile(r",fd=[0-9]+\)")
# The common row, read by one regex: `tcp LISTEN 0 128 host:port peer [users] rest`.
# Anything else (service names, other states, no Netid, old users …) takes the
# general path.
_FAST_ROW = re.compile(
    r"(tcp|udp)[ \t]+(LISTEN|UNCONN)[ \t]+[0-9]+[ \t]+[0-9]+[ \t]+"
    rf"([^ \t]+):([0-9]{{1,5}})[ \t]+([^ \t]+)[ \t]*(?:users:\(({_ENTRIES})\))?(.*)"
)
_USERS = "users:(("
# The -e extras right after the users field: ``uid:N`` (absent when the socket's
# uid is 0) then ``ino:N`` — iproute2 has printed them in this order since ss
# began. Matched only from the end of the users field, never inside a name.
_EXTRAS = re.compile(r"[ \t]+(?:uid:([0-9]+)[ \t]+)?ino:[0-9]+(?:[ \t]|$)")
_UNSEEN = Address("", 0)


def _parse_users_slowly(
    line: str, start: int, known: dict[tuple[str, int], Process]
) -> tuple[list[Process], int]:
    """Read, entry by entry, the users:((…)) field whose first ``"`` is at
    ``start``: old unlabelled entries, ``-Z`` contexts, odd names. Returns the
    owners and the position just after the field.

    Raises ValueError when the field is malformed (e.g. a truncated line).
    """
    found: list[Process] = []
    pos = start
    while True:
        if not line.startswith('"', pos):
            raise ValueError("users entry does not start with a quote")
        match = _ENTRY_END.search(line, pos + 1)
        if match is None:
            raise ValueError("users entry has no pid")
        name = line[pos + 1 : match.start()]
        key = (name, int(match.group(1)))
        proc = known.get(key)
        if proc is None:
            proc = known[key] = Process(name=key[0], pid=key[1])
        found.append(proc)
        pos = match.end()
        if line.startswith(",(", pos):
            pos += 2
        elif line.startswith(")", pos):
            return found, pos + 1
        else:
            raise ValueError("users field is not closed")


class _Users:
    """Reads users:(...) fields, memoised by the field without its fd numbers.

    A socket's fds differ from row to row but its owners repeat (a pre-fork
    server's workers hold every one of its sockets), so the cache key is the
    field with every ``,fd=N)`` cut to ``)``. A name holding ``,fd=N)`` itself
    could make two fields share a key; such a field has more ``,fd=`` than
    entries, so it is neither cached nor served from the cache.
    """

    __slots__ = ("_known", "by_field")

    def __init__(self) -> None:
        self.by_field: dict[str, tuple[tuple[Process, ...], int]] = {}
        self._known: dict[tuple[str, int], Process] = {}

    def read(self, line: str, users_at: int) -> tuple[tuple[Process, ...], int]:
        """The owners in the users:(...) field at ``users_at``, and where the
        field ends.

        Raises ValueError when the field is malformed, or when what follows it
        is not the end of the row or a ``-e`` extra: a name that itself holds
        ``",pid=N,fd=N))`` would otherwise pass off a forged owner.
        """
        match = _MODERN_FIELD.match(line, users_at)
        if match is None:
            found, end = _parse_users_slowly(line, users_at + len(_USERS), self._known)
            owners = tuple(dict.fromkeys(found))
        else:
            owners, end = self.modern(match.group(1)), match.end()
        if not _clean_tail(line, end):
            raise ValueError("text after the users field")
        return owners, end

    def modern(self, field: str) -> tuple[Process, ...]:
        """The owners in the inside of a modern users:(...) field (already matched)."""
        key = _FD_LABEL.sub(")", field)
        cached = self.by_field.get(key)
        labels = field.count(",fd=")
        if cached is not None and cached[1] == labels:
            return cached[0]
        known = self._known
        found: list[Process] = []
        for name, pid_text in _NAME_PID.findall(field):
            pid = int(pid_text)
            proc = known.get((name, pid))
            if proc is None:
                proc = known[(name, pid)] = Process(name, pid)
            found.append(proc)
        owners = tuple(dict.fromkeys(found))
        if labels == len(found):
            self.by_field[key] = (owners, labels)
        return owners


class _Hosts:
    """Host part of an ss address (``0.0.0.0``, ``[::1]``, ``[fe80::1]%eth0``,
    ``127.0.0.53%lo``, ``*``, unbracketed old-ss IPv6) → normalised Address,
    memoised: :mod:`ipaddress` is the costliest step and hosts repeat."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen: dict[str, Address | None] = {}

    def get(self, text: str) -> Address | None:
        if text in self.seen:
            return self.seen[text]
        found: Address | None
        if text.startswith("["):
            close = text.find("]")
            rest = text[close + 1 :]
            if close < 0 or (rest and not rest.startswith("%")):
                found = None
            else:
                found = normalise_address(text[1:close] + rest)
        elif text == "*" or text.startswith("*%"):
            # new ss: an IPv6 socket on :: that is not v6only (see module doc)
            zone = text[2:] or None
            found = Address(WILDCARD_V6, 6, zone)
        else:
            found = normalise_address(text)
        self.seen[text] = found
        return found


def _clean_tail(line: str, end: int) -> bool:
    """True when the users field ending at ``end`` ends the row or is followed
    by a blank (the ``-e`` extras)."""
    return end >= len(line) or line[end] in " \t"


def _read_users_or_none(
    users: _Users, text: str, users_at: int
) -> tuple[tuple[Process, ...], int] | None:
    try:
        return users.read(text, users_at)
    except ValueError:
        return None


def _complete_row(line: str) -> bool:
    """A whole listener row with its users field: a real row, not a fragment."""
    match = _FAST_ROW.match(line)
    return match is not None and match.group(6) is not None


def _is_header(first: str, head: str) -> bool:
    return first in ("Netid", "State") and "Recv-Q" in head


def _general_row(line: str) -> tuple[str, str, str, str, str, int] | str | None:
    """A row the fast path did not take: (proto, state, local, peer, users_at)
    for a listener row, ``"skip"`` for a recognised non-listener, None if unreadable."""
    users_at = line.find(_USERS)
    head = line if users_at < 0 else line[:users_at]
    tokens = head.split()
    if not tokens:
        return None if users_at >= 0 else "skip"
    first = tokens[0]
    if first == "tcp" or first == "udp":
        proto = first
        index = 1
    elif first in STATES:
        proto = ""
        index = 0
    elif first in OTHER_NETIDS or _is_header(first, head):
        return "skip"
    else:
        return None
    if index < len(tokens) and tokens[index] in STATES:
        state = tokens[index]
        index += 1
    else:
        state = ""  # very old ss leaves the State column empty
    if (
        len(tokens) < index + 4
        or not tokens[index].isdigit()
        or not tokens[index + 1].isdigit()
        or ":" not in tokens[index + 3]
    ):
        return None
    local = tokens[index + 2]
    peer = tokens[index + 3]
    if not proto:
        # No Netid column (ss -tlnp / ss -ulnp): the state tells the protocol.
        if state == "LISTEN":
            proto = "tcp"
        elif state == "UNCONN":
            proto = "udp"
        else:
            return "skip"
    if state == "":
        if not peer.endswith(":*"):
            return "skip"
        state = "LISTEN" if proto == "tcp" else "UNCONN"
    elif state != ("LISTEN" if proto == "tcp" else "UNCONN"):
        return "skip"  # connections and closed sockets: recognised, not listeners
    return proto, state, local, peer, head, users_at


def parse(text: str, first_line: int = 1) -> ParseResult:
    """Parse ``ss`` output into listeners."""
    listeners: list[Listener] = []
    unparsed: list[UnparsedLine] = []
    users_seen = False
    # Rows whose local address was a bare `*`, settled once the whole output
    # has been seen (see the module docstring).
    star_rows: list[int] = []
    old_ss = settled = False
    hosts = _Hosts()
    seen_hosts = hosts.seen
    users = _Users()
    by_field = users.by_field
    fd_label_sub = _FD_LABEL.sub
    fast = _FAST_ROW.match
    extras_at = _EXTRAS.match
    # owners with the socket's uid, by (owners, uid): a server's sockets share both
    with_uid: dict[tuple[int, str], tuple[tuple[Process, ...], tuple[Process, ...]]] = {}

    shift = first_line - 1  # line numbers are of the whole output (see base)
    recent: RepeatedRows[Listener] = RepeatedRows(REPEAT_WINDOW)
    lines = split_lines(text)
    joined_up_to = 0  # lines up to this number were continuations of a row above
    for number, line in enumerate(lines, 1):
        if number <= joined_up_to:
            continue
        processes: tuple[Process, ...] = ()
        owner_unread = False
        tail_at = -1  # where the -e extras may start: just after the users field
        match = fast(line)
        if match is not None and (
            (match.group(6) is not None and match.group(7)[:1] in ("", " ", "\t"))
            or _USERS not in line
        ):
            proto, state, host, port_text, peer, field, _rest = match.groups()
            if (proto == "tcp") != (state == "LISTEN"):
                continue  # tcp UNCONN (closed) or udp LISTEN: not a listener
            port = int(port_text)
            if field is not None:
                cached = by_field.get(fd_label_sub(")", field))
                if cached is not None and cached[1] == field.count(",fd="):
                    processes = cached[0]
                else:
                    processes = users.modern(field)
                users_seen = True
                tail_at = match.start(7)
        else:
            row = _general_row(line)
            if row is None:
                unparsed.append(UnparsedLine(number + shift, line))
                continue
            if isinstance(row, str):
                continue
            proto, state, local, peer, _head, users_at = row
            host, sep, port_text = local.rpartition(":")
            if not sep or not host:
                unparsed.append(UnparsedLine(number + shift, line))
                continue
            if port_text == "*":
                continue  # not bound to a port: nothing listens
            found_port = port_of(port_text)
            if found_port is None:
                unparsed.append(UnparsedLine(number + shift, line))
                continue
            port = found_port
            if users_at >= 0:
                try:
                    processes, tail_at = users.read(line, users_at)
                except ValueError:
                    # a process name holding newlines breaks the row over several
                    # lines: read it whole; else keep the socket, owner unknown
                    found = join_continuation(
                        lines,
                        number - 1,
                        partial(_read_users_or_none, users, users_at=users_at),
                        stop=_complete_row,
                    )
                    if found is None:
                        owner_unread = True
                    else:
                        (processes, tail_at), extra = found
                        line = "\n".join(lines[number - 1 : number + extra])
                        joined_up_to = number + extra
                users_seen = True
        address = seen_hosts.get(host, _UNSEEN)
        if address is _UNSEEN:
            address = hosts.get(host)
        if address is None or port > 65535:
            unparsed.append(UnparsedLine(number + shift, line))
            continue
        if owner_unread:  # the socket is reported, its line kept as unread evidence
            unparsed.append(UnparsedLine(number + shift, line))
        elif processes and tail_at >= 0:
            extras = extras_at(line, tail_at)
            if extras is not None:
                uid = extras.group(1) or "0"  # ss omits uid:0
                # by identity: the users cache hands out the same tuple for a
                # server's every socket (the tuple is kept, so its id stays its own)
                key = (id(processes), uid)
                got = with_uid.get(key)
                if got is None:
                    owned = tuple(dataclasses.replace(p, user=uid) for p in processes)
                    got = with_uid[key] = (processes, owned)
                processes = got[1]
        if host[0] == "*":
            if " v6only:" not in line:  # with -e, ss says outright it is an IPv6 socket
                star_rows.append(len(listeners))
        elif not settled:
            if (
                (peer == "*:*" and address.family == 4)
                or peer.startswith(":::")
                or (host[0] != "[" and ":" in host)
            ):
                # only iproute2 < 4.13 prints IPv4 peers as `*:*` and IPv6 unbracketed
                old_ss = settled = True
            elif peer.startswith("0.0.0.0:"):
                settled = True  # new ss (iproute2 4.11 still bracketed IPv6 but printed `*`)
        # a row repeated word for word: its listener is shared (RepeatedRows)
        listener = recent.get(line)
        if listener is None:
            listener = make_listener(
                tcp=proto == "tcp",
                address=address,
                port=port,
                processes=processes,
                raw=line,
                line=number + shift,
            )
            recent.keep(line, listener)
        listeners.append(listener)

    if old_ss:
        for i in star_rows:
            listeners[i] = dataclasses.replace(listeners[i], address=WILDCARD_V4, family=4)
    return ParseResult(
        parser=info.name,
        listeners=tuple(listeners),
        unparsed=tuple(unparsed),
        owners_known=users_seen,
    )


def detect(text: str) -> float:
    """Confidence that ``text`` is ``ss`` output."""
    score = 0.0
    checked = 0
    for line in split_lines(text[:20000]):
        tokens = line.split()
        if not tokens:
            continue
        checked += 1
        if _is_header(tokens[0], line) and "Address:Port" in line:
            return 1.0
        if _USERS in line and "pid=" in line:
            score = max(score, 0.9)
        elif len(tokens) >= 5 and (
            (tokens[0] in ("tcp", "udp") and tokens[1] in STATES)
            or (tokens[0] in ("LISTEN", "UNCONN") and tokens[1].isdigit())
        ):
            score = max(score, 0.7)
        if checked >= 30:
            break
    return score
