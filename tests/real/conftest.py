"""Fixtures for the real tests: a real OpenSSH sshd on loopback, test users
with and without sudo, and the key material both the loopback sshd and the
network-namespace fleet use.

Prerequisites (root, /usr/sbin/sshd) missing: skip locally, FAIL when
``CI=true`` — in CI these tests are the proof that fleetscan works for real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import (
    LEAST_GROUP,
    LEAST_USER,
    NO_SUDO_USER,
    SHIPPED_SUDOERS,
    SUDO_USER,
    KeyMaterial,
    SshdServer,
    find_sshd,
    keygen,
    loopback_sshd,
    public_key,
    require,
    run,
)

SUDOERS_DIR = Path("/etc/sudoers.d")
# one drop-in per pytest process: two test sessions at once (a developer and a
# helper, say) must not remove each other's sudo rule at teardown
SUDOERS_PREFIX = "fleetscan-test-"


def _is_root() -> bool:
    return os.geteuid() == 0


@pytest.fixture(scope="session")
def ssh_keys() -> Iterator[KeyMaterial]:
    # not tmp_path_factory: its directories are 0700, and sshd opens
    # AuthorizedKeysFile with the target user's privileges
    tmp = Path(tempfile.mkdtemp(prefix="fleetscan-real-"))
    try:
        tmp.chmod(0o755)
        client_key = keygen(tmp / "client_ed25519", "fleetscan-test-client")
        keys_dir = tmp / "authorized_keys"
        keys_dir.mkdir(mode=0o755)
        keys_dir.chmod(0o755)
        for user in ("root", NO_SUDO_USER, SUDO_USER, LEAST_USER):
            f = keys_dir / user
            f.write_text(public_key(client_key) + "\n")
            f.chmod(0o644)
        yield KeyMaterial(tmp, client_key, keys_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _ensure_user(name: str) -> None:
    """Create ``name`` once (idempotent) with /bin/sh and a '*' password field:
    sshd without PAM refuses accounts whose password field is locked ('!')."""
    exists = (
        subprocess.run(
            ["getent", "passwd", name], capture_output=True, timeout=10, check=False
        ).returncode
        == 0
    )
    if not exists:
        created = subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/sh", "--password", "*", name],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        if created.returncode == 0:
            return
        # 9: created meanwhile by a concurrent test session; fall through
        if created.returncode != 9:
            raise RuntimeError(f"useradd {name} exited {created.returncode}: {created.stderr}")
    run(["usermod", "--shell", "/bin/sh", "--password", "*", name])


def _remove_stale_sudoers() -> None:
    """Drop-ins left by sessions that were killed before their teardown."""
    for f in SUDOERS_DIR.glob(SUDOERS_PREFIX + "*"):
        pid = f.name.removeprefix(SUDOERS_PREFIX)
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            f.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def test_users() -> Iterator[tuple[str, str]]:
    """(no-sudo user, passwordless-sudo user), and LEAST_USER whose only sudo
    right is the shipped examples/sudoers.d/fleetscan, installed verbatim in
    the same drop-in (removed at the end)."""
    require(_is_root(), "creating test users and a sudoers drop-in needs root")
    for tool in ("useradd", "usermod", "groupadd", "visudo", "sudo"):
        require(shutil.which(tool) is not None, f"{tool} is not installed")
    try:
        _ensure_user(NO_SUDO_USER)
        _ensure_user(SUDO_USER)
        _ensure_user(LEAST_USER)
        run(["groupadd", "-f", LEAST_GROUP])
        run(["usermod", "-aG", LEAST_GROUP, LEAST_USER])
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        require(False, f"could not create the test users: {exc}")
        raise
    _remove_stale_sudoers()
    # sudo skips drop-ins whose name holds a '.', so the pid is joined with '-'
    sudoers = SUDOERS_DIR / f"{SUDOERS_PREFIX}{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="fleetscan-sudoers-") as d:
        draft = Path(d) / sudoers.name
        draft.write_text(f"{SUDO_USER} ALL=(ALL) NOPASSWD: ALL\n" + SHIPPED_SUDOERS.read_text())
        draft.chmod(0o440)
        run(["visudo", "-cf", str(draft)])
        tmp_target = SUDOERS_DIR / f".{sudoers.name}.tmp"  # ignored by sudo (has a '.')
        shutil.copyfile(draft, tmp_target)
        tmp_target.chmod(0o440)
        tmp_target.rename(sudoers)  # atomic: sudo never reads a half-written rule
    try:
        yield NO_SUDO_USER, SUDO_USER
    finally:
        sudoers.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def sshd_binary() -> str:
    sshd = find_sshd()
    require(
        sshd is not None,
        "no sshd (install openssh-server: scripts/test-deps.sh does it)",
    )
    assert sshd is not None
    return sshd


@pytest.fixture(scope="session")
def sshd_server(
    sshd_binary: str, ssh_keys: KeyMaterial, test_users: tuple[str, str]
) -> Iterator[SshdServer]:
    """A real sshd on 127.0.0.1:<free port>, started once for the session."""
    tmp = ssh_keys.tmp / "loopback-sshd"
    tmp.mkdir()
    with loopback_sshd(
        sshd_binary, tmp, client_key=ssh_keys.client_key, keys_dir=ssh_keys.keys_dir
    ) as server:
        yield server
