"""Windows ``netstat -ano``/``-an``/``-anob`` and ``tasklist /FO CSV /NH``."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetscan.parsers import windows_netstat
from fleetscan.parsers.windows_netstat import apply_tasklist, parse, parse_tasklist
from tests.parsers.listener_view import (
    CORPUS,
    FIXTURES,
    corpus_files,
    expected_unparsed,
    expected_views,
    read_bytes_as_text,
    view,
    views,
)

WINDOWS = corpus_files("windows")
AON = CORPUS / "windows/netstat-ano/jc_windows-10_netstat-aon.out"
AONB = CORPUS / "windows/netstat-anob/jc_windows-10_netstat-aonb.out"
SELECT = (
    CORPUS / "windows/netstat-anbo-select-string/"
    "inspec_netstat-anbo-pipe-select-string-pattern.utf8.out"
)
GERMAN = FIXTURES / "windows/netstat-ano-de.txt"
TASKLIST = FIXTURES / "windows/tasklist-fo-csv-nh.txt"


def _parse(path: Path) -> windows_netstat.ParseResult:
    return parse(read_bytes_as_text(path))


@pytest.mark.parametrize("path", WINDOWS, ids=lambda p: p.name)
def test_corpus_file_gives_the_checked_listeners(path: Path) -> None:
    result = _parse(path)
    assert views(result) == expected_views(path)
    assert [u.line for u in result.unparsed] == expected_unparsed(path)
    assert result.parser == "windows-netstat"


@pytest.mark.parametrize(
    ("name", "owners_known"),
    [
        ("netstat/jc_windows-10_netstat.out", False),
        ("netstat-an/jc_windows-10_netstat-an.out", False),
        ("netstat-ano/jc_windows-10_netstat-aon.out", True),
        ("netstat-ano/findprocess_win32-zh-CN_netstat-ano.out", True),
        ("netstat-anob/jc_windows-10_netstat-aonb.out", True),
    ],
)
def test_owners_are_known_only_with_a_pid_column(name: str, owners_known: bool) -> None:
    assert _parse(CORPUS / "windows" / name).owners_known is owners_known


def test_netstat_without_a_has_no_listeners_and_nothing_unparsed() -> None:
    result = _parse(CORPUS / "windows/netstat/jc_windows-10_netstat.out")
    assert result.listeners == ()
    assert result.unparsed == ()


def test_scoped_ipv6_keeps_its_numeric_zone_apart() -> None:
    listener = next(x for x in _parse(AON).listeners if x.zone == "9")
    assert (listener.address, listener.port, listener.family) == (
        "fe80::244e:2f1e:2096:62b2",
        1900,
        6,
    )


def test_same_socket_address_printed_many_times_is_one_listener_with_every_pid() -> None:
    mdns = [x for x in _parse(AON).listeners if x.key == ("udp", 4, "0.0.0.0", 5353)]
    assert len(mdns) == 1
    assert [p.pid for p in mdns[0].processes] == [14156, 27696, 3404]
    assert mdns[0].line == 92


def test_pid_4_is_named_system_without_tasklist() -> None:
    smb = next(x for x in _parse(AON).listeners if x.key == ("tcp", 4, "0.0.0.0", 445))
    assert [(p.name, p.pid) for p in smb.processes] == [("System", 4)]


def test_anob_continuation_lines_name_the_image_and_stay_in_the_evidence() -> None:
    rpc = next(x for x in _parse(AONB).listeners if x.key == ("tcp", 4, "0.0.0.0", 135))
    assert [(p.name, p.pid) for p in rpc.processes] == [("svchost.exe", 1712)]
    assert rpc.raw.splitlines()[1:] == ["  RpcSs", " [svchost.exe]"]


def test_anob_row_without_ownership_information_keeps_the_pid_only() -> None:
    row = next(x for x in _parse(AONB).listeners if x.key == ("tcp", 4, "0.0.0.0", 7680))
    assert [(p.name, p.pid) for p in row.processes] == [(None, 10404)]


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        (22, ("sshd.exe", 1264)),  # "> " prefix stripped, image on the context line
        (135, ("RpcSs", 564)),  # -context 0,1 shows only the service tag
        (80, ("System", 4)),  # "Can not obtain ownership information"
    ],
)
def test_powershell_select_string_output_is_read(port: int, expected: tuple[str, int]) -> None:
    row = next(x for x in _parse(SELECT).listeners if x.key == ("tcp", 4, "0.0.0.0", port))
    assert [(p.name, p.pid) for p in row.processes] == [expected]


def test_chinese_headers_are_not_unparsed_and_states_stay_english() -> None:
    result = _parse(CORPUS / "windows/netstat-ano/findprocess_win32-zh-CN_netstat-ano.out")
    assert result.unparsed == ()
    assert {x.port for x in result.listeners} >= {80, 135, 443, 4012, 4013}
    assert 50506 not in {x.port for x in result.listeners}  # CLOSE_WAIT


def test_german_states_are_read_from_the_row_shape() -> None:
    result = _parse(GERMAN)
    assert result.unparsed == ()
    assert views(result) == [
        "tcp4 0.0.0.0 135 LISTEN @5 1012/-/-",
        "tcp4 0.0.0.0 445 LISTEN @6 4/System/-",
        "tcp4 127.0.0.1 5432 LISTEN @7 3120/-/-",
        "tcp4 192.168.1.20 139 LISTEN @8 4/System/-",
        "tcp6 :: 135 LISTEN @12 1012/-/-",
        "tcp6 ::1 5432 LISTEN @13 3120/-/-",
        "udp4 0.0.0.0 5353 UNCONN @14 2216/-/-",
        "udp6 fe80::1c2d:3e4f:5a6b:7c8d%12 1900 UNCONN @16 4512/-/-",
    ]


@pytest.mark.parametrize(
    ("row", "listening"),
    [
        ("  TCP    0.0.0.0:5000   0.0.0.0:0   BOUND   77", False),  # netstat -q
        ("  TCP    0.0.0.0:5000   0.0.0.0:0   ÉCOUTE  77", True),  # French, shape decides
        ("  TCP    0.0.0.0:5000   HOST:0      LISTENING  77", True),  # netstat -a, names
        ("  TCP    10.0.0.1:5000  10.0.0.2:0  ВРЕМЯ_ОЖИДАНИЯ 77", True),  # peer port 0
        ("  TCP    10.0.0.1:5000  10.0.0.2:80 ВРЕМЯ_ОЖИДАНИЯ 77", False),
        ("  UDP    10.0.0.1:5000  *:*            77", True),
    ],
)
def test_listening_is_decided_by_word_then_shape(row: str, listening: bool) -> None:
    assert bool(parse(row).listeners) is listening


def test_banner_before_the_table_is_unparsed_but_the_rest_parses() -> None:
    text = "Welcome to host42\r\nLast login: today\r\n" + read_bytes_as_text(GERMAN)
    result = parse(text)
    assert [u.text for u in result.unparsed] == ["Welcome to host42", "Last login: today"]
    assert len(result.listeners) == 8


def test_unreadable_row_after_the_header_is_unparsed() -> None:
    text = read_bytes_as_text(GERMAN) + "  TCP    0.0.0.0:notaport   0.0.0.0:0   ABHÖREN 9\r\n"
    result = parse(text)
    assert [u.line for u in result.unparsed] == [17]


def test_tasklist_csv_maps_pids_to_image_names_with_spaces() -> None:
    table = parse_tasklist(TASKLIST.read_text(encoding="utf-8"))
    assert table[6372] == "NVIDIA Web Helper.exe"
    assert table[0] == "System Idle Process"
    assert table[1712] == "svchost.exe"
    assert 1400 not in table


@pytest.mark.parametrize(
    "text",
    [
        '"Abbildname","PID","Sitzungsname","Sitz.-Nr.","Speichernutzung"\r\n'
        '"sshd.exe","1264","Services","0","9,876 K"\r\n',
        '"sshd.exe","1264","Services","0","9.876 K"\n',
        "INFO: No tasks are running which match the specified criteria.\r\n"
        '"sshd.exe","1264","Services","0","9 876 K"\r\n',
    ],
    ids=["localised-header", "dot-grouping", "info-line"],
)
def test_tasklist_header_and_info_lines_are_skipped(text: str) -> None:
    assert parse_tasklist(text) == {1264: "sshd.exe"}


def test_tasklist_info_line_alone_means_no_rows() -> None:
    assert parse_tasklist("INFO: No tasks are running which match the specified criteria.") == {}


def test_apply_tasklist_names_every_known_pid_and_keeps_unknown_ones_empty() -> None:
    result = apply_tasklist(_parse(AON), TASKLIST.read_text(encoding="utf-8"))
    by_port = {x.key: x for x in result.listeners}
    assert view(by_port[("tcp", 4, "127.0.0.1", 29802)]).endswith("6372/NVIDIA Web Helper.exe/-")
    assert [p.name for p in by_port[("tcp", 6, "::", 13656)].processes] == [None]  # 1400 exited
    assert [p.name for p in by_port[("tcp", 4, "0.0.0.0", 445)].processes] == ["System"]
    named = [p for x in result.listeners for p in x.processes if p.name]
    assert len(named) == sum(len(x.processes) for x in result.listeners) - 1  # pid 1400


def test_apply_tasklist_replaces_a_service_tag_with_the_image() -> None:
    result = apply_tasklist(_parse(SELECT), '"svchost.exe","564","Services","0","1 K"')
    row = next(x for x in result.listeners if x.key == ("tcp", 4, "0.0.0.0", 135))
    assert [(p.name, p.pid) for p in row.processes] == [("svchost.exe", 564)]
