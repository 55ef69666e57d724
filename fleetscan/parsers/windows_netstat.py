"""Windows ``netstat -ano`` (and ``-an``, ``-anob``) plus ``tasklist /FO CSV /NH``.

Windows netstat prints one row per socket::

    Active Connections

      Proto  Local Address          Foreign Address        State           PID
      TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       1712
      UDP    [fe80::244e:2f1e:2096:62b2%9]:1900  *:*                         8844

Quirks handled here (all seen in real outputs, see the corpus README):

* The title, header and state words are LOCALISED (``Aktive Verbindungen``,
  ``活动连接``, German state ``ABHÖREN``), so listening is decided from the row
  SHAPE: a TCP row whose foreign port is ``0`` (``0.0.0.0:0``, ``[::]:0``,
  ``HOST:0``) is listening unless its state is a known English non-listening
  word (``BOUND`` from ``-q``, ``CLOSED`` ...); a UDP row with foreign ``*:*``
  is a bound socket (state ``UNCONN``, as ss calls it).
* UDP rows have no state, so the PID is the 4th token there and the 5th on TCP.
* ``-b`` prints continuation lines after a row: a service tag (``  RpcSs``),
  the image (`` [svchost.exe]``) or a message (``Can not obtain ownership
  information``); they attach to the row above (and to its ``raw``).
* ``netstat -anbo | Select-String ... -context 0,1`` (PowerShell) prefixes
  matched rows with ``>``; the prefix is stripped.
* Lines before the first row: the header line right above a row and the title
  above it are skipped; anything else (MOTD, banners, errors) is kept as an
  unparsed line.

Process naming: netstat only knows the PID. A listener's process is
``Process(name=None, pid=N)`` -- the name is not known yet -- except
for the two fixed kernel pids (0 = ``System Idle Process``, 4 = ``System``)
and rows whose ``-b`` continuation names the image (or, when only the service
tag is visible, the service). :func:`apply_tasklist` fills names from
``tasklist /FO CSV /NH``; a pid that tasklist does not list keeps ``None``.

Rows describing the same proto/address/port (Windows prints one per socket,
e.g. forty ``UDP 0.0.0.0:5353``) are merged into one listener with every
owning process (see :func:`fleetscan.parsers.base.merge_duplicates`).

Schema (see :mod:`fleetscan.parsers.base`): pid from netstat; name from
tasklist (or ``-b``), else null; user never.

Example::

    $ netstat -ano
    Active Connections

      Proto  Local Address          Foreign Address        State           PID
      TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       1712
      UDP    [::]:500               *:*                                    4

    [{"proto": "tcp", "family": 4, "address": "0.0.0.0", "port": 135, "state": "LISTEN",
      "processes": [{"name": null, "pid": 1712, "user": null}]},
     {"proto": "udp", "family": 6, "address": "::", "port": 500, "state": "UNCONN",
      "processes": [{"name": "System", "pid": 4, "user": null}]}]
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field, replace

from fleetscan.addresses import normalise_address, split_host_port
from fleetscan.model import Listener, ParseResult, Process, UnparsedLine
from fleetscan.parsers.base import (
    REPEAT_WINDOW,
    ParserInfo,
    RepeatedRows,
    make_listener,
    merge_duplicates,
    split_lines,
    unique_processes,
)
from fleetscan.parsers.services import port_of

info = ParserInfo(
    name="windows-netstat",
    description="Windows netstat -ano (-an, -anob), localised; names from tasklist /FO CSV /NH",
    commands=("netstat -ano", "netstat -an", "netstat -anob", "netstat -aon"),
)

#: pids whose owner is fixed on every Windows host
WELL_KNOWN_PIDS: dict[int, str] = {0: "System Idle Process", 4: "System"}

_ROW = re.compile(r"^\s*(?:>\s*)?(TCP|UDP)\s+(\S+)\s+(\S+)(.*)$")
_LISTEN_WORDS = frozenset({"LISTENING", "LISTEN"})
# English states of sockets that are NOT listening even when the foreign port is 0
_OTHER_WORDS = frozenset(
    {
        "BOUND",
        "CLOSED",
        "CLOSE_WAIT",
        "CLOSING",
        "DELETE_TCB",
        "ESTABLISHED",
        "FIN_WAIT_1",
        "FIN_WAIT_2",
        "LAST_ACK",
        "SYN_RECEIVED",
        "SYN_SENT",
        "TIME_WAIT",
    }
)
_IMAGE = re.compile(r"^\[(.+)\]$")
_COLUMNS = re.compile(r"\S+(?: \S+)*")  # header fields are separated by 2+ spaces


@dataclass(slots=True)
class _Row:
    """A data row being built (continuation lines may still name its process)."""

    listener: Listener | None  # None: a recognised row that is not listening
    lines: list[str] = field(default_factory=list)
    image: str | None = None
    service: str | None = None


def parse(text: str, first_line: int = 1) -> ParseResult:
    """Parse Windows netstat output."""
    lines = split_lines(text)
    kinds = [_kind(line) for line in lines]
    skip = _preamble_lines(lines, kinds)
    rows: list[_Row] = []
    unparsed: list[UnparsedLine] = []
    owners_known = True
    header_has_pid: bool | None = None
    current: _Row | None = None
    # a row printed again word for word, whose first reading had no -b lines:
    # the same socket, which merge_duplicates would fold into the first
    # (identical text, same owner), so it is read only if -b lines follow it
    # (a flood of one row holds one _Row, not one per row; see RepeatedRows)
    recent: RepeatedRows[tuple[_Row, bool]] = RepeatedRows(REPEAT_WINDOW)
    repeat: tuple[str, int] | None = None  # such a row, not read (yet)
    for index, (line, kind) in enumerate(zip(lines, kinds, strict=True)):
        number = index + first_line
        if kind == "blank":
            current, repeat = None, None
            continue
        if index in skip:
            if skip[index] == "header":
                header_has_pid = line.split()[-1].upper() == "PID"
            current, repeat = None, None
            continue
        if kind == "row":
            seen = recent.get(line)
            if seen is not None and len(seen[0].lines) == 1:
                owners_known = owners_known and seen[1]
                current, repeat = None, (line, number)
                continue
            repeat = None
            row, has_pid = _read_row(line, number)
            if row is None:
                unparsed.append(UnparsedLine(number, line))
                current = None
                continue
            recent.keep(line, (row, has_pid))
            owners_known = owners_known and has_pid
            rows.append(row)
            current = row
            continue
        if repeat is not None and line[:1].isspace():
            # a repeated row with -b lines of its own: read after all (its own number)
            current = _read_row(*repeat)[0]
            repeat = None
            if current is not None:
                rows.append(current)
        if current is not None and line[:1].isspace():
            _attach(current, line)
            continue
        unparsed.append(UnparsedLine(number, line))
        current, repeat = None, None
    if not rows and header_has_pid is not None:
        owners_known = header_has_pid
    listeners = [_finish(row) for row in rows if row.listener is not None]
    return ParseResult(
        parser=info.name,
        listeners=merge_duplicates(x for x in listeners if x is not None),
        unparsed=tuple(unparsed),
        owners_known=owners_known,
    )


def _kind(line: str) -> str:
    if not line.strip():
        return "blank"
    return "row" if _ROW.match(line) else "other"


def _preamble_lines(lines: list[str], kinds: list[str]) -> dict[int, str]:
    """Indexes of the header (and the title above it) of each block of rows.

    The header is the non-blank line right above the first row of a block (it
    has 3+ fields separated by 2+ spaces, in whatever language); the title is
    the single-phrase line above the header. With no rows at all, the last
    header-shaped line is still recognised (an empty table)."""
    found: dict[int, str] = {}
    starts = [
        i
        for i, kind in enumerate(kinds)
        if kind == "row" and not _in_table(lines, kinds, _previous_index(kinds, i))
    ]
    for start in starts or [len(lines)]:
        header = _previous_index(kinds, start)
        if header is None or _in_table(lines, kinds, header) or lines[header].lstrip()[:1] == ">":
            continue
        if len(_COLUMNS.findall(lines[header].strip())) < 3:
            continue
        found[header] = "header"
        title = _previous_index(kinds, header)
        if title is not None and not _in_table(lines, kinds, title) and _is_phrase(lines[title]):
            found[title] = "title"
    return found


def _is_phrase(line: str) -> bool:
    return len(_COLUMNS.findall(line.strip())) == 1


def _in_table(lines: list[str], kinds: list[str], index: int | None) -> bool:
    """Whether line ``index`` is a row or an indented continuation line after
    one (same rule as the main loop: a blank or unindented line ends a row's
    continuation). Walks back from ``index``: each stretch of continuation
    lines is walked by the one row after it, so all calls stay linear."""
    if index is None:
        return False
    for i in range(index, -1, -1):
        if kinds[i] == "row":
            return True
        if kinds[i] == "blank" or not lines[i][:1].isspace():
            return False
    return False


def _previous_index(kinds: list[str], index: int) -> int | None:
    for i in range(index - 1, -1, -1):
        if kinds[i] != "blank":
            return i
    return None


def _read_row(line: str, number: int) -> tuple[_Row | None, bool]:
    """A recognised row (listener or not) and whether it had a PID; None if unreadable."""
    match = _ROW.match(line)
    if match is None:
        return None, False
    proto_word, local, foreign, tail = match.groups()
    rest = tail.split()
    pid: int | None = None
    if rest and rest[-1].isdigit() and (proto_word == "UDP" or len(rest) >= 2):
        pid = int(rest[-1])
        rest = rest[:-1]
    state_word = " ".join(rest)
    try:
        host, port_text = split_host_port(local)
        _, foreign_port = split_host_port(foreign) if foreign != "*:*" else ("*", "*")
    except ValueError:
        return None, pid is not None
    port = port_of(port_text.strip())
    if port is None:
        return None, pid is not None
    if proto_word == "TCP":
        upper = state_word.upper()
        if upper in _LISTEN_WORDS:
            listening = True
        elif upper in _OTHER_WORDS or not state_word:
            listening = False
        else:  # a localised state word: trust the shape (no peer)
            listening = foreign_port == "0"
    else:
        listening = foreign == "*:*"
    if not listening:
        return _Row(listener=None, lines=[line]), pid is not None
    address = normalise_address(host)
    processes: tuple[Process, ...] = ()
    if pid is not None:
        processes = (Process(name=WELL_KNOWN_PIDS.get(pid), pid=pid),)
    listener = make_listener(
        tcp=proto_word == "TCP",
        address=address,
        port=port,
        processes=processes,
        raw=line,
        line=number,
    )
    return _Row(listener=listener, lines=[line]), pid is not None


def _attach(row: _Row, line: str) -> None:
    """A ``-b`` continuation line: image ``[x.exe]``, service tag, or a message."""
    row.lines.append(line)
    text = line.strip()
    image = _IMAGE.match(text)
    if image:
        row.image = image.group(1).strip()
    elif len(text.split()) == 1 and row.service is None:
        row.service = text


def _finish(row: _Row) -> Listener | None:
    listener = row.listener
    if listener is None:
        return None
    name = row.image or row.service
    if name is None and len(row.lines) == 1:
        return listener  # as read: its raw is the row
    processes = listener.processes
    if name and processes and processes[0].pid not in WELL_KNOWN_PIDS:
        processes = (replace(processes[0], name=name),)
    elif name and not processes:
        processes = (Process(name=name),)
    return replace(listener, processes=processes, raw="\n".join(row.lines))


def parse_tasklist(text: str) -> dict[int, str]:
    """pid -> image name from ``tasklist /FO CSV /NH`` (never raises).

    Rows are ``"Image Name","PID","Session Name","Session#","Mem Usage"``; the
    image name may contain spaces and commas, the memory field has locale
    grouping (``"12,704 K"``), hence the csv module. A header row (localised,
    when ``/NH`` was forgotten) and ``INFO: ...`` lines have no numeric PID
    and are skipped."""
    table: dict[int, str] = {}
    # the whole text at once: a quoted name may hold a line break
    rows = csv.reader(io.StringIO(text, newline=""))
    while True:
        try:
            fields = next(rows)
        except StopIteration:
            break
        except (csv.Error, ValueError):
            continue
        if len(fields) < 2:
            continue
        pid_text = fields[1].strip()
        if pid_text.isdigit() and pid_text.isascii() and fields[0].strip():
            table[int(pid_text)] = fields[0].strip()
    return table


def apply_tasklist(result: ParseResult, tasklist_text: str) -> ParseResult:
    """Name every process whose pid ``tasklist`` lists; others keep their name."""
    names = {**parse_tasklist(tasklist_text), **WELL_KNOWN_PIDS}
    listeners = []
    for listener in result.listeners:
        processes = unique_processes(
            replace(p, name=names[p.pid]) if p.pid in names else p for p in listener.processes
        )
        listeners.append(replace(listener, processes=processes))
    return replace(result, listeners=tuple(listeners))


_DETECT_ROW = re.compile(r"^\s*(?:>\s*)?(?:TCP|UDP)\s+\S+:\S+\s+(?:\S+:\S+|\*:\*)(?:\s|$)")
_SHAPE = re.compile(r"\s(?:0\.0\.0\.0:0|\[::\]:0|\*:\*)\s")


def detect(text: str) -> float:
    """Upper-case ``TCP``/``UDP`` rows with ``host:port`` columns (Linux tools
    print lower-case protocols); a ``0.0.0.0:0``/``*:*`` peer or a header
    without ``Recv-Q`` makes it near certain."""
    lines = [line for line in split_lines(text)[:400] if line.strip()]
    if not lines:
        return 0.0
    rows = [line for line in lines if _DETECT_ROW.match(line)]
    if not rows:
        return 0.0
    score = 0.5 + 0.3 * len(rows) / len(lines)
    if any(_SHAPE.search(row + " ") for row in rows):
        score += 0.15
    if not any("Recv-Q" in line for line in lines):
        score += 0.05
    return min(score, 1.0)
