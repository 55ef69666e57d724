"""Socket-activated services (issue 8, section 4): systemd (pid 1) holding a
socket beside the service it started is not a second owner, and a socket pid 1
holds alone is still judged. The scans come from ``ss -tulnp`` lines as Ubuntu
24.04 prints them for ``ssh.socket``, ``rpcbind.socket`` and ``saned.socket``,
read by the real parser, and are judged by the shipped baseline."""

from __future__ import annotations

from pathlib import Path

from fleetscan.model import Finding, HostScan, Severity, Status, Target
from fleetscan.parsers.linux_ss import parse
from fleetscan.policy import builtin_policy_path, evaluate, load_policies

from .builders import NOW, make_policy

HEADER = "Netid State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess\n"


def row(netid: str, local: str, peer: str, users: str) -> str:
    state = "LISTEN" if netid == "tcp" else "UNCONN"
    backlog = "4096" if netid == "tcp" else "0"
    return f"{netid}   {state} 0      {backlog:<6} {local:>15} {peer:>15}    users:({users})\n"


SSH_SOCKET = row(
    "tcp", "0.0.0.0:22", "0.0.0.0:*", '("sshd",pid=1043,fd=3),("systemd",pid=1,fd=207)'
) + row("tcp", "[::]:22", "[::]:*", '("sshd",pid=1043,fd=4),("systemd",pid=1,fd=208)')
RPCBIND = row(
    "udp", "0.0.0.0:111", "0.0.0.0:*", '("rpcbind",pid=895,fd=5),("systemd",pid=1,fd=109)'
)
# before the first connection: only systemd holds ssh.socket
SSH_NOT_STARTED = row("tcp", "0.0.0.0:22", "0.0.0.0:*", '("systemd",pid=1,fd=207)')


def _scan(text: str, name: str = "web-01") -> HostScan:
    result = parse(HEADER + text)
    assert result.unparsed == ()
    return HostScan(
        target=Target(name=name, address=name),
        status=Status.OK,
        message="",
        listeners=result.listeners,
    )


def _findings(text: str, *extra: Path) -> list[Finding]:
    policy = load_policies([builtin_policy_path("baseline"), *extra])
    return list(evaluate(policy, [_scan(text)], now=NOW))


def test_socket_activated_sshd_is_compliant_with_the_shipped_ssh_rule() -> None:
    assert _findings(SSH_SOCKET + RPCBIND) == []


def test_sshd_started_by_hand_is_still_compliant() -> None:
    plain = row("tcp", "0.0.0.0:22", "0.0.0.0:*", '("sshd",pid=7,fd=3)')
    assert _findings(plain) == []


def test_a_socket_held_by_pid_1_alone_is_judged_not_passed() -> None:
    """The service behind it has not started: which program will serve port 22
    cannot be seen, so the owner rule reports it (at its unknown_severity)."""
    (finding,) = _findings(SSH_NOT_STARTED)
    assert finding.rule_id == "ssh-is-sshd"
    assert finding.severity == Severity.LOW
    assert "socket activation" in finding.message


def test_a_forbidden_port_held_by_systemd_alone_is_still_critical() -> None:
    backdoor = row("tcp", "0.0.0.0:4444", "0.0.0.0:*", '("systemd",pid=1,fd=61)')
    findings = _findings(backdoor)
    assert [(f.rule_id, f.severity) for f in findings] == [
        ("backdoor-metasploit", Severity.CRITICAL)
    ]


def test_another_program_beside_systemd_is_still_judged() -> None:
    """Socket activation hands the socket to a service: if that service is not
    sshd, the rule fires as for any other owner."""
    wrong = SSH_SOCKET.replace('"sshd"', '"dropbear"')
    findings = _findings(wrong)
    assert {(f.rule_id, f.severity) for f in findings} == {("ssh-is-sshd", Severity.HIGH)}
    assert all("is held by dropbear pid 1043" in f.message for f in findings)


def test_a_process_merely_named_systemd_is_not_an_activator() -> None:
    """Only pid 1 activates sockets; a process calling itself systemd is judged."""
    fake = SSH_SOCKET.replace('("systemd",pid=1,', '("systemd",pid=4242,')
    findings = _findings(fake)
    assert {f.rule_id for f in findings} == {"ssh-is-sshd"}
    assert all("is held by systemd pid 4242" in f.message for f in findings)


def test_the_infrastructure_map_judges_the_service_not_its_activator(tmp_path: Path) -> None:
    site = make_policy(
        tmp_path,
        """
        version: 1
        expected:
          - id: all
            hosts: ["*"]
            listeners:
              - {proto: tcp, port: 22, process: sshd}
              - {proto: udp, port: 111, process: rpcbind}
        """,
    )
    assert list(evaluate(site, [_scan(SSH_SOCKET + RPCBIND)], now=NOW)) == []
    # a port the map does not document is undocumented whoever holds it
    saned = row("tcp", "0.0.0.0:6566", "0.0.0.0:*", '("systemd",pid=1,fd=62)')
    (finding,) = evaluate(site, [_scan(saned)], now=NOW)
    assert (finding.rule_id, finding.listener and finding.listener.port) == ("undocumented", 6566)
