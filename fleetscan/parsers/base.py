"""What every parser module declares, and helpers they share.

A parser is a pure function from command output (text) to a
:class:`~fleetscan.model.ParseResult`. Each module in this package defines one
module-level ``PARSER = ParserSpec(...)`` and is listed in
:data:`fleetscan.parsers.MODULES`; the registry imports them and looks parsers
up by name, by command or by content (``detect``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fleetscan.model import ParseResult

ParseFn = Callable[[str], ParseResult]
DetectFn = Callable[[str], float]


@dataclass(frozen=True, slots=True)
class ParserSpec:
    """A registered parser.

    name:      stable id, printed as ``"parser"`` in the JSON contract
               (e.g. ``linux-ss``).
    platform:  ``linux``, ``windows``, ``darwin``, ``freebsd`` or ``bsd``.
    commands:  the command lines it reads (first word + flags), used to pick
               a parser from ``--command``; matching ignores flag order.
    parse:     text → ParseResult; must never raise on any input.
    detect:    text → confidence 0..1 that this text is this parser's format;
               ``fleetscan parse`` without ``--command`` picks the highest.
    """

    name: str
    platform: str
    commands: tuple[str, ...]
    parse: ParseFn
    detect: DetectFn


def split_lines(text: str) -> list[str]:
    """Lines without their endings (LF, CRLF or CR), as the host printed them."""
    return text.splitlines()
