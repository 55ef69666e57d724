"""Where a host's output is parsed: on the event loop when small (cheaper than a
thread hand-off), in a worker thread when large, so a huge or hostile output
never stalls the other hosts' I/O."""

from __future__ import annotations

from fleetscan.collectors.base import INLINE_PARSE_BYTES, parse_inline
from fleetscan.transports.base import CommandResult


def result(stdout: bytes, stderr: bytes = b"") -> CommandResult:
    return CommandResult("sh -s", 0, stdout, stderr, 0.01)


def test_a_typical_listing_is_parsed_inline() -> None:
    assert parse_inline(result(b"tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\n" * 40))


def test_the_limit_counts_every_output_of_the_host() -> None:
    half = b"x" * (INLINE_PARSE_BYTES // 2)
    assert parse_inline(result(half), result(half))
    assert not parse_inline(result(half), result(half + b"x"))
    assert not parse_inline(result(b"", b"e" * (INLINE_PARSE_BYTES + 1)))


def test_a_flood_goes_to_a_thread() -> None:
    assert not parse_inline(result(b"y" * (16 * 1024 * 1024)))
