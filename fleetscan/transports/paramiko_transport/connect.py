"""Log into every hop of a :class:`~.plan.Plan` with paramiko (blocking; runs in
a worker thread) and map what paramiko raises onto fleetscan's errors."""

from __future__ import annotations

import socket
import time
from typing import Any

import paramiko

from fleetscan.errors import (
    AuthFailedError,
    HandshakeTimeout,
    TransportError,
    UnreachableError,
)
from fleetscan.transports.base import (
    ConnectSettings,
    auth_message,
    handshake_timeout_message,
    os_error_text,
    tcp_timeout_message,
)
from fleetscan.transports.paramiko_transport.attempt import Aborted, Attempt
from fleetscan.transports.paramiko_transport.hostkey import (
    HostKeyCheck,
    HostKeyRejected,
    preferring_known_types,
)
from fleetscan.transports.paramiko_transport.plan import Hop, Plan


def connect_blocking(
    plan: Plan, settings: ConnectSettings, attempt: Attempt
) -> list[paramiko.SSHClient]:
    """Log into every hop of ``plan``, each through a direct-tcpip channel of
    the one before; the clients, outermost first."""
    clients = _open_jumps(plan, settings, attempt)
    hop = plan.hops[-1]
    clients.append(
        _login(hop, _target_sock(clients, plan, settings, attempt), settings, plan, attempt)
    )
    return clients


def fetch_keys_blocking(
    plan: Plan, settings: ConnectSettings, attempt: Attempt, algs: list[str]
) -> list[bytes]:
    """The target's host keys, one handshake per algorithm, through its jump
    chain; no authentication to the target, no command."""
    clients = _open_jumps(plan, settings, attempt)
    keys: list[bytes] = []
    try:
        for alg in algs:
            sock = _target_sock(clients, plan, settings, attempt)
            if sock is None:
                sock = _tcp(plan.hops[-1], settings.connect_timeout, "")
                attempt.keep(sock)
            transport = paramiko.Transport(sock)
            attempt.keep(transport)
            options = transport.get_security_options()
            if alg not in options.key_types:
                transport.close()
                continue
            options.key_types = [alg]
            try:
                transport.start_client(timeout=settings.connect_timeout)
                keys.append(transport.get_remote_server_key().asbytes())
            except (paramiko.SSHException, EOFError, OSError):
                continue  # no key of this type (or the host hung up)
            finally:
                transport.close()
    finally:
        for client in reversed(clients):
            client.close()
    return list(dict.fromkeys(keys))


def _open_jumps(
    plan: Plan, settings: ConnectSettings, attempt: Attempt
) -> list[paramiko.SSHClient]:
    clients: list[paramiko.SSHClient] = []
    sock: Any = None
    for i, jump in enumerate(plan.hops[:-1]):
        via = f"{jump.alias} (ProxyJump)"
        if i == 0 and jump.proxy_command:
            sock = paramiko.ProxyCommand(jump.proxy_command)  # argv split, no shell
            attempt.keep(sock)
        clients.append(_login(jump, sock, settings, plan, attempt, via=via))
        if i + 2 < len(plan.hops):
            sock = _open_tunnel(clients[-1], plan.hops[i + 1], via, settings, attempt)
    return clients


def _target_sock(
    clients: list[paramiko.SSHClient], plan: Plan, settings: ConnectSettings, attempt: Attempt
) -> Any:
    """A tunnel to the target through the last jump host, its ProxyCommand, or
    None (a direct TCP connection)."""
    hop = plan.hops[-1]
    if clients:
        via = f"{plan.hops[-2].alias} (ProxyJump)"
        return _open_tunnel(clients[-1], hop, via, settings, attempt)
    if hop.proxy_command:
        sock = paramiko.ProxyCommand(hop.proxy_command)  # argv split, no shell
        attempt.keep(sock)
        return sock
    return None


def _tcp(hop: Hop, timeout: float, where: str) -> socket.socket:
    try:
        return socket.create_connection((hop.hostname, hop.port), timeout=timeout)
    except socket.gaierror as exc:
        raise UnreachableError(f"{where}name does not resolve: {exc.strerror}") from None
    except UnicodeError:  # the IDNA codec refuses it: no DNS name can be this
        raise UnreachableError(f"{where}name does not resolve: not a valid host name") from None
    except TimeoutError:
        raise HandshakeTimeout(tcp_timeout_message(timeout, where)) from None
    except OSError as exc:
        raise UnreachableError(where + os_error_text(exc)) from None


def _open_tunnel(
    client: paramiko.SSHClient,
    dest: Hop,
    via: str,
    settings: ConnectSettings,
    attempt: Attempt,
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
    plan: Plan,
    attempt: Attempt,
    via: str | None = None,
) -> paramiko.SSHClient:
    """TCP (unless tunnelled) + handshake + host key + auth for one hop. The
    target's password is offered to the target only, never to a jump host."""
    where = f"jump host {via}: " if via else ""
    known = plan.known
    password = plan.password if via is None else None
    host = plan.host if via is None else f"{plan.host} (jump host {hop.alias})"
    timeout = settings.connect_timeout
    started = time.monotonic()
    attempt.stage = "tcp"
    if sock is None:
        sock = _tcp(hop, timeout, where)
        attempt.keep(sock)
    attempt.stage = "handshake"
    client = paramiko.SSHClient()
    attempt.keep(client)

    def key_seen() -> None:
        attempt.stage = "auth"

    client.set_missing_host_key_policy(
        HostKeyCheck(hop.hostkey_name, known, key_seen, plan.accept_new, host)
    )
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
            passphrase=plan.passphrase,
            sock=sock,
            transport_factory=preferring_known_types(known, hop.hostkey_name),
        )
    except Exception as exc:
        if attempt.aborted:
            raise Aborted() from None
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
    if isinstance(exc, HostKeyRejected):
        return exc.error(where)
    says_timeout = (
        isinstance(exc, TimeoutError)
        or isinstance(exc.__context__, TimeoutError)
        or "timeout" in text.lower()
        or "timed out" in text.lower()
    )
    if isinstance(exc, paramiko.AuthenticationException) and not says_timeout:
        return AuthFailedError(where + auth_message(hop.user, hop.missing_keys))
    # paramiko's start_client() just stops waiting at its timeout and the next
    # call fails with "No existing session": the clock is the only witness
    timed_out = says_timeout or (stage != "auth" and elapsed >= timeout * 0.95)
    if "No authentication methods available" in text:
        return AuthFailedError(
            where
            + auth_message(hop.user, hop.missing_keys)
            + "; no key, agent or password to offer"
        )
    if timed_out:
        what = "authentication" if stage == "auth" else "banner or key exchange"
        return HandshakeTimeout(handshake_timeout_message(timeout, where, what))
    if isinstance(exc, OSError):
        return UnreachableError(where + os_error_text(exc))
    if isinstance(exc, paramiko.SSHException | EOFError):
        return UnreachableError(f"{where}SSH connection failed during the handshake: {text}")
    return TransportError(f"{where}SSH error: {type(exc).__name__}: {text}")
