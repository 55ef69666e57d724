"""``fleetscan.parsers.detect`` picks the right parser for every corpus capture.

The expected parser follows from where a capture lives in the corpus layout
(``<os>/<command-slug>/...``), not from its content, so a detector that keys
on the wrong thing fails here. Linux ss/netstat are parsed by modules written
separately; their cases are skipped only while those modules do not exist.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from fleetscan import parsers
from tests.parsers.listener_view import CORPUS, read_bytes_as_text

ALL_CAPTURES = sorted(CORPUS.rglob("*.out"))

_MODULE_OF = {
    "linux-ss": "fleetscan.parsers.linux_ss",
    "linux-netstat": "fleetscan.parsers.linux_netstat",
}


def expected_parser(path: Path) -> str:
    os_name, slug = path.relative_to(CORPUS).parts[:2]
    if os_name == "windows":
        return "windows-netstat"
    if slug.startswith("lsof"):
        return "lsof"
    if slug.startswith("sockstat"):
        return "freebsd-sockstat"
    if os_name in ("macos", "freebsd"):
        return "bsd-netstat"
    return "linux-ss" if slug.startswith("ss") else "linux-netstat"


def test_the_whole_corpus_is_present() -> None:
    # 45 raw outputs (see the corpus README); a missing copy would hide a detector bug
    assert len(ALL_CAPTURES) == 45


@pytest.mark.parametrize("path", ALL_CAPTURES, ids=lambda p: str(p.relative_to(CORPUS)))
def test_detect_picks_the_parser_of_the_capture(path: Path) -> None:
    expected = expected_parser(path)
    module = _MODULE_OF.get(expected)
    if module is not None and importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not written yet")
    assert parsers.detect(read_bytes_as_text(path)).name == expected


@pytest.mark.parametrize("path", ALL_CAPTURES, ids=lambda p: str(p.relative_to(CORPUS)))
def test_no_other_parser_is_as_confident(path: Path) -> None:
    text = read_bytes_as_text(path)
    expected = expected_parser(path)
    scores = {spec.name: spec.detect(text) for spec in parsers.all_parsers()}
    if expected not in scores:
        pytest.skip(f"parser {expected} is not registered yet")
    rivals = [score for name, score in scores.items() if name != expected]
    assert scores[expected] > max(rivals, default=0.0)


@pytest.mark.parametrize("text", ["", "\n\n", "hello world\n", "\x00\xff garbage"])
def test_my_detectors_say_zero_for_text_that_is_no_listing(text: str) -> None:
    for name in ("windows-netstat", "bsd-netstat", "lsof", "freebsd-sockstat"):
        assert parsers.get(name).detect(text) == 0.0
