"""The paramiko transport against the same simulated hosts as the asyncssh one
(real asyncssh servers on loopback), through the runner: every fault ends in the
same status, host keys are checked as strictly, ssh config and ProxyJump work."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncssh
import paramiko
import pytest

from fleetscan.model import HostScan, Status, Target
from fleetscan.runner import ScanSettings, scan_all
from fleetscan.testing.fleet import SimFleet, sim_fleet
from fleetscan.testing.simhost import known_hosts_line
from fleetscan.transports import get_transport
from fleetscan.transports.base import ConnectSettings
from fleetscan.transports.paramiko_transport import known_hosts_name, parse_jump, resolve_hop
from tests.orchestration.test_host_statuses import assert_good_listeners, by_name, good


def paramiko_settings(fleet: SimFleet, **kw: object) -> ScanSettings:
    return dataclasses.replace(fleet.settings(**kw), transport="paramiko")


def test_registry_returns_the_paramiko_transport() -> None:
    assert get_transport("paramiko").name == "paramiko"


def test_sudo_that_wants_a_password_gives_partial_with_the_reason(tmp_path: Path) -> None:
    async def main() -> HostScan:
        host = good("needs-pw", sudo="password", uid=1000)
        async with sim_fleet(tmp_path, [host], become=["needs-pw"]) as fleet:
            return (await scan_all(fleet.targets, paramiko_settings(fleet)))[0]

    scan = asyncio.run(main())
    assert scan.status is Status.PARTIAL
    assert "sudo -n refused" in scan.message
    assert "a password is required" in scan.message
    assert_good_listeners(scan)


def test_output_flood_is_cut_and_the_host_is_partial(tmp_path: Path) -> None:
    async def main() -> HostScan:
        async with sim_fleet(tmp_path, [good("flood", behaviour="flood")]) as fleet:
            settings = paramiko_settings(fleet, max_output=2 * 1024 * 1024, host_timeout=20.0)
            return (await scan_all(fleet.targets, settings))[0]

    scan = asyncio.run(main())
    assert scan.status is Status.PARTIAL
    assert "size limit" in scan.message
    assert scan.evidence[-1].truncated
    assert scan.evidence[-1].exit_status is None


def test_disconnect_in_the_middle_of_the_output_is_not_compliant(tmp_path: Path) -> None:
    async def main() -> HostScan:
        async with sim_fleet(tmp_path, [good("drops", behaviour="disconnect")]) as fleet:
            return (await scan_all(fleet.targets, paramiko_settings(fleet)))[0]

    scan = asyncio.run(main())
    assert scan.status is Status.UNREACHABLE
    assert "connection lost" in scan.message


def test_hung_hosts_do_not_starve_the_others_of_worker_threads(tmp_path: Path) -> None:
    """More hung hosts than asyncio's default pool has threads (cpu + 4): the
    good hosts still get a worker and finish within their own deadline."""
    hung = [good(f"hung-{i}", behaviour="hang") for i in range(12)]

    async def main() -> dict[str, HostScan]:
        async with sim_fleet(tmp_path, [*hung, good("good-1"), good("good-2")]) as fleet:
            settings = paramiko_settings(fleet, host_timeout=5.0, concurrency=20)
            return by_name(await scan_all(fleet.targets, settings))

    scans = asyncio.run(main())
    assert scans["good-1"].status is Status.OK, scans["good-1"].message
    assert scans["good-2"].status is Status.OK, scans["good-2"].message
    assert {scans[h.name].status for h in hung} == {Status.TIMEOUT}


def test_hashed_known_hosts_entries_are_honoured(tmp_path: Path) -> None:
    """Debian and Ubuntu hash known_hosts by default (HashKnownHosts yes)."""

    async def main() -> HostScan:
        async with sim_fleet(tmp_path, [good("hashed")]) as fleet:
            host, key_and_type = known_hosts_line(
                "127.0.0.1", fleet.running[0].port, fleet.running[0].host_key
            ).split(" ", 1)
            fleet.known_hosts.write_text(f"{paramiko.HostKeys.hash_host(host)} {key_and_type}\n")
            return (await scan_all(fleet.targets, paramiko_settings(fleet)))[0]

    scan = asyncio.run(main())
    assert scan.status is Status.OK, scan.message


def test_unknown_host_is_accepted_only_when_checking_is_off(tmp_path: Path) -> None:
    async def main() -> tuple[HostScan, HostScan, str]:
        async with sim_fleet(tmp_path, [good("new")], unknown=["new"]) as fleet:
            strict = paramiko_settings(fleet)
            lax = dataclasses.replace(
                strict, connect=dataclasses.replace(strict.connect, hostkey_checking=False)
            )
            before = fleet.known_hosts.read_text()
            off = (await scan_all(fleet.targets, lax))[0]
            on = (await scan_all(fleet.targets, strict))[0]
            assert fleet.known_hosts.read_text() == before  # nothing was learned or written
            return off, on, before

    off, on, _ = asyncio.run(main())
    assert off.status is Status.OK, off.message
    assert on.status is Status.HOSTKEY_UNKNOWN


def test_per_target_known_hosts_file_replaces_the_fleet_one_only_when_trusted(
    tmp_path: Path,
) -> None:
    async def main(trusted: bool) -> HostScan:
        async with sim_fleet(tmp_path, [good("own-file")], unknown=["own-file"]) as fleet:
            own = tmp_path / "own_known_hosts"
            r = fleet.running[0]
            own.write_text(known_hosts_line("127.0.0.1", r.port, r.host_key) + "\n")
            target = dataclasses.replace(fleet.targets[0], known_hosts=str(own))
            settings = paramiko_settings(fleet)
            connect = dataclasses.replace(settings.connect, trust_inventory_known_hosts=trusted)
            return (await scan_all([target], dataclasses.replace(settings, connect=connect)))[0]

    scan = asyncio.run(main(True))
    assert scan.status is Status.OK, scan.message
    # not trusted by the operator: the inventory's file cannot widen trust
    assert asyncio.run(main(False)).status is Status.HOSTKEY_UNKNOWN


def test_ssh_config_supplies_hostname_port_user_and_identity_file(tmp_path: Path) -> None:
    async def main() -> HostScan:
        async with sim_fleet(tmp_path, [good("by-alias")]) as fleet:
            config = tmp_path / "ssh_config"
            config.write_text(
                "Host web-alias\n"
                "    HostName 127.0.0.1\n"
                f"    Port {fleet.running[0].port}\n"
                "    User tester\n"
                f"    IdentityFile {fleet.key}\n"
            )
            settings = paramiko_settings(fleet)
            settings = dataclasses.replace(
                settings, connect=dataclasses.replace(settings.connect, ssh_config=(str(config),))
            )
            target = Target("by-alias", "web-alias")  # no port, user or key in the inventory
            return (await scan_all([target], settings))[0]

    scan = asyncio.run(main())
    assert scan.status is Status.OK, scan.message
    assert_good_listeners(scan)


def test_missing_key_file_is_named_when_authentication_fails(tmp_path: Path) -> None:
    async def main() -> HostScan:
        async with sim_fleet(tmp_path, [good("no-key")]) as fleet:
            target = dataclasses.replace(
                fleet.targets[0], key_files=(str(tmp_path / "id_missing"),)
            )
            return (await scan_all([target], paramiko_settings(fleet)))[0]

    scan = asyncio.run(main())
    assert scan.status is Status.AUTH_FAILED
    assert "id_missing" in scan.message


class _JumpServer(asyncssh.SSHServer):
    """A bastion: accepts the test key and forwards direct-tcpip anywhere on loopback."""

    def __init__(self, client_key: asyncssh.SSHKey) -> None:
        self._key = client_key

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return bool(key.public_data == self._key.public_data)

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> bool:
        return dest_host == "127.0.0.1"


@asynccontextmanager
async def jump_server(client_key_path: Path) -> AsyncIterator[tuple[int, asyncssh.SSHKey]]:
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.read_private_key(str(client_key_path))
    server = await asyncssh.create_server(
        lambda: _JumpServer(client_key), "127.0.0.1", 0, server_host_keys=[host_key]
    )
    try:
        yield int(server.sockets[0].getsockname()[1]), host_key
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("jump_known", "status"),
    [(True, Status.OK), (False, Status.HOSTKEY_UNKNOWN)],
    ids=["known-bastion", "unknown-bastion"],
)
def test_proxyjump_tunnels_through_a_bastion_with_strict_keys(
    tmp_path: Path, jump_known: bool, status: Status
) -> None:
    async def main() -> HostScan:
        async with (
            sim_fleet(tmp_path, [good("behind-bastion")]) as fleet,
            jump_server(fleet.key) as (jump_port, jump_key),
        ):
            if jump_known:
                line = known_hosts_line("127.0.0.1", jump_port, jump_key)
                fleet.known_hosts.write_text(fleet.known_hosts.read_text() + line + "\n")
            settings = paramiko_settings(fleet)
            settings = dataclasses.replace(
                settings,
                connect=dataclasses.replace(settings.connect, client_keys=(str(fleet.key),)),
            )
            target = dataclasses.replace(
                fleet.targets[0], jump_host=f"bastion-user@127.0.0.1:{jump_port}"
            )
            return (await scan_all([target], settings))[0]

    scan = asyncio.run(main())
    assert scan.status is status, scan.message
    if jump_known:
        assert_good_listeners(scan)
    else:
        assert "jump host" in scan.message


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("bastion", (None, "bastion", None)),
        ("ops@bastion", ("ops", "bastion", None)),
        ("ops@bastion:2222", ("ops", "bastion", 2222)),
        ("ssh://ops@bastion:2222", ("ops", "bastion", 2222)),
        ("[2001:db8::1]:2222", (None, "2001:db8::1", 2222)),
        ("ops@[::1]", ("ops", "::1", None)),
        ("2001:db8::1", (None, "2001:db8::1", None)),
    ],
)
def test_proxyjump_specs_are_read_like_openssh(
    spec: str, parsed: tuple[str | None, str, int | None]
) -> None:
    assert parse_jump(spec) == parsed


@pytest.mark.parametrize(
    ("host", "port", "name"),
    [("10.0.0.7", 22, "10.0.0.7"), ("10.0.0.7", 2222, "[10.0.0.7]:2222"), ("::1", 22, "::1")],
)
def test_known_hosts_name_uses_brackets_for_other_ports(host: str, port: int, name: str) -> None:
    assert known_hosts_name(host, port) == name


def test_inventory_values_win_over_ssh_config_and_config_over_defaults(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    key = tmp_path / "id_config"
    key.write_text("not read here\n")
    config.write_text(
        "Host db-*\n    HostName 10.1.2.3\n    Port 2200\n    User cfguser\n"
        f"    IdentityFile {key}\n    ProxyJump ops@bastion:2222\n    HostKeyAlias db-cluster\n"
    )
    settings = ConnectSettings(ssh_config=(str(config),), use_agent=False)
    from_config = resolve_hop("db-07", settings)
    assert (from_config.hostname, from_config.port, from_config.user) == (
        "10.1.2.3",
        2200,
        "cfguser",
    )
    assert from_config.key_files == (str(key),)
    assert from_config.jump == ("ops@bastion:2222",)
    assert str(from_config.hostkey_name) == "db-cluster"
    explicit = resolve_hop("db-07", settings, port=22, user="inv", key_files=(), jump="none")
    assert (explicit.port, explicit.user, explicit.jump) == (22, "inv", ())
    plain = resolve_hop("web-01", settings)
    assert (plain.hostname, plain.port, str(plain.hostkey_name)) == ("web-01", 22, "web-01")
    assert plain.look_for_keys  # no key given anywhere: ~/.ssh/id_* like OpenSSH


PASSWORD = "s3cret-Correct-Horse"


class _PasswordServer(asyncssh.SSHServer):
    """Accepts one password, nothing else; answers ``uname -s`` with an OS
    fleetscan has no collector for, so a successful login ends in no_collector."""

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return password == PASSWORD


async def _plan9(process: asyncssh.SSHServerProcess[str]) -> None:
    process.stdout.write("Plan9\n")
    process.exit(0)


@pytest.mark.parametrize(
    ("env_value", "status"),
    [(PASSWORD, Status.NO_COLLECTOR), ("wrong", Status.AUTH_FAILED), (None, Status.AUTH_FAILED)],
    ids=["right-password", "wrong-password", "variable-unset"],
)
def test_password_comes_only_from_the_named_variable_and_is_never_logged(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    env_value: str | None,
    status: Status,
) -> None:
    if env_value is None:
        monkeypatch.delenv("FLEETSCAN_TEST_PW", raising=False)
    else:
        monkeypatch.setenv("FLEETSCAN_TEST_PW", env_value)
    caplog.set_level(logging.DEBUG, logger="paramiko")  # even paramiko's debug chatter

    async def main() -> HostScan:
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        server = await asyncssh.create_server(
            _PasswordServer, "127.0.0.1", 0, server_host_keys=[host_key], process_factory=_plan9
        )
        port = int(server.sockets[0].getsockname()[1])
        known = tmp_path / "known_hosts"
        known.write_text(known_hosts_line("127.0.0.1", port, host_key) + "\n")
        settings = ScanSettings(
            connect=ConnectSettings(
                known_hosts=str(known), ssh_config=(), use_agent=False, connect_timeout=3.0
            ),
            transport="paramiko",
        )
        target = Target(
            "pw-host", "127.0.0.1", port=port, user="ops", password_env="FLEETSCAN_TEST_PW"
        )
        try:
            return (await scan_all([target], settings))[0]
        finally:
            server.close()
            await server.wait_closed()

    scan = asyncio.run(main())
    assert scan.status is status, scan.message
    assert caplog.records, "paramiko logged nothing at DEBUG: the check below would be empty"
    assert not [r for r in caplog.records if PASSWORD in r.getMessage()]
    assert PASSWORD not in scan.message
