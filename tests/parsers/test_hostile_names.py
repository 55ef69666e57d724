"""No process name may hide a socket (issue 7, item 7).

For every parser, a listener owned by a process with a generated hostile name
(newlines, NUL, tabs, quotes, parentheses, commas, ``users:((`` look-alikes,
protocol words, very long and non-ASCII names) is rendered the way the real
tool prints it, between two ordinary rows. Whatever the name:

* every socket is still reported with its protocol, address and port;
* its owner is either read exactly (as the tool printed it), or the row is
  kept as an unparsed line, which makes the host incomplete (fail closed) —
  never a silently wrong or missing listener.
"""

from __future__ import annotations

import csv
import io

from hypothesis import example, given, settings
from hypothesis import strategies as st

from fleetscan import parsers
from fleetscan.model import ParseResult
from fleetscan.parsers import (
    bsd_netstat,
    freebsd_sockstat,
    linux_netstat,
    linux_proc,
    linux_ss,
    lsof,
    windows_netstat,
)
from tests.parsers.test_other_properties import lsof_escape

SETTINGS = settings(max_examples=150, deadline=None)

PIECES = st.sampled_from(
    [
        "\n",
        "\x00",
        "\t",
        "\r",
        " ",
        '"',
        "'",
        "(",
        ")",
        ",",
        ":",
        "/",
        "\\",
        "\\n",
        "users:((",
        '"),("',
        ",pid=1,fd=3)",
        '",pid=7,fd=3))',
        "tcp",
        "tcp4 *:22 *:*",
        "udp UNCONN 0 0 *:53",
        "LISTEN",
        "Active UNIX domain sockets",
        "Proto Recv-Q",
        "?",
        "-",
        "1234",
        "é",
        "漢",
        "\u2028",
        "\x85",
        "\x1b[31m",
        "[/x]",
        "sshd",
        "x" * 40,
    ]
)
hostile = st.lists(PIECES, min_size=1, max_size=6).map("".join)
KNOWN = st.sampled_from(["bd\nx", 'a"b', "(x)", "users:((", "a,b", "\x00", "\n", "x" * 300])

PORT = 4444
PID = 4242


def _socket_reported(result: ParseResult, proto: str = "tcp") -> list[object]:
    """Owners of the hostile socket; fails when it is missing."""
    found = [x for x in result.listeners if x.port == PORT and x.proto == proto]
    assert len(found) == 1, (result.listeners, result.unparsed)
    assert found[0].address == "127.0.0.1"
    # the ordinary rows around it are still read
    assert {x.port for x in result.listeners} >= {22, 53}
    return [(p.name, p.pid) for p in found[0].processes]


def _owner_exact_or_flagged(
    result: ParseResult, owners: list[object], want: tuple[str | None, int]
) -> None:
    """The owner as printed (a CR before a line break reads as a CRLF line end),
    or marked unknown (no name, or no process), or the row is flagged unparsed."""
    name, pid = want
    crlf = name.replace("\r\n", "\n") or None if name is not None else None
    allowed = ([(name, pid)], [(crlf, pid)], [(None, pid)], [])
    assert owners in allowed or result.unparsed, (owners, want)
    if owners == [] or owners == [(None, pid)]:
        assert name is None or not name.strip() or result.unparsed, (owners, want)


# --- Linux ss -----------------------------------------------------------------------


def _ss(name: str) -> str:
    head = "Netid State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess"
    rows = [
        head,
        'tcp   LISTEN 0      128        0.0.0.0:22        0.0.0.0:*    users:(("sshd",pid=5,fd=3))',
        f"tcp   LISTEN 0      128      127.0.0.1:{PORT}      0.0.0.0:*    "
        f'users:(("{name}",pid={PID},fd=3))',
        'udp   UNCONN 0      0          0.0.0.0:53        0.0.0.0:*    users:(("dns",pid=6,fd=4))',
    ]
    return "\n".join(rows) + "\n"


@SETTINGS
@given(hostile | KNOWN)
@example("bd\nx")
@example('a",pid=1,fd=3))')
def test_ss_never_loses_a_socket_to_its_process_name(name: str) -> None:
    result = parsers.get(linux_ss.info.name).parse(_ss(name))
    owners = _socket_reported(result)
    if '",' not in name:  # ss's own field syntax inside a name is ambiguous
        _owner_exact_or_flagged(result, owners, (name or None, PID))


# --- Linux netstat ------------------------------------------------------------------


def _netstat_name(name: str) -> str:
    """net-tools prints ``PID/name`` cut to 19 characters, padded to 20."""
    return f"{PID}/{name}"[: linux_netstat.PROGNAME_WIDTH - 1]


def _netstat(name: str) -> str:
    rows = [
        "Active Internet connections (only servers)",
        "Proto Recv-Q Send-Q Local Address           Foreign Address         State       "
        "PID/Program name    ",
        "tcp        0      0 0.0.0.0:22              0.0.0.0:*               LISTEN      5/sshd",
        f"tcp        0      0 127.0.0.1:{PORT}          0.0.0.0:*               LISTEN      "
        f"{_netstat_name(name):<20}",
        "udp        0      0 0.0.0.0:53              0.0.0.0:*                           6/dns",
        "Active UNIX domain sockets (only servers)",
        "Proto RefCnt Flags       Type       State         I-Node   PID/Program name     Path",
    ]
    return "\n".join(rows) + "\n"


def _padless(name: str) -> str:
    """What survives netstat's padding: each line of the name without trailing blanks."""
    return "\n".join(piece.rstrip() for piece in name.split("\n"))


@SETTINGS
@given(hostile | KNOWN)
@example("bd\nx")
@example("a\nActive UNIX")
def test_netstat_never_loses_a_socket_to_its_program_name(name: str) -> None:
    result = parsers.get(linux_netstat.info.name).parse(_netstat(name))
    owners = _socket_reported(result)
    shown = _padless(_netstat_name(name).partition("/")[2])
    _owner_exact_or_flagged(result, owners, (shown or None, PID))


# --- /proc (the collector's script output) ------------------------------------------


def _proc(name: str) -> str:
    # the script joins the lines of a comm with a literal \n (see PROC_SCRIPT)
    escaped = "\\n".join(name.split("\n"))
    return (
        "@@fleetscan-proc 1\n@@uid 0 0\n@@byteorder little\n@@file tcp\n"
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"
        "  timeout inode\n"
        "   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0"
        "        0 101 1 0000000000000000 100 0 0 10 0\n"
        f"   1: 0100007F:{PORT:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000"
        "     0        0 102 1 0000000000000000 100 0 0 10 0\n"
        "@@file udp\n"
        "   2: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0"
        "        0 103 2 0000000000000000 0\n"
        f"@@sockets\n101 5 0 sshd\n102 {PID} 0 {escaped}\n103 6 0 dns\n@@end\n"
    )


@SETTINGS
@given(hostile | KNOWN)
def test_proc_never_loses_a_socket_to_its_comm(name: str) -> None:
    result = parsers.get(linux_proc.info.name).parse(_proc(name))
    owners = _socket_reported(result)
    escaped = "\\n".join(name.split("\n")).removesuffix("\r")
    _owner_exact_or_flagged(result, owners, (escaped or None, PID))


# --- lsof (table and -F) ------------------------------------------------------------


@SETTINGS
@given(hostile | KNOWN)
def test_lsof_never_loses_a_socket_to_its_command(name: str) -> None:
    table = (
        "COMMAND     PID   USER   FD   TYPE     DEVICE SIZE/OFF NODE NAME\n"
        "sshd          5   root    3u  IPv4 0x1      0t0  TCP *:22 (LISTEN)\n"
        f"{lsof_escape(name)} {PID} root 3u IPv4 0x2 0t0 TCP 127.0.0.1:{PORT} (LISTEN)\n"
        "dns           6   root    4u  IPv4 0x3      0t0  UDP *:53\n"
    )
    fields = (
        "p5\ncsshd\nf3\ntIPv4\nPTCP\nn*:22\nTST=LISTEN\n"
        f"p{PID}\nc{lsof_escape(name)}\nf3\ntIPv4\nPTCP\nn127.0.0.1:{PORT}\nTST=LISTEN\n"
        "p6\ncdns\nf4\ntIPv4\nPUDP\nn*:53\n"
    )
    for text in (table, fields):
        result = parsers.get(lsof.info.name).parse(text)
        owners = _socket_reported(result)
        _owner_exact_or_flagged(result, owners, (name, PID))


# --- macOS / FreeBSD netstat --------------------------------------------------------

BSD_HEADER = (
    "Active Internet connections (including servers)\n"
    "Proto Recv-Q Send-Q  Local Address          Foreign Address        (state)      "
    "rxbytes      txbytes  rhiwat  shiwat    process:pid   state  options           gencnt"
    "    flags   flags1 usecnt rtncnt fltrs\n"
)
BSD_TAIL = "  00180 00000006 000000000000001e 00000000 00000800      1      0 000000"


def _bsd_row(proto: str, local: str, state: str, owner: str) -> str:
    return (
        f"{proto:<9} 0      0  {local:<22} {'*.*':<22} {state:<11}         0            0"
        f"  131072  131072 {owner:>14}{BSD_TAIL}"
    )


@SETTINGS
@given(hostile | KNOWN)
@example("bd\nx")
@example("a\ntcp4 x")
def test_bsd_netstat_never_loses_a_socket_to_its_process_name(name: str) -> None:
    text = (
        BSD_HEADER
        + "\n".join(
            [
                _bsd_row("tcp4", "*.22", "LISTEN", "sshd:5"),
                _bsd_row("tcp4", f"127.0.0.1.{PORT}", "LISTEN", f"{name}:{PID}"),
                _bsd_row("udp4", "*.53", "", "dns:6"),
            ]
        )
        + "\n"
    )
    result = parsers.get(bsd_netstat.info.name).parse(text)
    owners = _socket_reported(result)
    _owner_exact_or_flagged(result, owners, (name.strip() or None, PID))


def test_bsd_netstat_without_a_process_column_gives_null_names_never_empty_strings() -> None:
    """macOS 14/15 ``netstat -anv`` variants with a bare ``pid`` column: the
    name is unknown, which the JSON contract writes as null."""
    text = (
        "Active Internet connections (including servers)\n"
        "Proto Recv-Q Send-Q  Local Address          Foreign Address        (state)     "
        "rhiwat shiwat    pid   epid\n"
        "tcp4       0      0  *.22                   *.*                    LISTEN      "
        "131072 131072    512      0\n"
    )
    result = parsers.get(bsd_netstat.info.name).parse(text)
    (listener,) = result.listeners
    assert [p.to_dict() for p in listener.processes] == [{"name": None, "pid": 512, "user": None}]


# --- FreeBSD sockstat ---------------------------------------------------------------


def _sockstat_row(user: str, command: str, pid: int, proto: str, local: str) -> str:
    # USER padded to column 9, COMMAND cut to 10 and padded to column 20
    return f"{user:<8} {command[:10]:<10} {pid:<5} 3  {proto:<6} {local:<21} *:*"


@SETTINGS
@given(hostile | KNOWN)
@example("bd\nx")
@example("a b tcp4")
def test_sockstat_never_loses_a_socket_to_its_command(name: str) -> None:
    text = (
        "USER     COMMAND    PID   FD PROTO  LOCAL ADDRESS         FOREIGN ADDRESS\n"
        + "\n".join(
            [
                _sockstat_row("root", "sshd", 5, "tcp4", "*:22"),
                _sockstat_row("root", name, PID, "tcp4", f"127.0.0.1:{PORT}"),
                _sockstat_row("root", "dns", 6, "udp4", "*:53"),
            ]
        )
        + "\n"
    )
    result = parsers.get(freebsd_sockstat.info.name).parse(text)
    owners = _socket_reported(result)
    _owner_exact_or_flagged(result, owners, (name[:10].strip() or None, PID))


# --- Windows netstat + tasklist -----------------------------------------------------


@SETTINGS
@given(hostile | KNOWN)
def test_windows_never_loses_a_socket_to_an_image_name(name: str) -> None:
    netstat = (
        "\r\nActive Connections\r\n\r\n  Proto  Local Address          Foreign Address        "
        "State           PID\r\n"
        "  TCP    0.0.0.0:22             0.0.0.0:0              LISTENING       5\r\n"
        f"  TCP    127.0.0.1:{PORT}         0.0.0.0:0              LISTENING       {PID}\r\n"
        "  UDP    0.0.0.0:53             *:*                                    6\r\n"
    )
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    for image, pid in (("sshd.exe", 5), (name, PID), ("dns.exe", 6)):
        writer.writerow([image, str(pid), "Services", "0", "1,024 K"])
    parsed = parsers.get(windows_netstat.info.name).parse(netstat)
    result = windows_netstat.apply_tasklist(parsed, out.getvalue())
    owners = _socket_reported(result)
    _owner_exact_or_flagged(result, owners, (name.strip() or None, PID))


def test_garbage_lines_are_read_a_bounded_number_of_times() -> None:
    """Rebuilding a row broken by newlines stops at the first line too long to
    be the inside of a name: a line of garbage is read at most twice more (the
    join with the next line, and the ``stop`` check), not ``MAX_CONTINUATION``
    growing joins. A name's short pieces still join (the tests above)."""
    from fleetscan.parsers.base import MAX_NAME_FRAGMENT, join_continuation

    lines = [f"garbage {i} " + "x" * MAX_NAME_FRAGMENT for i in range(200)]
    reads: list[str] = []

    def read(text: str) -> None:
        reads.append(text)
        return None

    for i in range(len(lines)):
        assert join_continuation(lines, i, read) is None
    assert len(reads) == len(lines) - 1  # one join per line: the next line ends it
    pieces = ["root     bd", "a", "b", "x      7     3  tcp4   *:4444                *:*"]
    got = join_continuation(pieces, 0, lambda t: t if "tcp4" in t else None)
    assert got == ("\n".join(pieces), 3)
