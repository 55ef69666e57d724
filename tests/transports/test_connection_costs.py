"""Issue 12: what each connection costs the client, without changing what it
does. The inventory's key file is read and parsed once per version (not by
every connection), and the cipher asked for first is AES-GCM unless an
ssh_config names ``Ciphers`` — checked against in-process asyncssh servers
that log the negotiated cipher and the keys they are offered."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncssh
import pytest

from fleetscan.errors import AuthFailedError, TransportError
from fleetscan.model import Target
from fleetscan.transports import asyncssh_transport
from fleetscan.transports.asyncssh_transport import PREFERRED_CIPHERS, loaded_keys
from fleetscan.transports.base import ConnectSettings
from tests.transports.trustsrv import Host, Servers, connect_and_run, servers


@pytest.fixture
def srv() -> Servers:
    with servers() as s:
        yield s  # type: ignore[misc]


def _settings(known: Path, config: Path | None = None) -> ConnectSettings:
    return ConnectSettings(
        known_hosts=str(known),
        ssh_config=(str(config),) if config else (),
        use_agent=False,
        connect_timeout=8.0,
    )


def _write_key(path: Path, key: asyncssh.SSHKey, passphrase: str | None = None) -> None:
    key.write_private_key(str(path), passphrase=passphrase)
    path.chmod(0o600)


def test_aes_gcm_is_negotiated_unless_ssh_config_names_ciphers(
    tmp_path: Path, srv: Servers
) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    _write_key(tmp_path / "id", key)
    host = srv.start(Host("t", client_keys=[key]))
    known = tmp_path / "known_hosts"
    known.write_text(host.known_hosts_line() + "\n")
    target = Target("t", "127.0.0.1", port=host.port, user="u", key_files=(str(tmp_path / "id"),))
    assert asyncio.run(connect_and_run("asyncssh", target, _settings(known))) == "hello\n"
    assert host.log.ciphers == [PREFERRED_CIPHERS[0]] == ["aes128-gcm@openssh.com"]
    # the operator's ssh_config decides when it names Ciphers (any case, any block, k=v)
    for line in (
        "Host *\n  Ciphers chacha20-poly1305@openssh.com\n",
        "Match user u\n  ciphers=chacha20-poly1305@openssh.com\n",
    ):
        config = tmp_path / "ssh_config"
        config.write_text(line)
        out = asyncio.run(connect_and_run("asyncssh", target, _settings(known, config)))
        assert out == "hello\n"
        assert host.log.ciphers[-1] == "chacha20-poly1305@openssh.com"
    # a config without Ciphers keeps the fleetscan preference
    config.write_text("Host *\n  ServerAliveInterval 10\n")
    asyncio.run(connect_and_run("asyncssh", target, _settings(known, config)))
    assert host.log.ciphers[-1] == "aes128-gcm@openssh.com"


def test_a_server_without_aes_gcm_still_negotiates(tmp_path: Path) -> None:
    # the list keeps every default cipher: a chacha-only server is reached
    async def go() -> str:
        server_key = asyncssh.generate_private_key("ssh-ed25519")
        client = asyncssh.generate_private_key("ssh-ed25519")
        _write_key(tmp_path / "id", client)
        seen: list[str] = []

        class Srv(asyncssh.SSHServer):
            def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
                self.conn = conn

            def begin_auth(self, username: str) -> bool:
                seen.append(str(self.conn.get_extra_info("recv_cipher")))
                return True

            def public_key_auth_supported(self) -> bool:
                return True

            def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
                return key.public_data == client.public_data

        async def handle(process: asyncssh.SSHServerProcess[str]) -> None:
            process.stdout.write("hi\n")
            process.exit(0)

        acceptor = await asyncssh.create_server(
            Srv,
            "127.0.0.1",
            0,
            server_host_keys=[server_key],
            process_factory=handle,
            encryption_algs=["chacha20-poly1305@openssh.com"],
        )
        port = acceptor.sockets[0].getsockname()[1]
        line = f"[127.0.0.1]:{port} {server_key.export_public_key().decode().strip()}\n"
        (tmp_path / "known_hosts").write_text(line)
        try:
            target = Target(
                "t", "127.0.0.1", port=port, user="u", key_files=(str(tmp_path / "id"),)
            )
            out = await connect_and_run("asyncssh", target, _settings(tmp_path / "known_hosts"))
        finally:
            acceptor.close()
        assert seen == ["chacha20-poly1305@openssh.com"]
        return out

    assert asyncio.run(go()) == "hi\n"


def test_a_key_file_is_read_once_per_version_and_an_edit_is_seen(
    tmp_path: Path, srv: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = asyncssh.generate_private_key("ssh-ed25519")
    second = asyncssh.generate_private_key("ssh-ed25519")
    path = tmp_path / "id"
    _write_key(path, first)
    reads: list[object] = []
    real = asyncssh.load_keypairs

    def counting(*args: object, **kw: object) -> object:
        reads.append(args[0])
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncssh_transport.asyncssh, "load_keypairs", counting)
    hosts = [srv.start(Host(f"h{i}", client_keys=[first, second])) for i in range(3)]
    known = tmp_path / "known_hosts"
    known.write_text("".join(h.known_hosts_line() + "\n" for h in hosts))

    def scan_all() -> list[str]:
        return [
            asyncio.run(
                connect_and_run(
                    "asyncssh",
                    Target(h.name, "127.0.0.1", port=h.port, user="u", key_files=(str(path),)),
                    _settings(known),
                )
            )
            for h in hosts
        ]

    assert scan_all() == ["hello\n"] * 3
    assert len(reads) == 1  # three connections, one read of the file
    # the operator rotates the key: the next connection uses the new one
    _write_key(path, second)
    os.utime(path, ns=(1, 1))  # a different version even within the mtime resolution
    hosts[0].client_keys[:] = [second]
    assert scan_all()[0] == "hello\n"
    assert len(reads) == 2
    assert [k.public_data for k in loaded_keys((str(path),), None) or []] == [second.public_data]


def test_keys_that_do_not_load_fail_each_connection_as_before(tmp_path: Path, srv: Servers) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    host = srv.start(Host("t", client_keys=[key]))
    known = tmp_path / "known_hosts"
    known.write_text(host.known_hosts_line() + "\n")
    # a missing file and a garbage file: the paths go to asyncssh unchanged
    missing, garbage = str(tmp_path / "nope"), tmp_path / "garbage"
    garbage.write_text("not a key\n")
    assert loaded_keys((missing,), None) == [missing]
    assert loaded_keys((str(garbage),), None) == [str(garbage)]
    for bad in (missing, str(garbage)):
        target = Target("t", "127.0.0.1", port=host.port, user="u", key_files=(bad,))
        with pytest.raises((TransportError, AuthFailedError)) as err:
            asyncio.run(connect_and_run("asyncssh", target, _settings(known)))
        assert "Traceback" not in str(err.value)
    assert host.log.commands == []
    # an encrypted key: with its passphrase it logs in, without it is skipped
    _write_key(tmp_path / "enc", key, passphrase="s3cret-phrase")
    enc = (str(tmp_path / "enc"),)
    assert [k.public_data for k in loaded_keys(enc, "s3cret-phrase") or []] == [key.public_data]
    assert loaded_keys(enc, None) == []  # ignore_encrypted: no prompt, no key
