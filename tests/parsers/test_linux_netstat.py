"""The linux-netstat parser against real net-tools / BusyBox outputs: the
shared corpus, hand-made samples, and netstat run for real on this machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from listener_view import (
    FIXTURES,
    corpus_files,
    expected_unparsed,
    expected_views,
    read_bytes_as_text,
    views,
)

from fleetscan.parsers import detect, for_command
from fleetscan.parsers.linux_netstat import detect as own_detect
from fleetscan.parsers.linux_netstat import parse
from fleetscan.parsers.services import port_of

NETSTAT_FILES = corpus_files(
    "linux/netstat",
    "linux/netstat-aeep",
    "linux/netstat-l",
    "linux/netstat-lnp",
    "linux/netstat-old",
    "linux/netstat-p",
    "linux/netstat-tulnp",
    "linux/netstat-tulpen",
)
TITLE = "Active Internet connections (only servers)"
HEADER_P = (
    "Proto Recv-Q Send-Q Local Address           Foreign Address         State"
    "       PID/Program name    "
)
HEADER_EP = (
    "Proto Recv-Q Send-Q Local Address           Foreign Address         State"
    "       User       Inode      PID/Program name    "
)


def _rows(header: str, *rows: str) -> tuple[list[str], list[int]]:
    result = parse("\n".join([TITLE, header, *rows]) + "\n")
    return views(result), [u.line for u in result.unparsed]


@pytest.mark.parametrize("path", NETSTAT_FILES, ids=lambda p: p.name)
def test_corpus_file_gives_the_checked_listeners(path: Path) -> None:
    result = parse(read_bytes_as_text(path))
    assert views(result) == expected_views(path)
    assert [u.line for u in result.unparsed] == expected_unparsed(path)


@pytest.mark.parametrize(
    ("name", "owners_known"),
    [
        ("jc_centos-7.7_netstat-l.out", False),  # no PID/Program name column
        ("jc_centos-7.7_netstat-sudo-lnp.out", True),
        ("jc_ubuntu-18.04_netstat-sudo-aeep.out", True),
        ("inspec_netstat-tulpen-busybox.out", True),
        ("jc_ubuntu-18.04_netstat.out", False),
    ],
)
def test_owners_are_known_when_the_pid_column_is_there(name: str, owners_known: bool) -> None:
    (path,) = [p for p in NETSTAT_FILES if p.name == name]
    assert parse(read_bytes_as_text(path)).owners_known is owners_known


def _jc_listeners(path: Path) -> Counter[tuple[str, int, int | None]]:
    rows = json.loads(path.with_suffix(".jc.json").read_text(encoding="utf-8"))
    found: Counter[tuple[str, int, int | None]] = Counter()
    for row in rows:
        proto = row.get("transport_protocol")
        if row.get("kind") != "network" or proto not in ("tcp", "udp"):
            continue
        if (proto, row.get("state")) not in (("tcp", "LISTEN"), ("udp", None)):
            continue
        port = port_of(row["local_port"])
        assert port is not None
        found[(proto, port, row.get("pid"))] += 1
    return found


@pytest.mark.parametrize(
    "path",
    [p for p in NETSTAT_FILES if p.with_suffix(".jc.json").exists()],
    ids=lambda p: p.name,
)
def test_corpus_listeners_agree_with_jc_on_ports_and_pids(path: Path) -> None:
    ours = Counter(
        (x.proto, x.port, x.processes[0].pid if x.processes else None)
        for x in parse(read_bytes_as_text(path)).listeners
    )
    assert ours == _jc_listeners(path)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        pytest.param(
            "tcp6       0      0 ::1:25                  :::*                    LISTEN"
            "      1469/master         ",
            ["tcp6 ::1 25 LISTEN @3 1469/master/-"],
            id="unbracketed-v6-port-after-last-colon",
        ),
        pytest.param(
            "udp        0      0 0.0.0.0:68              0.0.0.0:*"
            "                           1939/dhclient       ",
            ["udp4 0.0.0.0 68 UNCONN @3 1939/dhclient/-"],
            id="udp-empty-state-is-unconn",
        ),
        pytest.param(
            "tcp        0      0 0.0.0.0:22              0.0.0.0:*               LISTEN"
            "      600/sshd: /usr/sbin",
            ["tcp4 0.0.0.0 22 LISTEN @3 600/sshd: /usr/sbin/-"],
            id="program-name-with-spaces",
        ),
        pytest.param(
            "tcp        0      0 0.0.0.0:9000            0.0.0.0:*               LISTEN"
            '      77/a  b (c) "d"   ',
            ['tcp4 0.0.0.0 9000 LISTEN @3 77/a  b (c) "d"/-'],
            id="inner-spacing-and-quotes-are-kept",
        ),
        pytest.param(
            "tcp        0      0 0.0.0.0:5432            0.0.0.0:*               LISTEN      -",
            ["tcp4 0.0.0.0 5432 LISTEN @3"],
            id="dash-means-owner-unknown",
        ),
        pytest.param(
            "tcp6       0      0 192.168.1.123:8005      :::*                    LISTEN"
            "      1234/java",
            ["tcp6 192.168.1.123 8005 LISTEN @3 1234/java/-"],
            id="ipv4-mapped-under-tcp6-stays-family-6",
        ),
        pytest.param(
            "udp        0      0 10.0.0.5:68             10.0.0.1:67             ESTABLISHED"
            " 900/dhclient",
            [],
            id="connected-udp-is-not-a-listener",
        ),
        pytest.param(
            "tcp        0      0 10.0.0.5:22             10.0.0.9:51000          ESTABLISHED"
            " 1/sshd",
            [],
            id="established-tcp-is-skipped",
        ),
        pytest.param(
            "raw6       0      0 :::58                   :::*                    7"
            "           865/NetworkManager  ",
            [],
            id="raw-is-not-a-tcp-udp-listener",
        ),
    ],
)
def test_row_forms(row: str, expected: list[str]) -> None:
    assert _rows(HEADER_P, row) == (expected, [])


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        pytest.param(
            "tcp        0      0 127.0.0.53:53           0.0.0.0:*               LISTEN"
            "      systemd-resolve 26985      893/systemd-resolve ",
            ["tcp4 127.0.0.53 53 LISTEN @3 893/systemd-resolve/systemd-resolve"],
            id="user-overflows-its-column",
        ),
        pytest.param(
            "udp        0      0 0.0.0.0:111             0.0.0.0:*                   0"
            "          8689        545/rpcbind",
            ["udp4 0.0.0.0 111 UNCONN @3 545/rpcbind/0"],
            id="numeric-user-misaligned",
        ),
        pytest.param(
            "tcp        0      0 0.0.0.0:22              0.0.0.0:*               LISTEN"
            "      0          21699      -",
            ["tcp4 0.0.0.0 22 LISTEN @3"],
            id="user-inode-then-unknown-owner",
        ),
    ],
)
def test_extended_rows(row: str, expected: list[str]) -> None:
    assert _rows(HEADER_EP, row) == (expected, [])


@pytest.mark.parametrize(
    ("row", "why"),
    [
        (
            "tcp        0      0 0.0.0.0:nosuchsvc       0.0.0.0:*               LISTEN      1/x",
            "unknown service name",
        ),
        ("tcp        0      0 0.0.0.0:22              0.0.0.0:*", "tcp row without a state"),
        ("tcp        x      0 0.0.0.0:22              0.0.0.0:*   LISTEN", "queue not a number"),
        (
            "tcp        0      0 0.0.0.0:22              0.0.0.0:*   LISTEN   what is this",
            "unknown trailing columns",
        ),
        ("tcp        0      0 0.0.0.0                 0.0.0.0:*   LISTEN", "no port"),
        ("garbage that is not netstat", "not a socket row"),
    ],
)
def test_unreadable_rows_are_kept_as_unparsed(row: str, why: str) -> None:
    assert _rows(HEADER_P, row) == ([], [3]), why


def test_unix_and_bluetooth_sections_and_notes_are_recognised() -> None:
    text = "\n".join(
        [
            "(Not all processes could be identified, non-owned process info",
            " will not be shown, you would have to be root to see it all.)",
            TITLE,
            HEADER_P,
            "tcp        0      0 0.0.0.0:22              0.0.0.0:*               LISTEN      -",
            "Active UNIX domain sockets (only servers)",
            "Proto RefCnt Flags       Type       State         I-Node   PID/Program name     Path",
            "unix  2      [ ACC ]     STREAM     LISTENING     13657    -        /run/x",
            "Active Bluetooth connections (w/o servers)",
            "Proto  Destination       Source            State         PSM DCID   SCID",
            "l2cap  00:00:00:00:00:00 11:22:33:44:55:66 CONNECTED     1   64     64",
        ]
    )
    result = parse(text)
    assert views(result) == ["tcp4 0.0.0.0 22 LISTEN @5"]
    assert result.unparsed == ()
    # not root: the `-` listener belongs to someone else, owners are NOT known
    assert result.owners_known is False


def test_crlf_and_headerless_continuation_read_the_same() -> None:
    row = "udp        0      0 0.0.0.0:5353            0.0.0.0:*      442/avahi-daemon: r"
    result = parse(f"{row}\r\n")
    assert views(result) == ["udp4 0.0.0.0 5353 UNCONN @1 442/avahi-daemon: r/-"]
    assert result.listeners[0].raw == row
    assert result.owners_known  # a pid field proves the -p layout


@pytest.mark.parametrize(
    ("text", "minimum"),
    [
        (f"{TITLE}\n{HEADER_P}\n", 0.9),
        ("tcp        0      0 0.0.0.0:22              0.0.0.0:*               LISTEN\n", 0.6),
    ],
)
def test_detect_recognises_linux_netstat(text: str, minimum: float) -> None:
    assert own_detect(text) >= minimum


@pytest.mark.parametrize(
    "text",
    [
        "\nActive Connections\n\n  Proto  Local Address          Foreign Address        State"
        "           PID\n"
        "  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       1712\n",
        "Active Internet connections (including servers)\n"
        "Proto Recv-Q Send-Q Local Address          Foreign Address        (state)\n"
        "tcp4       0      0 127.0.0.1.25           *.*                    LISTEN\n",
        "Netid State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n",
    ],
    ids=["windows-netstat", "bsd-netstat", "ss"],
)
def test_detect_does_not_claim_other_formats(text: str) -> None:
    assert own_detect(text) < 0.5


def test_registry_finds_netstat_by_command_and_by_content() -> None:
    assert for_command("sudo netstat -tulpn").name == "linux-netstat"
    assert for_command("netstat -tulnpW").name == "linux-netstat"
    path = FIXTURES / "corpus/linux/netstat-lnp/jc_centos-7.7_netstat-sudo-lnp.out"
    assert detect(read_bytes_as_text(path)).name == "linux-netstat"


# ------------------------------------------------------------- real netstat


def _argv0_base() -> str:
    argv0 = Path("/proc/self/cmdline").read_bytes().split(b"\0", 1)[0].decode()
    return argv0.rsplit("/", 1)[-1]


@pytest.mark.skipif(shutil.which("netstat") is None, reason="net-tools netstat not installed")
def test_real_netstat_output_lists_our_sockets_with_our_pid(
    own_sockets: list[tuple[str, int, str, int]],
) -> None:
    run = subprocess.run(
        ["netstat", "-tulnp"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LC_ALL": "C"},
    )
    result = parse(run.stdout)
    assert result.unparsed == ()
    by_key = {(x.proto, x.family, x.address, x.port): x for x in result.listeners}
    for key in own_sockets:
        (owner,) = by_key[key].processes
        assert owner.pid == os.getpid()
        # net-tools shows argv[0]'s base name, cut to fit its column
        assert owner.name and _argv0_base().startswith(owner.name)
