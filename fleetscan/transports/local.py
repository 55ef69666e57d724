"""The local transport: scan the machine fleetscan runs on, without SSH.

Commands run as ``/bin/sh -c COMMAND`` in their own process group, with the
same contract as the SSH transports: stdin written then closed, stdout capped
at ``max_output`` and stderr at ``DEFAULT_MAX_STDERR``, a per-command timeout,
and a cut or a timeout kills the whole group (``ss`` and friends run as
children of the collector's ``sh``).

It only accepts targets that name this machine (``localhost``, a loopback
address, or this host's own name): ``--transport local`` over a whole
inventory would otherwise report the scanner's own sockets under every host's
name, and a wrong scan that looks right is worse than no scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from functools import lru_cache

from fleetscan.addresses import is_loopback
from fleetscan.errors import CommandTimeout, TransportError, UnreachableError
from fleetscan.model import Target
from fleetscan.transports.base import (
    DEFAULT_MAX_STDERR,
    READ_CHUNK,
    CommandResult,
    ConnectSettings,
    read_capped,
)

SHELL = "/bin/sh"


@lru_cache(maxsize=1)
def local_names() -> frozenset[str]:
    """Names this machine answers to (lower case)."""
    names = {"localhost", "localhost.localdomain", "ip6-localhost"}
    with contextlib.suppress(OSError):
        names.add(socket.gethostname())
        names.add(socket.getfqdn())
    return frozenset(n.lower() for n in names if n)


def is_this_machine(address: str) -> bool:
    text = address.strip().lower().strip("[]")
    return text in local_names() or is_loopback(text)


class LocalSession:
    """Runs commands on this machine; nothing to open or close."""

    async def run(
        self, command: str, *, stdin: str | None = None, timeout: float, max_output: int
    ) -> CommandResult:
        start = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                SHELL,
                "-c",
                command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own process group: killable as a whole
            )
        except OSError as exc:
            raise TransportError(f"cannot start {SHELL}: {exc.strerror or exc}") from None
        try:
            async with asyncio.timeout(timeout):
                feeding = asyncio.create_task(_feed(proc, stdin))
                assert proc.stdout is not None and proc.stderr is not None
                (out, out_cut), (err, err_cut) = await asyncio.gather(
                    _read_capped(proc, proc.stdout, max_output),
                    _read_capped(proc, proc.stderr, DEFAULT_MAX_STDERR),
                )
                truncated = out_cut or err_cut
                await feeding
                code = await proc.wait()
        except TimeoutError:
            raise CommandTimeout(f"command did not finish within {timeout:.0f}s") from None
        finally:
            if proc.returncode is None:
                _kill_group(proc)
                with contextlib.suppress(ProcessLookupError):
                    await proc.wait()
        return CommandResult(
            command=command,
            # a cut command has no meaningful status; a signal death has none either
            exit_status=None if truncated or code < 0 else code,
            stdout=out,
            stderr=err,
            duration=time.monotonic() - start,
            truncated=truncated,
        )

    async def close(self) -> None:
        return None


async def _feed(proc: asyncio.subprocess.Process, stdin: str | None) -> None:
    """Write stdin (concurrently with reading, so a big script and a chatty
    command cannot deadlock on full pipes), then close it."""
    assert proc.stdin is not None
    # the command may exit without reading its stdin: that is its business
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        if stdin is not None:
            proc.stdin.write(stdin.encode())
            await proc.stdin.drain()
        proc.stdin.close()
        await proc.stdin.wait_closed()


async def _read_capped(
    proc: asyncio.subprocess.Process, stream: asyncio.StreamReader, cap: int
) -> tuple[bytes, bool]:
    """A cut kills the command at once: it would block on the pipe nobody reads
    any more, and keep the other stream open until the timeout."""

    async def cut() -> None:
        _kill_group(proc)
        # drain what the dead command left in the pipe: a pipe that never
        # reaches EOF keeps asyncio's subprocess transport open forever
        while await stream.read(READ_CHUNK):
            pass

    return await read_capped(stream.read, cap, cut)


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


class LocalTransport:
    name = "local"

    async def connect(self, target: Target, settings: ConnectSettings) -> LocalSession:
        if not is_this_machine(target.address):
            raise UnreachableError(
                f"transport 'local' scans only this machine, and {target.address!r} is not "
                "one of its names (localhost, a loopback address or "
                f"{socket.gethostname()!r}); use an SSH transport for other hosts"
            )
        return LocalSession()
