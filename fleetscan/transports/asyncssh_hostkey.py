"""asyncssh's side of the fleet's host-key decision (:mod:`fleetscan.transports.hostkeys`).

asyncssh is given no plain trusted keys at all: every plain server key reaches
:meth:`KeyCheckingClient.validate_host_public_key`, which asks the shared
OpenSSH-exact decision under the name and port connected to (or HostKeyAlias)
— never asyncssh's own matching, which also accepts by peer IP and falls back
to port-less entries. Only ``@cert-authority`` keys for that name are handed
to asyncssh, which verifies host certificates itself. The host-key algorithms
are ordered as OpenSSH orders them: recorded types first, then every other,
so a host without the recorded type is a host-key outcome naming both types,
not a failed key exchange.
"""

from __future__ import annotations

from typing import Any

import asyncssh
from asyncssh.public_key import get_default_certificate_algs, get_default_public_key_algs

from fleetscan.errors import HostKeyError, HostKeyUnknown
from fleetscan.transports.hostkeys import (
    Entry,
    KnownHosts,
    LookupName,
    Verdict,
    decide,
    hostkey_message,
)


class HostKeyCheck:
    """The fleet's known_hosts decision for one hop (``known`` None: accept all),
    plus what the handshake reached, for precise error messages."""

    def __init__(
        self,
        known: KnownHosts | None,
        name: LookupName,
        accept_new: str | None,
        host: str,
        collect: list[bytes] | None = None,
    ) -> None:
        self.collect = collect
        self.known = known
        self.name = name
        self.accept_new = accept_new
        self.host = host
        self.tcp_done = False
        self.outcome: tuple[Verdict, str] | None = None

    def accept(self, key: asyncssh.SSHKey) -> bool:
        if self.collect is not None:  # fetching keys (hostkeys scan): record, refuse
            self.collect.append(key.public_data)
            return False
        if self.known is None:
            return True
        self.outcome = decide(
            self.known, self.name, key.public_data, accept_new=self.accept_new, host=self.host
        )
        return self.outcome[0] is Verdict.TRUSTED

    def known_hosts_arg(self) -> Any:
        """asyncssh's known_hosts argument: the CA and revoked keys for this
        name only; plain keys go through :meth:`accept` (never by peer IP)."""
        if self.known is None:
            return None if self.collect is None else ([], [], [])
        ca_entries = self.known.for_name(self.name.name, "cert-authority")
        # plain keys, revoked ones included, are decided by accept(); asyncssh
        # needs the revoked list only to refuse a certificate's key
        revoked = [e for e in self.known.entries if e.marker == "revoked"] if ca_entries else []
        return ([], _keys(ca_entries), _keys(revoked))

    def host_key_algs(self) -> list[str]:
        """Ask for the key types known_hosts holds first (OpenSSH does), so a
        host with several keys shows the recorded one; then every other type,
        so a host without the recorded type is a host-key outcome, not a
        failed key exchange."""
        defaults = [a.decode() for a in get_default_public_key_algs()]
        wanted: list[str] = []
        if self.known is not None:
            if self.known.for_name(self.name.name, "cert-authority"):
                wanted += [a.decode() for a in get_default_certificate_algs()]
            for ktype in self.known.key_types(self.name):
                wanted += ["rsa-sha2-512", "rsa-sha2-256", ktype] if ktype == "ssh-rsa" else [ktype]
        return list(dict.fromkeys([a for a in wanted if a in defaults or "cert" in a] + defaults))

    def error(self, exc: asyncssh.HostKeyNotVerifiable, where: str) -> HostKeyError:
        if self.outcome is not None and self.outcome[0] is Verdict.UNKNOWN:
            return HostKeyUnknown(hostkey_message(self.outcome[1], where))
        reason = self.outcome[1] if self.outcome else f"{exc.reason} ({self.name})"
        return HostKeyError(hostkey_message(reason, where))


def _keys(entries: list[Entry]) -> list[asyncssh.SSHKey]:
    out = []
    for entry in entries:
        try:
            out.append(asyncssh.import_public_key(entry.openssh_key()))
        except (asyncssh.KeyImportError, ValueError):
            continue  # a key type asyncssh cannot read: it cannot match either
    return out


class KeyCheckingClient(asyncssh.SSHClient):
    def __init__(self, check: HostKeyCheck) -> None:
        self._check = check

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        self._check.tcp_done = True

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        return self._check.accept(key)
