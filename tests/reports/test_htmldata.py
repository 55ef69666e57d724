"""The compact JSON block of report.html: safe inside <script>, complete,
and small."""

from __future__ import annotations

import json

import pytest

from fleetscan.model import ScanRun
from fleetscan.reports import summary
from fleetscan.reports.htmldata import encode, script_safe
from fleetscan.reports.sanitize import visible_controls

BREAKOUTS = ["</script><img src=x onerror=alert(1)>", "<!--<script>", "a\u2028b\u2029c", "&amp;"]


@pytest.mark.parametrize("text", BREAKOUTS)
def test_script_safe_json_cannot_end_the_block(text: str) -> None:
    out = script_safe(json.dumps({"s": [text]}, ensure_ascii=False))
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in out
    assert json.loads(out) == {"s": [text]}


def test_every_host_finding_and_listener_is_in_the_data(any_run: ScanRun) -> None:
    data = encode(any_run)
    strings = data["s"]
    assert [strings[h[0]] for h in data["h"]] == [visible_controls(s.host) for s in any_run.scans]
    assert len(data["h"]) == len(any_run.scans)
    assert len(data["f"]) == len(any_run.findings)
    for scan, row in zip(any_run.scans, data["h"], strict=True):
        listeners = row[14] if len(row) > 14 else []
        assert len(listeners) == len(scan.listeners)
    # worst first, like every report
    assert [f[0] for f in data["f"]] == [
        int(f.severity) for f in summary.sort_findings(any_run.findings)
    ]


def test_finding_rows_point_at_their_listener(realistic_run: ScanRun) -> None:
    data = encode(realistic_run)
    strings = data["s"]
    for row, f in zip(data["f"], summary.sort_findings(realistic_run.findings), strict=True):
        if f.listener is None:
            continue
        host = data["h"][row[1]]
        listener = host[14][row[4]]
        assert listener[2] == f.listener.port
        assert strings[listener[1]] == f.listener.address


def test_hostile_strings_are_made_visible(hostile_run: ScanRun) -> None:
    strings = encode(hostile_run)["s"]
    assert "\\x1b]0;pwned\\x07" in "".join(strings)
    assert not any("\x1b" in s or "\u202e" in s for s in strings)


def test_the_block_is_safe_inside_script_whatever_the_hosts_say(hostile_run: ScanRun) -> None:
    """page_data writes the block as text, a host at a time: it is escaped
    by script_safe and decodes to what report.js reads."""
    from fleetscan.reports.htmldata import page_data

    text = page_data(hostile_run)
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in text
    assert json.loads(text) == encode(hostile_run)


def test_listener_rows_written_in_batches_are_every_row_in_order() -> None:
    """A host of more rows than one batch (and an empty host beside it):
    every listener, in order, one row each, with its fields."""
    import dataclasses

    from bench.reports import synthetic_run
    from fleetscan.reports.htmldata import ROWS_PER_DUMP

    run = synthetic_run(2, listeners=2 * ROWS_PER_DUMP + 3)
    big, other = run.scans
    empty = dataclasses.replace(other, listeners=())
    run = dataclasses.replace(run, scans=(big, empty))
    data = encode(run)
    strings = data["s"]
    rows = data["h"][0][14]
    assert len(rows) == len(big.listeners) > 2 * ROWS_PER_DUMP
    assert [(strings[r[1]], r[2], r[3]) for r in rows] == [
        (x.address, x.port, x.line if x.line is not None else -1) for x in big.listeners
    ]
    assert len(data["h"][1]) <= 14 or data["h"][1][14] == []
