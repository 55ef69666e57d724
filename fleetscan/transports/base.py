"""The transport interface: connect to a target, run commands, close.

Transports do no parsing. They bound what they read (``max_output``) and how
long they wait, and turn every failure into a :class:`~fleetscan.errors.TransportError`
subclass, so the runner can give the host one precise status.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from fleetscan.model import Target

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

    def known_hosts_files(self) -> list[str]:
        files = [self.known_hosts or str(Path.home() / ".ssh" / "known_hosts")]
        files.extend(self.extra_known_hosts)
        return files

    def ssh_config_files(self) -> list[str]:
        if self.ssh_config is not None:
            return list(self.ssh_config)
        default = Path.home() / ".ssh" / "config"
        return [str(default)] if default.is_file() else []


def target_passphrase(target: Target) -> str | None:
    """The passphrase of the target's encrypted private keys, from the
    environment variable the inventory names (never asked for, never logged)."""
    if target.passphrase_env:
        return os.environ.get(target.passphrase_env)
    return None


def target_password(target: Target) -> str | None:
    """The password for ``target`` from the environment variable the inventory
    names (never from the inventory itself, never logged)."""
    if target.password_env:
        return os.environ.get(target.password_env)
    return None


READ_CHUNK = 256 * 1024


async def read_capped(
    read: Callable[[int], Awaitable[bytes]],
    cap: int,
    on_cut: Callable[[], Awaitable[None]] | None = None,
) -> tuple[bytes, bool]:
    """Read a stream to EOF, keeping at most ``cap`` bytes; True when cut.

    The one bounded reader of every transport: a flooding host never costs
    more than ``cap`` bytes. ``on_cut`` stops the producer (close the channel,
    kill the process) as soon as the cap is reached."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await read(READ_CHUNK)
        if not chunk:
            return b"".join(chunks), False
        if size + len(chunk) > cap:
            chunks.append(chunk[: cap - size])
            if on_cut is not None:
                await on_cut()
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)


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
