"""Issue 7, transport half: the inventory is data, not authority.

Each test plays the attack against real SSH servers (in-process asyncssh
servers that log what the client offers) through BOTH transports and checks
what leaves the scanner: no local command run from ssh_config, no password to
a jump host, no agent or X11 forwarded, no hop of a ProxyJump chain opened
with weaker host-key rules, and host-key outcomes that name what happened.
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
from pathlib import Path

import asyncssh
import pytest

from fleetscan.errors import ConfigError, HostKeyError, HostKeyUnknown, TransportError
from fleetscan.model import Target
from fleetscan.transports.base import ConnectSettings
from tests.transports.trustsrv import Host, Servers, client_key, connect_and_run, servers

TRANSPORTS = ["asyncssh", "paramiko"]
PASSWORD = "Tgt-Passw0rd-xQ7"


@pytest.fixture
def srv() -> Servers:
    with servers() as s:
        yield s  # type: ignore[misc]


def settings(known: Path, config: Path | None = None, **kw: object) -> ConnectSettings:
    return ConnectSettings(
        known_hosts=str(known),
        ssh_config=(str(config),) if config else (),
        use_agent=bool(kw.pop("use_agent", False)),
        connect_timeout=float(kw.pop("connect_timeout", 8.0)),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------- item 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_match_exec_in_ssh_config_is_never_evaluated(
    tmp_path: Path, srv: Servers, transport: str
) -> None:
    """paramiko (and asyncssh) would run `Match exec` through a local shell
    with %h expanded; fleetscan never evaluates it, in the file or in an Include."""
    key_path, key = client_key(tmp_path)
    host = srv.start(Host("t", client_keys=[key]))
    known = tmp_path / "known_hosts"
    known.write_text(host.known_hosts_line() + "\n")
    pwned = tmp_path / "pwned"
    included = tmp_path / "included.conf"
    included.write_text(f'Match exec "touch {pwned}-included-%h"\n  User nobody-included\n')
    config = tmp_path / "ssh_config"
    config.write_text(
        f'Match exec "touch {pwned}-%h"\n  User nobody\n'
        f'Match !exec "touch {pwned}-negated" host *\n  User nobody-negated\n'
        f"Host *\n  Include {included}\n"
    )
    target = Target("t", "127.0.0.1", port=host.port, user="tester", key_files=(str(key_path),))
    out = asyncio.run(connect_and_run(transport, target, settings(known, config)))
    assert out == "hello\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("pwned")) == []
    # and no Match exec block applied (the user came from the target)
    assert host.log.usernames == ["tester"]
    # the attack of the issue: a host name that is a shell payload (the
    # inventory refuses it; through the Python API it only fails to resolve)
    hostile = Target("h", f"127.0.0.1;touch${{IFS}}{pwned}-name;true", port=host.port)
    with pytest.raises(TransportError):
        asyncio.run(connect_and_run(transport, hostile, settings(known, config)))
    # the control: the same command in a shell does create the file
    subprocess.run(["sh", "-c", f"touch {pwned}-control"], check=True, timeout=10)
    assert (tmp_path / "pwned-control").exists()


# --------------------------------------------------------------------------- item 3


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_target_password_is_never_offered_to_the_jump_host(
    tmp_path: Path, srv: Servers, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bastion logs in with its own key (ssh_config IdentityFile) and logs
    every password offered to it; the target takes the password only."""
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/id_* of the machine
    key_path, key = client_key(tmp_path)
    bastion = srv.start(Host("bastion", client_keys=[key], jump=True))
    target_host = srv.start(Host("target", password=PASSWORD))
    known = tmp_path / "known_hosts"
    known.write_text(bastion.known_hosts_line() + "\n" + target_host.known_hosts_line() + "\n")
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host bastion\n  HostName 127.0.0.1\n  Port {bastion.port}\n  IdentityFile {key_path}\n"
    )
    monkeypatch.setenv("FLEETSCAN_TARGET_PW", PASSWORD)
    target = Target(
        "target",
        "127.0.0.1",
        port=target_host.port,
        user="tester",
        jump_host="jumper@bastion",
        password_env="FLEETSCAN_TARGET_PW",
    )
    out = asyncio.run(connect_and_run(transport, target, settings(known, config)))
    assert out == "hello\n"
    assert target_host.log.passwords == [PASSWORD]  # the target got it: it was used
    assert bastion.log.passwords == []  # the jump host never saw it
    assert bastion.log.usernames == ["jumper"]


# --------------------------------------------------------------------------- item 4


@pytest.fixture
def real_agent(tmp_path: Path) -> tuple[str, asyncssh.SSHKey]:
    """A real ssh-agent holding one key; SSH_AUTH_SOCK points at it."""
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if sock.exists():
                break
            subprocess.run(["sleep", "0.05"], check=True)
        key = asyncssh.generate_private_key("ssh-ed25519")
        path = tmp_path / "agent_key"
        key.write_private_key(str(path))
        path.chmod(0o600)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", str(path)], env=env, check=True, capture_output=True, timeout=10)
        path.unlink()  # only the agent holds it now
        yield str(sock), key  # type: ignore[misc]
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_nothing_is_forwarded_and_no_local_or_remote_command_runs(
    tmp_path: Path,
    srv: Servers,
    transport: str,
    real_agent: tuple[str, asyncssh.SSHKey],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`ForwardAgent yes` (and X11, port forwards, Local/RemoteCommand) in
    ssh_config: the operator's agent logs in (it is allowed) but is never
    forwarded to the host, and no command but fleetscan's runs."""
    sock, agent_key = real_agent
    monkeypatch.setenv("SSH_AUTH_SOCK", sock)
    host = srv.start(Host("t", client_keys=[agent_key]))
    known = tmp_path / "known_hosts"
    known.write_text(host.known_hosts_line() + "\n")
    pwned = tmp_path / "pwned"
    config = tmp_path / "ssh_config"
    config.write_text(
        "Host *\n  ForwardAgent yes\n  ForwardX11 yes\n  ForwardX11Trusted yes\n"
        f"  PermitLocalCommand yes\n  LocalCommand touch {pwned}-local\n"
        f"  RemoteCommand touch {pwned}-remote\n  RequestTTY yes\n"
        "  LocalForward 127.0.0.1:0 127.0.0.1:22\n  DynamicForward 127.0.0.1:0\n"
        "  SendEnv *\n"
    )
    target = Target("t", "127.0.0.1", port=host.port, user="tester")
    out = asyncio.run(
        connect_and_run(transport, target, settings(known, config, use_agent=True), "scan-cmd")
    )
    assert out == "hello\n"  # logged in with the agent's key
    assert host.log.commands == ["scan-cmd"]
    assert host.log.agent_forwarded == [False]
    assert host.log.x11_requested == [False]
    assert not list(tmp_path.glob("pwned*"))


# --------------------------------------------------------------------------- item 6


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("outer_known", [True, False], ids=["outer-known", "outer-impostor"])
def test_nested_proxyjump_opens_every_hop_with_the_fleet_host_keys(
    tmp_path: Path, srv: Servers, transport: str, outer_known: bool
) -> None:
    """target → ProxyJump b2 (ssh_config) → b2's own ProxyJump b1 (ssh_config).
    Every hop is opened, in order, with the fleet's known_hosts: an outer
    bastion that is not in it stops the chain with a host-key status."""
    key_path, key = client_key(tmp_path)
    b1 = srv.start(Host("b1", client_keys=[key], jump=True))
    b2 = srv.start(Host("b2", client_keys=[key], jump=True))
    inner = srv.start(Host("inner", client_keys=[key]))
    known = tmp_path / "known_hosts"
    lines = [b2.known_hosts_line(), inner.known_hosts_line()]
    if outer_known:
        lines.append(b1.known_hosts_line())
    known.write_text("\n".join(lines) + "\n")
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host inner\n  HostName 127.0.0.1\n  Port {inner.port}\n  ProxyJump b2\n"
        f"Host b2\n  HostName 127.0.0.1\n  Port {b2.port}\n  ProxyJump b1\n"
        f"Host b1\n  HostName 127.0.0.1\n  Port {b1.port}\n"
        "  UserKnownHostsFile none\n  StrictHostKeyChecking no\n"
    )
    target = Target("inner", "inner", user="tester", key_files=(str(key_path),))
    run = connect_and_run(transport, target, settings(known, config))
    if outer_known:
        assert asyncio.run(run) == "hello\n"
        assert b1.log.tunnels == [("127.0.0.1", b2.port)]
        assert b2.log.tunnels == [("127.0.0.1", inner.port)]
        return
    with pytest.raises(HostKeyUnknown) as err:
        asyncio.run(run)
    assert "jump host" in str(err.value) and f"[127.0.0.1]:{b1.port}" in str(err.value)
    assert b1.log.usernames == [] and b2.log.usernames == [] and inner.log.usernames == []


def test_a_proxyjump_loop_is_refused_clearly(tmp_path: Path) -> None:
    from fleetscan.transports.sshconfig import full_chain

    loop = {"a": ["b"], "b": ["a"]}
    with pytest.raises(TransportError, match="longer than"):
        full_chain(["a"], lambda spec: loop.get(spec, []))


# --------------------------------------------------------------------------- item 12


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan, 0.0, -1.0])
def test_connect_timeout_must_be_finite_and_positive(bad: float) -> None:
    with pytest.raises(ConfigError, match="finite, positive"):
        ConnectSettings(connect_timeout=bad)


# --------------------------------------------------------------------------- items 13, 14


def _connect(transport: str, host: Host, known: Path, key_path: Path) -> str:
    target = Target("t", "127.0.0.1", port=host.port, user="tester", key_files=(str(key_path),))
    return asyncio.run(connect_and_run(transport, target, settings(known)))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_revoked_key_is_refused_and_markers_elsewhere_do_no_harm(
    tmp_path: Path, srv: Servers, transport: str
) -> None:
    key_path, key = client_key(tmp_path)
    host = srv.start(Host("t", client_keys=[key]))
    ca = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    known = tmp_path / "known_hosts"
    # markers for other hosts anywhere in the file: the host is still checked normally
    known.write_text(
        f"@cert-authority *.corp.example {ca}\n@revoked * {other}\n{host.known_hosts_line()}\n"
    )
    assert _connect(transport, host, known, key_path) == "hello\n"
    pub = host.host_key.export_public_key().decode().strip()  # type: ignore[union-attr]
    known.write_text(f"{host.known_hosts_line()}\n@revoked * {pub}\n")
    with pytest.raises(HostKeyError, match="@revoked") as err:
        _connect(transport, host, known, key_path)
    assert not isinstance(err.value, HostKeyUnknown)
    assert host.log.usernames == ["tester"]  # only the first, trusted connection logged in


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_host_known_only_through_a_cert_authority_shows_a_plain_key(
    tmp_path: Path, srv: Servers, transport: str
) -> None:
    key_path, key = client_key(tmp_path)
    host = srv.start(Host("t", client_keys=[key]))
    ca = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    known = tmp_path / "known_hosts"
    known.write_text(f"@cert-authority [127.0.0.1]:{host.port} {ca}\n")
    with pytest.raises(HostKeyUnknown, match="cert-authority"):
        _connect(transport, host, known, key_path)
    assert host.log.usernames == []


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_key_type_mismatch_is_a_host_key_outcome_naming_both_types(
    tmp_path: Path, srv: Servers, transport: str
) -> None:
    """known_hosts holds only an ECDSA key for the host; it serves only ed25519."""
    key_path, key = client_key(tmp_path)
    host = srv.start(Host("t", client_keys=[key], key_type="ssh-ed25519"))
    ecdsa = asyncssh.generate_private_key("ecdsa-sha2-nistp256")
    pub = ecdsa.export_public_key().decode().strip()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{host.port} {pub}\n")
    with pytest.raises(HostKeyError) as err:
        _connect(transport, host, known, key_path)
    text = str(err.value)
    assert not isinstance(err.value, HostKeyUnknown)
    assert "ssh-ed25519" in text and "ecdsa-sha2-nistp256" in text, text
    assert "reset" not in text.lower()
    assert host.log.usernames == []


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_host_certificate_signed_by_a_trusted_ca(
    tmp_path: Path, srv: Servers, transport: str
) -> None:
    """``@cert-authority`` as OpenSSH: asyncssh verifies the host certificate;
    paramiko cannot, and refuses the host with a message saying why."""
    key_path, key = client_key(tmp_path)
    ca = asyncssh.generate_private_key("ssh-ed25519")
    host = srv.start(Host("t", client_keys=[key], host_ca=ca))
    known = tmp_path / "known_hosts"
    ca_pub = ca.export_public_key().decode().strip()
    known.write_text(f"@cert-authority [127.0.0.1]:{host.port} {ca_pub}\n")
    if transport == "asyncssh":
        assert _connect(transport, host, known, key_path) == "hello\n"
        # a CA trusted for other names only does not vouch for this host
        known.write_text(f"@cert-authority *.corp.example {ca_pub}\n")
        with pytest.raises(HostKeyUnknown):
            _connect(transport, host, known, key_path)
        return
    with pytest.raises(HostKeyUnknown, match="cert-authority"):
        _connect(transport, host, known, key_path)
    assert host.log.usernames == []


# --------------------------------------------------------------------------- hostkeys scan


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_hostkeys_scan_goes_through_the_jump_chain_and_never_logs_in(
    tmp_path: Path, srv: Servers, transport: str
) -> None:
    """Keys are fetched through the bastion (checked against known_hosts as
    always); the target sees no login attempt and runs no command."""
    from fleetscan.keyscan import fetch_all

    key_path, key = client_key(tmp_path)
    bastion = srv.start(Host("bastion", client_keys=[key], jump=True))
    inner = srv.start(Host("inner", client_keys=[key]))
    known = tmp_path / "known_hosts"
    target = Target(
        "inner",
        "127.0.0.1",
        port=inner.port,
        user="tester",
        key_files=(str(key_path),),
        jump_host=f"tester@127.0.0.1:{bastion.port}",
        transport=transport,
    )
    known.write_text(bastion.known_hosts_line() + "\n")
    (result,) = asyncio.run(fetch_all([target], settings(known)))
    assert result.error == "", result.error
    assert result.name == f"[127.0.0.1]:{inner.port}"
    inner_pub = inner.host_key.public_data  # type: ignore[union-attr]
    assert [(k.blob, k.state) for k in result.keys] == [(inner_pub, "new")]
    assert inner.log.usernames == [] and inner.log.commands == []
    assert ("127.0.0.1", inner.port) in bastion.log.tunnels
    # a bastion nobody vouched for stops the fetch: no key is learned through it
    known.write_text("")
    (result,) = asyncio.run(fetch_all([target], settings(known)))
    assert "jump host" in result.error and result.keys == ()
