"""The default transport: asyncssh, strict host-key checking, never a prompt.

One :class:`asyncssh.SSHClientConnectionOptions` is built per distinct
:class:`ConnectSettings` and reused for every host of the fleet (the known_hosts
file is read once, not once per host). Per-host values (user, port, keys,
jump host) are passed on ``connect``.

Security notes:

* asyncssh skips host-key validation when ``known_hosts`` is None, and treats a
  *missing* default ``~/.ssh/known_hosts`` the same way. fleetscan always passes
  an explicit, loaded known-hosts object — an empty one when the file does not
  exist — so strict checking cannot silently turn off.
* No password or keyboard-interactive prompt exists: a password is only used
  when the inventory names an environment variable holding it, and key
  passphrases are never asked for.
"""

from __future__ import annotations

import asyncio
import socket
import time
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
from fleetscan.transports.base import (
    DEFAULT_MAX_STDERR,
    CommandResult,
    ConnectSettings,
    read_capped,
    target_passphrase,
    target_password,
)


def _load_known_hosts(files: list[str]) -> asyncssh.SSHKnownHosts:
    existing = [f for f in files if Path(f).expanduser().is_file()]
    if not existing:
        return asyncssh.import_known_hosts("")
    return asyncssh.read_known_hosts([str(Path(f).expanduser()) for f in existing])


def _stamp(files: list[str]) -> tuple[tuple[str, int, int], ...]:
    """Identity of the files' current contents (path, mtime, size)."""
    out = []
    for f in files:
        try:
            st = Path(f).expanduser().stat()
            out.append((f, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((f, -1, -1))
    return tuple(out)


def build_options(settings: ConnectSettings) -> asyncssh.SSHClientConnectionOptions:
    """The one options object for the fleet: cached per settings AND per the
    current state of known_hosts / ssh_config, so a long-lived process (a
    scheduler) sees an edited known_hosts instead of trusting stale keys."""
    stamp = _stamp(settings.known_hosts_files() + settings.ssh_config_files())
    return _build_options(settings, stamp)


@lru_cache(maxsize=16)
def _build_options(
    settings: ConnectSettings, stamp: tuple[tuple[str, int, int], ...]
) -> asyncssh.SSHClientConnectionOptions:
    kwargs: dict[str, Any] = {
        "config": settings.ssh_config_files(),
        "connect_timeout": settings.connect_timeout,
        "known_hosts": (
            _load_known_hosts(settings.known_hosts_files()) if settings.hostkey_checking else None
        ),
        # never ask anything: no keyboard-interactive, no passphrase prompt
        "kbdint_auth": False,
        "ignore_encrypted": True,
        "keepalive_interval": 15,
        "keepalive_count_max": 3,
    }
    if settings.client_keys:
        kwargs["client_keys"] = list(settings.client_keys)
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
        except (asyncssh.ConnectionLost, asyncssh.DisconnectError, BrokenPipeError) as exc:
            raise ChannelError(f"connection lost while the command ran: {exc}") from None
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


class AsyncSSHTransport:
    name = "asyncssh"

    async def connect(self, target: Target, settings: ConnectSettings) -> AsyncSSHSession:
        options = build_options(settings)
        # the config must be named again on connect: asyncssh applies Host blocks
        # (HostName, Port, User, IdentityFile, ProxyJump) per destination there
        kwargs: dict[str, Any] = {"options": options, "config": settings.ssh_config_files()}
        if target.port is not None:
            kwargs["port"] = target.port
        if target.user:
            kwargs["username"] = target.user
        if target.key_files:
            kwargs["client_keys"] = [str(Path(k).expanduser()) for k in target.key_files]
        if target.known_hosts and settings.hostkey_checking:
            kwargs["known_hosts"] = _load_known_hosts([target.known_hosts])
        passphrase = target_passphrase(target)
        if passphrase is not None:
            kwargs["passphrase"] = passphrase  # decrypts encrypted key files
        password = target_password(target)
        if password is not None:
            kwargs["password"] = password
        else:
            kwargs["password_auth"] = False
        # connect_timeout bounds TCP + banner + key exchange + auth (per hop); the
        # outer timeout is a safety net in case a stage ignores it
        jump_spec = target.jump_host or _config_jump(options, kwargs["config"], target.address)
        hops = 1 + (len(jump_spec.split(",")) if jump_spec else 0)
        try:
            conn, jumps = await _establish(
                target.address, jump_spec, kwargs, hops * settings.connect_timeout + 1
            )
        except asyncssh.HostKeyNotVerifiable as exc:
            raise HostKeyError(_hostkey_message(target, exc)) from None
        except asyncssh.PermissionDenied:
            raise AuthFailedError(_auth_message(target)) from None
        except TimeoutError:
            raise HandshakeTimeout(
                f"no SSH handshake within {settings.connect_timeout:.0f}s "
                "(TCP accepted but no banner, key exchange or authentication)"
            ) from None
        except socket.gaierror as exc:
            raise UnreachableError(f"name does not resolve: {exc.strerror}") from None
        except ConnectionRefusedError:
            raise UnreachableError("connection refused") from None
        except OSError as exc:
            raise UnreachableError(exc.strerror or str(exc)) from None
        except asyncssh.DisconnectError as exc:
            raise UnreachableError(f"SSH disconnect during handshake: {exc.reason}") from None
        except asyncssh.Error as exc:
            raise TransportError(f"SSH error: {exc}") from None
        except ValueError as exc:  # asyncssh raises it for bad config values
            raise TransportError(f"SSH configuration error: {exc}") from None
        return AsyncSSHSession(conn, jumps)


def _config_jump(
    options: asyncssh.SSHClientConnectionOptions, config: list[str], host: str
) -> str | None:
    """ProxyJump from ssh_config for ``host``, so the bastions are opened with
    the fleet's options too (asyncssh would open a config ProxyJump with its
    defaults, which skip host-key checks when ~/.ssh/known_hosts is missing)."""
    if not config:
        return None
    try:
        resolved = asyncssh.SSHClientConnectionOptions(options=options, config=config, host=host)
    except (ValueError, OSError, asyncssh.Error):
        return None  # asyncssh.connect reports the bad config itself
    tunnel = resolved.tunnel
    if isinstance(tunnel, str) and tunnel.strip().lower() not in ("", "none"):
        return tunnel
    return None


async def _establish(
    address: str, jump_spec: str | None, kwargs: dict[str, Any], timeout: float
) -> tuple[asyncssh.SSHClientConnection, list[asyncssh.SSHClientConnection]]:
    """Connect through the jump hosts (``a,b``: a, then b through a) when there
    are any; never leaks a hop."""
    jumps: list[asyncssh.SSHClientConnection] = []
    try:
        async with asyncio.timeout(timeout):
            for hop in (jump_spec or "").split(",") if jump_spec else ():
                jumps.append(await _open_jump(hop.strip(), kwargs, jumps[-1] if jumps else None))
            if jumps:
                kwargs["tunnel"] = jumps[-1]
            conn = await asyncssh.connect(address, **kwargs)
        return conn, jumps
    except BaseException:
        for jump in reversed(jumps):
            jump.close()
        raise


async def _open_jump(
    spec: str, kwargs: dict[str, Any], via: asyncssh.SSHClientConnection | None
) -> asyncssh.SSHClientConnection:
    """Connect to the jump host ``[user@]host[:port]`` with the fleet's own
    options — the same known_hosts and keys. (asyncssh's string tunnels would
    use its defaults, which skip host-key checks when ~/.ssh/known_hosts is
    missing.)"""
    user, _, hostport = spec.rpartition("@")
    host, port = hostport, None
    if hostport.count(":") == 1:
        host, _, port_text = hostport.partition(":")
        port = int(port_text) if port_text.isdigit() else None
    jump_kwargs: dict[str, Any] = {"options": kwargs["options"], "config": kwargs["config"]}
    if via is not None:
        jump_kwargs["tunnel"] = via
    if user:
        jump_kwargs["username"] = user
    if port is not None:
        jump_kwargs["port"] = port
    for key in ("client_keys", "passphrase", "password", "password_auth"):
        if key in kwargs:
            jump_kwargs[key] = kwargs[key]
    return await asyncssh.connect(host, **jump_kwargs)


def _hostkey_message(target: Target, exc: asyncssh.HostKeyNotVerifiable) -> str:
    return (
        f"host key not verified against known_hosts ({exc.reason}); "
        "if the host was reinstalled, check the new key out of band and update known_hosts "
        "(fleetscan never prompts and never accepts unknown keys by default)"
    )


def _auth_message(target: Target) -> str:
    who = target.user or "the default user"
    return f"authentication refused for {who} (keys from files/agent/ssh config were tried)"
