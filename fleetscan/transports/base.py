"""The transport interface: connect to a target, run commands, close.

Transports do no parsing. They bound what they read (``max_output``) and how
long they wait, and turn every failure into a :class:`~fleetscan.errors.TransportError`
subclass, so the runner can give the host one precise status.
"""

from __future__ import annotations

import io
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from fleetscan.errors import ConfigError
from fleetscan.model import Target
from fleetscan.transports.trust import check_seconds, secret_from_env

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_HOST_TIMEOUT = 120.0
#: per command; a real host with 100,000 listeners prints ~9 MiB of `ss`. With
#: --concurrency 50 this bounds raw output held at once to 800 MiB
DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024
DEFAULT_MAX_STDERR = 64 * 1024


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What one command returned. ``exit_status`` is None when the command was
    cut (output cap reached) or the channel closed without a status."""

    command: str
    exit_status: int | None
    stdout: bytes
    stderr: bytes
    duration: float
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class ConnectSettings:
    """How to connect, for the whole fleet (one options object, reused).

    ``known_hosts`` None means ``~/.ssh/known_hosts``. ``hostkey_checking``
    False accepts any host key; it must be asked for explicitly and is printed
    in every report. ``ssh_config`` None means ``~/.ssh/config`` when it exists;
    an empty tuple reads no config file.
    """

    known_hosts: str | None = None
    hostkey_checking: bool = True
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    ssh_config: tuple[str, ...] | None = None
    client_keys: tuple[str, ...] = ()
    use_agent: bool = True
    default_user: str | None = None
    extra_known_hosts: tuple[str, ...] = field(default=())
    #: environment variables the operator allows as secrets (FLEETSCAN_* always are)
    allowed_secret_env: frozenset[str] = frozenset()
    #: use a known_hosts file the inventory names (``fleetscan_known_hosts``)
    trust_inventory_known_hosts: bool = False
    #: OpenSSH accept-new: record unknown keys in ``known_hosts`` (changed ones still refused)
    accept_new: bool = False

    def __post_init__(self) -> None:
        check_seconds(self.connect_timeout, "connect_timeout")
        if self.accept_new and not (self.known_hosts and self.hostkey_checking):
            raise ConfigError(
                "needs --known-hosts FILE (the file unknown keys are recorded in) and "
                "host-key checking on",
                field="--accept-new",
            )

    def accept_new_file(self) -> str | None:
        """Where unknown keys are recorded (None: they are refused)."""
        return self.known_hosts if self.accept_new else None

    def host_keys_for(self, target: Target) -> list[str]:
        """The known_hosts files that decide ``target``'s key: the operator's,
        or the inventory's only when the operator trusts those."""
        if target.known_hosts and self.trust_inventory_known_hosts:
            return [target.known_hosts]
        return self.known_hosts_files()

    def known_hosts_files(self) -> list[str]:
        # os.path, not pathlib: called for every host (a Path costs ~10 µs)
        files = [self.known_hosts or os.path.join(os.path.expanduser("~"), ".ssh", "known_hosts")]
        files.extend(self.extra_known_hosts)
        return files

    def ssh_config_files(self) -> list[str]:
        if self.ssh_config is not None:
            return list(self.ssh_config)
        default = os.path.join(os.path.expanduser("~"), ".ssh", "config")
        return [default] if os.path.isfile(default) else []


def target_passphrase(target: Target, settings: ConnectSettings) -> str | None:
    """The passphrase of the target's encrypted private keys, from the
    environment variable the inventory names, if the operator allows that
    name (never asked for, never logged)."""
    return secret_from_env(target.passphrase_env, settings.allowed_secret_env)


def target_password(target: Target, settings: ConnectSettings) -> str | None:
    """The password for ``target`` (its own hop only, never a jump host's) from
    the environment variable the inventory names, if the operator allows that
    name (never from the inventory itself, never logged)."""
    return secret_from_env(target.password_env, settings.allowed_secret_env)


READ_CHUNK = 256 * 1024


async def read_capped(
    read: Callable[[int], Awaitable[bytes]],
    cap: int,
    on_cut: Callable[[], Awaitable[None]] | None = None,
) -> tuple[bytes, bool]:
    """Read a stream to EOF, keeping at most ``cap`` bytes; True when cut.

    The one bounded reader of every transport: a flooding host never costs
    more than ``cap`` bytes. ``on_cut`` stops the producer (close the channel,
    kill the process) as soon as the cap is reached.

    The bytes go into one growing buffer whose value is handed out without a
    copy (:meth:`io.BytesIO.getvalue` shares it): a list of chunks joined at
    the end held the output twice at that moment, 32 MiB for a 16 MiB flood."""
    buf = io.BytesIO()
    size = 0
    while True:
        chunk = await read(READ_CHUNK)
        if not chunk:
            return buf.getvalue(), False
        if size + len(chunk) > cap:
            buf.write(memoryview(chunk)[: cap - size])
            if on_cut is not None:
                await on_cut()
            return buf.getvalue(), True
        size += buf.write(chunk)


class Session(Protocol):
    """An open connection to one host."""

    async def run(
        self, command: str, *, stdin: str | None = None, timeout: float, max_output: int
    ) -> CommandResult: ...

    async def close(self) -> None: ...


class Transport(Protocol):
    """Opens sessions. One instance serves the whole fleet."""

    name: str

    async def connect(self, target: Target, settings: ConnectSettings) -> Session: ...


def auth_message(user: str | None, missing_keys: tuple[str, ...] = ()) -> str:
    """The one wording of an authentication refusal, for every transport."""
    msg = (
        f"authentication refused for {user or 'the default user'} "
        "(keys from files/agent/ssh config were tried)"
    )
    if missing_keys:
        msg += "; key files not found: " + ", ".join(missing_keys)
    return msg


def os_error_text(exc: OSError) -> str:
    """An OS-level connect failure as one short phrase (both transports)."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the host during the handshake"
    return exc.strerror or str(exc) or type(exc).__name__


def lost_while_running(exc: BaseException) -> str:
    """A connection that dropped (reset, EOF, disconnect) while a command ran."""
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return "connection lost while the command ran" + (f": {detail}" if detail else "")


def tcp_timeout_message(timeout: float, where: str = "") -> str:
    """No TCP connection at all (a blackholed address): not a silent SSH server."""
    return (
        f"{where}no TCP connection within {timeout:.0f}s (connect timed out: "
        "the address does not answer)"
    )


def handshake_timeout_message(
    timeout: float, where: str = "", what: str = "banner, key exchange or authentication"
) -> str:
    """TCP was accepted, then the SSH server stayed silent or too slow."""
    return f"{where}no SSH handshake within {timeout:.0f}s (TCP accepted but no {what})"
