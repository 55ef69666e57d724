"""Host-key decisions exactly as OpenSSH's (issue 7 item 5).

The same known_hosts cases go through asyncssh, paramiko AND the real
``ssh -o BatchMode=yes -o StrictHostKeyChecking=yes`` client against the
session's real sshd on loopback; the three must agree with each other and
with the expected verdict (the key must match the name and port connected
to, or HostKeyAlias — never the peer IP, never a port-less entry).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest

from fleetscan.errors import HostKeyError
from fleetscan.model import Target
from fleetscan.transports import get_transport
from fleetscan.transports.base import ConnectSettings

from .harness import NO_SUDO_USER, SshdServer, keygen, public_key, require, run

pytestmark = [pytest.mark.sshd, pytest.mark.timeout(300)]


@dataclass(frozen=True)
class Keys:
    served: str  # "type base64" of the sshd's key
    other: str  # another ed25519 key
    ecdsa: str  # an ECDSA key (the sshd serves only ed25519)
    port: int


@dataclass(frozen=True)
class Case:
    known: Callable[[Keys], str]
    accept: bool
    address: str = "127.0.0.1"
    alias: bool = False  # connect to "aliased" through an ssh_config HostKeyAlias


def _hashed(name: str) -> str:
    return str(paramiko.HostKeys.hash_host(name))


CASES = {
    "ip-entry": Case(lambda k: f"[127.0.0.1]:{k.port} {k.served}", True),
    "name-other-key-ip-served-key": Case(
        lambda k: f"[localhost]:{k.port} {k.other}\n[127.0.0.1]:{k.port} {k.served}",
        False,
        address="localhost",
    ),
    "only-ip-listed-connect-by-name": Case(
        lambda k: f"[127.0.0.1]:{k.port} {k.served}", False, address="localhost"
    ),
    "name-entry-connect-by-name": Case(
        lambda k: f"[localhost]:{k.port} {k.served}", True, address="localhost"
    ),
    "name-case-insensitive": Case(
        lambda k: f"[LocalHost]:{k.port} {k.served}", True, address="localhost"
    ),
    # OpenSSH: "found matching key w/out port", only when [host]:port has nothing
    "port-less-entry-confirms-the-key": Case(lambda k: f"127.0.0.1 {k.served}", True),
    "port-less-entry-by-name": Case(lambda k: f"localhost {k.served}", True, address="localhost"),
    "port-less-other-key": Case(lambda k: f"127.0.0.1 {k.other}", False),
    "port-ful-other-key-port-less-served": Case(
        lambda k: f"[127.0.0.1]:{k.port} {k.other}\n127.0.0.1 {k.served}", False
    ),
    "port-ful-ecdsa-port-less-served": Case(
        lambda k: f"[127.0.0.1]:{k.port} {k.ecdsa}\n127.0.0.1 {k.served}", False
    ),
    "wrong-port": Case(lambda k: f"[127.0.0.1]:{k.port + 1} {k.served}", False),
    "hashed": Case(lambda k: f"{_hashed(f'[127.0.0.1]:{k.port}')} {k.served}", True),
    "wildcard": Case(lambda k: f"[127.0.0.*]:{k.port} {k.served}", True),
    "negated": Case(lambda k: f"[127.0.0.*]:{k.port},![127.0.0.1]:{k.port} {k.served}", False),
    "two-keys-one-right": Case(
        lambda k: f"[127.0.0.1]:{k.port} {k.other}\n[127.0.0.1]:{k.port} {k.served}", True
    ),
    "changed-key": Case(lambda k: f"[127.0.0.1]:{k.port} {k.other}", False),
    "revoked": Case(lambda k: f"[127.0.0.1]:{k.port} {k.served}\n@revoked * {k.served}", False),
    "revoked-other-key": Case(
        lambda k: f"@revoked * {k.other}\n[127.0.0.1]:{k.port} {k.served}", True
    ),
    "cert-authority-only": Case(lambda k: f"@cert-authority [127.0.0.1]:{k.port} {k.other}", False),
    "type-mismatch-ecdsa-known-ed25519-served": Case(
        lambda k: f"[127.0.0.1]:{k.port} {k.ecdsa}", False
    ),
    "hostkeyalias": Case(lambda k: f"fleet-alias {k.served}", True, alias=True),
    "hostkeyalias-key-only-under-name": Case(
        lambda k: f"[127.0.0.1]:{k.port} {k.served}", False, alias=True
    ),
    "hostkeyalias-with-port": Case(
        lambda k: f"[fleet-alias]:{k.port} {k.served}", False, alias=True
    ),
}


def _ssh_accepts(case: Case, kh: Path, config: Path, server: SshdServer) -> bool:
    dest = ["aliased"] if case.alias else ["-p", str(server.port), case.address]
    proc = subprocess.run(
        [
            "ssh",
            *("-F", str(config) if case.alias else "/dev/null"),
            *("-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"),
            *("-o", f"UserKnownHostsFile={kh}", "-o", "GlobalKnownHostsFile=/dev/null"),
            *("-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "ConnectTimeout=10"),
            *("-i", str(server.client_key), "-l", NO_SUDO_USER),
            *dest,
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode == 0:
        return True
    assert "Host key verification failed" in proc.stderr or "REVOKED" in proc.stderr, proc.stderr
    return False


def _fleetscan_accepts(
    transport: str, case: Case, kh: Path, config: Path, server: SshdServer
) -> bool:
    target = Target(
        "h",
        "aliased" if case.alias else case.address,
        port=None if case.alias else server.port,
        user=NO_SUDO_USER,
        key_files=(str(server.client_key),),
    )
    settings = ConnectSettings(
        known_hosts=str(kh),
        ssh_config=(str(config),) if case.alias else (),
        use_agent=False,
        connect_timeout=10.0,
    )

    async def go() -> bool:
        try:
            session = await get_transport(transport).connect(target, settings)
        except HostKeyError:
            return False
        await session.close()
        return True

    return asyncio.run(go())


@pytest.fixture(scope="module")
def keys(sshd_server: SshdServer, tmp_path_factory: pytest.TempPathFactory) -> Keys:
    require(shutil.which("ssh") is not None, "no ssh client (openssh-client)")
    tmp = tmp_path_factory.mktemp("hk")
    other = keygen(tmp / "other")
    ecdsa = tmp / "ecdsa"
    run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(ecdsa)])
    return Keys(
        public_key(sshd_server.host_key), public_key(other), public_key(ecdsa), sshd_server.port
    )


@pytest.mark.parametrize("name", list(CASES))
def test_asyncssh_paramiko_and_openssh_agree(
    name: str, keys: Keys, sshd_server: SshdServer, tmp_path: Path
) -> None:
    case = CASES[name]
    kh = tmp_path / "known_hosts"
    kh.write_text(case.known(keys) + "\n")
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host aliased\n  HostName 127.0.0.1\n  Port {keys.port}\n  HostKeyAlias fleet-alias\n"
    )
    verdicts = {
        "ssh": _ssh_accepts(case, kh, config, sshd_server),
        "asyncssh": _fleetscan_accepts("asyncssh", case, kh, config, sshd_server),
        "paramiko": _fleetscan_accepts("paramiko", case, kh, config, sshd_server),
    }
    assert verdicts == dict.fromkeys(verdicts, case.accept), verdicts
