"""Each kind of host failure ends in its own status, and never touches the
other hosts of the same run (in-process asyncssh servers, real transport)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import asyncssh
import pytest

from fleetscan.model import HostScan, Status, Target
from fleetscan.runner import scan_all
from fleetscan.testing.fleet import free_port, sim_fleet
from fleetscan.testing.simhost import (
    HEALTHY_PS,
    HEALTHY_SS,
    ConnectionCounter,
    SimHost,
    known_hosts_line,
    stalled_server,
)

GOOD_SS, GOOD_PS = HEALTHY_SS, HEALTHY_PS


def good(name: str, **kw: object) -> SimHost:
    return SimHost(name, outputs={"ss": GOOD_SS}, ps=GOOD_PS, **kw)  # type: ignore[arg-type]


def by_name(scans: list[HostScan]) -> dict[str, HostScan]:
    return {s.host: s for s in scans}


def assert_good_listeners(scan: HostScan) -> None:
    got = {(x.proto, x.address, x.port, x.process_names) for x in scan.listeners}
    assert got == {
        ("tcp", "0.0.0.0", 22, ("sshd",)),
        ("tcp", "127.0.0.1", 5432, ("postgres",)),
        ("udp", "0.0.0.0", 68, ("dhclient",)),
        ("tcp", "::", 443, ("nginx",)),
    }
    # ss -e names the SOCKET's owner: the master (root) that bound it, for its
    # www-data worker too
    nginx = next(x for x in scan.listeners if x.port == 443)
    assert [(p.pid, p.user) for p in nginx.processes] == [(1200, "root"), (1201, "root")]
    assert {p.user for x in scan.listeners for p in x.processes if x.port == 5432} == {"postgres"}


@pytest.mark.parametrize("transport", ["asyncssh", "paramiko"])
def test_every_failure_gets_its_own_status_and_good_hosts_complete(
    tmp_path: Path, transport: str
) -> None:
    """Both SSH transports map every fault to the same status."""

    async def main() -> tuple[dict[str, HostScan], float]:
        hosts = [
            good("good-1"),
            good("auth-fail", behaviour="auth_fail"),
            good("changed-key"),
            good("unknown-key"),
            good("hangs", behaviour="hang"),
            good("good-2"),
        ]
        async with (
            sim_fleet(tmp_path, hosts, wrong_key=["changed-key"], unknown=["unknown-key"]) as fleet,
            stalled_server() as silent_port,
        ):
            targets = [
                *fleet.targets,
                Target("refused", "127.0.0.1", port=free_port(), key_files=(str(fleet.key),)),
                Target("no-banner", "127.0.0.1", port=silent_port, key_files=(str(fleet.key),)),
            ]
            start = time.monotonic()
            settings = fleet.settings(connect_timeout=2.0, host_timeout=4.0, concurrency=10)
            scans = await scan_all(targets, replace(settings, transport=transport))
            return by_name(scans), time.monotonic() - start

    scans, elapsed = asyncio.run(main())
    assert {name: s.status for name, s in scans.items()} == {
        "good-1": Status.OK,
        "good-2": Status.OK,
        "auth-fail": Status.AUTH_FAILED,
        "changed-key": Status.HOSTKEY_MISMATCH,
        "unknown-key": Status.HOSTKEY_UNKNOWN,
        "hangs": Status.TIMEOUT,
        "refused": Status.UNREACHABLE,
        "no-banner": Status.TIMEOUT,
    }
    assert_good_listeners(scans["good-1"])
    assert_good_listeners(scans["good-2"])
    assert "refused" in scans["refused"].message
    assert "known_hosts" in scans["changed-key"].message
    assert "handshake" in scans["no-banner"].message
    assert "deadline" in scans["hangs"].message or "within" in scans["hangs"].message
    assert "authentication refused for tester" in scans["auth-fail"].message
    if transport == "paramiko":  # paramiko can tell a changed key from an unknown one
        assert "changed" in scans["changed-key"].message
        assert "unknown host" in scans["unknown-key"].message
    # nothing waits for the slowest host serially: bounded by the per-host deadline
    assert elapsed < 4.0 * 3, f"run took {elapsed:.1f}s"
    for s in scans.values():
        assert s.finished >= s.started


def test_sudo_that_wants_a_password_gives_partial_with_the_reason(tmp_path: Path) -> None:
    async def main() -> HostScan:
        host = good("needs-pw", sudo="password", uid=1000)
        async with sim_fleet(tmp_path, [host], become=["needs-pw"]) as fleet:
            return (await scan_all(fleet.targets, fleet.settings()))[0]

    scan = asyncio.run(main())
    assert scan.status is Status.PARTIAL
    assert "sudo -n refused" in scan.message
    assert "a password is required" in scan.message
    assert "uid 1000" in scan.message
    assert_good_listeners(scan)  # what could be seen is still reported


def test_sudo_that_works_gives_a_full_scan(tmp_path: Path) -> None:
    async def main() -> HostScan:
        async with sim_fleet(tmp_path, [good("sudoer", uid=1000)], become=["sudoer"]) as fleet:
            return (await scan_all(fleet.targets, fleet.settings()))[0]

    scan = asyncio.run(main())
    assert scan.status is Status.OK, scan.message
    assert scan.collector == "ss -tulnpe"
    assert scan.platform == "linux"


def test_login_user_without_root_is_partial_not_compliant(tmp_path: Path) -> None:
    async def main() -> HostScan:
        async with sim_fleet(tmp_path, [good("plain", uid=1000)]) as fleet:
            return (await scan_all(fleet.targets, fleet.settings()))[0]

    scan = asyncio.run(main())
    assert scan.status is Status.PARTIAL
    assert "not root" in scan.message


def test_host_without_any_socket_tool_is_no_collector(tmp_path: Path) -> None:
    async def main() -> HostScan:
        async with sim_fleet(tmp_path, [SimHost("bare", outputs={})]) as fleet:
            return (await scan_all(fleet.targets, fleet.settings()))[0]

    scan = asyncio.run(main())
    assert scan.status is Status.NO_COLLECTOR
    assert scan.listeners == ()
    assert "ss" in scan.message


def test_ss_failing_falls_back_to_netstat(tmp_path: Path) -> None:
    netstat = (
        "Active Internet connections (only servers)\n"
        "Proto Recv-Q Send-Q Local Address           Foreign Address         State"
        "       PID/Program name\n"
        "tcp        0      0 0.0.0.0:22              0.0.0.0:*               LISTEN"
        "      733/sshd: /usr/sbin\n"
    )
    host = SimHost(
        "old", outputs={"ss": "", "netstat": netstat}, step_exit={"ss": 1}, ps="733 root\n"
    )

    async def main() -> HostScan:
        async with sim_fleet(tmp_path, [host]) as fleet:
            return (await scan_all(fleet.targets, fleet.settings()))[0]

    scan = asyncio.run(main())
    assert scan.status is Status.OK, scan.message
    assert scan.collector == "netstat -tulnpeW"
    [sshd] = scan.listeners
    assert (sshd.port, sshd.processes[0].name, sshd.processes[0].pid) == (
        22,
        "sshd: /usr/sbin",
        733,
    )
    assert sshd.processes[0].user == "root"


def test_banner_noise_before_the_output_does_not_break_parsing(tmp_path: Path) -> None:
    async def main() -> HostScan:
        async with sim_fleet(tmp_path, [good("chatty", behaviour="noise")]) as fleet:
            return (await scan_all(fleet.targets, fleet.settings()))[0]

    scan = asyncio.run(main())
    assert scan.status is Status.OK, scan.message
    assert_good_listeners(scan)
    assert scan.unparsed == ()


def test_output_flood_is_cut_and_the_host_is_partial(tmp_path: Path) -> None:
    async def main() -> HostScan:
        async with sim_fleet(tmp_path, [good("flood", behaviour="flood")]) as fleet:
            settings = fleet.settings(max_output=2 * 1024 * 1024, host_timeout=20.0)
            return (await scan_all(fleet.targets, settings))[0]

    scan = asyncio.run(main())
    assert scan.status is Status.PARTIAL
    assert "size limit" in scan.message
    assert scan.evidence[-1].truncated


def test_disconnect_in_the_middle_of_the_output_is_reported(tmp_path: Path) -> None:
    async def main() -> HostScan:
        async with sim_fleet(tmp_path, [good("drops", behaviour="disconnect")]) as fleet:
            return (await scan_all(fleet.targets, fleet.settings()))[0]

    scan = asyncio.run(main())
    assert not scan.status.complete
    assert scan.status in (Status.UNREACHABLE, Status.PARTIAL)
    assert scan.message


def test_concurrency_limit_holds(tmp_path: Path) -> None:
    """The servers count simultaneous SSH connections: never above --concurrency."""
    hosts = [good(f"h{i}", behaviour="trickle", trickle_interval=0.0005) for i in range(6)]
    counter = ConnectionCounter()

    async def main() -> list[HostScan]:
        async with sim_fleet(tmp_path, hosts, counter=counter) as fleet:
            return await scan_all(fleet.targets, fleet.settings(concurrency=2))

    scans = asyncio.run(main())
    assert [s.status for s in scans] == [Status.OK] * 6
    assert counter.total == 6  # one connection per host
    assert counter.peak == 2


def test_ssh_config_host_alias_supplies_hostname_port_user_and_key(tmp_path: Path) -> None:
    """~/.ssh/config is honoured: the inventory names only the alias."""

    async def main() -> HostScan:
        async with sim_fleet(tmp_path, [good("cfg")]) as fleet:
            port = fleet.running[0].port
            config = tmp_path / "ssh_config"
            config.write_text(
                f"Host cfg-alias\n  HostName 127.0.0.1\n  Port {port}\n  User tester\n"
                f"  IdentityFile {fleet.key}\n"
            )
            settings = fleet.settings()
            connect = replace(settings.connect, ssh_config=(str(config),))
            target = Target("cfg", "cfg-alias")
            return (await scan_all([target], replace(settings, connect=connect)))[0]

    scan = asyncio.run(main())
    assert scan.status is Status.OK, scan.message
    assert_good_listeners(scan)


def test_jump_host_is_used_and_checked_against_known_hosts(tmp_path: Path) -> None:
    """A target behind a bastion is reached through it; the bastion's own host
    key is checked with the same known_hosts (a wrong one stops the scan)."""

    async def main(bastion_key_ok: bool) -> HostScan:
        hosts = [SimHost("bastion", jump=True), good("inner")]
        wrong = [] if bastion_key_ok else ["bastion"]
        async with sim_fleet(tmp_path, hosts, wrong_key=wrong) as fleet:
            bastion_port = fleet.running[0].port
            inner = replace(fleet.target("inner"), jump_host=f"tester@127.0.0.1:{bastion_port}")
            return (await scan_all([inner], fleet.settings()))[0]

    scan = asyncio.run(main(True))
    assert scan.status is Status.OK, scan.message
    assert_good_listeners(scan)
    blocked = asyncio.run(main(False))
    assert blocked.status is Status.HOSTKEY_MISMATCH


def test_proxyjump_from_ssh_config_uses_the_fleets_known_hosts(tmp_path: Path) -> None:
    """A ProxyJump in ssh_config is opened by fleetscan with the fleet's
    known_hosts: a bastion whose key is wrong stops the scan."""

    async def main(bastion_key_ok: bool) -> HostScan:
        hosts = [SimHost("bastion", jump=True), good("inner")]
        wrong = [] if bastion_key_ok else ["bastion"]
        async with sim_fleet(tmp_path, hosts, wrong_key=wrong) as fleet:
            bastion, inner = fleet.running
            config = tmp_path / "ssh_config"
            config.write_text(
                f"Host inner-alias\n  HostName 127.0.0.1\n  Port {inner.port}\n"
                f"  ProxyJump tester@127.0.0.1:{bastion.port}\n"
            )
            settings = fleet.settings()
            connect = replace(settings.connect, ssh_config=(str(config),))
            target = replace(fleet.target("inner"), address="inner-alias", port=None)
            return (await scan_all([target], replace(settings, connect=connect)))[0]

    scan = asyncio.run(main(True))
    assert scan.status is Status.OK, scan.message
    assert_good_listeners(scan)
    assert asyncio.run(main(False)).status is Status.HOSTKEY_MISMATCH


def test_two_jump_hosts_in_a_chain(tmp_path: Path) -> None:
    async def main() -> HostScan:
        hosts = [SimHost("b1", jump=True), SimHost("b2", jump=True), good("deep")]
        async with sim_fleet(tmp_path, hosts) as fleet:
            b1, b2, _ = fleet.running
            chain = f"tester@127.0.0.1:{b1.port},tester@127.0.0.1:{b2.port}"
            target = replace(fleet.target("deep"), jump_host=chain)
            scan = (await scan_all([target], fleet.settings()))[0]
            # each bastion really carried a hop: b1 saw the connection to b2
            assert b1.host.usernames == ["tester"] and b2.host.usernames == ["tester"]
            return scan

    scan = asyncio.run(main())
    assert scan.status is Status.OK, scan.message
    assert_good_listeners(scan)


def test_key_from_a_real_ssh_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No key file in the inventory: the key is offered by a real ssh-agent."""
    if not shutil.which("ssh-agent") or not shutil.which("ssh-add"):
        pytest.skip("openssh-client (ssh-agent, ssh-add) is not installed")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))

        async def main() -> HostScan:
            async with sim_fleet(tmp_path, [good("agented")]) as fleet:
                subprocess.run(
                    ["ssh-add", str(fleet.key)],
                    check=True,
                    capture_output=True,
                    env={**os.environ, "SSH_AUTH_SOCK": str(sock)},
                    timeout=10,
                )
                settings = fleet.settings()
                connect = replace(settings.connect, use_agent=True)
                target = replace(fleet.target("agented"), key_files=())
                return (await scan_all([target], replace(settings, connect=connect)))[0]

        scan = asyncio.run(main())
    finally:
        agent.terminate()
        agent.wait(timeout=10)
    assert scan.status is Status.OK, scan.message
    assert_good_listeners(scan)


@pytest.mark.parametrize("transport", ["asyncssh", "paramiko"])
def test_encrypted_key_is_unlocked_by_the_passphrase_env_var_never_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    """An encrypted private key works when the inventory names an environment
    variable with its passphrase; without it the key is skipped (auth_failed),
    never a prompt; the passphrase appears in no result."""
    secret = "Kp-passphrase-9Zq"
    monkeypatch.setenv("FLEETSCAN_TEST_KEY_PASS", secret)

    async def main(with_env: bool) -> HostScan:
        async with sim_fleet(tmp_path, [good("locked")]) as fleet:
            key = asyncssh.read_private_key(str(fleet.key))
            locked = tmp_path / "id_locked"
            key.write_private_key(str(locked), passphrase=secret)
            locked.chmod(0o600)
            target = replace(
                fleet.target("locked"),
                key_files=(str(locked),),
                passphrase_env="FLEETSCAN_TEST_KEY_PASS" if with_env else None,
            )
            # the passphrase KDF (bcrypt) is slow by design: a busy machine must
            # not turn it into a handshake timeout — this test is not about time
            settings = replace(fleet.settings(connect_timeout=30.0), transport=transport)
            return (await scan_all([target], settings))[0]

    scan = asyncio.run(main(True))
    assert scan.status is Status.OK, scan.message
    assert_good_listeners(scan)
    refused = asyncio.run(main(False))
    assert refused.status is Status.AUTH_FAILED
    for result in (scan, refused):
        assert secret not in repr(result)


def test_an_edited_known_hosts_is_seen_by_the_next_scan_in_the_same_process(
    tmp_path: Path,
) -> None:
    """A scheduler runs many scans in one process: a key removed from (or
    changed in) known_hosts must stop the next scan, not be trusted from a cache."""

    async def main() -> tuple[HostScan, HostScan]:
        async with sim_fleet(tmp_path, [good("rekeyed")]) as fleet:
            first = (await scan_all(fleet.targets, fleet.settings()))[0]
            other = asyncssh.generate_private_key("ssh-ed25519")
            port = fleet.running[0].port
            fleet.known_hosts.write_text(known_hosts_line("127.0.0.1", port, other) + "\n")
            second = (await scan_all(fleet.targets, fleet.settings()))[0]
            return first, second

    first, second = asyncio.run(main())
    assert first.status is Status.OK, first.message
    assert second.status is Status.HOSTKEY_MISMATCH
