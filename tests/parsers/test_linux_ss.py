"""The linux-ss parser against real ss outputs: the shared corpus, hand-made
awkward samples, and ss run for real on this machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from listener_view import (
    CORPUS,
    FIXTURES,
    corpus_files,
    expected_unparsed,
    expected_views,
    read_bytes_as_text,
    views,
)

from fleetscan.model import Process
from fleetscan.parsers import detect, for_command
from fleetscan.parsers.linux_ss import detect as own_detect
from fleetscan.parsers.linux_ss import parse
from fleetscan.parsers.services import port_of

SS_FILES = corpus_files("linux/ss-a", "linux/ss-tulpen")
HEADER_NEW = "Netid State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess"
HEADER_OLD = "Netid  State      Recv-Q Send-Q     Local Address:Port       Peer Address:Port"


def _one(line: str, header: str = HEADER_NEW) -> tuple[str, ...]:
    """Views of the listeners of a one-row ss output (after a header)."""
    result = parse(f"{header}\n{line}\n")
    assert result.unparsed == ()
    return tuple(views(result))


@pytest.mark.parametrize("path", SS_FILES, ids=lambda p: p.name)
def test_corpus_file_gives_the_checked_listeners(path: Path) -> None:
    result = parse(read_bytes_as_text(path))
    assert views(result) == expected_views(path)
    assert [u.line for u in result.unparsed] == expected_unparsed(path)


@pytest.mark.parametrize(
    ("name", "owners_known"),
    [
        ("jc_centos-7.7_ss-sudo-a.out", False),  # no -p
        ("jc_ubuntu-18.04_ss-sudo-a.out", False),
        ("jc_ubuntu-18.04_ss-sudo-tulpen.out", True),
        ("jc_generic_ss-wide.out", True),
        ("inspec_ss-tulpen.out", True),
    ],
)
def test_owners_are_known_only_when_ss_printed_users(name: str, owners_known: bool) -> None:
    (path,) = [p for p in SS_FILES if p.name == name]
    assert parse(read_bytes_as_text(path)).owners_known is owners_known


def _jc_listeners(path: Path) -> Counter[tuple[str, int, tuple[int, ...]]]:
    """(proto, port, pids) of the listening rows jc found (its schema differs:
    it files the process name under ``user``, and keeps service names)."""
    rows = json.loads(path.with_suffix(".jc.json").read_text(encoding="utf-8"))
    found: Counter[tuple[str, int, tuple[int, ...]]] = Counter()
    for row in rows:
        if (row.get("netid"), row.get("state")) not in (("tcp", "LISTEN"), ("udp", "UNCONN")):
            continue
        port = port_of(row["local_port"])
        assert port is not None
        pids = tuple(sorted(int(p) for p in row.get("opts", {}).get("process_id", {})))
        found[(row["netid"], port, pids)] += 1
    return found


@pytest.mark.parametrize(
    "path",
    [p for p in SS_FILES if p.with_suffix(".jc.json").exists()],
    ids=lambda p: p.name,
)
def test_corpus_listeners_agree_with_jc_on_ports_and_pids(path: Path) -> None:
    ours = Counter(
        (x.proto, x.port, tuple(sorted(p.pid for p in x.processes if p.pid is not None)))
        for x in parse(read_bytes_as_text(path)).listeners
    )
    assert ours == _jc_listeners(path)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        pytest.param(
            'tcp LISTEN 0 5 [::1]:631 [::]:* users:(("cupsd",pid=1410,fd=7))',
            ("tcp6 ::1 631 LISTEN @2 1410/cupsd/-",),
            id="bracketed-v6-port-after-bracket",
        ),
        pytest.param(
            "udp UNCONN 0 0 127.0.0.53%lo:53 0.0.0.0:*",
            ("udp4 127.0.0.53%lo 53 UNCONN @2",),
            id="v4-with-device",
        ),
        pytest.param(
            "udp UNCONN 0 0 0.0.0.0%virbr0:67 0.0.0.0:*",
            ("udp4 0.0.0.0%virbr0 67 UNCONN @2",),
            id="wildcard-with-device",
        ),
        pytest.param(
            "udp UNCONN 0 0 [fe80::1]%eth0:123 [::]:*",
            ("udp6 fe80::1%eth0 123 UNCONN @2",),
            id="new-ss-zone-after-bracket",
        ),
        pytest.param(
            'tcp LISTEN 0 64 *:6556 *:* users:(("xinetd",pid=9,fd=5)) v6only:0 <->',
            ("tcp6 :: 6556 LISTEN @2 9/xinetd/-",),
            id="star-is-dual-stack-v6",
        ),
        pytest.param(
            "tcp LISTEN 0 4096 *:80 *:*",
            ("tcp6 :: 80 LISTEN @2",),
            id="star-without-evidence-follows-the-contract",
        ),
        pytest.param(
            "tcp LISTEN 0 128 *:ssh *:*",
            ("tcp6 :: 22 LISTEN @2",),
            id="service-name",
        ),
        pytest.param(
            "tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* "
            "ino:58511 sk:30 cgroup:/system.slice/ssh.service <->",
            ("tcp4 0.0.0.0 22 LISTEN @2",),
            id="extended-fields-without-users",
        ),
        pytest.param(
            "tcp LISTEN 0 511 0.0.0.0:80 0.0.0.0:* "
            'users:(("nginx",pid=1,fd=6),("nginx",pid=2,fd=6),("nginx",pid=1,fd=7))',
            ("tcp4 0.0.0.0 80 LISTEN @2 1/nginx/- 2/nginx/-",),
            id="same-process-twice-is-one-owner",
        ),
        pytest.param(
            "tcp LISTEN 0 511 0.0.0.0:80 0.0.0.0:*    \t",
            ("tcp4 0.0.0.0 80 LISTEN @2",),
            id="trailing-whitespace",
        ),
        pytest.param(
            "udp ESTAB 0 0 10.0.0.5:68 10.0.0.1:67",
            (),
            id="connected-udp-is-not-a-listener",
        ),
        pytest.param(
            "tcp UNCONN 0 0 0.0.0.0:5000 0.0.0.0:*",
            (),
            id="closed-tcp-is-not-a-listener",
        ),
        pytest.param(
            "udp UNCONN 0 0 0.0.0.0:* 0.0.0.0:*",
            (),
            id="unbound-udp-is-not-a-listener",
        ),
        pytest.param(
            "tcp ESTAB 0 0 [::1]:ssh [::1]:38134",
            (),
            id="established-is-recognised-and-skipped",
        ),
    ],
)
def test_row_forms(row: str, expected: tuple[str, ...]) -> None:
    assert _one(row) == expected


@pytest.mark.parametrize(
    "row",
    [
        "nl    UNCONN 0      0               rtnl:kernel              *",
        "u_str ESTAB  0      0  /run/systemd/journal/stdout 17553  * 17552",
        "p_raw UNCONN 0      0                  *:eth0                *",
        "raw   UNCONN 0      0           [::]:ipv6-icmp            [::]:*",
        "icmp6 UNCONN 0      0              *%ens33:ipv6-icmp           *:*",
        "v_str ESTAB  0      0     999900439:1023                      0:976",
    ],
)
def test_other_socket_families_are_recognised_not_unparsed(row: str) -> None:
    result = parse(f"{HEADER_OLD}\n{row}\n")
    assert (result.listeners, result.unparsed) == ((), ())


def test_single_protocol_output_has_no_netid_and_state_gives_protocol() -> None:
    text = (
        "State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n"
        "LISTEN 0      4096   127.0.0.53%lo:53        0.0.0.0:*    "
        'users:(("systemd-resolve",pid=7,fd=14))\n'
        'UNCONN 0      0            [::1]:323           [::]:*    users:(("chronyd",pid=8,fd=6))\n'
    )
    result = parse(text)
    assert views(result) == [
        "tcp4 127.0.0.53%lo 53 LISTEN @2 7/systemd-resolve/-",
        "udp6 ::1 323 UNCONN @3 8/chronyd/-",
    ]
    assert result.unparsed == ()


def test_headerless_output_reads_like_headed_output() -> None:
    row = 'tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=5,fd=3))'
    assert views(parse(row + "\n")) == ["tcp4 0.0.0.0 22 LISTEN @1 5/sshd/-"]


def test_crlf_line_endings_are_not_part_of_the_evidence() -> None:
    text = f"{HEADER_NEW}\r\ntcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\r\n"
    (listener,) = parse(text).listeners
    assert listener.raw == "tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:*"


def test_every_listener_keeps_its_exact_source_line() -> None:
    path = CORPUS / "linux/ss-tulpen/jc_generic_ss-wide.out"
    lines = read_bytes_as_text(path).split("\n")
    result = parse(read_bytes_as_text(path))
    assert result.listeners
    assert all(x.line is not None and lines[x.line - 1] == x.raw for x in result.listeners)


AWKWARD = FIXTURES / "linux" / "ss-tulnp-awkward-names.out"


def test_awkward_process_names_survive() -> None:
    """Names with spaces, quotes, parentheses, commas, slashes and non-ASCII
    (hand-made: ss prints the kernel comm raw, nothing is escaped)."""
    result = parse(read_bytes_as_text(AWKWARD))
    assert result.unparsed == ()
    names = [[(p.name, p.pid) for p in x.processes] for x in result.listeners]
    assert names == [
        [("my server", 101)],
        [('say "hi"', 102)],
        [("(sd-pam)", 103)],
        [("a,b),(c", 104), ("worker (2)", 105)],
        [("/usr/sbin/apach", 106)],
        [("naïve-dæmon", 107)],
        [("sendmail", 3965)],
        [('x")', 108)],
    ]


@pytest.mark.parametrize("first", ["x)", "x,fd=1)"])
def test_names_holding_fd_labels_are_never_confused_by_the_owner_cache(first: str) -> None:
    """Owners are memoised by the users field without its fd numbers; a name
    that itself holds `,fd=1)` must not be served another row's owners."""
    names = [first, "x,fd=1)" if first == "x)" else "x)"]
    rows = [
        f'tcp LISTEN 0 128 0.0.0.0:{80 + i} 0.0.0.0:* users:(("{name}",pid=5,fd=3))'
        for i, name in enumerate(names)
    ]
    result = parse("\n".join(rows) + "\n")
    assert [x.processes for x in result.listeners] == [(Process(n, 5),) for n in names]


# ------------------------------------------------- -e extras: the socket's uid


def _corpus_row(name: str, number: int) -> str:
    (path,) = [p for p in SS_FILES if p.name == name]
    return read_bytes_as_text(path).split("\n")[number - 1]


@pytest.mark.parametrize(
    ("name", "line", "user"),
    [
        # uid:112 after the users field: the socket's owner
        ("jc_ubuntu-18.04_ss-sudo-tulpen.out", 3, "112"),
        # ino: but no uid: ss leaves out uid 0
        ("jc_ubuntu-18.04_ss-sudo-tulpen.out", 4, "0"),
        # a user's own socket (uid:1000), and cgroup: after ino:
        ("jc_ubuntu-18.04_ss-sudo-tulpen.out", 24, "1000"),
        ("jc_generic_ss-wide.out", 2, "0"),
        # old ss: unlabelled users entries, then ino:/sk: without uid:
        ("inspec_ss-tulpen.out", 10, "0"),
        ("inspec_ss-tulpen.out", 4, "112"),
    ],
)
def test_corpus_rows_give_every_owner_the_sockets_uid(name: str, line: int, user: str) -> None:
    row = _corpus_row(name, line)
    assert (" uid:" in row) == (user != "0") and " ino:" in row  # the premise
    (listener,) = parse(row + "\n").listeners
    assert listener.processes
    assert {p.user for p in listener.processes} == {user}


def test_without_e_extras_the_user_stays_unknown() -> None:
    """ss -tulnp (or an ss that ignored -e): pids and names, no user."""
    row = 'tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=812,fd=3))'
    (listener,) = parse(row + "\n").listeners
    assert listener.processes == (Process("sshd", 812, None),)


def test_every_process_of_a_socket_gets_the_socket_owners_uid_not_its_own() -> None:
    """A pre-fork server: the master bound the socket as root, its workers hold it too."""
    row = (
        "tcp LISTEN 0 511 0.0.0.0:80 0.0.0.0:* "
        'users:(("nginx",pid=1201,fd=6),("nginx",pid=1200,fd=6)) ino:4242 sk:1 <->'
    )
    (listener,) = parse(row + "\n").listeners
    assert [(p.pid, p.user) for p in listener.processes] == [(1201, "0"), (1200, "0")]


@pytest.mark.parametrize("name", [" uid:0 ino:1", "x ino:5 sk:1", "uid:0 ino:1 <->"])
def test_uid_text_inside_a_process_name_is_never_read_as_the_sockets(name: str) -> None:
    """Only what follows the users field counts: a name (the kernel comm, raw,
    up to 15 bytes) holding ``uid:``/``ino:`` text cannot claim another owner,
    root least."""
    row = f'tcp LISTEN 0 128 0.0.0.0:9 0.0.0.0:* users:(("{name}",pid=66,fd=3)) uid:1000 ino:9 sk:2'
    (listener,) = parse(row + "\n").listeners
    assert [(p.name, p.user) for p in listener.processes] == [(name, "1000")]


def test_a_name_forging_the_end_of_the_users_field_claims_no_uid() -> None:
    """A 15-byte comm that closes the users field early: the socket is kept,
    its owner unread (the host is then not complete), no uid taken from it."""
    name = 'a",pid=1,fd=3))'
    row = f'tcp LISTEN 0 128 0.0.0.0:9 0.0.0.0:* users:(("{name}",pid=66,fd=3)) uid:7 ino:9 sk:2'
    result = parse(row + "\n")
    assert [(x.port, x.processes) for x in result.listeners] == [(9, ())]
    assert [u.line for u in result.unparsed] == [1]


def test_the_same_process_keeps_each_sockets_own_uid() -> None:
    """Two sockets of one pid with different owners (one passed in by a root
    parent): each listener carries its own socket's uid."""
    rows = [
        'tcp LISTEN 0 128 0.0.0.0:80 0.0.0.0:* users:(("app",pid=7,fd=3)) ino:1 sk:1',
        'tcp LISTEN 0 128 0.0.0.0:81 0.0.0.0:* users:(("app",pid=7,fd=4)) uid:33 ino:2 sk:2',
        'tcp LISTEN 0 128 0.0.0.0:82 0.0.0.0:* users:(("app",pid=7,fd=5)) ino:3 sk:3',
    ]
    result = parse("\n".join(rows) + "\n")
    assert [x.processes for x in result.listeners] == [
        (Process("app", 7, "0"),),
        (Process("app", 7, "33"),),
        (Process("app", 7, "0"),),
    ]


@pytest.mark.parametrize(
    ("row", "why"),
    [
        ("tcp LISTEN 0 128 0.0.0.0:nosuchservice 0.0.0.0:*", "unknown service name"),
        ("tcp LISTEN 0 128 0.0.0.0 0.0.0.0:*", "no port"),
        ("tcp LISTEN zero 128 0.0.0.0:22 0.0.0.0:*", "queue not a number"),
        ("tcp LISTEN 0 128", "too few columns"),
        ("RTNETLINK answers: Invalid argument", "stderr mixed in"),
        ("0 128 *:25 *:*", "neither netid nor state"),
    ],
)
def test_unreadable_rows_are_kept_as_unparsed_with_their_line(row: str, why: str) -> None:
    result = parse(f"{HEADER_NEW}\n{row}\n")
    assert result.listeners == ()
    assert [(u.line, u.text) for u in result.unparsed] == [(2, row)], why


def test_a_row_whose_owner_cannot_be_read_still_reports_its_socket() -> None:
    """A cut users field: the socket is reported with its owner unknown, and the
    line is kept as unparsed evidence (so the host is not complete)."""
    row = 'tcp LISTEN 0 128 0.0.0.0:4444 0.0.0.0:* users:(("sshd",pid=5,f'
    result = parse(f"{HEADER_NEW}\n{row}\n")
    assert [(x.proto, x.address, x.port, x.processes) for x in result.listeners] == [
        ("tcp", "0.0.0.0", 4444, ())
    ]
    assert [(u.line, u.text) for u in result.unparsed] == [(2, row)]


@pytest.mark.parametrize(
    ("text", "minimum"),
    [
        (HEADER_NEW + "\n", 1.0),
        (HEADER_OLD + "\n", 1.0),
        ('tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=5,fd=3))\n', 0.9),
        ("LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\n", 0.6),
    ],
)
def test_detect_recognises_ss_output(text: str, minimum: float) -> None:
    assert own_detect(text) >= minimum


@pytest.mark.parametrize(
    "text",
    [
        "Proto Recv-Q Send-Q Local Address           Foreign Address         State\n"
        "tcp        0      0 0.0.0.0:22              0.0.0.0:*               LISTEN\n",
        "\nActive Connections\n\n  Proto  Local Address          Foreign Address        State"
        "           PID\n"
        "  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       1712\n",
        "tcp4       0      0  127.0.0.1.25           *.*                    LISTEN\n",
        "COMMAND  PID USER FD TYPE DEVICE SIZE/OFF NODE NAME\n",
    ],
    ids=["linux-netstat", "windows-netstat", "bsd-netstat", "lsof"],
)
def test_detect_does_not_claim_other_formats(text: str) -> None:
    assert own_detect(text) < 0.5


def test_registry_finds_ss_by_command_and_by_content() -> None:
    assert for_command("sudo ss -nltpu").name == "linux-ss"
    assert detect(read_bytes_as_text(SS_FILES[0])).name == "linux-ss"


# ----------------------------------------------------------------- real ss


def _comm() -> str:
    return Path("/proc/self/comm").read_text(encoding="utf-8").rstrip("\n")


@pytest.mark.skipif(shutil.which("ss") is None, reason="iproute2 ss not installed")
def test_real_ss_output_lists_our_sockets_with_our_pid(
    own_sockets: list[tuple[str, int, str, int]],
) -> None:
    run = subprocess.run(
        ["ss", "-tulnpe"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LC_ALL": "C"},
    )
    result = parse(run.stdout)
    assert result.unparsed == ()
    assert result.owners_known
    by_key = {(x.proto, x.family, x.address, x.port): x for x in result.listeners}
    for key in own_sockets:
        listener = by_key[key]
        # the socket's uid is ours (ss -e): numeric here, named by the collector
        assert Process(name=_comm(), pid=os.getpid(), user=str(os.geteuid())) in listener.processes


def test_ipv4_mapped_address_keeps_its_dotted_form() -> None:
    """Python 3.11 would print ::ffff:a00:20f; reports must say ::ffff:10.0.2.15."""
    from fleetscan.addresses import normalise_address

    assert normalise_address("::ffff:10.0.2.15").address == "::ffff:10.0.2.15"
    assert normalise_address("[::ffff:a00:20f]").address == "::ffff:10.0.2.15"
