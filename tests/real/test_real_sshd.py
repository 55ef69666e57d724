"""fleetscan scans THIS machine for real, through a real OpenSSH sshd on loopback.

Each test opens its own sockets in the test process (TCP on 127.0.0.1 and
::1, UDP on 127.0.0.1, and TCP 127.0.0.1:4444 — a port the baseline policy
forbids), runs the real CLI against an Ansible inventory naming the sshd, and
checks report.json: the sockets are there with the right proto, address,
port, process name and pid; 4444 is a critical finding; the exit code says so.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .harness import (
    LEAST_USER,
    NO_SUDO_USER,
    SHIPPED_SUDOERS,
    SUDO_USER,
    OpenSockets,
    SshdServer,
    comm_of,
    describe,
    forbidden_rule_for,
    host_entry,
    ipv6_loopback_works,
    keygen,
    known_hosts_entry,
    listeners_for,
    load_report,
    owners,
    require,
    run_cli,
    scan_args,
)

pytestmark = [pytest.mark.sshd, pytest.mark.timeout(120)]

FORBIDDEN_PORT = 4444
EXIT_FINDINGS = 1
EXIT_INCOMPLETE = 3


@pytest.fixture
def own_sockets() -> Iterator[OpenSockets]:
    """Listeners held by this test process while the scan runs."""
    socks = OpenSockets()
    try:
        socks.tcp("127.0.0.1", 0)
        if ipv6_loopback_works():
            socks.tcp("::1", 0)
        socks.udp("127.0.0.1", 0)
        try:
            socks.tcp("127.0.0.1", FORBIDDEN_PORT)
        except OSError as exc:
            pytest.fail(
                f"cannot listen on 127.0.0.1:{FORBIDDEN_PORT} ({exc}): another process holds "
                "the port the baseline policy forbids; stop it (ss -tlnp 'sport = :4444')",
                pytrace=False,
            )
        yield socks
    finally:
        socks.close()


@dataclass(frozen=True)
class LoginCase:
    user: str
    become: bool
    status: str
    owners_visible: bool  # can the login see the root-owned test process?
    message_has: tuple[str, ...] = ()


LOGIN_CASES = {
    "root-login-is-ok": LoginCase("root", False, "ok", True),
    "user-without-sudo-is-partial": LoginCase(NO_SUDO_USER, False, "partial", False, ("not root",)),
    "sudo-refused-is-partial-not-a-hang": LoginCase(
        NO_SUDO_USER, True, "partial", False, ("sudo -n refused", "not root")
    ),
    "user-with-sudo-is-ok": LoginCase(SUDO_USER, True, "ok", True),
    # sudo only for the listing commands (examples/sudoers.d/fleetscan): every owner seen
    "user-with-only-the-shipped-sudoers-is-ok": LoginCase(LEAST_USER, True, "ok", True),
}


@pytest.mark.parametrize("transport", ["asyncssh", "paramiko"])
@pytest.mark.parametrize("case", LOGIN_CASES.values(), ids=LOGIN_CASES.keys())
def test_scan_of_this_machine_reports_the_sockets_the_test_opened(
    case: LoginCase,
    transport: str,
    sshd_server: SshdServer,
    own_sockets: OpenSockets,
    tmp_path: Path,
) -> None:
    """Both SSH transports against real OpenSSH give the same host result."""
    inventory = sshd_server.write_inventory(
        tmp_path / "hosts.ini", user=case.user, become=case.become
    )
    out = tmp_path / "out"
    args = [*scan_args(inventory, out, sshd_server.known_hosts), "--transport", transport]
    proc = run_cli(args, cwd=tmp_path)
    report = load_report(out, proc)
    host = host_entry(report, "local")

    assert host["status"] == case.status, (host["message"], describe(proc))
    for text in case.message_has:
        assert text in host["message"]
    assert proc.returncode == EXIT_FINDINGS, describe(proc)  # 4444 is critical

    me = (comm_of("self"), os.getpid())
    for want in own_sockets.opened:
        found = listeners_for(host, want)
        assert len(found) == 1, f"{want} reported {len(found)} times: {host['listeners']}"
        if case.owners_visible:
            assert owners(found[0]) == {me}
            assert {p["user"] for p in found[0]["processes"]} == {pwd.getpwuid(os.getuid()).pw_name}
        else:
            # a plain user cannot see which root process holds a socket
            assert os.getpid() not in {pid for _name, pid in owners(found[0])}

    # the sshd that served the scan is itself a listener of this machine
    sshd_sock = [
        x
        for x in host["listeners"]
        if (x["proto"], x["address"], x["port"]) == ("tcp", "127.0.0.1", sshd_server.port)
    ]
    assert len(sshd_sock) == 1
    if case.owners_visible:
        assert ("sshd", sshd_server.sshd.proc.pid) in owners(sshd_sock[0])


@pytest.mark.parametrize("case", ["root", SUDO_USER])
def test_forbidden_port_opened_by_the_test_is_a_critical_finding(
    case: str, sshd_server: SshdServer, own_sockets: OpenSockets, tmp_path: Path
) -> None:
    inventory = sshd_server.write_inventory(
        tmp_path / "hosts.ini", user=case, become=case != "root"
    )
    out = tmp_path / "out"
    proc = run_cli(scan_args(inventory, out, sshd_server.known_hosts), cwd=tmp_path)
    report = load_report(out, proc)

    rule = forbidden_rule_for(FORBIDDEN_PORT)
    hits = [
        f
        for f in report["findings"]
        if f["rule_id"] == rule and f["listener"] and f["listener"]["port"] == FORBIDDEN_PORT
    ]
    assert len(hits) == 1, report["findings"]
    hit = hits[0]
    assert (hit["host"], hit["severity"], hit["waived"], hit["gating"]) == (
        "local",
        "critical",
        False,
        True,
    )
    assert (hit["listener"]["proto"], hit["listener"]["address"]) == ("tcp", "127.0.0.1")
    assert owners(hit["listener"]) == {(comm_of("self"), os.getpid())}
    assert proc.returncode == EXIT_FINDINGS
    assert report["run"]["exit_code"] == EXIT_FINDINGS


@pytest.mark.parametrize(
    ("known", "status"), [("another-key", "hostkey_mismatch"), ("empty", "hostkey_unknown")]
)
def test_host_key_not_in_known_hosts_is_a_hostkey_status_never_a_prompt(
    known: str, status: str, sshd_server: SshdServer, tmp_path: Path
) -> None:
    known_hosts = tmp_path / "known_hosts"
    if known == "another-key":
        other = keygen(tmp_path / "other_host_key")
        known_hosts.write_text(known_hosts_entry("127.0.0.1", sshd_server.port, other))
    else:
        known_hosts.write_text("")
    inventory = sshd_server.write_inventory(tmp_path / "hosts.ini", user="root")
    out = tmp_path / "out"
    # stdin is closed by run_cli: a prompt would read EOF, not wait for a human
    proc = run_cli(scan_args(inventory, out, known_hosts), cwd=tmp_path)
    report = load_report(out, proc)
    host = host_entry(report, "local")

    assert host["status"] == status, (host["message"], describe(proc))
    assert "known_hosts" in host["message"]
    assert host["listeners"] == []
    assert proc.returncode == EXIT_INCOMPLETE, describe(proc)


def _cli_command() -> list[str]:
    """The installed console script when there is one, else ``python -m fleetscan``."""
    script = Path(sys.executable).with_name("fleetscan")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("fleetscan")
    return [found] if found else [sys.executable, "-m", "fleetscan"]


DEMO_STATUSES = {
    "web-01": "ok",
    "mon-01": "partial",
    "down-01": "unreachable",
    "rogue-01": "hostkey_mismatch",
}


def test_demo_command_writes_reports_and_fails_on_its_backdoor(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    proc = subprocess.run(
        [*_cli_command(), "demo", "--output", "out"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
    )
    out = tmp_path / "out"
    assert (out / "report.html").is_file(), describe(proc)
    report = load_report(out, proc)
    statuses = {h["name"]: h["status"] for h in report["hosts"]}
    assert {name: statuses.get(name) for name in DEMO_STATUSES} == DEMO_STATUSES
    assert proc.returncode == EXIT_FINDINGS, describe(proc)


def test_shipped_sudoers_passes_visudo() -> None:
    visudo = shutil.which("visudo")
    require(visudo is not None, "visudo is not installed (sudo package)")
    assert visudo is not None
    proc = subprocess.run(
        [visudo, "-c", "-f", str(SHIPPED_SUDOERS)], capture_output=True, text=True, timeout=20
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_shipped_sudoers_grants_the_listings_and_nothing_else(
    test_users: tuple[str, str],
) -> None:
    """The user of the shipped rule runs `sudo -n ss -tulnpe` and `sudo -n netstat
    -tulnpeW` as root, but not a shell, not ss with other arguments (not even
    the old `-tulnp`), not another program."""

    def as_least(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", LEAST_USER, "--", *argv],
            capture_output=True,
            text=True,
            timeout=20,
            stdin=subprocess.DEVNULL,
        )

    listing = as_least("sudo", "-n", "ss", "-tulnpe")
    assert listing.returncode == 0, listing.stderr
    assert "users:((" in listing.stdout  # root sees every socket's process
    assert " ino:" in listing.stdout  # and the socket owners' uids (-e)
    if shutil.which("netstat", path="/usr/sbin:/usr/bin:/sbin:/bin"):
        netstat = as_least("sudo", "-n", "netstat", "-tulnpeW")
        assert netstat.returncode == 0, netstat.stderr
        assert "PID/Program name" in netstat.stdout and "User" in netstat.stdout
    for argv in (
        ("sh", "-c", "id"),
        ("ss", "-tan"),
        ("id",),
        ("ss", "-tulnpe", "-K"),
        ("ss", "-tulnp"),
    ):
        refused = as_least("sudo", "-n", *argv)
        assert refused.returncode != 0, (argv, refused.stdout)
        assert "uid=0" not in refused.stdout


@pytest.mark.parametrize(
    ("user", "granted"), [(LEAST_USER, True), (NO_SUDO_USER, False)], ids=["least", "no-sudo"]
)
def test_firewall_evidence_under_become_asks_sudo_per_listing_never_for_a_shell(
    user: str, granted: bool, sshd_server: SshdServer, tmp_path: Path
) -> None:
    """``--firewall-evidence`` under become: the login with only the shipped
    sudoers reads the ruleset as root (``sudo -n nft list ruleset`` is granted);
    a login without sudo gets sudo's refusal as evidence, and the host's own
    status is unaffected by it."""
    require(shutil.which("nft") is not None, "nft (Debian's nftables) is not installed")
    inventory = sshd_server.write_inventory(tmp_path / "hosts.ini", user=user, become=True)
    out = tmp_path / "out"
    args = [*scan_args(inventory, out, sshd_server.known_hosts), "--firewall-evidence"]
    proc = run_cli(args, cwd=tmp_path)
    host = host_entry(load_report(out, proc), "local")
    (ev,) = [e for e in host["evidence"] if e["command"].startswith("firewall ruleset")]
    assert "sh -s <sudo -n nft list ruleset" in ev["command"]
    assert "### nft list ruleset" in ev["stdout"], ev
    if granted:
        assert host["status"] == "ok", host["message"]
        # as the login itself nft would say "Operation not permitted"; sudo ran it as root
        assert "sudo:" not in ev["stdout"] and "not permitted" not in ev["stdout"], ev["stdout"]
    else:
        assert host["status"] == "partial", host["message"]  # the listing's own verdict
        assert "sudo:" in ev["stdout"], ev["stdout"]  # the refusal is the evidence
