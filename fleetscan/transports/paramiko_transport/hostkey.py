"""paramiko's side of the fleet's host-key decision (:mod:`fleetscan.transports.hostkeys`).

The client's own host-key table is left empty, so paramiko hands every server
key to :class:`HostKeyCheck`, which asks the shared OpenSSH-exact decision.
paramiko cannot verify host *certificates*: a host known only through a
``@cert-authority`` line is refused with a message saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import paramiko

from fleetscan.errors import HostKeyError, HostKeyUnknown
from fleetscan.transports.hostkeys import (
    KnownHosts,
    LookupName,
    Verdict,
    decide,
    hostkey_message,
)


class HostKeyRejected(paramiko.SSHException):  # type: ignore[misc]
    """Raised inside paramiko's handshake; turned into a HostKeyError."""

    def __init__(self, outcome: Verdict, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason

    def error(self, where: str) -> HostKeyError:
        kind = HostKeyUnknown if self.outcome is Verdict.UNKNOWN else HostKeyError
        return kind(hostkey_message(self.reason, where))


class HostKeyCheck(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
    """Checks the server key against known_hosts (``known`` None: accept all)."""

    def __init__(
        self,
        name: LookupName,
        known: KnownHosts | None,
        on_key: Callable[[], None],
        accept_new: str | None = None,
        host: str = "",
    ) -> None:
        self._name = name
        self._known = known
        self._on_key = on_key
        self._accept_new = accept_new
        self._host = host

    def missing_host_key(self, client: Any, hostname: str, key: paramiko.PKey) -> None:
        self._on_key()
        if self._known is None:
            return
        outcome, reason = decide(
            self._known, self._name, key.asbytes(), accept_new=self._accept_new, host=self._host
        )
        if outcome is not Verdict.TRUSTED:
            raise HostKeyRejected(outcome, reason)


def preferring_known_types(
    known: KnownHosts | None, name: LookupName
) -> Callable[..., paramiko.Transport]:
    """A transport factory that asks the server for the key type known_hosts
    holds (OpenSSH does the same), so a host with both an RSA and an ed25519
    key is not reported as changed because it offered the other one first."""

    def factory(sock: Any, **kwargs: Any) -> paramiko.Transport:
        transport = paramiko.Transport(sock, **kwargs)
        types = known.key_types(name) if known is not None else []
        if types:
            options = transport.get_security_options()
            wanted: list[str] = []
            for ktype in types:
                # an ssh-rsa key in known_hosts is negotiated as rsa-sha2-*
                wanted += ["rsa-sha2-512", "rsa-sha2-256", ktype] if ktype == "ssh-rsa" else [ktype]
            available = list(options.key_types)
            first = [t for t in dict.fromkeys(wanted) if t in available]
            options.key_types = first + [t for t in available if t not in first]
        return transport

    return factory
