"""Simulated SSH hosts in a separate process, for tests that run the real CLI.

The CLI tests start ``fleetscan`` as a subprocess (so that it can be given
bad files, closed stdin and real signals). The hosts it scans must then live
in yet another process: this module is both

* a script — ``python simserver.py SPEC.json`` starts the hosts described in
  the spec (real asyncssh servers started by :mod:`fleetscan.testing.fleet` on
  127.0.0.1), writes a client key and a ``known_hosts`` into the spec's
  workdir, and keeps ``state.json`` there up to date: each host's port, the
  exec commands, user names and sudo'd listing commands it received, and how
  many connections are open right now. It runs until SIGTERM/SIGINT;
* and the test-side handle, :func:`sim_process`, which starts the script,
  waits for it to be ready, reads its state and stops it.

Spec: ``{"workdir": "...", "hosts": [{"name": "web-01", "behaviour": "hang",
"password": null, "platform": "linux", "listeners": [["tcp", "0.0.0.0", 22,
[["sshd", 733]]]], "users": {"733": "root"}, "uid": 0, "sudo": "ok"}]}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE = "state.json"
READY_TIMEOUT = 20.0

# --- the server process -----------------------------------------------------------


def _sim_host(spec: dict[str, Any]) -> Any:
    from fleetscan.testing.simhost import SimHost, render_ss

    platform = spec.get("platform", "linux")
    listeners = [
        (p, a, int(port), [(n, int(pid)) for n, pid in owners])
        for p, a, port, owners in spec.get("listeners", [])
    ]
    outputs: dict[str, str] = dict(spec.get("outputs", {}))
    if platform == "linux" and "ss" not in outputs:
        outputs["ss"] = render_ss(listeners)
    users = {int(pid): user for pid, user in spec.get("users", {}).items()}
    return SimHost(
        spec["name"],
        platform=platform,
        outputs=outputs,
        ps="".join(f"{pid:>7} {user}\n" for pid, user in sorted(users.items())),
        uid=int(spec.get("uid", 0)),
        sudo=spec.get("sudo", "ok"),
        behaviour=spec.get("behaviour", "normal"),
        password=spec.get("password"),
    )


async def _serve(spec: dict[str, Any]) -> None:
    from fleetscan.testing.fleet import start_fleet

    workdir = Path(spec["workdir"])
    fleet = await start_fleet(workdir, [_sim_host(h) for h in spec["hosts"]], count_each=True)
    running, counters, known_hosts, key_path = (
        fleet.running,
        fleet.counters,
        fleet.known_hosts,
        fleet.key,
    )

    def snapshot() -> str:
        hosts = {
            r.host.name: {
                "port": r.port,
                "commands": list(r.host.commands),
                "usernames": list(r.host.usernames),
                "sudo": list(r.host.sudo_commands),
                "open": counters[r.host.name].current,
                "total": counters[r.host.name].total,
            }
            for r in running
        }
        return json.dumps(
            {
                "ready": True,
                "pid": os.getpid(),
                "known_hosts": str(known_hosts),
                "client_key": str(key_path),
                "hosts": hosts,
            },
            indent=1,
        )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    state = workdir / STATE
    written = ""
    try:
        while not stop.is_set():
            text = snapshot()
            if text != written:
                # atomic: a reader never sees half a file
                tmp = state.with_suffix(".tmp")
                tmp.write_text(text)
                os.replace(tmp, state)
                written = text
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)
    finally:
        await fleet.stop()


def main(argv: list[str]) -> None:
    spec = json.loads(Path(argv[1]).read_text())
    asyncio.run(_serve(spec))


# --- the test side ----------------------------------------------------------------


@dataclass
class SimProcess:
    """A running simulator process and its workdir."""

    proc: subprocess.Popen[bytes]
    workdir: Path

    @property
    def known_hosts(self) -> Path:
        return self.workdir / "known_hosts"

    @property
    def client_key(self) -> Path:
        return self.workdir / "id_ed25519"

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.workdir / STATE).read_text())
        return data

    def host(self, name: str) -> dict[str, Any]:
        host: dict[str, Any] = self.state()["hosts"][name]
        return host

    def port(self, name: str) -> int:
        return int(self.host(name)["port"])

    def wait_until(
        self, ready: Callable[[dict[str, Any]], bool], what: str, timeout: float = 20.0
    ) -> dict[str, Any]:
        """Poll the state until ``ready(state)``; fail naming ``what`` otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if ready(state):
                return state
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"simulator exited ({self.proc.returncode}) waiting for {what}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {state['hosts']}")
            time.sleep(0.05)


@contextlib.contextmanager
def sim_process(workdir: Path, hosts: list[dict[str, Any]]) -> Iterator[SimProcess]:
    """Start the simulated ``hosts`` in their own process; stop them afterwards."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec = workdir / "spec.json"
    spec.write_text(json.dumps({"workdir": str(workdir), "hosts": hosts}))
    log = (workdir / "simserver.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, __file__, str(spec)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    sim = SimProcess(proc, workdir)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not (workdir / STATE).exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    "simulator did not start: " + (workdir / "simserver.log").read_text()
                )
            time.sleep(0.05)
        yield sim
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()


if __name__ == "__main__":
    main(sys.argv)
