"""The one place where untrusted text is made safe for a report or a terminal.

Everything a scanned host printed (process names, addresses, unparsed lines,
stderr) is hostile input. Each output format has its own danger, and each has
one function here:

* terminals and XML: :func:`visible_controls` turns control characters
  (ESC, BEL, NUL, C1, DEL), lone surrogates, bidi overrides and line
  separators into visible escapes such as ``\\x1b`` — shown, never executed,
  and never an invalid XML 1.0 character;
* spreadsheets: :func:`csv_cell` neutralises formula injection the way OWASP
  recommends (a leading ``'`` before ``= + - @ TAB CR``), also after every
  ``,`` ``;`` TAB or newline inside a cell, because a spreadsheet that splits
  on ``;`` (most European locales) or TAB starts a new cell there;
* any format: :func:`clip` bounds a string so one host's flood cannot blow up
  a report.

HTML escaping itself is Jinja2's autoescape; the HTML environment runs every
value through :func:`visible_controls` first (see ``reports/html.py``).
Backslashes are left as they are (Windows paths stay readable), so a host
that prints the four characters ``\\x1b`` looks like one that printed ESC:
harmless, and the JSON report keeps the exact bytes for anyone who must tell.
"""

from __future__ import annotations

import functools
import re

# Trojan-source style reordering (LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI)
# and the Unicode line/paragraph separators some terminals treat as newlines.
_BIDI_AND_SEPARATORS = "\u202a-\u202e\u2066-\u2069\u2028\u2029"
# C0 controls, DEL, C1 controls, surrogates (from surrogateescape decoding of
# invalid UTF-8), and the XML-forbidden noncharacters U+FFFE/U+FFFF.
_ALWAYS = "\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff" + _BIDI_AND_SEPARATORS

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}

# OWASP "CSV injection": a cell starting with one of these is a formula in
# Excel/LibreOffice/Google Sheets (TAB and CR because some apps strip them).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A cell boundary in *some* reading of the file (comma, semicolon or tab
# separated; a line break), followed by what a spreadsheet skips before a
# value (whitespace, CSV quotes) and a formula character.
_FORMULA_AFTER_SEPARATOR = re.compile(r"""(^|[,;\t\n])(?=[\s"]*[=+\-@])""")


@functools.lru_cache(maxsize=8)
def _pattern(keep: str) -> re.Pattern[str]:
    if not keep:
        return re.compile(f"[{_ALWAYS}]")
    kept = "".join(re.escape(c) for c in keep)
    # A set difference: the always-escaped class minus the characters kept.
    return re.compile(f"(?![{kept}])[{_ALWAYS}]")


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible_controls(text: str, keep: str = "") -> str:
    """Replace every control-like character with a visible escape.

    ``keep`` names characters to leave alone, e.g. ``"\\n\\t"`` for multi-line
    text blocks (stderr, unparsed lines shown in ``<pre>``). The result never
    contains ESC, BEL or any character XML 1.0 forbids.
    """
    return _pattern(keep).sub(_escape_one, text)


# Nothing to neutralise without a control-like character or a formula
# character at the start of a cell or of a part after a separator (what
# csv_cell changes): most cells, "systemd-resolve" and "2026-11-30" too, take
# the fast path.
_CSV_SUSPECT = re.compile(f"""[{_ALWAYS}]|(?:^|[,;\t\n])[\\s"]*[=+\\-@]""")


@functools.lru_cache(maxsize=4096)
def csv_cell(text: str) -> str:
    """Make one untrusted string safe as a spreadsheet cell, whichever
    separator the spreadsheet splits on.

    Control characters become visible escapes (so ``cat hosts.csv`` in a
    terminal is safe too; TAB and newline are kept, CSV quoting handles them).
    Then a cell that would start a formula — also after leading whitespace,
    which spreadsheets skip — gets a leading single quote, and so does every
    part of it that starts a formula right after a ``,``, ``;``, TAB or
    newline: ``x;=1+1;`` becomes ``x;'=1+1;``, which no comma-, semicolon- or
    tab-separated reading turns into a formula.
    """
    if not _CSV_SUSPECT.search(text):
        return text
    cell = visible_controls(text, keep="\t\n")
    if cell.startswith(_FORMULA_START) or cell.lstrip().startswith(_FORMULA_START):
        cell = "'" + cell
    return _FORMULA_AFTER_SEPARATOR.sub(r"\1'", cell)


def clip(text: str, limit: int) -> str:
    """Bound ``text`` to ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters not shown]"
