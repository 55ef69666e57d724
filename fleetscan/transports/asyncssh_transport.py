"""The default transport: asyncssh, strict host-key checking, never a prompt.

One :class:`asyncssh.SSHClientConnectionOptions` is built per distinct
:class:`ConnectSettings` (and version of the filtered ssh_config) and reused
for every host; per-host values (user, port, keys) are applied per hop.

Security notes:

* Host keys: every hop gets a :class:`~.asyncssh_hostkey.HostKeyCheck` that
  asks the shared OpenSSH-exact decision; ``known_hosts=None`` (accept all)
  only with ``--no-host-key-check``.
* ssh_config comes filtered (:mod:`.sshconfig`): no ``Match exec``, no
  forwarding, no Local/RemoteCommand; agent and X11 forwarding are also
  switched off explicitly.
* ProxyJump chains are opened here hop by hop (:class:`_Route`), a jump host's
  own ProxyJump included, each with the fleet's host-key check; asyncssh never
  opens a tunnel of its own (it would use its defaults).
* No password or keyboard-interactive prompt exists: a password only from an
  environment variable the operator allows, offered to the target only; key
  passphrases are never asked for.
"""

from __future__ import annotations

import asyncio
import getpass
import socket
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import asyncssh

from fleetscan.errors import (
    AuthFailedError,
    ChannelError,
    CommandTimeout,
    HandshakeTimeout,
    HostKeyError,
    TransportError,
    UnreachableError,
)
from fleetscan.model import Target
from fleetscan.transports import hostkeys, sshconfig
from fleetscan.transports.asyncssh_hostkey import HostKeyCheck, KeyCheckingClient
from fleetscan.transports.base import (
    DEFAULT_MAX_STDERR,
    CommandResult,
    ConnectSettings,
    auth_message,
    handshake_timeout_message,
    lost_while_running,
    os_error_text,
    read_capped,
    target_passphrase,
    target_password,
    tcp_timeout_message,
)
from fleetscan.transports.hostkeys import (
    KnownHosts,
    LookupName,
    load_known_hosts,
    lookup_name,
)
from fleetscan.transports.sshconfig import full_chain, parse_jump, split_jumps

#: Cipher preference when no ssh_config file names ``Ciphers``: AES-GCM first.
#: asyncssh's default puts chacha20-poly1305 first, which it computes with a
#: fresh cryptography cipher context per packet (two for the Poly1305 key and
#: the payload) — about a fifth of the client's CPU in a fleet scan; AES-GCM
#: has one context per key and is AES-NI accelerated on both ends (sshd too).
#: Every cipher asyncssh offers by default stays on the list, in OpenSSH's
#: order after these, so a server that lacks AES-GCM still negotiates.
PREFERRED_CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
)


def build_options(settings: ConnectSettings) -> asyncssh.SSHClientConnectionOptions:
    """The one options object for the fleet: cached per settings AND per the
    current state of the ssh_config files, so a long-lived process (a
    scheduler) sees an edited config."""
    return _build_options(settings, tuple(sshconfig.filtered_files(settings.ssh_config_files())))


@lru_cache(maxsize=16)
def _build_options(
    settings: ConnectSettings, config: tuple[str, ...]
) -> asyncssh.SSHClientConnectionOptions:
    kwargs: dict[str, Any] = {
        "config": list(config),
        "connect_timeout": settings.connect_timeout,
        # None: accept any key (--no-host-key-check); otherwise every connection
        # gets its own check (see _open_hop)
        "known_hosts": None,
        # never ask anything: no keyboard-interactive, no passphrase prompt
        "kbdint_auth": False,
        "ignore_encrypted": True,
        # a scanner forwards nothing, whatever ssh_config says
        "agent_forwarding": False,
        "x11_forwarding": False,
        "gss_delegate_creds": False,
        "request_pty": False,
        "keepalive_interval": 15,
        "keepalive_count_max": 3,
    }
    if settings.client_keys:
        kwargs["client_keys"] = list(settings.client_keys)
    if not sshconfig.names_keyword(config, "ciphers"):
        # an explicit list outranks ssh_config in asyncssh: only when none is set
        kwargs["encryption_algs"] = list(PREFERRED_CIPHERS)
    if not settings.use_agent:
        kwargs["agent_path"] = None
    if settings.default_user:
        kwargs["username"] = settings.default_user
    return asyncssh.SSHClientConnectionOptions(**kwargs)


class AsyncSSHSession:
    """An open asyncssh connection; each :meth:`run` is one exec channel."""

    def __init__(
        self,
        conn: asyncssh.SSHClientConnection,
        jumps: list[asyncssh.SSHClientConnection] | None = None,
    ) -> None:
        self._conn = conn
        self._jumps = jumps or []

    async def run(
        self, command: str, *, stdin: str | None = None, timeout: float, max_output: int
    ) -> CommandResult:
        start = time.monotonic()
        truncated = False
        proc: asyncssh.SSHClientProcess[bytes] | None = None
        try:
            async with asyncio.timeout(timeout):
                proc = await self._conn.create_process(command, encoding=None)
                if stdin is not None:
                    proc.stdin.write(stdin.encode())
                proc.stdin.write_eof()
                running = proc

                async def stop() -> None:
                    running.close()  # stop the flood: nothing more will be read

                async def read(stream: asyncssh.SSHReader[bytes], cap: int) -> tuple[bytes, bool]:
                    return await read_capped(stream.read, cap, stop)

                out, err = await asyncio.gather(
                    read(proc.stdout, max_output), read(proc.stderr, DEFAULT_MAX_STDERR)
                )
                truncated = out[1] or err[1]
                if truncated:
                    exit_status = None
                else:
                    await proc.wait_closed()
                    exit_status = proc.exit_status
        except TimeoutError:
            if proc is not None:
                proc.close()
            raise CommandTimeout(f"command did not finish within {timeout:.0f}s") from None
        except (asyncssh.ConnectionLost, asyncssh.DisconnectError, OSError) as exc:
            raise ChannelError(lost_while_running(exc)) from None
        except asyncssh.ChannelOpenError as exc:
            raise ChannelError(f"the host refused to open a session: {exc.reason}") from None
        return CommandResult(
            command=command,
            exit_status=exit_status,
            stdout=out[0],
            stderr=err[0],
            duration=time.monotonic() - start,
            truncated=truncated,
        )

    async def close(self) -> None:
        for conn in (self._conn, *reversed(self._jumps)):
            conn.close()
            try:
                async with asyncio.timeout(5):
                    await conn.wait_closed()
            except (TimeoutError, OSError, asyncssh.Error):
                pass


@dataclass(frozen=True)
class _Creds:
    """What one hop may be offered: the target's password goes to the target only."""

    client_keys: list[Any] | None
    passphrase: str | None
    password: str | None

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.client_keys:
            out["client_keys"] = self.client_keys
        if self.passphrase is not None:
            out["passphrase"] = self.passphrase  # decrypts encrypted key files
        if self.password is not None:
            out["password"] = self.password
        else:
            out["password_auth"] = False
        return out


def loaded_keys(paths: tuple[str, ...], passphrase: str | None) -> list[Any] | None:
    """The inventory's key files as loaded key pairs, read and parsed once per
    version of the files rather than by every connection (a fleet names one
    key for thousands of hosts). When they do not load, the paths themselves:
    each connection then fails with asyncssh's own error, as before."""
    if not paths:
        return None
    try:
        return list(_load_keys(hostkeys.file_stamp(paths), passphrase))
    except (OSError, ValueError, asyncssh.Error):
        return list(paths)


@lru_cache(maxsize=32)
def _load_keys(
    stamp: tuple[tuple[str, int, int], ...], passphrase: str | None
) -> tuple[asyncssh.SSHKeyPair, ...]:
    # what SSHClientConnectionOptions does with client_keys=[paths], passphrase
    # and ignore_encrypted=True (a key it cannot decrypt is skipped, no prompt)
    return tuple(
        asyncssh.load_keypairs([name for name, _m, _s in stamp], passphrase, ignore_encrypted=True)
    )


class _Route:
    """One target's way in: the fleet's options, the filtered ssh_config, the
    known_hosts that decide, the whole ProxyJump chain and who gets which
    credentials (the target's password: the target only)."""

    def __init__(self, target: Target, settings: ConnectSettings) -> None:
        self.target = target
        self.settings = settings
        self._resolved: dict[tuple[str, int | None, str | None], Any] = {}
        self.options = build_options(settings)
        self.config = sshconfig.filtered_files(settings.ssh_config_files())
        self.known = (
            load_known_hosts(settings.host_keys_for(target)) if settings.hostkey_checking else None
        )
        passphrase = target_passphrase(target, settings)
        keys = loaded_keys(tuple(str(Path(k).expanduser()) for k in target.key_files), passphrase)
        self.target_creds = _Creds(keys, passphrase, target_password(target, settings))
        self.jump_creds = _Creds(keys, passphrase, None)
        if target.jump_host is not None:
            jumps = split_jumps(target.jump_host)
        else:
            jumps = self._config_jumps(target.address, target.port, target.user)
        self.chain = full_chain(jumps, lambda spec: self._config_jumps(*_host_port_user(spec)))

    def resolve(self, host: str, port: int | None, user: str | None) -> Any:
        """What ssh_config makes of a hop (host name, port, user, HostKeyAlias,
        ProxyJump), for lookups only: once per hop, and without loading any key
        (``client_keys=None``); with no ssh_config file at all, the given values
        (:class:`_PlainHop`). The connection's own options are built by
        ``asyncssh.connect`` from the fleet's options (:meth:`connect_kwargs`)."""
        key = (host, port, user)
        got = self._resolved.get(key)
        if got is None:
            got = self._resolved[key] = (
                self._from_config(host, port, user)
                if self.config
                else self._plain(host, port, user)
            )
        return got

    def _plain(self, host: str, port: int | None, user: str | None) -> _PlainHop:
        # no ssh_config file is read: asyncssh would only echo the given values
        default = self.options.kwargs.get("username")
        default_user = default if isinstance(default, str) else None
        return _PlainHop(host, port or DEFAULT_SSH_PORT, user or default_user)

    def _from_config(self, host: str, port: int | None, user: str | None) -> Any:
        try:
            return asyncssh.SSHClientConnectionOptions(
                options=self.options,
                config=self.config,
                host=host,
                client_keys=None,
                **_given(port, user),
            )
        except (ValueError, OSError, asyncssh.Error) as exc:
            raise TransportError(f"SSH configuration error for {host}: {exc}") from None

    def connect_kwargs(self, port: int | None, user: str | None) -> dict[str, Any]:
        """The fleet's options and the hop's own port and user: what
        ``asyncssh.connect(host, ...)`` resolves against ssh_config itself."""
        return {"options": self.options, **_given(port, user)}

    def _config_jumps(self, host: str, port: int | None, user: str | None) -> list[str]:
        tunnel = self.resolve(host, port, user).tunnel
        return split_jumps(tunnel) if isinstance(tunnel, str) else []

    def timeout(self) -> float:
        """connect_timeout bounds each hop; this bounds the chain (a safety net).
        Its slack is generous so that a hop's own, more precise timeout ("TCP
        accepted but no banner") is what a user sees, even when a busy event
        loop (a flooding host beside it) delays that hop's clean-up."""
        return (len(self.chain) + 1) * self.settings.connect_timeout + 5

    async def open_jumps(self) -> list[asyncssh.SSHClientConnection]:
        conns: list[asyncssh.SSHClientConnection] = []
        try:
            for spec in self.chain:
                host, port, user = _host_port_user(spec)
                conns.append(
                    await _open_hop(
                        self.resolve(host, port, user),
                        self.connect_kwargs(port, user),
                        host,
                        self.known,
                        conns[-1] if conns else None,
                        self.config,
                        self.jump_creds,
                        self.settings,
                        f"jump host {host} (ProxyJump): ",
                        f"{self.target.name} (jump host {host})",
                    )
                )
        except BaseException:
            _close_all(conns)
            raise
        return conns

    async def open_target(
        self,
        via: asyncssh.SSHClientConnection | None,
        collect: list[bytes] | None = None,
        algs: list[str] | None = None,
    ) -> asyncssh.SSHClientConnection:
        t = self.target
        return await _open_hop(
            self.resolve(t.address, t.port, t.user),
            self.connect_kwargs(t.port, t.user),
            t.address,
            self.known,
            via,
            self.config,
            self.target_creds if collect is None else _Creds(None, None, None),
            self.settings,
            "",
            t.name,
            collect=collect,
            algs=algs,
        )

    def target_name(self) -> LookupName:
        t = self.target
        resolved = self.resolve(t.address, t.port, t.user)
        return lookup_name(str(resolved.host), int(resolved.port), resolved.host_key_alias)


DEFAULT_SSH_PORT = 22


class _PlainHop:
    """A hop resolved without any ssh_config file: what ``SSHClientConnectionOptions``
    gives then (host and port as given, no alias, no ProxyJump, the local user
    by default), without building one (~0.4 ms of CPU per host)."""

    __slots__ = ("_user", "host", "port")
    host_key_alias = None
    tunnel = None

    def __init__(self, host: str, port: int, user: str | None) -> None:
        self.host, self.port, self._user = host, port, user

    @property
    def username(self) -> str | None:
        if self._user:
            return self._user
        try:
            return getpass.getuser()  # asyncssh's default, only for a refusal message
        except (KeyError, OSError):
            return None


def _given(port: int | None, user: str | None) -> dict[str, Any]:
    given: dict[str, Any] = {"port": port} if port is not None else {}
    if user:
        given["username"] = user
    return given


def _host_port_user(spec: str) -> tuple[str, int | None, str | None]:
    user, host, port = parse_jump(spec)
    return host, port, user


class AsyncSSHTransport:
    name = "asyncssh"

    async def connect(self, target: Target, settings: ConnectSettings) -> AsyncSSHSession:
        route = _Route(target, settings)
        conns: list[asyncssh.SSHClientConnection] = []
        try:
            async with asyncio.timeout(route.timeout()):
                conns = await route.open_jumps()
                conn = await route.open_target(conns[-1] if conns else None)
        except TimeoutError:
            _close_all(conns)
            raise HandshakeTimeout(
                f"no SSH connection within {settings.connect_timeout:.0f}s per hop"
            ) from None
        except BaseException:
            _close_all(conns)
            raise
        return AsyncSSHSession(conn, conns)

    async def host_keys(
        self, target: Target, settings: ConnectSettings, algs: list[str]
    ) -> tuple[LookupName, list[bytes]]:
        """The target's host keys, one handshake per algorithm in ``algs``,
        through its jump chain (opened with the fleet's host-key rules).
        Nothing is authenticated to the target and no command runs: each
        handshake stops at the host-key check."""
        route = _Route(target, settings)
        keys: list[bytes] = []
        conns: list[asyncssh.SSHClientConnection] = []
        try:
            async with asyncio.timeout(route.timeout() + len(algs) * settings.connect_timeout):
                conns = await route.open_jumps()
                for alg in algs:
                    try:
                        conn = await route.open_target(conns[-1] if conns else None, keys, [alg])
                        conn.close()  # the collecting check never lets one through
                    except HostKeyError:
                        continue  # refused on purpose, key recorded
                    except (TransportError, asyncssh.Error):
                        continue  # the host has no key of this type (key exchange failed)
            return route.target_name(), list(dict.fromkeys(keys))
        except TimeoutError:
            raise HandshakeTimeout(
                f"no host key within {settings.connect_timeout:.0f}s per hop"
            ) from None
        finally:
            _close_all(conns)


def _close_all(conns: list[asyncssh.SSHClientConnection]) -> None:
    for conn in reversed(conns):
        conn.close()


async def _open_hop(
    resolved: asyncssh.SSHClientConnectionOptions,
    connect_kwargs: dict[str, Any],
    alias: str,
    known: KnownHosts | None,
    via: asyncssh.SSHClientConnection | None,
    config: list[str],
    creds: _Creds,
    settings: ConnectSettings,
    where: str,
    host: str,
    *,
    collect: list[bytes] | None = None,
    algs: list[str] | None = None,
) -> asyncssh.SSHClientConnection:
    """Log into one hop (the target or a jump host) with the fleet's options
    and host-key check; every failure becomes a fleetscan error naming the hop.
    ``resolved`` (the hop as ssh_config has it) names the host for the key
    lookup; ``connect_kwargs`` are the fleet's options and the hop's port/user.
    With ``collect``, the server's key is recorded there and refused (no
    authentication happens), asking only for ``algs``."""
    name = lookup_name(str(resolved.host), int(resolved.port), resolved.host_key_alias)
    check = HostKeyCheck(known, name, settings.accept_new_file(), host, collect)
    kwargs: dict[str, Any] = {
        **connect_kwargs,
        "config": config,
        "client_factory": lambda: KeyCheckingClient(check),
        **creds.kwargs(),
    }
    if known is not None or collect is not None:
        kwargs["known_hosts"] = check.known_hosts_arg()
        kwargs["server_host_key_algs"] = algs or check.host_key_algs()
    # the chain is opened here hop by hop (None: no ssh_config ProxyJump either;
    # full_chain already put those hops in front)
    kwargs["tunnel"] = via
    timeout = settings.connect_timeout
    try:
        async with asyncio.timeout(timeout + 0.5):
            return await asyncssh.connect(alias, **kwargs)
    except asyncssh.HostKeyNotVerifiable as exc:
        raise check.error(exc, where) from None
    except asyncssh.PermissionDenied:
        raise AuthFailedError(where + auth_message(resolved.username)) from None
    except TimeoutError:
        if not check.tcp_done:
            raise HandshakeTimeout(tcp_timeout_message(timeout, where)) from None
        raise HandshakeTimeout(handshake_timeout_message(timeout, where)) from None
    except socket.gaierror as exc:
        raise UnreachableError(f"{where}name does not resolve: {exc.strerror}") from None
    except OSError as exc:
        raise UnreachableError(where + os_error_text(exc)) from None
    except asyncssh.ConnectionLost as exc:
        raise UnreachableError(f"{where}connection lost during the handshake: {exc}") from None
    except asyncssh.DisconnectError as exc:
        raise UnreachableError(f"{where}SSH disconnect during handshake: {exc.reason}") from None
    except asyncssh.Error as exc:
        raise TransportError(f"{where}SSH error: {exc}") from None
    except ValueError as exc:  # asyncssh raises it for bad config values
        raise TransportError(f"{where}SSH configuration error: {exc}") from None
