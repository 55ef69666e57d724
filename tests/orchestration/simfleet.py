"""Start simulated hosts (real asyncssh servers on loopback) for a test and
build the matching targets, known_hosts and settings."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from fleetscan.model import Target
from fleetscan.runner import ScanSettings
from fleetscan.simulate import (
    ConnectionCounter,
    RunningHost,
    SimHost,
    known_hosts_line,
    start_host,
    stop_hosts,
    write_client_key,
)
from fleetscan.transports.base import ConnectSettings


@dataclass
class SimFleet:
    running: list[RunningHost]
    known_hosts: Path
    key: Path
    targets: list[Target] = field(default_factory=list)

    def settings(self, **kw: object) -> ScanSettings:
        connect = ConnectSettings(
            known_hosts=str(self.known_hosts),
            ssh_config=(),
            connect_timeout=float(kw.pop("connect_timeout", 3.0)),  # type: ignore[arg-type]
            use_agent=False,
        )
        return ScanSettings(connect=connect, **kw)  # type: ignore[arg-type]

    def target(self, name: str) -> Target:
        return next(t for t in self.targets if t.name == name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def sim_fleet(
    tmp: Path,
    hosts: Sequence[SimHost],
    *,
    wrong_key: Sequence[str] = (),
    unknown: Sequence[str] = (),
    become: Sequence[str] = (),
    counter: ConnectionCounter | None = None,
) -> AsyncIterator[SimFleet]:
    """Start ``hosts``; ``wrong_key`` hosts get another key in known_hosts,
    ``unknown`` hosts none at all."""
    key_path, client_key = write_client_key(tmp)
    running = [await start_host(h, [client_key], counter=counter) for h in hosts]
    lines = []
    for r in running:
        if r.host.name in unknown:
            continue
        key = asyncssh.generate_private_key("ssh-ed25519") if r.host.name in wrong_key else None
        lines.append(known_hosts_line("127.0.0.1", r.port, key or r.host_key))
    kh = tmp / "known_hosts"
    kh.write_text("\n".join(lines) + "\n")
    fleet = SimFleet(running, kh, key_path)
    fleet.targets = [
        Target(
            name=r.host.name,
            address="127.0.0.1",
            port=r.port,
            user="tester",
            key_files=(str(key_path),),
            become=r.host.name in become,
        )
        for r in running
    ]
    try:
        yield fleet
    finally:
        await stop_hosts(running)


@asynccontextmanager
async def silent_tcp_server() -> AsyncIterator[int]:
    """A TCP server that accepts and never says anything (no SSH banner)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        held.append(w)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    try:
        yield port
    finally:
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()
