"""INI host lines are split exactly as ``shlex.split(line, comments=True)``
splits them (the fast path for plain lines included)."""

from __future__ import annotations

import shlex

from hypothesis import given, settings
from hypothesis import strategies as st

from fleetscan.inventory.ansible_ini import _split

_LINES = st.text(
    alphabet=st.sampled_from("ab=1 \t\r\n\x0b\x0c\xa0\u2028'\"\\#;:,[]-_."), max_size=24
)


def _outcome(split, line: str) -> object:  # type: ignore[no-untyped-def]
    try:
        return split(line)
    except ValueError:
        return ValueError


@settings(max_examples=2000, deadline=None)
@given(line=_LINES)
def test_split_is_shlex_split(line: str) -> None:
    assert _outcome(_split, line) == _outcome(lambda t: shlex.split(t, comments=True), line)
