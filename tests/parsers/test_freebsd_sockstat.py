"""FreeBSD ``sockstat``: corpus captures and the layouts of newer releases."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetscan.parsers.freebsd_sockstat import parse
from tests.parsers.listener_view import (
    CORPUS,
    corpus_files,
    expected_unparsed,
    expected_views,
    read_bytes_as_text,
    views,
)

HEADER = "USER     COMMAND    PID   FD PROTO  LOCAL ADDRESS         FOREIGN ADDRESS\n"


@pytest.mark.parametrize("path", corpus_files("freebsd/sockstat-46l", "freebsd/sockstat-4c"))
def test_corpus_file_gives_the_checked_listeners(path: Path) -> None:
    result = parse(read_bytes_as_text(path))
    assert views(result) == expected_views(path)
    assert [u.line for u in result.unparsed] == expected_unparsed(path)


def test_unknown_owner_is_a_listener_without_process() -> None:
    result = parse(read_bytes_as_text(CORPUS / "freebsd/sockstat-46l/inspec_sockstat.out"))
    nfs = next(x for x in result.listeners if x.port == 2049)
    assert (nfs.proto, nfs.family, nfs.address, nfs.processes) == ("udp", 6, "::", ())


def test_glued_command_and_pid_of_a_connected_socket_is_recognised_and_skipped() -> None:
    result = parse(read_bytes_as_text(CORPUS / "freebsd/sockstat-4c/salt_sockstat-fat-pid.out"))
    assert result.listeners == ()
    assert result.unparsed == ()


@pytest.mark.parametrize(
    ("row", "owner"),
    [
        ("salt-master python2.781106 35 tcp4  127.0.0.1:4506  *:*", "81106/python2.7/salt-master"),
        ("verylongusername1 nginx4242 5 tcp4  127.0.0.1:4506  *:*", "4242/nginx/verylongusername1"),
    ],
)
def test_glued_command_and_pid_are_split_at_the_longest_valid_pid(row: str, owner: str) -> None:
    assert views(parse(HEADER + row + "\n")) == [f"tcp4 127.0.0.1 4506 LISTEN @2 {owner}"]


def test_a_command_seen_unglued_elsewhere_decides_an_ambiguous_split() -> None:
    text = (
        HEADER
        + "root     python2.78 100   3  tcp4   127.0.0.1:1       *:*\n"
        + "salt-master python2.781106 35 tcp4  127.0.0.1:4506  *:*\n"
    )
    assert views(parse(text))[1].endswith("1106/python2.78/salt-master")


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("www  nginx  124  4  tcp46  *:80  *:*", "tcp6 :: 80 LISTEN @2 124/nginx/www"),
        ("root sshd   1    3  tcp6   ::1:22 *:*", "tcp6 ::1 22 LISTEN @2 1/sshd/root"),
        ("root sshd   1    3  tcp6   [::1]:22 *:*", "tcp6 ::1 22 LISTEN @2 1/sshd/root"),
        ("root ntpd   9    21 udp4   10.0.0.1:123 *:*", "udp4 10.0.0.1 123 UNCONN @2 9/ntpd/root"),
        (
            "root nginx: master 123 4 tcp4 *:80 *:*",
            "tcp4 0.0.0.0 80 LISTEN @2 123/nginx: master/root",
        ),
    ],
)
def test_rows_of_every_shape(row: str, expected: str) -> None:
    assert views(parse(HEADER + row + "\n")) == [expected]


@pytest.mark.parametrize(
    "row",
    [
        "root sshd  668  5  tcp4  10.0.0.1:22  10.0.0.9:50000",  # connection
        "root ntpd  9    22 udp4  10.0.0.1:123 10.0.0.2:123",  # connected UDP
        "root cron  70   4  stream /var/run/cron.sock",  # UNIX socket
        "root dhcli 80   5  udp4  *:*          *:*",  # unbound
    ],
)
def test_non_listening_rows_are_skipped_silently(row: str) -> None:
    result = parse(HEADER + row + "\n")
    assert (result.listeners, result.unparsed) == ((), ())


def test_state_column_of_newer_releases_decides_tcp_listening() -> None:
    header = HEADER.rstrip("\n") + " PATH STATE   CONN STATE\n"
    text = (
        header
        + "root sshd 668 4 tcp4 *:22 *:*                        LISTEN\n"
        + "root sshd 669 5 tcp4 10.0.0.1:2222 *:*               CLOSED\n"
    )
    assert views(parse(text)) == ["tcp4 0.0.0.0 22 LISTEN @2 668/sshd/root"]


def test_one_socket_shared_by_several_processes_is_one_listener() -> None:
    text = HEADER + "root nginx 123 4 tcp4 *:80 *:*\nwww nginx 124 4 tcp4 *:80 *:*\n"
    assert views(parse(text)) == ["tcp4 0.0.0.0 80 LISTEN @2 123/nginx/root 124/nginx/www"]


def test_garbage_lines_are_unparsed_and_the_rest_parses() -> None:
    text = (
        "*** MOTD ***\n" + HEADER + "root sshd 668 4 tcp4 *:22 *:*\nroot sshd x 4 tcp4 *:22 *:*\n"
    )
    result = parse(text)
    assert [u.line for u in result.unparsed] == [1, 4]
    assert len(result.listeners) == 1
