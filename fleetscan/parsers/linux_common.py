"""Small helpers shared by the Linux parsers (``ss``, ``netstat``, ``/proc``).

Kept apart so each parser module holds only the rules of its own format.
"""

from __future__ import annotations

from fleetscan.addresses import Address, normalise_address


def source_lines(text: str) -> list[str]:
    """The lines of a command output, without their LF / CRLF endings.

    Unlike :meth:`str.splitlines` this splits on ``\\n`` only: ``ss`` prints
    process names raw, and a hostile name holding ``\\x1c``, ``\\x85`` or
    ``\\u2028`` must not cut its row in two (and shift every line number).
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def is_number(text: str) -> bool:
    """True for a plain ASCII decimal (``str.isdigit`` also accepts ``²``,
    which ``int`` then rejects)."""
    return text.isdigit() and text.isascii()


class AddressCache:
    """Memoises :func:`normalise_address`, which (through :mod:`ipaddress`) is the
    costliest step per row; real outputs repeat the same few addresses."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[tuple[str, int | None], Address] = {}

    def get(self, host: str, family_hint: int | None = None) -> Address:
        key = (host, family_hint)
        found = self._seen.get(key)
        if found is None:
            found = normalise_address(host, family_hint)
            self._seen[key] = found
        return found
