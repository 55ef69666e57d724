"""Ansible host patterns: ``web[01:20].example.com:2222`` → names and a port.

Semantics follow Ansible's ``expand_hostname_range`` and ``parse_address``:

* ``[beg:end]`` or ``[beg:end:step]``, inclusive; ``beg`` defaults to 0;
* a zero-padded ``beg`` (``01``) keeps its width, and then ``end`` must have
  the same width (``[01:20]`` → ``01 … 20``);
* single letters make an alphabetic range (``[a:f]``);
* several ranges in one name multiply (``r[1:2]-n[a:b]``);
* ``host:2222`` gives the port; ``[2001:db8::1]:2222`` for IPv6; a bare IPv6
  address has no port.

Expansion is bounded: a typo like ``h[0:99999999]`` is an error, not a hang.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import string

#: most hosts one pattern may expand to
MAX_EXPANSION = 100_000

_V6_BRACKET = re.compile(r"^\[([^\]]+)\](?::(\d*))?$")


class RangeError(ValueError):
    """A host pattern that cannot be expanded; the message says why."""


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True


def split_port(pattern: str) -> tuple[str, int | None]:
    """Split an optional ``:port`` off a host pattern (ranges may hold colons)."""
    m = _V6_BRACKET.match(pattern)
    if m and _is_ip(m.group(1)):
        if m.group(2) is None:
            return m.group(1), None
        return m.group(1), _port(m.group(2), pattern)
    if _is_ip(pattern):  # bare IPv6 (or IPv4): colons are part of the address
        return pattern, None
    depth = 0
    colons = []
    for i, ch in enumerate(pattern):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        elif ch == ":" and depth == 0:
            colons.append(i)
    if len(colons) != 1:
        return pattern, None
    host, port = pattern[: colons[0]], pattern[colons[0] + 1 :]
    if not host:
        raise RangeError(f"invalid host pattern {pattern!r}: no host before ':'")
    return host, _port(port, pattern)


def _port(text: str, pattern: str) -> int:
    if not text:
        raise RangeError(f"invalid host pattern {pattern!r}: ending in ':' (no port given)")
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise RangeError(f"invalid port {text!r} in {pattern!r} (1..65535)")
    return int(text)


def _bounds(nrange: str, pattern: str) -> list[str]:
    bounds = nrange.split(":")
    if len(bounds) not in (2, 3):
        raise RangeError(
            f"host range [{nrange}] in {pattern!r} must be [begin:end] or [begin:end:step]"
        )
    beg = bounds[0] or "0"
    end = bounds[1]
    if not end:
        raise RangeError(f"host range [{nrange}] in {pattern!r} has no end")
    step_text = bounds[2] if len(bounds) == 3 else "1"
    if not (step_text.isascii() and step_text.isdigit()) or int(step_text) < 1:
        raise RangeError(f"host range step {step_text!r} in {pattern!r} must be a positive integer")
    step = int(step_text)
    letters = string.ascii_letters
    if len(beg) == 1 and len(end) == 1 and beg in letters and end in letters:
        i_beg, i_end = letters.index(beg), letters.index(end)
        if i_beg > i_end:
            raise RangeError(f"host range [{nrange}] in {pattern!r} must have begin <= end")
        return list(letters[i_beg : i_end + 1 : step])
    if not (beg.isascii() and beg.isdigit() and end.isascii() and end.isdigit()):
        raise RangeError(
            f"host range [{nrange}] in {pattern!r}: bounds must be numbers or single letters"
        )
    width = 0
    if beg[0] == "0" and len(beg) > 1:
        width = len(beg)
        if len(end) != width:
            raise RangeError(
                f"host range [{nrange}] in {pattern!r}: zero-padded begin and end must have "
                "the same width"
            )
    if len(beg) > 9 or len(end) > 9:
        raise RangeError(f"host range [{nrange}] in {pattern!r} is too large")
    i_beg, i_end = int(beg), int(end)
    if i_beg > i_end:
        raise RangeError(f"host range [{nrange}] in {pattern!r} must have begin <= end")
    count = (i_end - i_beg) // step + 1
    if count > MAX_EXPANSION:
        raise RangeError(
            f"host range [{nrange}] in {pattern!r} gives {count} hosts (limit {MAX_EXPANSION})"
        )
    return [str(i).zfill(width) for i in range(i_beg, i_end + 1, step)]


def expand_range(pattern: str) -> list[str]:
    """All names a pattern stands for, in order (the pattern itself if it has no range).

    The first range varies slowest, as in Ansible (``r[1:2]n[a:b]`` → r1na,
    r1nb, r2na, r2nb). The count is checked before anything is built.
    """
    parts: list[list[str]] = []
    rest = pattern
    while True:
        start = rest.find("[")
        close = rest.find("]")
        if start < 0:
            if close >= 0:
                raise RangeError(f"unbalanced ']' in host pattern {pattern!r}")
            parts.append([rest])
            break
        if close < start:
            raise RangeError(
                f"unbalanced ']' in host pattern {pattern!r}"
                if close >= 0
                else f"unclosed '[' in host pattern {pattern!r}"
            )
        parts.append([rest[:start]])
        parts.append(_bounds(rest[start + 1 : close], pattern))
        rest = rest[close + 1 :]
    total = 1
    for values in parts:
        total *= len(values)
        if total > MAX_EXPANSION:
            raise RangeError(f"host pattern {pattern!r} expands to more than {MAX_EXPANSION} hosts")
    return ["".join(combo) for combo in itertools.product(*parts)]


def expand_host_pattern(pattern: str) -> tuple[list[str], int | None]:
    """``web[01:03].x:2222`` → (["web01.x", "web02.x", "web03.x"], 2222)."""
    host, port = split_port(pattern.strip())
    return expand_range(host), port
