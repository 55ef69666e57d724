"""netstat cuts program names (``sshd: /usr/sbi``): the collector takes the
name from the ``ps`` data it already has, by pid, so owner rules judge the
real name (issue 8, section 4); its users come from its own ``-e`` User column,
and each step asks for only the owners tables it needs (issue 12: ps reads
all of /proc). Pure functions, fed with framed collector output as the chain
script prints it."""

from __future__ import annotations

import re

import pytest

from fleetscan.collectors import posix
from fleetscan.collectors.base import Collected
from fleetscan.collectors.posix_script import marker, posix_script
from fleetscan.model import Process
from fleetscan.policy import builtin_policy_path, evaluate, load_policies
from fleetscan.transports.base import CommandResult
from tests.policy.builders import NOW, scan

NONCE = "0123456789abcdef"
M = marker(NONCE)
NETSTAT = (
    "Active Internet connections (only servers)\n"
    "Proto Recv-Q Send-Q Local Address           Foreign Address         State       "
    "PID/Program name    \n"
    "tcp        0      0 0.0.0.0:22              0.0.0.0:*               LISTEN      "
    "600/sshd: /usr/sbi  \n"
    "tcp        0      0 127.0.0.1:5432          0.0.0.0:*               LISTEN      "
    "812/postgres        \n"
    "tcp        0      0 127.0.0.1:8080          0.0.0.0:*               LISTEN      "
    "977/bd\n"
    "x                  \n"
)
PS = "    1 root                             systemd\n  600 root  sshd\n  812 postgres  postgres\n"
PS += "  977 nobody                           bd?x\n"


def _framed(tool: str, output: str, ps: str) -> CommandResult:
    text = (
        f"{M} uid 0\n{M} begin {tool}\n{output}{M} end {tool} 0\n{M} begin ps\n{ps}{M} end ps 0\n"
    )
    return CommandResult("sh -s", 0, text.encode(), b"", 0.1)


def _owners(got: Collected) -> dict[int, list[Process]]:
    return {x.port: list(x.processes) for x in got.listeners}


def test_parse_ps_reads_user_and_comm_with_spaces_and_skips_headers() -> None:
    table = posix.parse_ps("  PID USER     COMMAND\n  12 www-data php fpm: pool\n 13 root\n")
    assert table == {
        12: posix.PsEntry("www-data", "php fpm: pool"),
        13: posix.PsEntry("root", None),
    }


def test_netstat_names_come_from_ps_by_pid() -> None:
    got = posix.interpret_posix("linux", _framed("netstat", NETSTAT, PS), NONCE)
    owners = _owners(got)
    assert owners[22] == [Process("sshd", 600, "root")]
    assert owners[5432] == [Process("postgres", 812, "postgres")]
    # ps masks the newline ("bd?x"): netstat's exact name is kept, the user is filled
    assert owners[8080] == [Process("bd\nx", 977, "nobody")]


def test_owner_rules_judge_the_real_name_not_the_cut_argv0() -> None:
    got = posix.interpret_posix("linux", _framed("netstat", NETSTAT, PS), NONCE)
    policy = load_policies([builtin_policy_path("baseline")])
    findings = evaluate(policy, [scan("db-01", listeners=got.listeners)], now=NOW)
    assert [f.rule_id for f in findings if f.rule_id == "ssh-is-sshd"] == []


def test_a_pid_ps_does_not_list_keeps_the_netstat_name() -> None:
    got = posix.interpret_posix("linux", _framed("netstat", NETSTAT, "  1 root systemd\n"), NONCE)
    assert _owners(got)[22] == [Process("sshd: /usr/sbi", 600, None)]


def test_ss_names_are_the_comm_already_and_a_stray_ps_table_is_not_used() -> None:
    ss = (
        "Netid State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n"
        'tcp   LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=600,fd=3)) ino:9 sk:1 <->\n'
    )
    text = _framed("ss", ss, "  600 mallory  other\n").stdout.decode()
    text += f"{M} begin passwd\n0 root\n{M} end passwd 0\n"
    got = posix.interpret_posix("linux", CommandResult("sh -s", 0, text.encode(), b"", 0.1), NONCE)
    # the name is ss's comm; the user is the socket's (uid 0: ss prints no uid:)
    assert _owners(got)[22] == [Process("sshd", 600, "root")]


def test_the_script_asks_ps_for_the_comm() -> None:
    script = posix_script("linux", NONCE)
    assert "ps -eo pid=,user:32=,comm=" in script
    assert "ps -o pid,user,comm" in script


NETSTAT_E = (
    "Active Internet connections (only servers)\n"
    "Proto Recv-Q Send-Q Local Address           Foreign Address         State       "
    "User       Inode      PID/Program name    \n"
    "tcp        0      0 0.0.0.0:22              0.0.0.0:*               LISTEN      "
    "0          21699      600/sshd: /usr/sbi  \n"
    "tcp        0      0 127.0.0.1:5432          0.0.0.0:*               LISTEN      "
    "113        21702      812/postgres        \n"
    "tcp        0      0 127.0.0.1:8080          0.0.0.0:*               LISTEN      "
    "70001      21703      990/java            \n"
)


def test_netstat_e_users_come_from_its_user_column_named_by_passwd_names_from_ps() -> None:
    """netstat -tulnpeW: the User column (numeric with -n) is the socket's uid,
    named from /etc/passwd; ps only replaces the cut names. A uid passwd does
    not know (LDAP) stays a number unless ps names it."""
    passwd = "0 root\n113 postgres\n"
    ps = "  600 mallory sshd\n  812 mallory postgres\n"
    text = _framed("netstat", NETSTAT_E, ps).stdout.decode()
    text += f"{M} begin passwd\n{passwd}{M} end passwd 0\n"
    result = CommandResult("sh -s", 0, text.encode(), b"", 0.1)
    owners = _owners(posix.interpret_posix("linux", result, NONCE))
    assert owners[22] == [Process("sshd", 600, "root")]
    assert owners[5432] == [Process("postgres", 812, "postgres")]
    assert owners[8080] == [Process("java", 990, "70001")]


@pytest.mark.parametrize(
    ("platform", "step", "tables"),
    [
        ("linux", "ss", ["pw"]),
        ("linux", "netstat", ["pw", "ps_"]),
        ("linux", "proc", ["pw"]),
        ("darwin", "lsof", []),
        ("darwin", "netstat", ["ps_"]),
        ("darwin", "netstat-an", []),
        ("freebsd", "sockstat", []),
        ("freebsd", "netstat", []),
    ],
)
def test_each_step_prints_only_the_owners_tables_its_listing_needs(
    platform: str, step: str, tables: list[str]
) -> None:
    """ps reads all of /proc: it runs only after a listing of pids without
    users (macOS netstat -v) or Linux netstat (for its cut names); lsof and
    sockstat print users, ss -e and /proc print uids (named from passwd)."""
    script = posix_script(platform, NONCE)
    # each step function ends: `); r=$?; b="$m end NAME $r$N"; { ok; } || return 1; TABLES }`
    ends = re.findall(
        r'^\); r=\$\?; b="\$m end (\S+) \$r\$N"; .*\|\| return 1;(.*)\}$', script, re.M
    )
    (after,) = [rest for name, rest in ends if name == step]
    assert [t.strip() for t in after.split(";") if t.strip()] == tables
