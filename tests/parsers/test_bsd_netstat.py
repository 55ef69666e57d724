"""macOS / FreeBSD ``netstat`` in every layout of the corpus, plus macOS 12+ ``-anv``."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetscan.model import ParseResult
from fleetscan.parsers.bsd_netstat import parse
from tests.parsers.listener_view import (
    CORPUS,
    FIXTURES,
    corpus_files,
    expected_unparsed,
    expected_views,
    read_bytes_as_text,
    views,
)

BSD = [p for p in corpus_files("macos", "freebsd") if "/netstat" in str(p)]
MACOS14 = FIXTURES / "macos/netstat-anv-macos14.txt"
FREEBSD = CORPUS / "freebsd"


def _parse(path: Path) -> ParseResult:
    return parse(read_bytes_as_text(path))


@pytest.mark.parametrize("path", BSD, ids=lambda p: p.name)
def test_corpus_file_gives_the_checked_listeners(path: Path) -> None:
    result = _parse(path)
    assert views(result) == expected_views(path)
    assert [u.line for u in result.unparsed] == expected_unparsed(path)


# All six FreeBSD captures are the same host: every layout must agree.
FREEBSD_NUMERIC = [
    "tcp4 127.0.0.1 25 LISTEN @4",
    "tcp4 0.0.0.0 22 LISTEN @5",
    "tcp6 :: 22 LISTEN @6",
    "udp4 0.0.0.0 514 UNCONN @7",
    "udp6 :: 514 UNCONN @8",
]
FREEBSD_NAMES = [x.replace("127.0.0.1", "localhost") for x in FREEBSD_NUMERIC]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("netstat-an/jc_freebsd12_netstat-an.out", FREEBSD_NUMERIC),
        ("netstat-AanP/jc_freebsd12_netstat-AanP.out", FREEBSD_NUMERIC),  # Tcpcb + Log ID
        ("netstat-Aa/jc_freebsd12_netstat-Aa.out", FREEBSD_NAMES),  # *.ssh, localhost.smtp
        ("netstat-aT/jc_freebsd12_netstat-aT.out", FREEBSD_NAMES),  # no state column
        ("netstat-AaT/jc_freebsd12_netstat-AaT.out", FREEBSD_NAMES),  # no state column
        ("netstat-Aax/jc_freebsd12_netstat-Aax.out", FREEBSD_NAMES),  # -x buffer columns
    ],
)
def test_every_freebsd_layout_finds_the_same_sockets(name: str, expected: list[str]) -> None:
    result = _parse(FREEBSD / name)
    assert views(result) == expected
    assert result.unparsed == ()
    assert result.owners_known is False


def test_without_a_state_column_a_tcp_connection_is_not_a_listener() -> None:
    result = _parse(FREEBSD / "netstat-aT/jc_freebsd12_netstat-aT.out")
    assert 3 not in [x.line for x in result.listeners]  # 192.168.71.163.ssh -> .64330


def test_dual_stack_tcp46_is_reported_as_ipv6_wildcard_with_the_old_v_pid() -> None:
    result = _parse(CORPUS / "macos/netstat-anv/findprocess_darwin_netstat-anv.out")
    assert views(result) == ["tcp6 :: 443 LISTEN @6 61044/-/-", "tcp6 :: 8888 LISTEN @7 61044/-/-"]
    assert result.owners_known is True


def test_macos_12_process_pid_column_keeps_names_with_spaces_and_parentheses() -> None:
    result = _parse(MACOS14)
    assert views(result) == [
        "tcp4 0.0.0.0 5900 LISTEN @3 1/launchd/-",
        "tcp6 :: 5900 LISTEN @4 1/launchd/-",
        "tcp4 127.0.0.1 8021 LISTEN @5 56664/Codex (Service)/-",
        "tcp4 127.0.0.1 9222 LISTEN @6 66713/Google Chrome/-",
        "tcp6 :: 7000 LISTEN @7 512/ControlCenter/-",
        "tcp6 ::1 631 LISTEN @9 987/cupsd/-",
        "udp4 0.0.0.0 5353 UNCONN @10 402/mDNSResponder/-",
        "udp4 192.168.1.23 137 UNCONN @12 2211/netbiosd/-",
    ]
    assert result.unparsed == ()
    assert result.owners_known is True


@pytest.mark.parametrize(
    ("name", "line"),
    [
        # -A narrows the column to 18: "192.168.1.221.5063" may be port 50630..50639
        ("netstat-An/jc_osx-10.14.6_netstat-An.out", 67),
        ("netstat-Abn/jc_osx-10.14.6_netstat-Abn.out", 67),
        # host names are cut to 16 characters: "kbrazil-mac.attl" is not an address
        ("netstat/jc_osx-10.14.6_netstat.out", 56),
    ],
)
def test_a_listener_netstat_may_have_truncated_is_unparsed_not_guessed(
    name: str, line: int
) -> None:
    result = _parse(CORPUS / "macos" / name)
    assert line in [u.line for u in result.unparsed]
    assert line not in [x.line for x in result.listeners]


def test_truncated_connections_are_skipped_silently() -> None:
    result = _parse(CORPUS / "macos/netstat-An/jc_osx-10.14.6_netstat-An.out")
    assert [u.line for u in result.unparsed] == [67]
    assert all(x.proto == "udp" for x in result.listeners)  # no TCP LISTEN in this capture


def test_unbound_udp_star_star_is_not_a_listener() -> None:
    text = "udp4       0      0  *.*                    *.*\n"
    assert parse(text).listeners == ()
    assert parse(text).unparsed == ()


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("tcp4  0  0  *.https  *.*  LISTEN", "tcp4 0.0.0.0 443 LISTEN @1"),
        ("udp4  0  0  *.mdns   *.*", "udp4 0.0.0.0 5353 UNCONN @1"),
        ("udp6  0  0  fe80::1%lo0.123  *.*", "udp6 fe80::1%lo0 123 UNCONN @1"),
        ("tcp   0  0  ::1.25   *.*  LISTEN", "tcp6 ::1 25 LISTEN @1"),  # OpenBSD: no suffix
    ],
)
def test_headerless_rows_names_zones_and_plain_protocols(row: str, expected: str) -> None:
    assert views(parse(row + "\n")) == [expected]


def test_unknown_service_name_is_unparsed() -> None:
    result = parse("tcp4  0  0  *.no-such-svc  *.*  LISTEN\n")
    assert result.listeners == ()
    assert [u.line for u in result.unparsed] == [1]


def test_banner_before_the_output_is_unparsed_but_the_rest_parses() -> None:
    text = "Last login: Mon\n" + read_bytes_as_text(
        FREEBSD / "netstat-an/jc_freebsd12_netstat-an.out"
    )
    result = parse(text)
    assert [u.text for u in result.unparsed] == ["Last login: Mon"]
    assert len(result.listeners) == 5


def test_other_sections_are_skipped_even_when_they_look_like_rows() -> None:
    text = read_bytes_as_text(CORPUS / "macos/netstat/jc_osx-10.14.6_netstat.out")
    lines = text.splitlines()
    first_other = next(i for i, x in enumerate(lines, 1) if x.startswith("Active Multipath"))
    result = parse(text)
    assert all(u.line < first_other for u in result.unparsed)
    assert all((x.line or 0) < first_other for x in result.listeners)
