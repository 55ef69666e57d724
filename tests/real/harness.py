"""Plain helpers for the real-OpenSSH tests: keys, sshd processes, sockets, the CLI.

Everything here drives real programs (``ssh-keygen``, ``/usr/sbin/sshd``, the
``fleetscan`` CLI) with argument lists — never a shell string built from
values — and bounds every wait with a timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
BASELINE = REPO / "policies" / "baseline.yaml"
SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd")
CLI_TIMEOUT = 60.0
STOP_TIMEOUT = 5.0
NO_SUDO_USER = "fsnosudo"  # a login without sudo
SUDO_USER = "fssudo"  # a login with passwordless sudo
#: a login whose only sudo right is the shipped examples/sudoers.d/fleetscan
#: (through the group it names)
LEAST_USER = "fsleast"
LEAST_GROUP = "fleetscan"
SHIPPED_SUDOERS = Path(__file__).resolve().parents[2] / "examples" / "sudoers.d" / "fleetscan"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Missing prerequisites fail the run in CI (the real tests must run there)
    and skip locally, always with the reason."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"CI=true and the real tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def find_sshd() -> str | None:
    for cand in SSHD_CANDIDATES:
        if os.access(cand, os.X_OK):
            return cand
    return shutil.which("sshd")


def run(argv: Sequence[str], *, timeout: float = 20.0, check: bool = True) -> str:
    """Run a setup command; on failure raise with its stderr (not a bare exit code)."""
    proc = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip() or proc.stdout}"
        )
    return proc.stdout


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def ipv6_loopback_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def keygen(path: Path, comment: str = "fleetscan-test") -> Path:
    """A fresh ed25519 key pair at ``path`` / ``path.pub``; returns ``path``."""
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    path.chmod(0o600)
    return path


def public_key(path: Path) -> str:
    """``type base64`` of a key pair's public half (comment dropped)."""
    kind, blob = Path(f"{path}.pub").read_text().split()[:2]
    return f"{kind} {blob}"


def known_hosts_entry(address: str, port: int, host_key: Path) -> str:
    host = address if port == 22 else f"[{address}]:{port}"
    return f"{host} {public_key(host_key)}\n"


def sshd_config(*, port: int, listen: str, host_key: Path, pid_file: Path, keys_dir: Path) -> str:
    """An sshd_config for tests: keys only, no PAM, verbose log on stderr.

    ``AuthorizedKeysFile`` points at ``keys_dir/<user>`` for every user, so no
    home directory is touched; ``StrictModes no`` because those files live in
    a temporary directory.
    """
    return (
        f"Port {port}\n"
        f"ListenAddress {listen}\n"
        f"HostKey {host_key}\n"
        f"PidFile {pid_file}\n"
        f"AuthorizedKeysFile {keys_dir}/%u\n"
        "StrictModes no\n"
        "UsePAM no\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
        "UseDNS no\n"
        "PrintMotd no\n"
        "PrintLastLog no\n"
        "LogLevel VERBOSE\n"
        # no Subsystem line: no sftp; fleetscan needs exec channels only
    )


@dataclass
class Sshd:
    """A running sshd (``-D -e``: foreground, log to stderr → ``log``)."""

    proc: subprocess.Popen[bytes]
    address: str
    port: int
    log: Path

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)


def ensure_sshd_runtime() -> None:
    """What sshd needs before ``sshd -t`` accepts a config on a fresh Debian
    machine (no sshd ever started there): the privilege separation directory."""
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)


def validate_sshd_config(sshd: str, config: Path, prefix: Sequence[str] = ()) -> None:
    ensure_sshd_runtime()
    proc = subprocess.run(
        [*prefix, sshd, "-t", "-f", str(config)],
        capture_output=True,
        text=True,
        timeout=20,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"sshd -t -f {config} rejected the config (exit {proc.returncode}):\n"
            f"{proc.stderr.strip()}\n--- config ---\n{config.read_text()}"
        )


def start_sshd(
    argv: Sequence[str], *, address: str, port: int, log: Path, timeout: float = 15.0
) -> Sshd:
    """Start ``argv`` (an sshd -D -e command, possibly wrapped by ``ip netns exec``)
    and wait until ``address:port`` answers with an SSH banner."""
    ensure_sshd_runtime()
    with log.open("wb") as out:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    server = Sshd(proc, address, port, log)
    try:
        wait_for_banner(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def wait_for_banner(server: Sshd, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"sshd exited {server.proc.returncode} before answering:\n{server.log_text()}"
            )
        try:
            with socket.create_connection((server.address, server.port), timeout=2) as s:
                s.settimeout(2)
                banner = s.recv(256)
            if banner.startswith(b"SSH-2.0-"):
                return
            last = f"unexpected banner {banner[:60]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.05)
    raise RuntimeError(
        f"sshd on {server.address}:{server.port} gave no banner within {timeout}s "
        f"({last}):\n{server.log_text()}"
    )


# --- inventories ----------------------------------------------------------------------


def write_ini_inventory(path: Path, hosts: Mapping[str, Mapping[str, object]]) -> Path:
    """An Ansible INI inventory: one ``[targets]`` group, one line per host."""
    lines = ["# written by tests/real", "[targets]"]
    for name, hostvars in hosts.items():
        pairs = " ".join(f"{k}={_ini_value(v)}" for k, v in hostvars.items())
        lines.append(f"{name} {pairs}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _ini_value(value: object) -> str:
    text = "true" if value is True else "false" if value is False else str(value)
    if any(ch.isspace() for ch in text) or "'" in text or '"' in text:
        raise ValueError(f"test inventory value needs quoting: {text!r}")
    return text


# --- sockets the tests open themselves --------------------------------------------------


@dataclass(frozen=True)
class Opened:
    """A socket a test opened: what the report must show for it."""

    proto: str  # tcp | udp
    family: int  # 4 | 6
    address: str
    port: int


@dataclass
class OpenSockets:
    """Sockets held open by the test process for the duration of a test."""

    socks: list[socket.socket] = field(default_factory=list)
    opened: list[Opened] = field(default_factory=list)

    def tcp(self, address: str, port: int) -> Opened:
        return self._open(socket.SOCK_STREAM, address, port)

    def udp(self, address: str, port: int) -> Opened:
        return self._open(socket.SOCK_DGRAM, address, port)

    def _open(self, kind: int, address: str, port: int) -> Opened:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        s = socket.socket(family, kind)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((address, port))
            if kind == socket.SOCK_STREAM:
                s.listen(8)
        except OSError:
            s.close()
            raise
        self.socks.append(s)
        item = Opened(
            "tcp" if kind == socket.SOCK_STREAM else "udp",
            6 if family == socket.AF_INET6 else 4,
            address,
            int(s.getsockname()[1]),
        )
        self.opened.append(item)
        return item

    def close(self) -> None:
        for s in self.socks:
            s.close()
        self.socks.clear()


# --- the CLI and its report -------------------------------------------------------------


def cli_env() -> dict[str, str]:
    """The environment for the CLI: no ssh-agent, so only the inventory's key counts."""
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    env["NO_COLOR"] = "1"
    return env


def run_cli(
    args: Sequence[str], *, cwd: Path, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI (``python -m fleetscan``) with stdin closed: any prompt
    would read EOF instead of hanging the test."""
    return subprocess.run(
        [sys.executable, "-m", "fleetscan", *args],
        cwd=cwd,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def scan_args(inventory: Path, outdir: Path, known_hosts: Path, *policies: Path) -> list[str]:
    args = ["scan", "-i", str(inventory)]
    for p in policies or (BASELINE,):
        args += ["-p", str(p)]
    args += [
        "-o",
        str(outdir),
        "--format",
        "json",
        "--known-hosts",
        str(known_hosts),
        "--ssh-config",
        "/dev/null",
        "--connect-timeout",
        "10",
        "--host-timeout",
        "30",
    ]
    return args


def load_report(outdir: Path, proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    path = outdir / "report.json"
    assert path.is_file(), (
        f"no report.json (exit {proc.returncode})\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    assert doc["schema"] == "fleetscan.report", doc.get("schema")
    return doc


def host_entry(report: Mapping[str, Any], name: str) -> dict[str, Any]:
    found = [h for h in report["hosts"] if h["name"] == name]
    assert len(found) == 1, f"host {name!r} appears {len(found)} times in report.json"
    host: dict[str, Any] = found[0]
    return host


def listeners_for(host: Mapping[str, Any], want: Opened) -> list[dict[str, Any]]:
    return [
        x
        for x in host["listeners"]
        if (x["proto"], x["family"], x["address"], x["port"])
        == (want.proto, want.family, want.address, want.port)
    ]


def owners(listener: Mapping[str, Any]) -> set[tuple[str, int | None]]:
    return {(p["name"], p["pid"]) for p in listener["processes"]}


def forbidden_rule_for(port: int, proto: str = "tcp", policy: Path = BASELINE) -> str:
    """The id of the baseline's forbidden rule covering ``port`` (read from the
    policy file, so a rename there does not silently break the test)."""
    import yaml

    doc = yaml.safe_load(policy.read_text())
    for rule in doc.get("forbidden", []):
        if rule.get("proto", proto) not in (proto, "any"):
            continue
        for item in rule.get("ports", []):
            lo, _, hi = str(item).partition("-")
            if int(lo) <= port <= int(hi or lo):
                return str(rule["id"])
    raise AssertionError(f"{policy} has no forbidden rule for {proto}/{port}")


def comm_of(pid: int | str = "self") -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


@dataclass(frozen=True)
class KeyMaterial:
    """A world-readable temp dir holding the client key and one authorized_keys
    file per user (sshd reads those as the target user, so the path must be
    traversable by the test users)."""

    tmp: Path
    client_key: Path
    keys_dir: Path


@dataclass
class SshdServer:
    """The session's real sshd on loopback and the material to reach it."""

    sshd: Sshd
    client_key: Path
    host_key: Path
    known_hosts: Path
    keys_dir: Path
    tmp: Path

    @property
    def address(self) -> str:
        return self.sshd.address

    @property
    def port(self) -> int:
        return self.sshd.port

    def write_inventory(
        self, path: Path, *, user: str, become: bool = False, name: str = "local"
    ) -> Path:
        """An Ansible INI inventory naming this sshd as host ``name``."""
        hostvars: dict[str, object] = {
            "ansible_host": self.address,
            "ansible_port": self.port,
            "ansible_user": user,
            "ansible_ssh_private_key_file": self.client_key,
        }
        if become:
            hostvars["ansible_become"] = True
        return write_ini_inventory(path, {name: hostvars})


@contextlib.contextmanager
def loopback_sshd(
    sshd_binary: str, tmp: Path, *, client_key: Path, keys_dir: Path, extra_config: str = ""
) -> Iterator[SshdServer]:
    """A real sshd on 127.0.0.1:<free port> with its own host key and
    known_hosts under ``tmp`` (``extra_config`` appended to its sshd_config);
    stopped on exit. One that cannot start fails in CI and skips locally."""
    host_key = keygen(tmp / "host_ed25519", "fleetscan-test-host")
    port = free_port()
    config = tmp / "sshd_config"
    config.write_text(
        sshd_config(
            port=port,
            listen="127.0.0.1",
            host_key=host_key,
            pid_file=tmp / "sshd.pid",
            keys_dir=keys_dir,
        )
        + extra_config
    )
    try:
        validate_sshd_config(sshd_binary, config)
        sshd = start_sshd(
            [sshd_binary, "-D", "-e", "-f", str(config)],
            address="127.0.0.1",
            port=port,
            log=tmp / "sshd.log",
        )
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        require(False, f"could not start sshd: {exc}")
        raise
    known_hosts = tmp / "known_hosts"
    known_hosts.write_text(known_hosts_entry("127.0.0.1", port, host_key))
    try:
        yield SshdServer(
            sshd=sshd,
            client_key=client_key,
            host_key=host_key,
            known_hosts=known_hosts,
            keys_dir=keys_dir,
            tmp=tmp,
        )
    finally:
        sshd.stop()
