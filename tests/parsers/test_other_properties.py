"""Property tests for the Windows, BSD netstat, lsof and sockstat parsers.

Generated listeners rendered the way each tool prints them must parse back to
the same listeners; any text at all (random, or a capture cut anywhere) must
parse without raising, and every unparsed line must be a real line of it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from fleetscan.addresses import normalise_address
from fleetscan.model import ParseResult
from fleetscan.parsers import bsd_netstat, freebsd_sockstat, lsof, windows_netstat
from fleetscan.parsers.base import split_lines
from tests.parsers.listener_view import CORPUS, read_bytes_as_text

SETTINGS = settings(max_examples=200, deadline=None)
PARSERS: list[Callable[[str], ParseResult]] = [
    windows_netstat.parse,
    bsd_netstat.parse,
    lsof.parse,
    freebsd_sockstat.parse,
]

ipv4 = st.builds(lambda n: str(ipaddress.IPv4Address(n)), st.integers(1, 2**32 - 1))
# IPv4-mapped addresses are written in their dotted form (::ffff:10.0.0.1), as
# fleetscan.addresses normalises them
ipv6 = st.builds(
    lambda n: normalise_address(str(ipaddress.IPv6Address(n)), 6).address,
    st.integers(1, 2**128 - 1),
)


#: IPv4-mapped IPv6 sockets, whose dotted form every format must carry through
MAPPED = [("tcp", 6, "::ffff:0.0.0.0", 1, 100), ("udp", 6, "::ffff:10.0.2.15", 9200, 7)]


@st.composite
def listeners(draw: st.DrawFn) -> tuple[str, int, str, int, int]:
    """(proto, family, address, port, pid); address "" means the wildcard."""
    proto = draw(st.sampled_from(["tcp", "udp"]))
    family = draw(st.sampled_from([4, 6]))
    address = draw(st.one_of(st.just(""), ipv4 if family == 4 else ipv6))
    return proto, family, address, draw(st.integers(1, 65535)), draw(st.integers(1, 99999))


def unique(items: list[tuple[str, int, str, int, int]]) -> list[tuple[str, int, str, int, int]]:
    seen: dict[tuple[str, int, str, int], tuple[str, int, str, int, int]] = {}
    for item in items:
        seen.setdefault(item[:4], item)
    return list(seen.values())


sockets = st.lists(listeners(), min_size=1, max_size=12).map(unique)


def wildcard(family: int) -> str:
    return "0.0.0.0" if family == 4 else "::"


def expected(items: list[tuple[str, int, str, int, int]]) -> list[tuple[object, ...]]:
    return [
        (proto, family, address or wildcard(family), port, "LISTEN" if proto == "tcp" else "UNCONN")
        for proto, family, address, port, _ in items
    ]


def keys(result: ParseResult) -> list[tuple[object, ...]]:
    return [(x.proto, x.family, x.address, x.port, x.state) for x in result.listeners]


@SETTINGS
@given(sockets)
@example(MAPPED)
def test_windows_netstat_ano_round_trip(items: list[tuple[str, int, str, int, int]]) -> None:
    rows = ["", "Active Connections", "", "  Proto  Local Address  Foreign Address  State  PID"]
    for proto, family, address, port, pid in items:
        host = address or wildcard(family)
        local = f"[{host}]:{port}" if family == 6 else f"{host}:{port}"
        peer = "[::]:0" if family == 6 else "0.0.0.0:0"
        if proto == "tcp":
            rows.append(f"  TCP    {local}   {peer}   LISTENING   {pid}")
        else:
            rows.append(f"  UDP    {local}   *:*   {pid}")
    result = windows_netstat.parse("\r\n".join(rows) + "\r\n")
    assert keys(result) == expected(items)
    assert [x.processes[0].pid for x in result.listeners] == [i[4] for i in items]
    assert result.unparsed == ()


@SETTINGS
@given(sockets)
@example(MAPPED)
def test_bsd_netstat_anW_round_trip(items: list[tuple[str, int, str, int, int]]) -> None:
    rows = [
        "Active Internet connections (including servers)",
        "Proto Recv-Q Send-Q  Local Address" + " " * 34 + "Foreign Address" + " " * 32 + "(state)",
    ]
    for proto, family, address, port, _ in items:
        local = f"{address or '*'}.{port}"
        state = "LISTEN" if proto == "tcp" else ""
        rows.append(f"{proto}{family}       0      0  {local:<46} {'*.*':<46} {state}")
    result = bsd_netstat.parse("\n".join(rows) + "\n")
    assert keys(result) == expected(items)
    assert result.unparsed == ()


def lsof_escape(name: str) -> str:
    """How lsof prints a command: printable ASCII as is, anything else \\xNN."""
    out = []
    for char in name:
        if char.isascii() and char.isprintable() and char not in " \\":
            out.append(char)
        else:
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8"))
    return "".join(out)


names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=9).filter(
    lambda s: s.strip() == s and s != ""
)
users = st.from_regex(r"[a-z_][a-z0-9_-]{0,15}", fullmatch=True)


@SETTINGS
@given(sockets, names, users)
@example(MAPPED, "nginx", "www")
def test_lsof_table_round_trip(
    items: list[tuple[str, int, str, int, int]], name: str, user: str
) -> None:
    rows = ["COMMAND     PID   USER   FD   TYPE     DEVICE SIZE/OFF NODE NAME"]
    for fd, (proto, family, address, port, pid) in enumerate(items, 3):
        host = address or "*"
        local = f"[{host}]:{port}" if family == 6 and address else f"{host}:{port}"
        state = " (LISTEN)" if proto == "tcp" else ""
        rows.append(
            f"{lsof_escape(name)} {pid} {user} {fd}u IPv{family} 0x{fd:x} 0t0 "
            f"{proto.upper()} {local}{state}"
        )
    result = lsof.parse("\n".join(rows) + "\n")
    assert keys(result) == expected(items)
    assert [(p.name, p.pid, p.user) for x in result.listeners for p in x.processes] == [
        (name, i[4], user) for i in items
    ]
    assert result.unparsed == ()


commands = st.from_regex(r"[a-z][a-z0-9._-]{0,9}", fullmatch=True)
short_users = st.from_regex(r"[a-z_][a-z0-9_]{0,7}", fullmatch=True)


@SETTINGS
@given(sockets, commands, short_users)
@example(MAPPED, "nginx", "www")
def test_sockstat_round_trip(
    items: list[tuple[str, int, str, int, int]], command: str, user: str
) -> None:
    rows = ["USER     COMMAND    PID   FD PROTO  LOCAL ADDRESS         FOREIGN ADDRESS"]
    for proto, family, address, port, pid in items:
        rows.append(
            f"{user:<8} {command:<10} {pid:<5} 3  {proto}{family}  {address or '*'}:{port}  *:*"
        )
    result = freebsd_sockstat.parse("\n".join(rows) + "\n")
    assert keys(result) == expected(items)
    assert [(p.name, p.pid) for x in result.listeners for p in x.processes] == [
        (command, i[4]) for i in items
    ]
    assert result.unparsed == ()


def check_never_raises(text: str) -> None:
    lines = split_lines(text)  # the parsers' own notion of a line (\n only)
    for parse in PARSERS:
        result = parse(text)
        assert isinstance(result, ParseResult)
        for item in result.unparsed:
            assert lines[item.line - 1] == item.text
        for listener in result.listeners:
            assert 0 <= listener.port <= 65535
            assert listener.line is not None and 1 <= listener.line <= len(lines)


@SETTINGS
@given(st.text(max_size=400))
def test_random_text_never_raises(text: str) -> None:
    check_never_raises(text)


TABLE_ALPHABET = st.sampled_from(
    [*"tcpudp46TCPUDP0123456789.:*[]%->() \n\r\tLISTEN", "\x00", "\\x20", "p1\n", "\ufffd"]
)


@SETTINGS
@given(st.lists(TABLE_ALPHABET, max_size=200).map("".join))
def test_listing_shaped_garbage_never_raises(text: str) -> None:
    check_never_raises(text)


CAPTURES = sorted(
    p
    for folder in ("windows", "macos", "freebsd", "linux/lsof")
    for p in (CORPUS / folder).rglob("*.out")
)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(CAPTURES), st.integers(0, 20000), st.integers(0, 400))
def test_captures_cut_anywhere_never_raise(path: Path, start: int, length: int) -> None:
    text = read_bytes_as_text(path)
    check_never_raises(text[start : start + length * 10])
