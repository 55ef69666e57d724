"""Executable (dynamic) inventory scripts — run only when the operator says so.

An inventory script is code: whoever can change it runs commands on the
scanner. fleetscan therefore never runs one by default. With
``--allow-exec-inventory`` an executable file starting with ``#!`` is run as
Ansible runs inventory scripts: ``SCRIPT --list`` (then ``SCRIPT --host H``
for each host when the output has no ``_meta``), directly — no shell, stdin
closed, in its own process group, killed after :data:`TIMEOUT` seconds, its
output capped at :data:`~fleetscan.configfile.MAX_CONFIG_BYTES`. The JSON it
prints is read by :mod:`.ansible_json`.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import time
from pathlib import Path

from fleetscan import configfile
from fleetscan.errors import ConfigError

#: seconds one run of an inventory script may take
TIMEOUT = 60.0
#: most ``--host`` calls for a script without ``_meta`` (one per host)
MAX_HOST_CALLS = 10_000
_STDERR_SHOWN = 300


def is_script(path: Path, head: bytes) -> bool:
    """An executable file that starts with ``#!``."""
    return head.startswith(b"#!") and os.access(path, os.X_OK)


def refuse(path: Path) -> ConfigError:
    return ConfigError(
        "executable inventory script: it is code, and fleetscan runs it only with "
        "--allow-exec-inventory (or export it first: ansible-inventory -i SCRIPT --list > "
        "inventory.json)",
        file=str(path),
        field="--inventory",
    )


def run_script(path: Path) -> bytes:
    """The ``--list`` output of the script, as JSON text with ``_meta`` filled in."""
    out = run(path, "--list")
    try:
        data = json.loads(out)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"inventory script printed invalid JSON: {exc}", file=str(path)) from None
    if not isinstance(data, dict) or "_meta" in data:
        return out
    hosts: dict[str, None] = {}
    for body in data.values():
        names = body if isinstance(body, list) else (body or {}).get("hosts", [])
        hosts.update(dict.fromkeys(str(h) for h in names if isinstance(h, str | int)))
    if len(hosts) > MAX_HOST_CALLS:
        raise ConfigError(
            f"inventory script lists {len(hosts)} hosts without _meta; more than "
            f"{MAX_HOST_CALLS} '--host' calls",
            file=str(path),
        )
    hostvars = {}
    for host in hosts:
        try:
            hostvars[host] = json.loads(run(path, "--host", host) or b"{}")
        except (ValueError, RecursionError) as exc:
            raise ConfigError(
                f"inventory script printed invalid JSON for --host: {exc}", file=str(path)
            ) from None
    data["_meta"] = {"hostvars": hostvars}
    return json.dumps(data).encode()


def run(path: Path, *args: str) -> bytes:
    """Run the script without a shell; bounded in time and output."""
    name = str(path)
    limit = configfile.MAX_CONFIG_BYTES
    try:
        proc = subprocess.Popen(
            [str(path.resolve()), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            shell=False,
        )
    except OSError as exc:
        raise ConfigError(f"cannot run inventory script: {exc.strerror}", file=name) from None
    out = bytearray()
    err = bytearray()
    deadline = time.monotonic() + TIMEOUT
    problem = None
    assert proc.stdout is not None and proc.stderr is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        while sel.get_map() and problem is None:
            left = deadline - time.monotonic()
            if left <= 0:
                problem = f"inventory script did not finish within {TIMEOUT:g} s"
                break
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf: bytearray = key.data
                buf += chunk
                if len(out) > limit:
                    problem = f"inventory script printed more than {limit} bytes"
                del err[:-4096]
    if problem is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    try:
        status = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        status = proc.wait()
        problem = problem or f"inventory script did not finish within {TIMEOUT:g} s"
    proc.stdout.close()
    proc.stderr.close()
    if problem is None and status != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()
        problem = f"inventory script exited with status {status}" + (
            f": {tail[-1][:_STDERR_SHOWN]}" if tail else ""
        )
    if problem is not None:
        raise ConfigError(problem, file=name)
    return bytes(out)
