"""The paramiko transport: same contract as the asyncssh one, for sites that need paramiko.

paramiko is blocking, so every connect, command and close runs in a worker
thread and the event loop stays free for the other hosts. The threads come
from a pool owned by the transport (one instance serves the whole fleet),
sized from the run's concurrency (:meth:`ParamikoTransport.size_for`): each
host being scanned holds at most one worker at a time, so a host never waits
for a thread while its own deadline runs.

The package, one job per module:

* :mod:`.plan` — target and jump hosts through the filtered ssh_config;
* :mod:`.hostkey` — paramiko's side of the shared known_hosts decision;
* :mod:`.connect` — log into every hop, map paramiko's errors;
* :mod:`.channel` — one exec channel, output capped, within the timeout;
* :mod:`.attempt` — abort a blocked worker from the event loop.

Contract kept from :mod:`fleetscan.transports.asyncssh_transport`:
``connect_timeout`` bounds TCP + banner + key exchange + authentication per
hop (a watchdog on the event loop bounds the sum and aborts the attempt by
closing its sockets); host keys decided exactly as OpenSSH does
(:mod:`fleetscan.transports.hostkeys`); never a prompt (a password only from
an environment variable the operator allows, encrypted keys skipped unless
their passphrase variable is allowed, no keyboard-interactive); nothing
forwarded; output bounded by ``max_output``.

paramiko logs tracebacks at ERROR for every failed handshake; the
``paramiko`` logger gets a NullHandler and (unless someone configured it) the
level WARNING: real failures are already each host's status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import paramiko

from fleetscan.errors import ChannelError, CommandTimeout, HandshakeTimeout, TransportError
from fleetscan.model import Target
from fleetscan.transports.base import (
    CommandResult,
    ConnectSettings,
    handshake_timeout_message,
    tcp_timeout_message,
)
from fleetscan.transports.hostkeys import LookupName, known_hosts_name
from fleetscan.transports.paramiko_transport.attempt import Aborted, Attempt, close_quietly
from fleetscan.transports.paramiko_transport.channel import run_blocking
from fleetscan.transports.paramiko_transport.connect import connect_blocking, fetch_keys_blocking
from fleetscan.transports.paramiko_transport.plan import Hop, Plan, plan_connection, resolve_hop
from fleetscan.transports.sshconfig import parse_jump

__all__ = [
    "Hop",
    "ParamikoSession",
    "ParamikoTransport",
    "Plan",
    "known_hosts_name",
    "parse_jump",
    "plan_connection",
    "resolve_hop",
]

_log = logging.getLogger("paramiko")
_log.addHandler(logging.NullHandler())
if _log.level == logging.NOTSET:
    _log.setLevel(logging.WARNING)

#: threads when nobody said how many hosts run at once
DEFAULT_WORKERS = 64
#: headroom for workers that were abandoned (timeout) and are still returning
SPARE_WORKERS = 16

T = TypeVar("T")


async def _in_worker(
    pool: ThreadPoolExecutor,
    attempt: Attempt,
    limit: float,
    on_timeout: Callable[[], TransportError],
    func: Callable[..., T],
    *args: Any,
) -> T:
    """Run ``func`` in the pool; past ``limit`` seconds, or when this task is
    cancelled, abort the attempt (its sockets close, the worker returns soon)."""
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(pool, func, *args)
    try:
        async with asyncio.timeout(limit):
            return await future
    except TimeoutError:
        attempt.abort()
        raise on_timeout() from None
    except Aborted:
        raise on_timeout() from None
    except BaseException:
        attempt.abort()
        raise


class ParamikoSession:
    """An open paramiko connection (plus its jump hosts); each run is one channel."""

    def __init__(self, clients: list[paramiko.SSHClient], pool: ThreadPoolExecutor) -> None:
        self._clients = clients
        self._pool = pool

    async def run(
        self, command: str, *, stdin: str | None = None, timeout: float, max_output: int
    ) -> CommandResult:
        transport = self._clients[-1].get_transport()
        if transport is None or not transport.is_active():
            raise ChannelError("connection lost before the command could run")
        attempt = Attempt(stage="run")
        return await _in_worker(
            self._pool,
            attempt,
            timeout + 2,  # the worker keeps ``timeout`` itself; this is the safety net
            lambda: CommandTimeout(f"command did not finish within {timeout:.0f}s"),
            run_blocking,
            transport,
            command,
            stdin,
            timeout,
            max_output,
            attempt,
        )

    async def close(self) -> None:
        def close_all() -> None:
            for client in reversed(self._clients):
                close_quietly(client)

        loop = asyncio.get_running_loop()
        with contextlib.suppress(TimeoutError, OSError):
            async with asyncio.timeout(5):
                await loop.run_in_executor(self._pool, close_all)


class ParamikoTransport:
    name = "paramiko"

    def __init__(self, max_workers: int | None = None) -> None:
        self._workers = max_workers or DEFAULT_WORKERS + SPARE_WORKERS
        self._lock = threading.Lock()
        self._pools: list[ThreadPoolExecutor] = []

    def size_for(self, concurrency: int) -> None:
        """Give every host scanned at once its own worker thread (plus spares
        for abandoned workers); before the first connection."""
        with self._lock:
            self._workers = max(self._workers, concurrency + SPARE_WORKERS)

    @property
    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if not self._pools or self._pools[-1]._max_workers < self._workers:
                self._pools.append(ThreadPoolExecutor(self._workers, thread_name_prefix="paramiko"))
            return self._pools[-1]

    async def connect(self, target: Target, settings: ConnectSettings) -> ParamikoSession:
        loop = asyncio.get_running_loop()
        # reads config and known_hosts files: not on the event loop
        plan = await loop.run_in_executor(self._pool, plan_connection, target, settings)
        attempt = Attempt()
        timeout = settings.connect_timeout

        def timed_out() -> TransportError:
            if attempt.stage == "tcp":
                return HandshakeTimeout(tcp_timeout_message(timeout))
            return HandshakeTimeout(handshake_timeout_message(timeout))

        clients = await _in_worker(
            self._pool,
            attempt,
            # each hop has its own connect_timeout, as with OpenSSH's ProxyJump
            len(plan.hops) * timeout + 1,
            timed_out,
            connect_blocking,
            plan,
            settings,
            attempt,
        )
        return ParamikoSession(clients, self._pool)

    async def host_keys(
        self, target: Target, settings: ConnectSettings, algs: list[str]
    ) -> tuple[LookupName, list[bytes]]:
        """The target's host keys, one handshake per algorithm in ``algs``,
        through its jump chain (opened with the fleet's host-key rules);
        nothing is authenticated to the target and no command runs."""
        loop = asyncio.get_running_loop()
        plan = await loop.run_in_executor(self._pool, plan_connection, target, settings)
        attempt = Attempt()
        timeout = settings.connect_timeout
        keys = await _in_worker(
            self._pool,
            attempt,
            (len(plan.hops) + len(algs)) * timeout + 1,
            lambda: HandshakeTimeout(f"no host key within {timeout:.0f}s per hop"),
            fetch_keys_blocking,
            plan,
            settings,
            attempt,
            algs,
        )
        return plan.hops[-1].hostkey_name, keys
