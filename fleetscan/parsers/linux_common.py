"""Small helpers shared by the Linux parsers (``ss``, ``netstat``, ``/proc``).

Kept apart so each parser module holds only the rules of its own format.
"""

from __future__ import annotations

from fleetscan.addresses import Address, normalise_address
from fleetscan.parsers.base import split_lines

#: the lines of a command output, split on \n only (see base.split_lines)
source_lines = split_lines


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
