"""A row that ``ss`` or net-tools ``netstat`` printed again word for word
shares the first one's listener: a flood of one row (a hostile host, capped
at ``--max-output-mb``) holds one Listener, not 140,000. Repeats are merged
by the collector in any case, so what a scan reports is exactly what it was
without the sharing; a netstat name broken by a newline still goes to the
row it follows."""

from __future__ import annotations

from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetscan.model import ParseResult
from fleetscan.parsers import linux_ss
from fleetscan.parsers.base import merge_duplicates

HEADER = "Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
ROWS = [
    'tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=1,fd=3)) ino:1 sk:1\n',
    'tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=2,fd=3)) uid:0 ino:2\n',
    'tcp LISTEN 0 128 [::]:22 [::]:* users:(("sshd",pid=1,fd=4)) v6only:1\n',
    'udp UNCONN 0 0 127.0.0.1:53 0.0.0.0:* users:(("dnsmasq",pid=9,fd=4)) uid:107\n',
    "tcp LISTEN 0 128 *:8080 *:*\n",
    'tcp LISTEN 0 128 0.0.0.0:4444 0.0.0.0:* users:(("bd\nx",pid=7,fd=3))\n',
    "tcp LISTEN 0 128 0.0.0.0:1 0.0.0.0:* " + "A" * 80 + "\n",
    "garbage that is no row\n",
]


def merged(text: str) -> tuple[object, ...]:
    return merge_duplicates(linux_ss.parse(text, 5).listeners)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(ROWS), max_size=200), st.integers(0, 3))
def test_sharing_repeats_changes_nothing_a_scan_reports(rows: list[str], window: int) -> None:
    text = HEADER + "".join(rows)
    shared = linux_ss.parse(text, 5)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(linux_ss, "REPEAT_WINDOW", window)  # 0: no sharing at all
        reference = linux_ss.parse(text, 5)
        assert merged(text) == merge_duplicates(reference.listeners)
    assert merge_duplicates(shared.listeners) == merge_duplicates(reference.listeners)
    assert shared.unparsed == reference.unparsed
    assert len(shared.listeners) == len(reference.listeners)


def test_a_flood_of_one_row_holds_one_listener() -> None:
    row = ROWS[6]
    parsed = linux_ss.parse(HEADER + row * 20_000)
    assert len(parsed.listeners) == 20_000
    assert len({id(x) for x in parsed.listeners}) == 1
    (one,) = merge_duplicates(parsed.listeners)
    assert one.line == 2 and one.raw == row.rstrip("\n")


def test_a_flood_cycling_through_rows_holds_one_listener_per_row() -> None:
    cycle = "".join(ROWS[:4])
    parsed = linux_ss.parse(HEADER + cycle * 5_000)
    assert len({id(x) for x in parsed.listeners}) == 4


def test_distinct_rows_are_never_shared() -> None:
    text = HEADER + "".join(
        f'tcp LISTEN 0 128 127.0.0.1:{p} 0.0.0.0:* users:(("haproxy",pid=4,fd={p}))\n'
        for p in range(1, 3_001)
    )
    parsed = linux_ss.parse(text)
    assert len({id(x) for x in parsed.listeners}) == 3_000
    assert [x.line for x in parsed.listeners] == list(range(2, 3_002))


# --- net-tools netstat: the same sharing, and names broken by newlines -------

NETSTAT_HEADER = (
    "Active Internet connections (only servers)\n"
    "Proto Recv-Q Send-Q Local Address           Foreign Address         State"
    "       PID/Program name\n"
)
NETSTAT_ROWS = [
    "tcp        0      0 0.0.0.0:22              0.0.0.0:*               LISTEN      1/sshd\n",
    "tcp        0      0 0.0.0.0:4444            0.0.0.0:*               LISTEN      7/bd\n",
    "x\n",  # the rest of a name holding a newline ("bd\nx"), when it follows bd's row
    "udp        0      0 127.0.0.1:53            0.0.0.0:*                           9/dnsmasq\n",
    "tcp        0      0 10.0.0.1:80             10.0.0.2:5555           ESTABLISHED 3/nginx\n",
    "tcp6       0      0 :::22                   :::*                    LISTEN      -\n",
    "garbage that is no row\n",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(NETSTAT_ROWS), max_size=200), st.integers(0, 3))
def test_netstat_sharing_repeats_changes_nothing_a_scan_reports(
    rows: list[str], window: int
) -> None:
    from fleetscan.parsers import linux_netstat

    text = NETSTAT_HEADER + "".join(rows)
    shared = linux_netstat.parse(text, 3)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(linux_netstat, "REPEAT_WINDOW", window)  # 0: no sharing at all
        reference = linux_netstat.parse(text, 3)
    assert merge_duplicates(shared.listeners) == merge_duplicates(reference.listeners)
    assert shared.unparsed == reference.unparsed
    assert shared.owners_known == reference.owners_known
    assert len(shared.listeners) == len(reference.listeners)


def test_netstat_a_repeated_row_still_takes_its_own_name_continuation() -> None:
    """bd's row twice, the second followed by its name's next piece: the
    second socket row is named ``bd\\nx`` although its reading is shared."""
    from fleetscan.parsers import linux_netstat

    text = NETSTAT_HEADER + NETSTAT_ROWS[1] + NETSTAT_ROWS[1] + NETSTAT_ROWS[2]
    first, second = linux_netstat.parse(text).listeners
    assert first.processes[0].name == "bd"
    assert second.processes[0].name == "bd\nx"
    assert second.raw.endswith("\nx")


def test_netstat_a_flood_of_one_row_holds_one_listener() -> None:
    from fleetscan.parsers import linux_netstat

    parsed = linux_netstat.parse(NETSTAT_HEADER + NETSTAT_ROWS[0] * 20_000)
    assert len(parsed.listeners) == 20_000
    assert len({id(x) for x in parsed.listeners}) == 1


# --- every parser that shares: real captures with rows repeated anywhere -----

SHARING = ("linux_ss", "linux_netstat", "bsd_netstat", "freebsd_sockstat", "windows_netstat")


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_repeating_rows_of_real_captures_changes_nothing_a_scan_reports(
    data: st.DataObject,
) -> None:
    """Any capture of the corpus (each parser also reads the others' formats,
    as garbage), its lines repeated, reordered and cut anywhere: with sharing
    or without, every sharing parser reports the same merged listeners, the
    same unparsed lines and the same number of rows."""
    import importlib

    from tests.parsers.listener_view import CORPUS, read_bytes_as_text

    captures = sorted(CORPUS.rglob("*.out"))
    path = data.draw(st.sampled_from(captures))
    lines = read_bytes_as_text(path).split("\n")[:400]
    head = data.draw(st.integers(0, min(4, len(lines))))
    picks = data.draw(st.lists(st.integers(0, len(lines) - 1), max_size=120))
    text = "\n".join(lines[:head] + [lines[i] for i in picks]) + "\n"
    for name in SHARING:
        module = importlib.import_module(f"fleetscan.parsers.{name}")
        shared = module.parse(text, 4)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(module, "REPEAT_WINDOW", 0)
            reference = module.parse(text, 4)
        assert merge_duplicates(shared.listeners) == merge_duplicates(reference.listeners), name
        assert shared.unparsed == reference.unparsed, name
        assert len(shared.listeners) == len(reference.listeners), name
        assert shared.owners_known == reference.owners_known, name


def readings(module: ModuleType, text: str) -> tuple[int, ParseResult]:
    """How many listeners ``module`` built while parsing ``text``, and its result."""
    built: list[object] = []
    make = module.make_listener

    def counting(**kw: object) -> object:
        built.append(kw)
        return make(**kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(module, "make_listener", counting)
        parsed = module.parse(text)
    return len(built), parsed


@pytest.mark.parametrize(
    ("module", "row"),
    [
        (
            "bsd_netstat",
            "Active Internet connections (including servers)\n"
            "Proto Recv-Q Send-Q  Local Address          Foreign Address        (state)\n",
        ),
        (
            "freebsd_sockstat",
            "USER     COMMAND    PID   FD PROTO  LOCAL ADDRESS         FOREIGN ADDRESS\n",
        ),
    ],
)
def test_bsd_formats_a_flood_of_one_row_holds_one_listener(module: str, row: str) -> None:
    import importlib

    mod = importlib.import_module(f"fleetscan.parsers.{module}")
    body = (
        "tcp4       0      0  *.22                   *.*                    LISTEN\n"
        if module == "bsd_netstat"
        else "root     sshd       812   4  tcp4   *:22                  *:*\n"
    )
    built, parsed = readings(mod, row + body * 5_000)
    assert built == 1  # one reading of the row, not 5,000
    (one,) = parsed.listeners  # these parsers merge themselves
    assert one.port == 22 and one.line == 3 - (module == "freebsd_sockstat")


# --- Windows netstat: repeats, and rows with -b lines of their own -----------

WINDOWS_HEADER = (
    "\nActive Connections\n\n"
    "  Proto  Local Address          Foreign Address        State           PID\n"
)
WINDOWS_LINES = [
    "  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       1712\n",
    "  TCP    0.0.0.0:445            0.0.0.0:0              LISTENING       4\n",
    "  UDP    0.0.0.0:5353           *:*                                    2232\n",
    "  TCP    10.0.0.5:49702         52.1.1.1:443           ESTABLISHED     900\n",
    "  TCP    [::]:135               [::]:0                 LISTENING       1712\n",
    "  TCP    0.0.0.0:4444           0.0.0.0:0              ABHÖREN\n",  # no pid, localised
    "  RpcSs\n",  # -b continuation lines: a service tag,
    " [svchost.exe]\n",  # an image,
    " Can not obtain ownership information\n",  # a message
    "\n",
    "garbage that is no row\n",
    "  TCP    not-an-address         0.0.0.0:0              LISTENING       1\n",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WINDOWS_LINES), max_size=200), st.integers(0, 3))
def test_windows_sharing_repeats_changes_nothing(rows: list[str], window: int) -> None:
    """Rows, -b lines, blanks and garbage in any order and number: with
    sharing the parse is exactly the parse without it (listeners with their
    raw lines, names and line numbers; unparsed lines; owners_known)."""
    from fleetscan.parsers import windows_netstat

    text = WINDOWS_HEADER + "".join(rows)
    shared = windows_netstat.parse(text, 2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(windows_netstat, "REPEAT_WINDOW", window)  # 0: no sharing at all
        reference = windows_netstat.parse(text, 2)
    assert shared == reference


def test_windows_a_flood_of_one_row_is_read_once() -> None:
    from fleetscan.parsers import windows_netstat

    built, parsed = readings(windows_netstat, WINDOWS_HEADER + WINDOWS_LINES[0] * 20_000)
    assert built == 1  # one reading of the row, not 20,000
    (one,) = parsed.listeners
    assert (one.port, one.line, one.raw) == (135, 5, WINDOWS_LINES[0].rstrip("\n"))


def test_windows_a_repeated_row_keeps_its_own_b_lines_and_number() -> None:
    """The same row three times, the second with its image below it: the
    merged listener names the image and keeps both texts as evidence, and the
    row with -b lines is read as its own (its own line number in raw order)."""
    from fleetscan.parsers import windows_netstat

    row, image = WINDOWS_LINES[0], WINDOWS_LINES[7]
    parsed = windows_netstat.parse(WINDOWS_HEADER + row + row + image + row)
    (one,) = parsed.listeners
    assert one.line == 5
    assert [p.name for p in one.processes] == ["svchost.exe"]
    assert one.raw.split("\n") == [row.rstrip("\n"), row.rstrip("\n"), image.rstrip("\n")]
