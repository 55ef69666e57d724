"""Start a simulated fleet in one call: servers, client key, known_hosts,
targets and (on request) an Ansible inventory.

The one way the demo, the tests (in-process and through the real CLI) and
the benchmarks start simulated hosts::

    async with sim_fleet(tmp, [SimHost("web-01", outputs={"ss": ...})]) as fleet:
        scans = await scan_all(fleet.targets, fleet.settings())

    with threaded_fleet(tmp, hosts) as fleet:   # servers on a background loop
        fleet.write_inventory(tmp / "inventory.yaml")
        ...run the CLI or app.run() in this thread...
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import yaml

from fleetscan.model import Target
from fleetscan.runner import ScanSettings
from fleetscan.testing.simhost import (
    ConnectionCounter,
    RunningHost,
    SimHost,
    known_hosts_line,
    start_host,
    stop_hosts,
)
from fleetscan.transports.base import ConnectSettings

CLIENT_KEY = "id_ed25519"


@dataclass
class SimFleet:
    """Running simulated hosts and what a scanner needs to reach them."""

    running: list[RunningHost]
    workdir: Path
    known_hosts: Path
    key: Path
    user: str = "tester"
    targets: list[Target] = field(default_factory=list)
    counters: dict[str, ConnectionCounter] = field(default_factory=dict)

    @property
    def hosts(self) -> list[RunningHost]:
        return self.running

    def settings(self, **kw: Any) -> ScanSettings:
        """Scan settings for this fleet (its known_hosts, no ssh config, no agent)."""
        connect = ConnectSettings(
            known_hosts=str(self.known_hosts),
            ssh_config=(),
            connect_timeout=float(kw.pop("connect_timeout", 3.0)),
            use_agent=False,
        )
        return ScanSettings(connect=connect, **kw)

    def target(self, name: str) -> Target:
        return next(t for t in self.targets if t.name == name)

    def port(self, name: str) -> int:
        return next(r.port for r in self.running if r.host.name == name)

    def inventory_hosts(self) -> dict[str, dict[str, Any]]:
        """Ansible host entries (address, port, user, key) for every host."""
        return {
            r.host.name: {
                "ansible_host": "127.0.0.1",
                "ansible_port": r.port,
                "ansible_user": self.user,
                "ansible_ssh_private_key_file": str(self.key),
                **({"ansible_shell_type": "cmd"} if r.host.platform == "windows" else {}),
            }
            for r in self.running
        }

    def write_inventory(
        self,
        path: Path,
        *,
        extra: Mapping[str, Mapping[str, Any]] | None = None,
        header: str = "",
    ) -> Path:
        """An Ansible YAML inventory of the fleet; ``extra`` adds or overrides
        host entries (a host that is not running, other variables)."""
        hosts = self.inventory_hosts()
        for name, entry in (extra or {}).items():
            hosts[name] = {**hosts.get(name, {}), **entry}
        path.write_text(header + yaml.safe_dump({"all": {"hosts": hosts}}, sort_keys=False))
        return path

    async def stop(self) -> None:
        await stop_hosts(self.running)


def client_key(workdir: Path) -> tuple[Path, asyncssh.SSHKey]:
    """The fleet's client key in ``workdir`` (created 0600 when missing)."""
    path = workdir / CLIENT_KEY
    if path.exists():
        return path, asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(path))
    path.chmod(0o600)
    key.write_public_key(str(path) + ".pub")
    return path, key


async def start_fleet(
    workdir: Path,
    hosts: Sequence[SimHost],
    *,
    wrong_key: Sequence[str] = (),
    unknown: Sequence[str] = (),
    become: Sequence[str] = (),
    counter: ConnectionCounter | None = None,
    count_each: bool = False,
    host_key: asyncssh.SSHKey | None = None,
    user: str = "tester",
) -> SimFleet:
    """Start ``hosts`` on 127.0.0.1 (free ports) and write ``known_hosts``:
    ``wrong_key`` hosts get another key there, ``unknown`` hosts none at all.
    ``counter`` counts connections across the fleet, ``count_each`` per host
    (``fleet.counters``); one ``host_key`` for all is cheaper for big fleets."""
    workdir.mkdir(parents=True, exist_ok=True)
    key_path, key = client_key(workdir)
    counters: dict[str, ConnectionCounter] = {}
    running = []
    for h in hosts:
        count = counter
        if count_each:
            count = counters[h.name] = ConnectionCounter()
        running.append(await start_host(h, [key], host_key=host_key, counter=count))
    lines = []
    for r in running:
        if r.host.name in unknown:
            continue
        shown = asyncssh.generate_private_key("ssh-ed25519") if r.host.name in wrong_key else None
        lines.append(known_hosts_line("127.0.0.1", r.port, shown or r.host_key) + "\n")
    known = workdir / "known_hosts"
    known.write_text("".join(lines))
    fleet = SimFleet(running, workdir, known, key_path, user=user, counters=counters)
    fleet.targets = [
        Target(
            name=r.host.name,
            address="127.0.0.1",
            port=r.port,
            user=user,
            key_files=(str(key_path),),
            become=r.host.name in become,
        )
        for r in running
    ]
    return fleet


@contextlib.asynccontextmanager
async def sim_fleet(workdir: Path, hosts: Sequence[SimHost], **kw: Any) -> AsyncIterator[SimFleet]:
    """:func:`start_fleet` as an async context: the hosts stop on exit."""
    fleet = await start_fleet(workdir, hosts, **kw)
    try:
        yield fleet
    finally:
        await fleet.stop()


@contextlib.contextmanager
def threaded_fleet(workdir: Path, hosts: Sequence[SimHost], **kw: Any) -> Iterator[SimFleet]:
    """The fleet served from a background thread's event loop, so the caller's
    thread can run a whole scan (``app.run``, the CLI) with its own loop and
    signal handling."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sim-fleet", daemon=True)
    thread.start()
    try:
        fleet = asyncio.run_coroutine_threadsafe(start_fleet(workdir, hosts, **kw), loop).result()
        try:
            yield fleet
        finally:
            asyncio.run_coroutine_threadsafe(fleet.stop(), loop).result()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released): connection refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
