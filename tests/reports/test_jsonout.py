"""The streamed indented-JSON writer writes exactly what ``json.dump(doc,
ensure_ascii=False, indent=2)`` writes, for any document the reports make."""

from __future__ import annotations

import io
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetscan.model import Severity, Status
from fleetscan.reports.json import run_to_dict, stream_json
from fleetscan.reports.jsonout import dump_indented

from .conftest import build_hostile_run, build_realistic_run

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()  # any code point, lone surrogates and controls included
    | st.sampled_from([Severity.HIGH, Status.OK, "", "\u2028", "\udcff", "\x1b]0;x\x07"])
)
_KEYS = st.text(max_size=8) | st.integers() | st.booleans() | st.none() | st.floats()
_DOCS = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.lists(inner, max_size=5).map(tuple)
        | st.dictionaries(_KEYS, inner, max_size=5)
    ),
    max_leaves=40,
)


def _stdlib(doc: object) -> str:
    out = io.StringIO()
    json.dump(doc, out, ensure_ascii=False, indent=2)
    return out.getvalue()


def _ours(doc: object) -> str:
    out = io.StringIO()
    dump_indented(doc, out)
    return out.getvalue()


@settings(max_examples=400, deadline=None)
@given(doc=_DOCS)
def test_any_document_is_written_as_the_standard_library_writes_it(doc: object) -> None:
    assert _ours(doc) == _stdlib(doc)


@pytest.mark.parametrize("build", [build_realistic_run, build_hostile_run])
def test_report_documents_are_byte_identical(build) -> None:  # type: ignore[no-untyped-def]
    run = build()
    out = io.StringIO()
    stream_json(run, out)
    assert out.getvalue() == _stdlib(run_to_dict(run)) + "\n"


def test_large_documents_are_written_in_pieces_and_complete() -> None:
    doc = {
        "hosts": [
            {"name": f"h{i}", "listeners": [{"port": p} for p in range(30)]} for i in range(2000)
        ]
    }
    writes: list[int] = []

    class Counting(io.StringIO):
        def write(self, s: str) -> int:
            writes.append(len(s))
            return super().write(s)

    out = Counting()
    dump_indented(doc, out)
    assert out.getvalue() == _stdlib(doc)
    assert 1 < len(writes) < 1000  # bounded pieces, not one chunk per token


@pytest.mark.parametrize("bad", [{"k": object()}, [1, {2, 3}], {(1, 2): "tuple key"}])
def test_what_json_refuses_is_refused(bad: object) -> None:
    with pytest.raises(TypeError):
        _stdlib(bad)
    with pytest.raises(TypeError):
        _ours(bad)


def test_non_finite_floats_as_json_module_writes_them() -> None:
    doc = [math.nan, math.inf, -math.inf, {math.inf: 1, 1.5: 2, True: 3, None: 4, 7: 5}]
    assert _ours(doc) == _stdlib(doc)
