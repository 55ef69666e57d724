"""Properties of the Linux parsers: generated listeners rendered the way ss and
netstat print them parse back to the same listeners; garbage and truncated
real outputs never raise and never lose a line."""

from __future__ import annotations

import ipaddress
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from listener_view import CORPUS, read_bytes_as_text

from fleetscan import parsers
from fleetscan.model import ParseResult
from fleetscan.parsers import linux_netstat, linux_proc, linux_ss
from fleetscan.parsers.base import split_lines

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PARSERS = tuple(parsers.get(m.info.name) for m in (linux_ss, linux_netstat, linux_proc))

# (proto, family, address, zone, port, ((name, pid), ...))
Spec = tuple[str, int, str, str | None, int, tuple[tuple[str, int], ...]]

# comm-like names: spaces, quotes, parentheses, commas, slashes, colons, non-ASCII
NAME_CHARS = st.sampled_from(list("abcxyz019 _-./:,'\"()[]{}é漢"))
v4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
v6 = (
    st.integers(0, 2**128 - 1)
    .map(ipaddress.IPv6Address)
    .filter(lambda a: a.ipv4_mapped is None)
    .map(str)
)
zones = st.none() | st.from_regex(r"[a-z][a-z0-9_.-]{0,14}", fullmatch=True)
ports = st.integers(1, 65535)


def _ss_name(name: str) -> bool:
    # ss cannot tell where a name ends if it holds `",pid=N,` itself
    return re.search(r'",(?:pid=)?[0-9]+,', name) is None


ss_names = st.text(NAME_CHARS, min_size=1, max_size=15).filter(_ss_name)
netstat_names = st.text(NAME_CHARS, min_size=1, max_size=20).map(str.strip).filter(bool)


@st.composite
def ss_specs(draw: st.DrawFn) -> Spec:
    proto = draw(st.sampled_from(["tcp", "udp"]))
    family = draw(st.sampled_from([4, 6]))
    address = draw(v4 if family == 4 else v6)
    zone = draw(zones)
    owners = draw(st.lists(st.tuples(ss_names, st.integers(1, 4194304)), max_size=4, unique=True))
    return (proto, family, address, zone, draw(ports), tuple(owners))


def _render_ss(spec: Spec, extended: bool) -> str:
    proto, family, address, zone, port, owners = spec
    host = f"[{address}]" if family == 6 else address
    local = f"{host}%{zone}:{port}" if zone else f"{host}:{port}"
    peer = "[::]:*" if family == 6 else "0.0.0.0:*"
    state = "LISTEN" if proto == "tcp" else "UNCONN"
    line = f"{proto:5} {state:6} 0      128    {local:>30} {peer:>14}    "
    if owners:
        line += "users:(" + ",".join(f'("{n}",pid={p},fd=3)' for n, p in owners) + ")"
    if extended:
        line += " uid:33 ino:4711 sk:1a cgroup:/system.slice/x.service v6only:1 <->"
    return line


def _as_specs(result: ParseResult) -> list[Spec]:
    return [
        (
            x.proto,
            x.family,
            x.address,
            x.zone,
            x.port,
            tuple((p.name, p.pid or 0) for p in x.processes),
        )
        for x in result.listeners
    ]


@SETTINGS
@given(st.lists(ss_specs(), max_size=8), st.booleans(), st.booleans())
def test_ss_rendering_parses_back(specs: list[Spec], header: bool, extended: bool) -> None:
    lines = [_render_ss(s, extended) for s in specs]
    if header:
        lines.insert(0, "Netid State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess")
    result = linux_ss.parse("\n".join(lines) + "\n")
    assert result.unparsed == ()
    assert _as_specs(result) == specs
    assert result.owners_known is any(s[5] for s in specs)


@st.composite
def netstat_specs(draw: st.DrawFn) -> Spec:
    proto = draw(st.sampled_from(["tcp", "udp"]))
    family = draw(st.sampled_from([4, 6]))
    address = draw(v4 if family == 4 else v6)
    owner = draw(st.none() | st.tuples(netstat_names, st.integers(1, 4194304)))
    return (proto, family, address, None, draw(ports), (owner,) if owner else ())


def _render_netstat(spec: Spec, extended: bool) -> str:
    proto, family, address, _zone, port, owners = spec
    column = f"{proto}6" if family == 6 else proto
    local = f"{address}:{port}"
    foreign = ":::*" if family == 6 else "0.0.0.0:*"
    state = "LISTEN" if proto == "tcp" else ""
    line = f"{column:5} {0:6} {0:6} {local:23} {foreign:23} {state:11} "
    if extended:
        line += "root       12345      "
    owner = f"{owners[0][1]}/{owners[0][0]}" if owners else "-"
    return line + f"{owner:20}"


@SETTINGS
@given(st.lists(netstat_specs(), max_size=8), st.booleans())
def test_netstat_rendering_parses_back(specs: list[Spec], extended: bool) -> None:
    header = (
        "Proto Recv-Q Send-Q Local Address           Foreign Address         State       "
        + ("User       Inode      " if extended else "")
        + "PID/Program name"
    )
    lines = ["Active Internet connections (only servers)", header]
    lines += [_render_netstat(s, extended) for s in specs]
    result = linux_netstat.parse("\n".join(lines) + "\n")
    assert result.unparsed == ()
    assert _as_specs(result) == specs
    expected_user = "root" if extended else None
    assert all(p.user == expected_user for x in result.listeners for p in x.processes)


def _check_evidence(text: str, result: ParseResult) -> None:
    """Every listener and unparsed line points at the exact line(s) it came from
    (a row broken by a process name holding newlines spans several)."""
    lines = split_lines(text)
    for listener in result.listeners:
        assert listener.line is not None
        span = listener.raw.count("\n") + 1
        assert "\n".join(lines[listener.line - 1 : listener.line - 1 + span]) == listener.raw
    for item in result.unparsed:
        assert lines[item.line - 1] == item.text


@SETTINGS
@given(st.text(max_size=400))
def test_random_text_never_raises(text: str) -> None:
    for spec in PARSERS:
        result = spec.parse(text)
        assert result.parser == spec.name
        _check_evidence(text, result)
        assert 0.0 <= spec.detect(text) <= 1.0


LINE_PIECES = st.sampled_from(
    [
        "tcp",
        "udp6",
        "LISTEN",
        "UNCONN",
        "0",
        "128",
        "*:*",
        "[::]:22",
        ":::22",
        "0.0.0.0:ssh",
        'users:(("a",pid=1,fd=2))',
        'users:(("',
        "-",
        "1/x y",
        "@@file tcp",
        "@@sockets",
        "   0: 0100007F:0019 00000000:0000 0A",
        "\t",
        "  ",
        "\r",
    ]
)


@SETTINGS
@given(st.lists(st.lists(LINE_PIECES, max_size=9).map(" ".join), max_size=12))
def test_near_miss_lines_never_raise(lines: list[str]) -> None:
    text = "\n".join(lines)
    for spec in PARSERS:
        _check_evidence(text, spec.parse(text))


REAL = [
    read_bytes_as_text(CORPUS / "linux/ss-tulpen/jc_generic_ss-wide.out"),
    read_bytes_as_text(CORPUS / "linux/ss-tulpen/inspec_ss-tulpen.out"),
    read_bytes_as_text(CORPUS / "linux/netstat-lnp/jc_ubuntu-18.04_netstat-sudo-lnp-space.out"),
    read_bytes_as_text(CORPUS / "linux/netstat-tulpen/inspec_netstat-tulpen.out"),
    read_bytes_as_text(CORPUS.parent / "linux/proc-script-capture.out"),
]


@SETTINGS
@given(st.sampled_from(REAL), st.integers(0, 10**6), st.integers(0, 10**6))
def test_truncated_real_outputs_never_raise(text: str, start: int, length: int) -> None:
    start %= len(text) + 1
    piece = text[start : start + length]
    for spec in PARSERS:
        result = spec.parse(piece)
        _check_evidence(piece, result)


def _kept(result: ParseResult, lines: int) -> list[tuple[object, ...]]:
    # A bare ss `*` is read from evidence elsewhere in the output (old vs new
    # ss), so a cut can change which wildcard it is, never anything else.
    return [
        (x.line, x.raw, x.proto, x.port, x.processes, x.address in ("0.0.0.0", "::") or x.address)
        for x in result.listeners
        if x.line is not None and x.line <= lines
    ]


@SETTINGS
@given(st.sampled_from(REAL[:4]), st.integers(0, 10**6))
def test_a_cut_output_keeps_every_complete_row(text: str, cut: int) -> None:
    """Cutting a real output mid-row (a dropped connection): every complete
    row before the cut reads exactly as it does in the whole output."""
    parser = linux_ss.parse if "Netid" in text else linux_netstat.parse
    cut %= len(text) + 1
    head = text[:cut]
    complete_lines = head.count("\n")
    assert _kept(parser(head), complete_lines) == _kept(parser(text), complete_lines)
