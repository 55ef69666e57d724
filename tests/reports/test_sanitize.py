"""The one place untrusted text is neutralised: control characters shown, not
executed; spreadsheet formulas turned into text; sizes bounded."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetscan.reports.sanitize import clip, csv_cell, visible_controls

# Characters XML 1.0 forbids, plus ESC/BEL/C1 a terminal would act on.
_DANGEROUS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u202e]")


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),
        ("\x1b[31mRED\x1b[0m", "\\x1b[31mRED\\x1b[0m"),
        ("a\nb\tc\rd", "a\\nb\\tc\\rd"),
        ("nul\x00del\x7f", "nul\\x00del\\x7f"),
        ("c1\x9b31m", "c1\\x9b31m"),
        ("evil\u202egpj.exe", "evil\\u202egpj.exe"),
        ("bad\udcffbyte", "bad\\udcffbyte"),
        ("line\u2028sep", "line\\u2028sep"),
        ("sshd: root@pts/0 ünïcode ✓", "sshd: root@pts/0 ünïcode ✓"),
        ("C:\\Windows\\System32\\svchost.exe", "C:\\Windows\\System32\\svchost.exe"),
    ],
)
def test_control_characters_are_shown_not_executed(raw: str, shown: str) -> None:
    assert visible_controls(raw) == shown


def test_kept_characters_survive_for_multiline_blocks() -> None:
    assert visible_controls("a\n\tb\x1bc\r", keep="\n\t") == "a\n\tb\\x1bc\\r"


@pytest.mark.parametrize(
    ("raw", "cell"),
    [
        ('=HYPERLINK("http://evil.example/","x")', '\'=HYPERLINK("http://evil.example/","x")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        # TAB and newline also split cells (tab-separated reading, line break)
        ("\t=1+1", "'\t'=1+1"),
        ("  =1+1", "'  =1+1"),
        ("\n=1+1", "'\n'=1+1"),
        # a spreadsheet splitting on ';' or ',' starts a new cell there
        ("x;=1+1;", "x;'=1+1;"),
        ("a,@SUM(1)", "a,'@SUM(1)"),
        ("sshd; -2+3", "sshd;' -2+3"),
        ('a;"=1', "a;'\"=1"),
        ("a;'=1", "a;'=1"),  # already neutral
        # CR becomes a visible escape, so the cell no longer starts a formula
        ("\r=1+1", "\\r=1+1"),
        ("\x1b]0;x\x07", "\\x1b]0;x\\x07"),
        ("nginx", "nginx"),
        ("0.0.0.0", "0.0.0.0"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_csv_cells_cannot_start_a_formula(raw: str, cell: str) -> None:
    assert csv_cell(raw) == cell


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_visible_controls_never_leaves_a_dangerous_character(text: str) -> None:
    assert not _DANGEROUS.search(visible_controls(text))
    assert not _DANGEROUS.search(visible_controls(text, keep="\n\t").replace("\n", ""))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("=+-@\t\r\n x1\x1b\"';,")))
def test_csv_cell_is_never_a_formula(text: str) -> None:
    cell = csv_cell(text)
    assert cell.startswith("'") or not cell.lstrip().startswith(("=", "+", "-", "@", "\t", "\r"))
    # nor any part of it that a ';'-, ','- or TAB-splitting spreadsheet reads as a cell
    for part in re.split(r"[,;\t\n]", cell):
        assert not part.lstrip(' "').startswith(("=", "+", "-", "@")), (text, cell)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("x" * 12, 10, "x" * 10 + "… [2 more characters not shown]"),
    ],
)
def test_clip_bounds_and_says_how_much_was_cut(text: str, limit: int, expected: str) -> None:
    assert clip(text, limit) == expected
