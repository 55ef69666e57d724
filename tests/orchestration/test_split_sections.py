"""The collector script's framed output, split without a list of its lines.

:func:`~fleetscan.collectors.posix.split_sections` slices sections out of the
raw bytes (so a 16 MiB flood is not 140,000 line strings). These cases pin
that it reads exactly what a line-by-line reading of the decoded output
reads: CRLF endings, cut output, frame lines inside a section, lines that
only look like markers, undecodable bytes, empty sections.
"""

from __future__ import annotations

import pytest

from fleetscan.collectors.posix import Section, split_sections

NONCE = "5eed"
M = f"@@FLEETSCAN-{NONCE}"
OTHER = "@@FLEETSCAN-0ther"


def line_by_line(stdout: bytes) -> tuple[dict[str, Section], str | None, str | None]:
    """The reading split_sections must equal: decode, split on LF, strip one CR."""
    sections: dict[str, Section] = {}
    uid = os = current = None
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(stdout.decode("utf-8", "replace").split("\n"), 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        words = line.split(" ", 2)
        if words[0] == M and len(words) > 1 and words[1] in ("begin", "end", "uid", "os", "none"):
            rest = words[2].strip() if len(words) > 2 else ""
            if words[1] == "uid":
                uid = rest
            elif words[1] == "os":
                os = rest
            elif words[1] == "begin":
                current, buf, start = rest, [], number + 1
            elif words[1] == "end" and current is not None:
                code = rest.partition(" ")[2]
                status = int(code) if code.strip().lstrip("-").isdigit() else None
                sections[current] = Section(current, "".join(f"{x}\n" for x in buf), status, start)
                current = None
            continue
        if current is not None:
            buf.append(line)
    if current is not None:
        sections[current] = Section(current, "\n".join(buf), None, start)
    return sections, uid, os


CASES = {
    "plain": f"{M} uid 0\n{M} os Linux\n{M} begin ss\na\nb\n{M} end ss 0\n",
    "crlf": f"{M} uid 0\r\n{M} begin ss\r\na\r\nb\r\r\n{M} end ss 0\r\n",
    "cut": f"{M} begin ss\na\nb",
    "cut-after-newline": f"{M} begin ss\na\nb\n",
    "cut-on-cr": f"{M} begin ss\na\r\nb\r",
    "empty-section": f"{M} begin ss\n{M} end ss 1\n{M} begin ps\n{M} end ps 0\n",
    "begin-is-last": f"{M} begin ss",
    "frame-lines-inside": f"{M} begin ss\na\n{M} uid 1000\nb\n{M} none x\nc\n{M} end ss 0\n",
    "look-alikes": (
        f"{M} begin ss\n{OTHER} end ss 0\nx {M} end ss 0\n{M}end\n{M} bogus\n{M} end ss 0\n"
    ),
    "restarted": f"{M} begin ss\nlost\n{M} begin netstat\nkept\n{M} end netstat 0\n",
    "end-without-begin": f"{M} end ss 0\nnoise\n{M} begin ss\na\n{M} end ss 0\n",
    "banner-first": f"Welcome\nLast login\n{M} os Linux\n{M} begin ss\na\n{M} end ss 0\n",
    "status-words": f"{M} begin ss\na\n{M} end ss -1\n{M} begin ps\n{M} end ps x\n",
}


@pytest.mark.parametrize("text", list(CASES.values()), ids=list(CASES))
def test_sections_read_as_the_lines_say(text: str) -> None:
    stdout = text.encode()
    got = split_sections(stdout, NONCE)
    assert (got.sections, got.uid, got.os) == line_by_line(stdout)
    assert got.marked


def test_undecodable_bytes_read_as_replacement_characters() -> None:
    stdout = f"{M} begin ss\n".encode() + b"\xff\xfe tcp \xc3(\nok\n" + f"{M} end ss 0\n".encode()
    got = split_sections(stdout, NONCE)
    assert got.sections["ss"].text == "\ufffd\ufffd tcp \ufffd(\nok\n"
    assert (got.sections, got.uid, got.os) == line_by_line(stdout)


def test_output_without_the_marker_is_not_marked() -> None:
    got = split_sections(b"sh: not found\n", NONCE)
    assert (got.sections, got.marked) == ({}, False)
    assert split_sections(f"x{M}y".encode(), NONCE).marked  # anywhere, as before
