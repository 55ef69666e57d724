"""``lsof`` table and ``-F`` field output (macOS and Linux)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetscan.model import ParseResult
from fleetscan.parsers.lsof import decode_name, parse
from tests.parsers.listener_view import (
    CORPUS,
    FIXTURES,
    corpus_files,
    expected_unparsed,
    expected_views,
    read_bytes_as_text,
    views,
)

LSOF = corpus_files("linux/lsof", "macos/lsof-nP-i-F")
MACOS_TABLES = FIXTURES / "macos/lsof-nP-iTCP-sTCP-LISTEN-then-iUDP.txt"
HEADER = "COMMAND   PID  USER   FD   TYPE DEVICE SIZE/OFF NODE NAME\n"


def _parse(path: Path) -> ParseResult:
    return parse(read_bytes_as_text(path))


@pytest.mark.parametrize("path", LSOF, ids=lambda p: p.name)
def test_corpus_file_gives_the_checked_listeners(path: Path) -> None:
    result = _parse(path)
    assert views(result) == expected_views(path)
    assert [u.line for u in result.unparsed] == expected_unparsed(path)
    assert result.owners_known is True


@pytest.mark.parametrize("name", ["jc_centos-7.7_lsof.out", "jc_ubuntu-18.04_lsof.out"])
def test_non_root_lsof_lists_files_but_no_listener_and_nothing_unparsed(name: str) -> None:
    result = _parse(CORPUS / "linux/lsof" / name)
    assert (result.listeners, result.unparsed) == ((), ())


def test_a_socket_repeated_for_every_thread_is_one_listener_with_one_line_of_evidence() -> None:
    result = _parse(CORPUS / "linux/lsof/jc_ubuntu-18.04_lsof-sudo.out")
    containerd = [x for x in result.listeners if x.port == 42351]
    assert len(containerd) == 1
    assert [(p.name, p.pid, p.user) for p in containerd[0].processes] == [
        ("container", 1112, "root")
    ]
    assert "\n" not in containerd[0].raw


def test_service_names_and_host_names_without_n_and_p() -> None:
    result = _parse(CORPUS / "linux/lsof/jc_centos-7.7_lsof-sudo.out")
    assert views(result)[:3] == [
        "udp4 localhost 323 UNCONN @1015 795/chronyd/chrony",
        "udp6 localhost 323 UNCONN @1016 795/chronyd/chrony",
        "tcp4 0.0.0.0 22 LISTEN @2023 1206/sshd/root",
    ]


def test_macos_tables_listen_then_udp_parse_as_one_output() -> None:
    result = _parse(MACOS_TABLES)
    assert result.unparsed == ()
    assert views(result) == [
        "tcp6 :: 22 LISTEN @2 1/launchd/root",
        "tcp4 0.0.0.0 22 LISTEN @3 1/launchd/root",
        "tcp4 0.0.0.0 49152 LISTEN @4 512/rapportd/alice",
        "tcp6 :: 49152 LISTEN @5 512/rapportd/alice",
        "tcp4 0.0.0.0 7000 LISTEN @6 640/ControlCe/alice",
        "tcp6 :: 7000 LISTEN @7 640/ControlCe/alice",
        "tcp4 127.0.0.1 8080 LISTEN @8 4242/my ser/alice",
        "tcp4 127.0.0.1 8081 LISTEN @9 4243/сerver/alice",
        "tcp6 ::1 5432 LISTEN @10 888/postgres/_postgres",
        "tcp4 127.0.0.1 5432 LISTEN @11 888/postgres/_postgres 901/postgres/_postgres",
        "udp4 0.0.0.0 5353 UNCONN @14 402/mDNSRespo/_mdnsresponder",
        "udp6 :: 5353 UNCONN @15 402/mDNSRespo/_mdnsresponder",
        "udp4 192.168.1.23 137 UNCONN @18 2211/netbiosd/_netbios",
    ]


@pytest.mark.parametrize(
    ("escaped", "decoded"),
    [
        ("my\\x20ser", "my ser"),
        ("\\xd1\\x81erver", "сerver"),
        ("tab\\there", "tab\there"),
        ("back\\\\slash", "back\\slash"),
        ("half\\xd1", "half\ufffd"),  # a cut UTF-8 sequence does not raise
        ("plain", "plain"),
    ],
)
def test_escaped_command_names_are_decoded(escaped: str, decoded: str) -> None:
    assert decode_name(escaped) == decoded


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("sshd 1 root 3u IPv6 0x1 0t0 TCP *:22 (LISTEN)", "tcp6 :: 22 LISTEN @2 1/sshd/root"),
        (
            "cupsd 2 root 5u IPv6 0x2 0t0 TCP [::1]:631 (LISTEN)",
            "tcp6 ::1 631 LISTEN @2 2/cupsd/root",
        ),
        ("ntpd 3 501 20u IPv6 0x3 0t0 UDP [fe80::1]:123", "udp6 fe80::1 123 UNCONN @2 3/ntpd/501"),
        ("x 4 root 6u IPv4 0x4 0t0 TCP *:8080 (LISTEN)", "tcp4 0.0.0.0 8080 LISTEN @2 4/x/root"),
    ],
)
def test_table_rows(row: str, expected: str) -> None:
    assert views(parse(HEADER + row + "\n")) == [expected]


@pytest.mark.parametrize(
    "row",
    [
        "ssh 5 alice 3u IPv4 0x5 0t0 TCP 10.0.0.1:50000->10.0.0.2:22 (ESTABLISHED)",
        "sshd 6 root 3u IPv4 0x6 0t0 TCP 10.0.0.1:22->10.0.0.2:50000 (CLOSE_WAIT)",
        "bash 7 root cwd DIR 8,2 4096 2 /",
        "bash 7 root 3u unix 0xffff 0t0 1234 /run/x.sock type=STREAM",
        "ntpd 8 root 21u IPv4 0x8 0t0 UDP *:*",
    ],
)
def test_connections_and_non_network_files_are_skipped_silently(row: str) -> None:
    result = parse(HEADER + row + "\n")
    assert (result.listeners, result.unparsed) == ((), ())


def test_noise_before_the_header_and_unknown_services_are_unparsed() -> None:
    text = (
        "lsof: WARNING: can't stat() fuse file system /run/user/1000/gvfs\n"
        + HEADER
        + "sshd 1 root 3u IPv4 0x1 0t0 TCP *:ssh (LISTEN)\n"
        + "odd 2 root 4u IPv4 0x2 0t0 TCP *:no-such-service (LISTEN)\n"
    )
    result = parse(text)
    assert [u.line for u in result.unparsed] == [1, 4]
    assert views(result) == ["tcp4 0.0.0.0 22 LISTEN @3 1/sshd/root"]


def test_field_output_uses_tst_for_tcp_state_and_login_name_for_user() -> None:
    text = "\n".join(
        [
            "p100",
            "cnginx",
            "u0",
            "Lroot",
            "f6",
            "tIPv4",
            "PTCP",
            "n*:80",
            "TST=LISTEN",
            "TQR=0",
            "f7",
            "tIPv4",
            "PTCP",
            "n10.0.0.1:80->10.0.0.9:5000",
            "TST=ESTABLISHED",
            "f8",
            "tIPv6",
            "PTCP",
            "n[::1]:8080",
            "TST=CLOSED",
            "p101",
            "cnginx",
            "u33",
            "f6",
            "tIPv4",
            "PTCP",
            "n*:80",
            "TST=LISTEN",
        ]
    )
    assert views(parse(text)) == ["tcp4 0.0.0.0 80 LISTEN @5 100/nginx/root 101/nginx/33"]


def test_field_output_terminated_by_nul_is_read() -> None:
    text = "p100\x00csshd\x00\nf3\x00tIPv4\x00PTCP\x00n*:22\x00TST=LISTEN\x00\n"
    assert views(parse(text)) == ["tcp4 0.0.0.0 22 LISTEN @2 100/sshd/-"]


def test_field_output_with_noise_keeps_the_noise_as_unparsed() -> None:
    text = "Welcome!\np1\ncx\ntIPv4\nPUDP\nn*:53\n"
    result = parse(text)
    assert [u.line for u in result.unparsed] == [1]
    assert views(result) == ["udp4 0.0.0.0 53 UNCONN @4 1/x/-"]
