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
* ``-e`` extras (``uid:``, ``ino:``, ``sk:``, ``cgroup:``, ``v6only:``, ``<->``).

Only listening sockets become listeners: TCP ``LISTEN`` and UDP ``UNCONN``.
Other states, other families (``nl``, ``u_str``, ``raw``, ``icmp6`` …) and
headers are recognised and skipped; any other line is kept as unparsed.
The parser is linear in the input and uses no backtracking-prone regex.
"""

from __future__ import annotations

import dataclasses
import re

from fleetscan.addresses import WILDCARD_V4, WILDCARD_V6, split_host_port
from fleetscan.model import Listener, ParseResult, Process, UnparsedLine
from fleetscan.parsers.base import ParserSpec
from fleetscan.parsers.linux_common import AddressCache, source_lines
from fleetscan.parsers.services import port_of

NAME = "linux-ss"

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
_USERS = "users:(("


def _parse_users(line: str, start: int, known: dict[tuple[str, int], Process]) -> list[Process]:
    """Read the users:((…)) field whose first entry's ``"`` is at ``start``.

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
            return found
        else:
            raise ValueError("users field is not closed")


def _is_header(first: str, head: str) -> bool:
    return first in ("Netid", "State") and "Recv-Q" in head


def parse(text: str) -> ParseResult:
    """Parse ``ss`` output into listeners; never raises."""
    listeners: list[Listener] = []
    unparsed: list[UnparsedLine] = []
    users_seen = False
    # Rows whose local address was a bare `*`, settled once the whole output
    # has been seen (see the module docstring).
    star_rows: list[int] = []
    old_ss = False
    cache = AddressCache()
    procs: dict[tuple[str, int], Process] = {}
    dedupe = dict.fromkeys

    for number, line in enumerate(source_lines(text), 1):
        users_at = line.find(_USERS)
        head = line if users_at < 0 else line[:users_at]
        tokens = head.split()
        if not tokens:
            if users_at >= 0:
                unparsed.append(UnparsedLine(number, line))
            continue
        first = tokens[0]
        if first == "tcp" or first == "udp":
            proto = first
            index = 1
        elif first in STATES:
            proto = ""
            index = 0
        elif first in OTHER_NETIDS or _is_header(first, head):
            continue
        else:
            unparsed.append(UnparsedLine(number, line))
            continue
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
            unparsed.append(UnparsedLine(number, line))
            continue
        local = tokens[index + 2]
        peer = tokens[index + 3]

        if not proto:
            # No Netid column (ss -tlnp / ss -ulnp): the state tells the protocol.
            if state == "LISTEN":
                proto = "tcp"
            elif state == "UNCONN":
                proto = "udp"
            else:
                continue
        if state == "":
            if not peer.endswith(":*"):
                continue
            state = "LISTEN" if proto == "tcp" else "UNCONN"
        elif state != ("LISTEN" if proto == "tcp" else "UNCONN"):
            continue  # connections and closed sockets: recognised, not listeners

        try:
            host, port_text = split_host_port(local)
        except ValueError:
            unparsed.append(UnparsedLine(number, line))
            continue
        if port_text == "*":
            continue  # not bound to a port: nothing listens
        port = port_of(port_text)
        if port is None:
            unparsed.append(UnparsedLine(number, line))
            continue

        processes: tuple[Process, ...] = ()
        if users_at >= 0:
            try:
                found = _parse_users(line, users_at + len(_USERS), procs)
            except ValueError:
                unparsed.append(UnparsedLine(number, line))
                continue
            processes = tuple(dedupe(found))
            users_seen = True

        star = host == "*" or host.startswith("*%")
        address = cache.get(host)
        if star:
            address = dataclasses.replace(address, address=WILDCARD_V6, family=6)
            if " v6only:" not in line:  # with -e, ss says outright it is an IPv6 socket
                star_rows.append(len(listeners))
        elif not old_ss and (
            (address.family == 4 and peer == "*:*")
            or (":" in host and not local.startswith("["))
            or peer.startswith(":::")
        ):
            # only iproute2 < 4.13 prints IPv4 peers as `*:*` and IPv6 unbracketed
            old_ss = True
        listeners.append(
            Listener(
                proto="tcp" if proto == "tcp" else "udp",
                family=6 if address.family == 6 else 4,
                address=address.address,
                port=port,
                state=state,
                processes=processes,
                zone=address.zone,
                raw=line,
                line=number,
            )
        )

    if old_ss:
        for i in star_rows:
            listeners[i] = dataclasses.replace(listeners[i], address=WILDCARD_V4, family=4)
    return ParseResult(
        parser=NAME,
        listeners=tuple(listeners),
        unparsed=tuple(unparsed),
        owners_known=users_seen,
    )


def safe_parse(text: str) -> ParseResult:
    """:func:`parse`, with any unforeseen error turned into unparsed lines:
    a parser must never raise (one host's garbage must not break a run)."""
    try:
        return parse(text)
    except Exception:  # pragma: no cover - defence in depth
        lines = source_lines(text) if isinstance(text, str) else []
        return ParseResult(
            parser=NAME,
            unparsed=tuple(UnparsedLine(i, t) for i, t in enumerate(lines, 1)),
            owners_known=False,
        )


def detect(text: str) -> float:
    """Confidence that ``text`` is ``ss`` output."""
    score = 0.0
    checked = 0
    for line in source_lines(text[:20000]):
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


PARSER = ParserSpec(
    name=NAME,
    platform="linux",
    commands=("ss -tulnp", "ss -tulpen", "ss -a", "ss -tlnp", "ss -ulnp", "ss -Htulnp"),
    parse=safe_parse,
    detect=detect,
)
