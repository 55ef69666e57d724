"""The paramiko transport: same contract as the asyncssh one, for sites that need paramiko.

paramiko is blocking, so every connect, command and close runs in a worker
thread and the event loop stays free for the other hosts. The threads come
from a pool owned by the transport (one instance serves the whole fleet) and
sized for fleet concurrency: asyncio's default pool has only ``cpu + 4``
workers, and a few hung hosts would otherwise starve the rest of the run and
eat their deadlines while they wait for a thread.

Contract kept from :mod:`fleetscan.transports.asyncssh_transport`:

* ``connect_timeout`` bounds TCP + banner + key exchange + authentication.
  paramiko has one timeout per stage (``timeout``, ``banner_timeout``,
  ``auth_timeout``); a watchdog on the event loop bounds the sum and aborts the
  attempt by closing its socket.
* Strict host-key checking against the same known_hosts files. fleetscan does
  the check itself (one parsed :class:`paramiko.HostKeys` per file set, shared
  by the fleet): every server key reaches a policy that accepts it only when it
  equals a known_hosts entry for ``host`` or ``[host]:port``. paramiko's own
  pattern matching has no wildcards or negations: such entries match nothing,
  so the host fails closed as unknown.
* Never a prompt: a password only from the environment variable the inventory
  names, encrypted keys are skipped (``passphrase=None``), no
  keyboard-interactive questions.
* Output bounded by ``max_output`` (stderr by ``DEFAULT_MAX_STDERR``); a cut
  closes the channel. Every failure becomes a :mod:`fleetscan.errors` type.

paramiko logs tracebacks at ERROR for every failed handshake; with no logging
configured Python would print them on stderr in the middle of a scan. The
``paramiko`` logger gets a NullHandler and (unless someone configured it) the
level WARNING: no debug-level key or auth chatter, and real failures are
already each host's status.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import select
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import paramiko

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
    READ_CHUNK,
    CommandResult,
    ConnectSettings,
    target_passphrase,
    target_password,
)

_log = logging.getLogger("paramiko")
_log.addHandler(logging.NullHandler())
if _log.level == logging.NOTSET:
    _log.setLevel(logging.WARNING)

#: how often a blocked worker wakes to notice it was abandoned
_POLL = 0.5
#: threads for the whole fleet; created on demand, each host uses one at a time
DEFAULT_WORKERS = 256
_SSH_PORT = 22

T = TypeVar("T")


# --------------------------------------------------------------------------- host keys


def _fingerprint(files: tuple[str, ...]) -> tuple[tuple[str, int, int], ...]:
    """Which version of each file: a cache keyed on it notices edits, so a
    long-running scheduler sees a known_hosts or ssh config that changed."""
    out = []
    for name in files:
        path = Path(name).expanduser()
        try:
            st = path.stat()
        except OSError:
            out.append((str(path), -1, -1))
        else:
            out.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(out)


def _host_keys(files: tuple[str, ...]) -> paramiko.HostKeys:
    """known_hosts entries of ``files`` (missing files are empty), parsed once per version."""
    return _parse_host_keys(_fingerprint(files))


@lru_cache(maxsize=16)
def _parse_host_keys(files: tuple[tuple[str, int, int], ...]) -> paramiko.HostKeys:
    keys = paramiko.HostKeys()
    for name, _mtime, size in files:
        if size >= 0 and Path(name).is_file():
            # paramiko skips lines it cannot read (unknown key types, markers)
            keys.load(name)
    return keys


def known_hosts_name(host: str, port: int) -> str:
    """The name a known_hosts line uses for a server: OpenSSH writes
    ``[host]:port`` for any port but 22."""
    return host if port == _SSH_PORT else f"[{host}]:{port}"


class _HostKeyRejected(paramiko.SSHException):  # type: ignore[misc]
    """Raised inside paramiko's handshake; turned into HostKeyError."""


class _HostKeyCheck(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
    """Checks the server key against known_hosts (``known`` None: accept all).

    The client's own host-key table is left empty, so paramiko hands every key
    to this policy and one code path decides, for every host."""

    def __init__(self, name: str, known: paramiko.HostKeys | None, attempt: _Attempt) -> None:
        self._name = name
        self._known = known
        self._attempt = attempt

    def missing_host_key(self, client: Any, hostname: str, key: paramiko.PKey) -> None:
        self._attempt.stage = "auth"
        if self._known is None:
            return
        entries = self._known.lookup(self._name)
        if not entries:
            raise _HostKeyRejected(f"no key for {self._name} in known_hosts (unknown host)")
        expected = entries.get(key.get_name())
        if expected is None:
            types = ", ".join(sorted(entries.keys()))
            raise _HostKeyRejected(
                f"the host offered a {key.get_name()} key; known_hosts has only {types} "
                f"for {self._name}"
            )
        if expected != key:
            raise _HostKeyRejected(f"the key of {self._name} changed (it differs from known_hosts)")


def _preferring_known_types(
    known: paramiko.HostKeys | None, name: str
) -> Callable[..., paramiko.Transport]:
    """A transport factory that asks the server for the key type known_hosts
    holds (OpenSSH does the same), so a host with both an RSA and an ed25519
    key is not reported as changed because it offered the other one first."""

    def factory(sock: Any, **kwargs: Any) -> paramiko.Transport:
        transport = paramiko.Transport(sock, **kwargs)
        entries = known.lookup(name) if known is not None else None
        if entries:
            options = transport.get_security_options()
            wanted: list[str] = []
            for ktype in entries.keys():  # noqa: SIM118 - paramiko mapping, not a dict
                # an ssh-rsa key in known_hosts is negotiated as rsa-sha2-*
                wanted += ["rsa-sha2-512", "rsa-sha2-256", ktype] if ktype == "ssh-rsa" else [ktype]
            available = list(options.key_types)
            first = [t for t in dict.fromkeys(wanted) if t in available]
            options.key_types = first + [t for t in available if t not in first]
        return transport

    return factory


# --------------------------------------------------------------------------- ssh config


def _ssh_config(files: tuple[str, ...]) -> paramiko.SSHConfig:
    return _parse_ssh_config(_fingerprint(files))


@lru_cache(maxsize=16)
def _parse_ssh_config(files: tuple[tuple[str, int, int], ...]) -> paramiko.SSHConfig:
    config = paramiko.SSHConfig()
    for name, _mtime, size in files:
        if size >= 0 and Path(name).is_file():
            with open(name) as handle:
                config.parse(handle)  # several files: first value of a key wins
    return config


@dataclass(frozen=True, slots=True)
class Hop:
    """One SSH server to log into: the target itself or a jump host."""

    alias: str  # what the inventory / ProxyJump said, looked up in ssh config
    hostname: str
    port: int
    user: str
    hostkey_name: str  # known_hosts name (HostKeyAlias or host/[host]:port)
    key_files: tuple[str, ...]
    missing_keys: tuple[str, ...]
    look_for_keys: bool
    jump: tuple[str, ...] = ()
    proxy_command: str | None = None


def parse_jump(spec: str) -> tuple[str | None, str, int | None]:
    """``[user@]host[:port]`` or ``ssh://[user@]host[:port]`` (v6 in brackets)."""
    text = spec.strip().removeprefix("ssh://")
    user, at, rest = text.rpartition("@")
    host, port = rest, None
    if rest.startswith("["):
        close = rest.find("]")
        host = rest[1:close] if close > 0 else rest
        tail = rest[close + 1 :] if close > 0 else ""
        port = int(tail[1:]) if tail.startswith(":") and tail[1:].isdigit() else None
    elif rest.count(":") == 1:
        name, _, digits = rest.partition(":")
        if digits.isdigit():
            host, port = name, int(digits)
    return (user if at else None), host, port


def resolve_hop(
    alias: str,
    settings: ConnectSettings,
    *,
    port: int | None = None,
    user: str | None = None,
    key_files: tuple[str, ...] = (),
    jump: str | None = None,
) -> Hop:
    """Merge explicit values (inventory / CLI) over ``~/.ssh/config`` for ``alias``.

    Precedence as in the asyncssh transport: the target's values, then the
    fleet's settings, then ssh config, then the defaults (port 22, local user)."""
    try:
        cfg = _ssh_config(tuple(settings.ssh_config_files())).lookup(alias)
    except Exception as exc:  # bad Match/exec lines, unreadable includes...
        raise TransportError(f"cannot read ssh config for {alias!r}: {exc}") from None
    hostname = str(cfg.get("hostname", alias))
    try:
        the_port = port or int(cfg.get("port", _SSH_PORT))
    except ValueError:
        raise TransportError(f"ssh config: bad Port for {alias!r}") from None
    the_user = user or settings.default_user or cfg.get("user") or getpass.getuser()
    explicit = key_files or settings.client_keys
    candidates = explicit or tuple(cfg.get("identityfile", ()))
    found = tuple(str(Path(k).expanduser()) for k in candidates if Path(k).expanduser().is_file())
    # a missing IdentityFile from ssh config is normal (OpenSSH skips it too);
    # a missing key named by the inventory is worth saying when auth fails
    missing = tuple(k for k in explicit if not Path(k).expanduser().is_file())
    jump_spec = jump if jump is not None else cfg.get("proxyjump")
    jumps: tuple[str, ...] = ()
    if jump_spec and jump_spec.strip().lower() != "none":
        jumps = tuple(j.strip() for j in jump_spec.split(",") if j.strip())
    proxy = cfg.get("proxycommand")
    alias_key = cfg.get("hostkeyalias")
    return Hop(
        alias=alias,
        hostname=hostname,
        port=the_port,
        user=str(the_user),
        hostkey_name=str(alias_key) if alias_key else known_hosts_name(hostname, the_port),
        key_files=found,
        missing_keys=missing,
        look_for_keys=not candidates,
        jump=jumps,
        proxy_command=str(proxy) if proxy and not jumps and proxy.lower() != "none" else None,
    )


# --------------------------------------------------------------------------- connect


@dataclass
class _Attempt:
    """What a connect attempt opened so far, so the event loop can abort it.

    Sockets and clients are closed by whoever comes last: the worker when it
    notices ``aborted``, or :meth:`abort` for what the worker already opened."""

    stage: str = "tcp"
    aborted: bool = False
    opened: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keep(self, thing: Any) -> None:
        with self.lock:
            self.opened.append(thing)
            if not self.aborted:
                return
        _close_quietly(thing)
        raise _Aborted()

    def abort(self) -> None:
        with self.lock:
            self.aborted = True
            things = list(self.opened)
        for thing in reversed(things):
            _close_quietly(thing)


class _Aborted(Exception):
    """The event loop gave up on this worker (timeout or cancel)."""


def _close_quietly(thing: Any) -> None:
    with contextlib.suppress(Exception):
        thing.close()


@dataclass(frozen=True, slots=True)
class Plan:
    """Every hop to log into, outermost jump host first, the target last."""

    hops: tuple[Hop, ...]
    known: paramiko.HostKeys | None
    password: str | None
    passphrase: str | None = None


def plan_connection(target: Target, settings: ConnectSettings) -> Plan:
    """Resolve the target and its jump hosts through ssh config (no I/O but
    reading config files, cached for the fleet)."""
    hop = resolve_hop(
        target.address,
        settings,
        port=target.port,
        user=target.user,
        key_files=target.key_files,
        jump=target.jump_host,
    )
    jumps = []
    for spec in hop.jump:
        user, host, port = parse_jump(spec)
        # a jump host is resolved through ssh config too, but does not jump again
        jumps.append(resolve_hop(host, settings, port=port, user=user, jump="none"))
    known: paramiko.HostKeys | None = None
    if settings.hostkey_checking:
        files = [target.known_hosts] if target.known_hosts else settings.known_hosts_files()
        known = _host_keys(tuple(files))
    return Plan((*jumps, hop), known, target_password(target), target_passphrase(target))


def _connect_blocking(
    plan: Plan, settings: ConnectSettings, attempt: _Attempt
) -> list[paramiko.SSHClient]:
    """Log into every hop of ``plan``, each through a direct-tcpip channel of
    the one before; the clients, outermost first."""
    clients: list[paramiko.SSHClient] = []
    sock: Any = None
    *jumps, hop = plan.hops
    for i, jump in enumerate(jumps):
        via = f"{jump.alias} (ProxyJump)"
        clients.append(
            _login(
                jump, sock, settings, plan.known, None, attempt, via=via, passphrase=plan.passphrase
            )
        )
        sock = _open_tunnel(clients[-1], plan.hops[i + 1], via, settings, attempt)
    if sock is None and hop.proxy_command:
        sock = paramiko.ProxyCommand(hop.proxy_command)
        attempt.keep(sock)
    clients.append(
        _login(hop, sock, settings, plan.known, plan.password, attempt, passphrase=plan.passphrase)
    )
    return clients


def _open_tunnel(
    client: paramiko.SSHClient,
    dest: Hop,
    via: str,
    settings: ConnectSettings,
    attempt: _Attempt,
) -> Any:
    transport = client.get_transport()
    try:
        channel = transport.open_channel(
            "direct-tcpip",
            (dest.hostname, dest.port),
            ("127.0.0.1", 0),
            timeout=settings.connect_timeout,
        )
    except paramiko.ChannelException as exc:
        raise UnreachableError(
            f"jump host {via} could not reach {dest.hostname}:{dest.port}: {exc.text}"
        ) from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise UnreachableError(f"jump host {via} dropped the tunnel: {exc}") from None
    attempt.keep(channel)
    return channel


def _login(
    hop: Hop,
    sock: Any,
    settings: ConnectSettings,
    known: paramiko.HostKeys | None,
    password: str | None,
    attempt: _Attempt,
    via: str | None = None,
    passphrase: str | None = None,
) -> paramiko.SSHClient:
    """TCP (unless tunnelled) + handshake + host key + auth for one hop."""
    where = f"jump host {via}: " if via else ""
    timeout = settings.connect_timeout
    started = time.monotonic()
    attempt.stage = "tcp"
    if sock is None:
        try:
            sock = socket.create_connection((hop.hostname, hop.port), timeout=timeout)
        except socket.gaierror as exc:
            raise UnreachableError(f"{where}name does not resolve: {exc.strerror}") from None
        except ConnectionRefusedError:
            raise UnreachableError(f"{where}connection refused") from None
        except TimeoutError:
            raise HandshakeTimeout(f"{where}no TCP connection within {timeout:.0f}s") from None
        except OSError as exc:
            raise UnreachableError(f"{where}{exc.strerror or exc}") from None
        attempt.keep(sock)
    attempt.stage = "handshake"
    client = paramiko.SSHClient()
    attempt.keep(client)
    client.set_missing_host_key_policy(_HostKeyCheck(hop.hostkey_name, known, attempt))
    try:
        client.connect(
            hop.hostname,
            port=hop.port,
            username=hop.user,
            password=password,
            key_filename=list(hop.key_files) or None,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            channel_timeout=timeout,
            allow_agent=settings.use_agent,
            look_for_keys=hop.look_for_keys,
            # from the inventory's fleetscan_key_passphrase_env; without it encrypted
            # keys are skipped, never asked for
            passphrase=passphrase,
            sock=sock,
            transport_factory=_preferring_known_types(known, hop.hostkey_name),
        )
    except Exception as exc:
        if attempt.aborted:
            raise _Aborted() from None
        elapsed = time.monotonic() - started
        raise _connect_error(exc, hop, attempt.stage, elapsed, timeout, where) from None
    return client


def _connect_error(
    exc: Exception, hop: Hop, stage: str, elapsed: float, timeout: float, where: str
) -> TransportError:
    """Map what paramiko raised during the handshake onto fleetscan's errors."""
    text = str(exc)
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, _HostKeyRejected | paramiko.BadHostKeyException):
        return HostKeyError(
            f"{where}host key not verified against known_hosts ({text}); if the host was "
            "reinstalled, check the new key out of band and update known_hosts "
            "(fleetscan never prompts and never accepts unknown keys by default)"
        )
    says_timeout = (
        isinstance(exc, TimeoutError)
        or isinstance(exc.__context__, TimeoutError)
        or "timeout" in text.lower()
        or "timed out" in text.lower()
    )
    if isinstance(exc, paramiko.AuthenticationException) and not says_timeout:
        return AuthFailedError(_auth_message(hop, where))
    # paramiko's start_client() just stops waiting at its timeout and the next
    # call fails with "No existing session": the clock is the only witness
    timed_out = says_timeout or (stage != "auth" and elapsed >= timeout * 0.95)
    if "No authentication methods available" in text:
        return AuthFailedError(_auth_message(hop, where) + "; no key, agent or password to offer")
    if timed_out:
        what = "authentication" if stage == "auth" else "banner or key exchange"
        return HandshakeTimeout(
            f"{where}no SSH handshake within {timeout:.0f}s (TCP accepted but no {what})"
        )
    if isinstance(exc, paramiko.SSHException | EOFError | OSError):
        return UnreachableError(f"{where}SSH connection failed during the handshake: {text}")
    return TransportError(f"{where}SSH error: {type(exc).__name__}: {text}")


def _auth_message(hop: Hop, where: str) -> str:
    msg = (
        f"{where}authentication refused for {hop.user} "
        "(keys from files/agent/ssh config were tried)"
    )
    if hop.missing_keys:
        msg += "; key files not found: " + ", ".join(hop.missing_keys)
    return msg


# --------------------------------------------------------------------------- commands


@dataclass
class _Capped:
    cap: int
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    cut: bool = False

    def add(self, data: bytes) -> None:
        if self.size + len(data) > self.cap:
            self.chunks.append(data[: self.cap - self.size])
            self.size = self.cap
            self.cut = True
        else:
            self.chunks.append(data)
            self.size += len(data)

    def value(self) -> bytes:
        return b"".join(self.chunks)


def _run_blocking(
    transport: paramiko.Transport,
    command: str,
    stdin: str | None,
    timeout: float,
    max_output: int,
    attempt: _Attempt,
) -> CommandResult:
    """One exec channel: send stdin, read both streams under their caps until
    EOF and the exit status, all before ``timeout``."""
    start = time.monotonic()
    deadline = start + timeout

    def left() -> float:
        return deadline - time.monotonic()

    chan: paramiko.Channel | None = None
    try:
        chan = transport.open_session(timeout=max(0.1, left()))
        attempt.keep(chan)
        chan.exec_command(command)
        chan.settimeout(max(0.1, left()))
        if stdin is not None:
            chan.sendall(stdin.encode())
        chan.shutdown_write()
        out, err = _Capped(max_output), _Capped(DEFAULT_MAX_STDERR)
        ready = chan.fileno()  # readable when stdout or stderr has data, or on EOF
        while not (out.cut or err.cut):
            if attempt.aborted:
                raise _Aborted()
            if left() <= 0:
                raise CommandTimeout(f"command did not finish within {timeout:.0f}s")
            select.select([ready], [], [], min(left(), _POLL))
            while chan.recv_ready() and not out.cut:
                out.add(chan.recv(READ_CHUNK))
            while chan.recv_stderr_ready() and not err.cut:
                err.add(chan.recv_stderr(READ_CHUNK))
            drained = not chan.recv_ready() and not chan.recv_stderr_ready()
            if drained and (chan.eof_received or chan.closed):
                break
        truncated = out.cut or err.cut
        exit_status: int | None = None
        if truncated:
            chan.close()  # stop the flood: nothing more will be read
        else:
            while not chan.status_event.wait(min(max(left(), 0), _POLL)):
                if attempt.aborted:
                    raise _Aborted()
                if left() <= 0:
                    raise CommandTimeout(f"command did not finish within {timeout:.0f}s")
            # paramiko leaves -1 when the channel closed without an exit status
            exit_status = chan.exit_status if chan.exit_status >= 0 else None
            if exit_status is None and not transport.is_active():
                raise ChannelError("connection lost while the command ran")
    except (CommandTimeout, _Aborted):
        raise
    except TimeoutError:
        raise CommandTimeout(f"command did not finish within {timeout:.0f}s") from None
    except paramiko.ChannelException as exc:
        raise ChannelError(f"the host refused to open a session: {exc.text}") from None
    except (paramiko.SSHException, EOFError, OSError) as exc:
        if attempt.aborted:
            raise _Aborted() from None
        raise ChannelError(f"connection lost while the command ran: {exc}") from None
    finally:
        if chan is not None:
            _close_quietly(chan)
    return CommandResult(
        command=command,
        exit_status=exit_status,
        stdout=out.value(),
        stderr=err.value(),
        duration=time.monotonic() - start,
        truncated=truncated,
    )


# --------------------------------------------------------------------------- async face


async def _in_worker(
    pool: ThreadPoolExecutor,
    attempt: _Attempt,
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
    except _Aborted:
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
        attempt = _Attempt(stage="run")
        return await _in_worker(
            self._pool,
            attempt,
            timeout + 2,  # the worker keeps ``timeout`` itself; this is the safety net
            lambda: CommandTimeout(f"command did not finish within {timeout:.0f}s"),
            _run_blocking,
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
                _close_quietly(client)

        loop = asyncio.get_running_loop()
        with contextlib.suppress(TimeoutError, OSError):
            async with asyncio.timeout(5):
                await loop.run_in_executor(self._pool, close_all)


class ParamikoTransport:
    name = "paramiko"

    def __init__(self, max_workers: int = DEFAULT_WORKERS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="paramiko")

    async def connect(self, target: Target, settings: ConnectSettings) -> ParamikoSession:
        loop = asyncio.get_running_loop()
        # ssh config may run `Match exec` commands: not on the event loop
        plan = await loop.run_in_executor(self._pool, plan_connection, target, settings)
        attempt = _Attempt()
        timeout = settings.connect_timeout

        def timed_out() -> TransportError:
            if attempt.stage == "tcp":
                return HandshakeTimeout(f"no TCP connection within {timeout:.0f}s")
            return HandshakeTimeout(
                f"no SSH handshake within {timeout:.0f}s "
                "(TCP accepted but no banner, key exchange or authentication)"
            )

        clients = await _in_worker(
            self._pool,
            attempt,
            # each hop has its own connect_timeout, as with OpenSSH's ProxyJump
            len(plan.hops) * timeout + 1,
            timed_out,
            _connect_blocking,
            plan,
            settings,
            attempt,
        )
        return ParamikoSession(clients, self._pool)
