"""Real parts of a distributed scan for tests: a redis-server on loopback and
``fleetscan worker`` processes (real Celery workers, prefork pool).

Every process runs in its own session so a test can kill it (and its pool
children) with one ``killpg``; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .harness import cli_env, free_port

REDIS_CANDIDATES = ("/usr/bin/redis-server", "/usr/sbin/redis-server")


def find_redis() -> str | None:
    for cand in REDIS_CANDIDATES:
        if os.access(cand, os.X_OK):
            return cand
    return shutil.which("redis-server")


def _killpg(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left; reap."""
    if proc.poll() is None:
        _killpg(proc, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    _killpg(proc, signal.SIGKILL)  # pool children too, even when the parent is gone
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout)


@dataclass
class Redis:
    """A redis-server on 127.0.0.1:<port>, password protected, no persistence."""

    proc: subprocess.Popen[bytes]
    port: int
    password: str
    log: Path

    @property
    def url(self) -> str:
        """The URL without the password (the password travels in the environment)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def env(self) -> dict[str, str]:
        env = cli_env()
        env["FLEETSCAN_BROKER_PASSWORD"] = self.password
        env.pop("FLEETSCAN_BROKER_URL", None)
        return env

    def kill(self) -> None:
        _killpg(self.proc, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        stop_process(self.proc)


def start_redis(binary: str, workdir: Path, timeout: float = 15.0) -> Redis:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    password = secrets.token_hex(16)
    conf = workdir / "redis.conf"
    # the password in a config file (0600), not on the command line
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\nprotected-mode yes\nrequirepass {password}\n"
        f'save ""\nappendonly no\ndir {workdir}\ndaemonize no\n'
    )
    conf.chmod(0o600)
    log = workdir / "redis.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    server = Redis(proc, port, password, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited {proc.returncode}: {log.read_text()}")
        if _ping(port, password):
            return server
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"redis-server on port {port} did not answer within {timeout}s")


def _ping(port: int, password: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            data = b""
            while b"PONG" not in data and len(data) < 200:
                chunk = s.recv(100)
                if not chunk:
                    break
                data += chunk
            return b"+PONG" in data
    except OSError:
        return False


@dataclass
class Worker:
    """A ``fleetscan worker`` process for one site (log in ``log``)."""

    site: str
    proc: subprocess.Popen[bytes]
    log: Path
    name: str

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """kill -9 the worker and its pool children: a machine that died."""
        _killpg(self.proc, signal.SIGKILL)
        self.proc.wait(10)


@dataclass
class Cluster:
    """The workers a test started; stopped at teardown whatever happened."""

    redis: Redis
    workdir: Path
    workers: list[Worker] = field(default_factory=list)

    def start_worker(
        self,
        site: str,
        *,
        known_hosts: Path,
        key: Path,
        visibility_timeout: float = 4.0,
        extra: Sequence[str] = (),
        timeout: float = 60.0,
    ) -> Worker:
        n = len(self.workers)
        name = f"fleetscan-{site}-{n}-{secrets.token_hex(3)}@localhost"
        log = self.workdir / f"worker-{site}-{n}.log"
        argv = [
            sys.executable,
            "-m",
            "fleetscan",
            "worker",
            "--site",
            site,
            "--broker",
            self.redis.url,
            "--concurrency",
            "1",
            "--known-hosts",
            str(known_hosts),
            "--ssh-config",
            str(self.empty_ssh_config()),
            "--key",
            str(key),
            "--visibility-timeout",
            str(visibility_timeout),
            "--name",
            name,
            *extra,
        ]
        env = self.redis.env()
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=env,
                cwd=self.workdir,
                start_new_session=True,
            )
        worker = Worker(site, proc, log, name)
        self.workers.append(worker)
        wait_for_log(worker, "ready.", timeout)
        return worker

    def empty_ssh_config(self) -> Path:
        """An empty ssh_config (read no user or system config; /dev/null is not
        a regular file, and fleetscan refuses those)."""
        path = self.workdir / "ssh_config"
        if not path.exists():
            path.write_text("")
        return path

    def stop(self) -> None:
        # kill -9 the process groups: nothing of a test's workers needs a warm
        # shutdown, and one whose broker is gone would wait for it
        for w in self.workers:
            w.kill()


def wait_for_log(worker: Worker, text: str, timeout: float, count: int = 1) -> str:
    """Wait until ``text`` appears ``count`` times in the worker's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = worker.log_text()
        if got.count(text) >= count:
            return got
        if worker.proc.poll() is not None:
            raise RuntimeError(f"worker exited {worker.proc.returncode}:\n{got[-3000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"worker log has no {text!r} after {timeout}s:\n{worker.log_text()[-3000:]}")
