"""``lsof`` in table form (``lsof -nP -iTCP -sTCP:LISTEN``, ``lsof -nP -i``,
plain ``lsof``) and in field form (``lsof -nP -i -F pcuftPnT``), macOS and Linux.

Table form::

    COMMAND    PID  TID    USER   FD   TYPE  DEVICE SIZE/OFF NODE NAME
    sshd      1206         root    3u  IPv4   21598      0t0  TCP *:22 (LISTEN)

* lsof prints EVERY open file; only ``IPv4``/``IPv6`` rows matter and the
  others (REG, DIR, unix, ``(readlink: Permission denied)`` ...) are skipped
  silently. Rows are split on whitespace and anchored on the TYPE column, so
  an empty TID column (lsof 4.8x) or an absent one (4.9x) both work; several
  tables in one text (``-iTCP`` followed by ``-iUDP``) too.
* A socket is printed once per thread (TID) and once per process sharing it:
  thread repeats (same pid, fd and device) are dropped, and rows for the same
  address are merged with all their processes.
* NAME: ``*:22 (LISTEN)``, ``[::1]:631 (LISTEN)``, UDP ``*:5353`` (no state),
  connections ``a->b (ESTABLISHED)`` (skipped). ``*`` is the wildcard of the
  row's TYPE (IPv4 ``0.0.0.0``, IPv6 ``::``). A TCP socket with no peer and
  no state (``-F`` without ``T``) counts as listening; a UDP socket with a
  bound port and no peer is a bound socket (``UNCONN``).
* COMMAND escapes non-printable bytes (``my\\x20ser``, UTF-8 as ``\\xd1\\x81``);
  they are decoded. COMMAND is also cut to 9 characters by lsof.
* Without ``-n``/``-P`` names appear (``*:ssh``, ``localhost:smtp``): ports are
  mapped with a small table, host names kept as written; an unknown service
  name makes the row unparsed.

Field form: one field per line, ``p`` (pid), ``c`` (command), ``u``/``L``
(user), ``f`` (fd), ``t`` (type), ``P`` (protocol), ``n`` (name), ``T``
(``TST=LISTEN``...). A process set (``p`` ...) is followed by file sets; a
file set starts at ``f`` or when a file field repeats.

Schema (see :mod:`fleetscan.parsers.base`): name (COMMAND, decoded), pid and
user from every row of the socket.

Example::

    $ lsof -nP -iTCP -sTCP:LISTEN
    COMMAND   PID  USER   FD   TYPE  DEVICE SIZE/OFF NODE NAME
    sshd     1206  root    3u  IPv4   21598      0t0  TCP *:22 (LISTEN)

    [{"proto": "tcp", "family": 4, "address": "0.0.0.0", "port": 22, "state": "LISTEN",
      "processes": [{"name": "sshd", "pid": 1206, "user": "root"}]}]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fleetscan.addresses import normalise_address, split_host_port
from fleetscan.model import Listener, ParseResult, Process, UnparsedLine
from fleetscan.parsers.base import ParserInfo, make_listener, merge_duplicates, split_lines
from fleetscan.parsers.services import port_of

info = ParserInfo(
    name="lsof",
    description="lsof table (-nP -iTCP -sTCP:LISTEN, -i) and field (-F) output, macOS and Linux",
    commands=(
        "lsof -nP -iTCP -sTCP:LISTEN",
        "lsof -nP -iUDP",
        "lsof -nP -i",
        "lsof",
        "lsof -nP -i -FpcuftPnT",
    ),
)

_HEADER = re.compile(
    r"^\s*COMMAND\s+PID\s+(?:TID\s+)?(?:TASKCMD\s+)?USER\s+FD\s+TYPE\s+DEVICE\s+"
    r"SIZE/OFF\s+NODE\s+NAME\s*$"
)
_TOKEN = re.compile(r"\S+")
_INET_TYPES = {"IPv4": 4, "IPv6": 6}
_PROTOS = {"TCP": "tcp", "UDP": "udp"}
_OTHER_NODES = frozenset({"UDPLITE", "SCTP", "RAW", "ICMP", "ICMPV6", "RAW6"})
_NAME_STATE = re.compile(r"^(?P<addr>.*?)(?:\s+\((?P<state>[^()]*)\))?\s*$")
_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})|\\([\\btnrf])")
_C_ESCAPES = {"\\": 0x5C, "b": 0x08, "t": 0x09, "n": 0x0A, "r": 0x0D, "f": 0x0C}
_FIELD = re.compile(r"^([a-zA-Z0-9])(.*)$")
# lsof -F field letters (man lsof, OUTPUT FOR OTHER PROGRAMS): process set, file set
_PROCESS_LETTERS = frozenset("pcuLgRKMZ")
_FILE_LETTERS = frozenset("faltGDdsoiknNPSTCmr")


def parse(text: str, first_line: int = 1) -> ParseResult:
    """Parse lsof table or ``-F`` output."""
    lines = split_lines(text)
    if not any(_HEADER.match(line) for line in lines) and _looks_like_fields(lines):
        return _parse_fields(lines, first_line)
    return _parse_table(lines, first_line)


def decode_name(text: str) -> str:
    """Undo lsof's escaping of non-printable bytes (``\\x20``, ``\\xd1\\x81``, ``\\t``)."""
    if "\\" not in text:
        return text
    out = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(text):
        out += text[pos : match.start()].encode("utf-8", "surrogateescape")
        if match.group(1):
            out.append(int(match.group(1), 16))
        else:
            out.append(_C_ESCAPES[match.group(2)])
        pos = match.end()
    out += text[pos:].encode("utf-8", "surrogateescape")
    return out.decode("utf-8", "replace")


# --------------------------------------------------------------------- table


def _parse_table(lines: list[str], first_line: int) -> ParseResult:
    listeners: list[Listener] = []
    unparsed: list[UnparsedLine] = []
    seen: set[tuple[str, str, str, str]] = set()
    header_seen = False
    for number, line in enumerate(lines, first_line):
        if not line.strip():
            continue
        if _HEADER.match(line):
            header_seen = True
            continue
        outcome = _read_table_row(line, number, seen)
        if isinstance(outcome, Listener):
            listeners.append(outcome)
        elif outcome == "unreadable" or (outcome == "other" and not header_seen):
            unparsed.append(UnparsedLine(number, line))
    return ParseResult(
        parser=info.name, listeners=merge_duplicates(listeners), unparsed=tuple(unparsed)
    )


def _read_table_row(line: str, number: int, seen: set[tuple[str, str, str, str]]) -> Listener | str:
    """A Listener, "skip" (recognised, not listening), "other" (a non-network
    row: silent after a header) or "unreadable"."""
    spans = list(_TOKEN.finditer(line))
    words = [m.group() for m in spans]
    if len(words) < 3 or not words[1].isdigit():
        return "unreadable"
    type_at = next((i for i in range(4, min(len(words), 8)) if words[i] in _INET_TYPES), None)
    if type_at is None:
        return "other"
    node_at = next(
        (
            i
            for i in range(type_at + 1, len(words))
            if words[i] in _PROTOS or words[i] in _OTHER_NODES
        ),
        None,
    )
    if node_at is None:
        return "unreadable"
    if words[node_at] in _OTHER_NODES:
        return "skip"
    user, fd = words[type_at - 2], words[type_at - 1]
    name = line[spans[node_at].end() :].strip()
    socket = " ".join(words[type_at : node_at + 1])  # TYPE DEVICE SIZE/OFF NODE
    key = (words[1], fd, socket, name)
    if key in seen:
        return "skip"  # the same socket again, printed for another thread
    seen.add(key)
    match = _NAME_STATE.match(name)
    if match is None:
        return "unreadable"
    process = Process(name=decode_name(words[0]), pid=int(words[1]), user=user)
    return _listener(
        _PROTOS[words[node_at]],
        _INET_TYPES[words[type_at]],
        match.group("addr"),
        match.group("state"),
        process,
        line,
        number,
    )


def _listener(
    proto: str,
    family_hint: int,
    address_text: str,
    state: str | None,
    process: Process | None,
    raw: str,
    number: int,
) -> Listener | str:
    """The listener a socket NAME describes, "skip" or "unreadable"."""
    if "->" in address_text:
        return "skip"  # a connection (or a connected UDP socket)
    try:
        host, port_text = split_host_port(address_text)
    except ValueError:
        return "unreadable"
    if port_text == "*":
        return "skip"  # not bound to a port
    if proto == "tcp" and state is not None and state.upper() != "LISTEN":
        return "skip"
    port = port_of(port_text.strip())
    if port is None:
        return "unreadable"
    return make_listener(
        tcp=proto == "tcp",
        address=normalise_address(host, family_hint),
        port=port,
        processes=(process,) if process is not None else (),
        raw=raw,
        line=number,
    )


# -------------------------------------------------------------------- fields


def _looks_like_fields(lines: list[str]) -> bool:
    return any(re.match(r"^p\d+$", line.split("\x00")[0]) for line in lines[:200])


@dataclass(slots=True)
class _FileSet:
    fields: dict[str, str] = field(default_factory=dict)
    tcp_state: str | None = None
    lines: list[tuple[int, str]] = field(default_factory=list)


def _parse_fields(lines: list[str], first_line: int) -> ParseResult:
    listeners: list[Listener] = []
    unparsed: list[UnparsedLine] = []
    process: dict[str, str] | None = None
    process_lines: list[tuple[int, str]] = []
    current: _FileSet | None = None

    def flush() -> None:
        if current is None or process is None:
            return
        outcome = _field_listener(process, process_lines, current)
        if isinstance(outcome, Listener):
            listeners.append(outcome)
        elif outcome == "unreadable":
            number, text = current.lines[0]
            unparsed.append(UnparsedLine(number, text))

    for number, line in enumerate(lines, first_line):
        # -F0 ends each field with NUL instead of a newline
        for part in line.split("\x00"):
            if not part.strip():
                continue
            letter, value = part[:1], part[1:]
            known = letter in _PROCESS_LETTERS or letter in _FILE_LETTERS
            if not known or (process is None and letter != "p"):
                unparsed.append(UnparsedLine(number, line))
                break
            if letter == "p":
                flush()
                current = None
                process, process_lines = {"p": value}, [(number, part)]
            elif letter in _PROCESS_LETTERS and process is not None and current is None:
                process[letter] = value
                process_lines.append((number, part))
            elif letter in _FILE_LETTERS:
                if current is None or letter == "f" or (letter != "T" and letter in current.fields):
                    flush()
                    current = _FileSet()
                current.lines.append((number, part))
                if letter == "T":
                    if value.startswith("ST="):
                        current.tcp_state = value[3:]
                else:
                    current.fields[letter] = value
    flush()
    return ParseResult(
        parser=info.name, listeners=merge_duplicates(listeners), unparsed=tuple(unparsed)
    )


def _field_listener(
    process: dict[str, str], process_lines: list[tuple[int, str]], files: _FileSet
) -> Listener | str:
    family = _INET_TYPES.get(files.fields.get("t", ""))
    name = files.fields.get("n")
    if family is None or name is None:
        return "skip"  # not a network file
    proto = _PROTOS.get(files.fields.get("P", "").upper())
    if proto is None:
        if files.fields.get("P", "").upper() in _OTHER_NODES:
            return "skip"
        if files.tcp_state is None:
            return "unreadable"  # no P field: cannot tell TCP from UDP
        proto = "tcp"
    pid = process.get("p", "")
    user = process.get("L") or process.get("u")
    command = process.get("c")
    owner = Process(
        name=decode_name(command) if command is not None else None,
        pid=int(pid) if pid.isdigit() else None,
        user=user,
    )
    raw = "\n".join(text for _, text in process_lines + files.lines)
    return _listener(proto, family, name, files.tcp_state, owner, raw, files.lines[0][0])


def detect(text: str) -> float:
    """The ``COMMAND PID ... NAME`` header, or ``-F`` ``p<pid>``/``c<cmd>`` lines."""
    lines = split_lines(text)[:400]
    if any(_HEADER.match(line) for line in lines):
        return 0.95
    fields = [line for line in lines if line and _FIELD.match(line)]
    pids = [line for line in fields if re.match(r"^p\d+$", line)]
    if pids and any(line.startswith(("n", "c")) for line in fields):
        nonblank = [line for line in lines if line.strip()]
        return 0.5 + 0.4 * len(fields) / max(len(nonblank), 1)
    return 0.0
