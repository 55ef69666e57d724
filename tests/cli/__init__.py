"""Tests that run the real ``fleetscan`` command line as a subprocess.

Helpers shared by the CLI tests: how the CLI is started (``python -m
fleetscan``, stdin closed, a clean environment, always with a timeout) and
how its one-line errors are read.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

FLEETSCAN = (sys.executable, "-m", "fleetscan")
CLI_TIMEOUT = 60.0

#: ``fleetscan: error: <file>:<line>: <field>: <message>`` (file, line, field optional)
ERROR_LINE = re.compile(r"^fleetscan: error: (?P<rest>.+)$")

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
