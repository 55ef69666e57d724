"""Tests that run the real ``fleetscan`` command line as a subprocess.

Helpers shared by the CLI tests: how the CLI is started (``python -m
fleetscan``, stdin closed, a clean environment, always with a timeout) and
how its one-line errors are read.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import yaml

FLEETSCAN = (sys.executable, "-m", "fleetscan")
CLI_TIMEOUT = 60.0

#: environment variables that would change how the CLI prints or authenticates
_SCRUB = ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "TERM", "SSH_AUTH_SOCK", "SSH_AGENT_PID")


def cli_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment: HOME is a test folder (no ~/.ssh config, keys or
    known_hosts of the machine), no ssh-agent, no terminal width."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env["HOME"] = str(home)
    env["PYTHONASYNCIODEBUG"] = "0"
    env.update(extra or {})
    return env


def run_cli(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = CLI_TIMEOUT,
    argv0: Sequence[str] = FLEETSCAN,
) -> subprocess.CompletedProcess[str]:
    """Run ``fleetscan ARGS`` to completion with stdin closed (a prompt would
    fail instead of hanging) and a hard timeout."""
    return subprocess.run(
        [*argv0, *args],
        cwd=cwd,
        env=dict(env) if env is not None else cli_env(cwd),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )


def run_cli_many(
    jobs: Mapping[str, tuple[Sequence[str], Path, Mapping[str, str]]],
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run independent CLI invocations (name → args, cwd, env) a few at a time:
    each start costs most of a second, and table-driven tests have dozens."""
    with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1)) as pool:
        futures = {
            name: pool.submit(run_cli, args, cwd=cwd, env=env)
            for name, (args, cwd, env) in jobs.items()
        }
        return {name: f.result() for name, f in futures.items()}


def write_yaml_inventory(path: Path, hosts: Mapping[str, Mapping[str, object]]) -> Path:
    """An Ansible YAML inventory with ``hosts`` directly under ``all``."""
    path.write_text(yaml.safe_dump({"all": {"hosts": {k: dict(v) for k, v in hosts.items()}}}))
    return path


def linux_host(name: str, **extra: object) -> dict[str, object]:
    """A simulator spec for a healthy Linux host with sshd and one web server."""
    spec: dict[str, object] = {
        "name": name,
        "listeners": [
            ["tcp", "0.0.0.0", 22, [["sshd", 733]]],
            ["tcp", "127.0.0.1", 8080, [["gunicorn", 1410]]],
        ],
        "users": {"733": "root", "1410": "www-data"},
    }
    spec.update(extra)
    return spec


#: the (proto, address, port) listeners of :func:`linux_host`
LINUX_HOST_LISTENERS = {("tcp", "0.0.0.0", 22), ("tcp", "127.0.0.1", 8080)}

#: every exec command a collector may send: constants, never built from the inventory
COLLECTOR_COMMANDS = frozenset(
    {"uname -s", "sh -s", "sudo -n sh -s", "netstat -ano", "tasklist /FO CSV /NH"}
)


_NAMED_HOLDER = r"""
import socket, sys
with open("/proc/self/comm", "w") as f:
    f.write(sys.argv[1])
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
print(s.getsockname()[1], flush=True)
sys.stdin.read()
"""


@contextmanager
def named_listener(name: str) -> Iterator[tuple[str, int]]:
    """A real process that renamed itself ``name`` (``/proc/self/comm``, what
    ``ss``, ``netstat`` and ``ps`` show; the kernel keeps 15 bytes), listening
    on 127.0.0.1: yields (the name as the kernel keeps it, port)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _NAMED_HOLDER, name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        comm = Path(f"/proc/{proc.pid}/comm").read_text(encoding="utf-8").rstrip("\n")
        yield comm, port
    finally:
        proc.kill()
        proc.wait()
