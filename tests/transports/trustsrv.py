"""An in-process asyncssh server that logs what a client offers it: passwords,
usernames, agent / X11 / port-forwarding requests, the commands it runs.
The attack tests use it as the attacker's host, a target and a jump host."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from fleetscan.model import Target
from fleetscan.testing.simhost import known_hosts_line
from fleetscan.transports import get_transport
from fleetscan.transports.base import ConnectSettings


@dataclass
class Log:
    passwords: list[str] = field(default_factory=list)
    usernames: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    agent_forwarded: list[bool] = field(default_factory=list)
    x11_requested: list[bool] = field(default_factory=list)
    tunnels: list[tuple[str, int]] = field(default_factory=list)
    #: the cipher each connection negotiated (client to server)
    ciphers: list[str] = field(default_factory=list)


@dataclass
class Host:
    """One logging server; ``password`` None: password auth refused (but logged)."""

    name: str
    password: str | None = None
    client_keys: list[asyncssh.SSHKey] = field(default_factory=list)
    jump: bool = False
    key_type: str = "ssh-ed25519"
    host_key: asyncssh.SSHKey | None = None
    #: a CA that signs the host key: the server then also offers the certificate
    host_ca: asyncssh.SSHKey | None = None
    log: Log = field(default_factory=Log)
    port: int = 0

    def known_hosts_line(self, address: str = "127.0.0.1") -> str:
        assert self.host_key is not None
        return known_hosts_line(address, self.port, self.host_key)


class _Server(asyncssh.SSHServer):
    def __init__(self, host: Host) -> None:
        self._host = host
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn

    def begin_auth(self, username: str) -> bool:
        self._host.log.usernames.append(username)
        if self._conn is not None:
            self._host.log.ciphers.append(str(self._conn.get_extra_info("recv_cipher")))
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        self._host.log.passwords.append(password)
        return self._host.password is not None and password == self._host.password

    def public_key_auth_supported(self) -> bool:
        return bool(self._host.client_keys)

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return key.public_data in {k.public_data for k in self._host.client_keys}

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> bool:
        self._host.log.tunnels.append((dest_host, dest_port))
        return self._host.jump and dest_host in ("127.0.0.1", "localhost", "::1")


def _process(host: Host) -> Any:
    async def handle(process: asyncssh.SSHServerProcess[str]) -> None:
        host.log.commands.append(process.command or "")
        channel = process.channel
        host.log.agent_forwarded.append(channel.get_agent_path() is not None)
        host.log.x11_requested.append(channel.get_x11_display() is not None)
        process.stdout.write("hello\n")
        process.exit(0)

    return handle


class Servers:
    """Logging servers on loopback, run by an event loop in a thread (so a CLI
    subprocess or a blocking client can use them)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._acceptors: list[asyncssh.SSHAcceptor] = []

    def start(self, host: Host) -> Host:
        async def go() -> None:
            host.host_key = host.host_key or asyncssh.generate_private_key(host.key_type)
            keys: list[Any] = [host.host_key]
            if host.host_ca is not None:
                cert = host.host_ca.generate_host_certificate(
                    host.host_key, "h", principals=["127.0.0.1"]
                )
                keys = [(host.host_key, cert)]  # offers the certificate and the plain key
            acceptor = await asyncssh.create_server(
                lambda: _Server(host),
                "127.0.0.1",
                0,
                server_host_keys=keys,
                process_factory=_process(host),
                encoding="utf-8",
                agent_forwarding=True,
                x11_forwarding=True,
                allow_scp=False,
            )
            host.port = int(acceptor.sockets[0].getsockname()[1])
            self._acceptors.append(acceptor)

        asyncio.run_coroutine_threadsafe(go(), self.loop).result(20)
        return host

    def close(self) -> None:
        async def stop() -> None:
            for a in self._acceptors:
                a.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@contextmanager
def servers() -> Iterator[Servers]:
    s = Servers()
    try:
        yield s
    finally:
        s.close()


def client_key(directory: Path) -> tuple[Path, asyncssh.SSHKey]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    path = directory / "id_client"
    key.write_private_key(str(path))
    path.chmod(0o600)
    return path, key


async def connect_and_run(
    transport: str, target: Target, settings: ConnectSettings, command: str = "echo hi"
) -> str:
    """Connect with ``transport``, run ``command``, close; its stdout."""
    session = await get_transport(transport).connect(target, settings)
    try:
        result = await session.run(command, timeout=20, max_output=65536)
    finally:
        await session.close()
    return result.stdout.decode()
