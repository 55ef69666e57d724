"""``parse(text, first_line)``: numbering as the whole output, in one pass.

A collector's listing is one section of its script's output, and listeners
and unparsed lines are numbered as that whole output. Each parser numbers
from ``first_line`` itself, so the collector no longer rebuilds every
listener a second time (a 100,000-socket host made 100,000 copies). These
cases pin that the one pass numbers exactly as parsing from line 1 and then
moving every number by ``first_line - 1`` did, for every registered parser,
on every corpus capture, captures cut anywhere, rows broken by newlines in
process names, and any text at all; and that the collector's numbers point
at the listener's own line of the command's whole output.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fleetscan import parsers
from fleetscan.collectors.posix import interpret_posix
from fleetscan.model import ParseResult, Status
from fleetscan.parsers.base import never_raises, split_lines
from fleetscan.transports.base import CommandResult
from tests.parsers.listener_view import CORPUS, read_bytes_as_text

SPECS = parsers.all_parsers()
CAPTURES = sorted(CORPUS.rglob("*.out"))
FIRST_LINES = (1, 7, 100_001)


def renumbered(result: ParseResult, first_line: int) -> ParseResult:
    """The reference: parse from line 1, then move every number (what the
    collector did before the parsers took ``first_line``)."""
    d = first_line - 1
    return replace(
        result,
        listeners=tuple(
            replace(x, line=x.line + d) if x.line is not None else x for x in result.listeners
        ),
        unparsed=tuple(replace(u, line=u.line + d) for u in result.unparsed),
    )


def check(text: str, first_line: int) -> None:
    for spec in SPECS:
        got = spec.parse(text, first_line)
        assert got == renumbered(spec.parse(text), first_line), (spec.name, first_line)


def test_every_capture_is_numbered_from_first_line() -> None:
    assert len(CAPTURES) >= 20  # the shared corpus is there
    for path in CAPTURES:
        text = read_bytes_as_text(path)
        for spec in SPECS:
            reference = spec.parse(text)
            for first_line in FIRST_LINES:
                got = spec.parse(text, first_line)
                assert got == renumbered(reference, first_line), (path.name, spec.name)


def test_the_numbers_land_on_the_listeners_own_lines() -> None:
    """Not only equal to the reference: in a capture behind ``k`` lines of
    other output, every single-line listener's number is its own line."""
    for path in CAPTURES:
        text = read_bytes_as_text(path)
        before = "x\n" * 41
        lines = split_lines(before + text)
        for spec in SPECS:
            got = spec.parse(text, 42)
            for x in got.listeners:
                assert x.line is not None and x.line >= 42
                if "\n" not in x.raw:
                    assert lines[x.line - 1] == x.raw, (path.name, spec.name)
            for u in got.unparsed:
                assert lines[u.line - 1] == u.text, (path.name, spec.name)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(CAPTURES),
    st.integers(0, 20_000),
    st.integers(0, 400),
    st.integers(1, 10**6),
)
def test_captures_cut_anywhere_are_numbered_as_the_reference(
    path: Path, start: int, length: int, first_line: int
) -> None:
    check(read_bytes_as_text(path)[start : start + length * 10], first_line)


#: rows broken over several lines by a newline in a process name, per format
HOSTILE = [
    'tcp LISTEN 0 128 0.0.0.0:4444 0.0.0.0:* users:(("bd\nx",pid=7,fd=3))\n'
    'tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=1,fd=3))\n',
    "tcp        0      0 0.0.0.0:4444            0.0.0.0:*               LISTEN      7/bd\n"
    "x\ntcp        0      0 0.0.0.0:22              0.0.0.0:*               LISTEN      1/sshd\n",
    "nc\nx      7 root    3u  IPv4  1234      0t0  TCP *:4444 (LISTEN)\n",
    "root     bd\nx      7     3  tcp4   *:4444                *:*\n",
]


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.text(max_size=300),
        st.sampled_from(HOSTILE),
        st.lists(
            st.sampled_from([*"tcpudp46.:*[]%() \n\tLISTEN", "users:((", "pid=", ",fd=", "\r"]),
            max_size=150,
        ).map("".join),
    ),
    st.integers(1, 5000),
)
@example(HOSTILE[0], 9)
@example(HOSTILE[1], 3)
def test_any_text_is_numbered_as_the_reference(text: str, first_line: int) -> None:
    check(text, first_line)


def test_the_guard_numbers_a_failed_parse_from_first_line() -> None:
    def broken(text: str, first_line: int = 1) -> ParseResult:
        raise RuntimeError("a parser bug")

    got = never_raises("broken", broken)("a\nb\n", 10)
    assert [(u.line, u.text) for u in got.unparsed] == [(10, "a"), (11, "b")]


@pytest.mark.parametrize("before", [0, 3])
def test_the_collector_numbers_listeners_by_the_whole_output(before: int) -> None:
    """A scan's listener and unparsed numbers count the script's frame lines:
    line N of the evidence is the listener's own line."""
    m = "@@FLEETSCAN-abc"
    junk = "".join(f"motd line {i}\n" for i in range(before))
    stdout = (
        f"{junk}{m} os Linux\n{m} uid 0\n{m} begin ss\n"
        "Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
        'tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=1,fd=3))\n'
        "this is no row\n"
        'udp UNCONN 0 0 127.0.0.1:53 0.0.0.0:* users:(("dnsmasq",pid=9,fd=4))\n'
        f"{m} end ss 0\n{m} begin passwd\n0 root\n{m} end passwd 0\n"
    ).encode()
    result = CommandResult("sh -s", 0, stdout, b"", 0.1, False)
    got = interpret_posix(None, result, "abc")
    lines = stdout.decode().split("\n")
    assert got.status is Status.PARTIAL  # the unreadable line
    assert [(x.port, lines[x.line - 1]) for x in got.listeners if x.line] == [
        (22, got.listeners[0].raw),
        (53, got.listeners[1].raw),
    ]
    assert [(u.line, lines[u.line - 1]) for u in got.unparsed] == [(before + 6, "this is no row")]
