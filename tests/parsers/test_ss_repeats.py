"""A row that ``ss`` printed again word for word shares the first one's
listener: a flood of one row (a hostile host, capped at ``--max-output-mb``)
holds one Listener, not 140,000. Repeats are merged by the collector in any
case, so what a scan reports is exactly what it was without the sharing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetscan.parsers import linux_ss
from fleetscan.parsers.base import merge_duplicates

HEADER = "Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
ROWS = [
    'tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=1,fd=3)) ino:1 sk:1\n',
    'tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=2,fd=3)) uid:0 ino:2\n',
    'tcp LISTEN 0 128 [::]:22 [::]:* users:(("sshd",pid=1,fd=4)) v6only:1\n',
    'udp UNCONN 0 0 127.0.0.1:53 0.0.0.0:* users:(("dnsmasq",pid=9,fd=4)) uid:107\n',
    "tcp LISTEN 0 128 *:8080 *:*\n",
    'tcp LISTEN 0 128 0.0.0.0:4444 0.0.0.0:* users:(("bd\nx",pid=7,fd=3))\n',
    "tcp LISTEN 0 128 0.0.0.0:1 0.0.0.0:* " + "A" * 80 + "\n",
    "garbage that is no row\n",
]


def merged(text: str) -> tuple[object, ...]:
    return merge_duplicates(linux_ss.parse(text, 5).listeners)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(ROWS), max_size=200), st.integers(0, 3))
def test_sharing_repeats_changes_nothing_a_scan_reports(rows: list[str], window: int) -> None:
    text = HEADER + "".join(rows)
    shared = linux_ss.parse(text, 5)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(linux_ss, "REPEAT_WINDOW", window)  # 0: no sharing at all
        reference = linux_ss.parse(text, 5)
        assert merged(text) == merge_duplicates(reference.listeners)
    assert merge_duplicates(shared.listeners) == merge_duplicates(reference.listeners)
    assert shared.unparsed == reference.unparsed
    assert len(shared.listeners) == len(reference.listeners)


def test_a_flood_of_one_row_holds_one_listener() -> None:
    row = ROWS[6]
    parsed = linux_ss.parse(HEADER + row * 20_000)
    assert len(parsed.listeners) == 20_000
    assert len({id(x) for x in parsed.listeners}) == 1
    (one,) = merge_duplicates(parsed.listeners)
    assert one.line == 2 and one.raw == row.rstrip("\n")


def test_a_flood_cycling_through_rows_holds_one_listener_per_row() -> None:
    cycle = "".join(ROWS[:4])
    parsed = linux_ss.parse(HEADER + cycle * 5_000)
    assert len({id(x) for x in parsed.listeners}) == 4


def test_distinct_rows_are_never_shared() -> None:
    text = HEADER + "".join(
        f'tcp LISTEN 0 128 127.0.0.1:{p} 0.0.0.0:* users:(("haproxy",pid=4,fd={p}))\n'
        for p in range(1, 3_001)
    )
    parsed = linux_ss.parse(text)
    assert len({id(x) for x in parsed.listeners}) == 3_000
    assert [x.line for x in parsed.listeners] == list(range(2, 3_002))
