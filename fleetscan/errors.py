"""fleetscan's exceptions, all in one place (docs/architecture.md, "Error tree").

::

    FleetscanError
    ├── ConfigError            bad inventory / policy / CLI input → exit 2
    │                          (names file, line and field)
    └── TransportError         a host could not be scanned; never escapes the
        │                      runner: it becomes that host's status
        ├── UnreachableError   refused, no route, name does not resolve, reset
        ├── HandshakeTimeout   TCP ok but no banner / key exchange / auth in time
        ├── AuthFailedError    every credential refused
        ├── HostKeyError       changed / revoked host key (strict checking)
        │   └── HostKeyUnknown no key recorded for the host yet
        ├── CommandTimeout     a command did not finish within the host deadline
        └── ChannelError       the connection dropped while a command ran
"""

from __future__ import annotations


class FleetscanError(Exception):
    """Base of every error fleetscan raises on purpose."""


class ConfigError(FleetscanError):
    """Invalid user input: inventory, policy, command line. Exit code 2.

    ``str(err)`` reads ``file:line: field: message`` with what is known. Several
    problems found at once are one error with ``more`` (each its own
    ConfigError) and ``omitted`` (how many were not kept); :meth:`lines` gives
    one line per problem, which is how the command line prints them.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        more: tuple[ConfigError, ...] = (),
        omitted: int = 0,
    ) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.detail = message
        self.more = more
        self.omitted = omitted
        extra = len(more) + omitted
        super().__init__(self._render() + (f" (and {extra} more)" if extra else ""))

    def lines(self) -> list[str]:
        """One ``file:line: field: message`` per problem (never a newline inside)."""
        out = [self._render(), *(e._render() for e in self.more)]
        if self.omitted:
            out.append(f"... and {self.omitted} more")
        return out

    def _render(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "")
        parts = [p for p in (where, self.field) if p]
        return ": ".join([*parts, self.detail])


class TransportError(FleetscanError):
    """A host-level failure: turned into the host's status by the runner."""


class UnreachableError(TransportError):
    pass


class HandshakeTimeout(TransportError):
    pass


class AuthFailedError(TransportError):
    pass


class HostKeyError(TransportError):
    pass


class HostKeyUnknown(HostKeyError):
    """Nobody recorded a key for this host yet (onboarding, not an attack sign)."""


class CommandTimeout(TransportError):
    pass


class ChannelError(TransportError):
    pass
