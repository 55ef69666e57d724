"""What a host costs in memory: what its HostScan keeps, and the peak of reading it.

Memory is deterministic enough to bound in a test (tracemalloc counts the
Python allocations of this process, whatever the machine's load); wall time
is not, so there is none here. The figures of the whole CLI (peak RSS, every
report format) come from ``python -m bench.memory``.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetscan.collectors.base import EVIDENCE_STDOUT, MAX_OUTPUT_LINES
from fleetscan.collectors.posix import interpret_framed, interpret_posix, split_sections
from fleetscan.model import HostScan, ScanRun, Status, Target
from fleetscan.parsers.base import MAX_RAW_LINES
from fleetscan.policy import evaluate, load_policies
from fleetscan.reports import write_reports
from fleetscan.runner import scan_all
from fleetscan.testing.fleet import sim_fleet
from fleetscan.testing.simhost import SimHost, mass_ss_keys, mass_ss_output, with_garbage
from fleetscan.transports.base import CommandResult
from tests.orchestration.test_host_statuses import GOOD_PS, GOOD_SS, assert_good_listeners, good

MIB = 1024 * 1024
NONCE = "0123abcd"
MARK = f"@@FLEETSCAN-{NONCE}"


def _framed_output(listing: bytes, *, ended: bool = True) -> bytes:
    head = f"{MARK} uid 0\n{MARK} os Linux\n{MARK} begin ss\n".encode()
    tail = f"{MARK} end ss 0\n{MARK} begin ps\n4242 root haproxy\n{MARK} end ps 0\n"
    return head + listing + (tail.encode() if ended else b"")


# --------------------------------------------------------------------------- what a host keeps


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> dict[str, HostScan]:
    """One real scan (asyncssh, simulated hosts): healthy, garbage lines, a flood."""
    hosts = [
        good("healthy"),
        SimHost("garbage", outputs={"ss": with_garbage(GOOD_SS)}, ps=GOOD_PS),
        good("flood", behaviour="flood"),
    ]

    async def main() -> list[HostScan]:
        async with sim_fleet(tmp_path_factory.mktemp("kept"), hosts) as fleet:
            settings = fleet.settings(max_output=2 * MIB, host_timeout=30.0)
            return await scan_all(fleet.targets, settings)

    return {s.host: s for s in asyncio.run(main())}


def test_a_healthy_host_keeps_its_lines_not_its_whole_output(kept: dict[str, HostScan]) -> None:
    scan = kept["healthy"]
    assert scan.status is Status.OK, scan.message
    assert_good_listeners(scan)
    # the command is still on record, its output lives on as each listener's own line
    assert [e.command for e in scan.evidence] == ["sh -s <fleetscan posix collector>"]
    assert [e.stdout for e in scan.evidence] == [""]
    assert scan.evidence[0].exit_status == 0
    ssh = next(x for x in scan.listeners if x.port == 22)
    assert "0.0.0.0:22" in ssh.raw and '"sshd"' in ssh.raw


def test_a_host_with_unread_lines_keeps_its_output_as_evidence(
    kept: dict[str, HostScan],
) -> None:
    scan = kept["garbage"]
    assert scan.status is Status.PARTIAL and scan.unparsed
    out = scan.evidence[0].stdout
    assert "binary" in out and "0.0.0.0:22" in out  # the whole (small) output
    assert len(out) <= EVIDENCE_STDOUT


def test_a_flooding_host_keeps_a_bounded_excerpt_and_one_listener(
    kept: dict[str, HostScan],
) -> None:
    scan = kept["flood"]
    assert scan.status is Status.PARTIAL and "size limit" in scan.message
    (ev,) = scan.evidence
    assert ev.truncated
    assert 0 < len(ev.stdout) <= EVIDENCE_STDOUT  # of the 2 MiB read
    # one row printed 17,000 times is one socket, with a bounded set of lines
    (listener,) = scan.listeners
    assert listener.port == 1
    assert len(listener.raw.split("\n")) <= MAX_RAW_LINES
    assert len(scan.unparsed) <= 1  # at most the row the cap cut in two


# --------------------------------------------------------------------------- peaks


#: what a flooding host prints: one row over and over, `yes` (two bytes a
#: line: 8 million lines in 16 MiB), short garbage lines, long garbage lines
FLOODS = {
    "row": b"tcp LISTEN 0 128 0.0.0.0:1 0.0.0.0:* " + b"A" * 80 + b"\n",
    "yes": b"y\n",
    "garbage": b"garbage that is no row at all\n",
    "long-garbage": b"x" * 300 + b"\n",
    "one-line": b"x" * (4 * MIB),  # no line end at all
}


@pytest.mark.parametrize("flood_kind", list(FLOODS))
def test_reading_a_flood_holds_at_most_four_times_the_cap(flood_kind: str) -> None:
    """What the POSIX collector does with a cut output (split, drop the raw
    bytes, parse, merge) peaks under 4x the cap, the bytes included, whatever
    the flood's lines are (their number is bounded too: MAX_OUTPUT_LINES)."""
    cap = 16 * MIB  # the default --max-output-mb
    row = FLOODS[flood_kind]
    flood = _framed_output(row * (cap // len(row) + 1), ended=False)[:cap]
    gc.collect()
    tracemalloc.start()
    try:
        stdout = bytes(flood)  # what the transport hands over: counted
        del flood
        result = CommandResult("sh -s", None, stdout, b"", 1.0, truncated=True)
        del stdout
        framed = split_sections(result.stdout, NONCE)
        result = replace(result, stdout=b"")  # as PosixCollector._run does
        got = interpret_framed("linux", framed, result)
        del framed
        gc.collect()
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.status is (Status.PARTIAL if flood_kind == "row" else Status.PARSE_ERROR)
    assert len(got.listeners) == (flood_kind == "row")
    assert len(got.unparsed) <= MAX_OUTPUT_LINES + 1
    if flood_kind in ("yes", "garbage"):  # 8 million and 559,000 lines: cut
        assert f"ss has more than {MAX_OUTPUT_LINES:,} lines" in got.message
    assert peak <= 4 * cap, f"peak {peak / MIB:.1f} MiB for a {cap / MIB:.0f} MiB cap"
    if flood_kind == "row":
        assert kept <= 256 * 1024, f"{kept / 1024:.0f} KiB kept of a cut flood"


N = 20_000


@pytest.fixture(scope="module")
def mass_run() -> tuple[ScanRun, int, int]:
    """A host of N distinct listeners, parsed and judged: the run, and the
    bytes (tracemalloc) it keeps and peaked at, its raw output not counted."""
    output = _framed_output(mass_ss_output(N).encode())
    result = CommandResult("sh -s", 0, output, b"", 1.0)
    del output
    policy = load_policies(["baseline"])
    gc.collect()
    tracemalloc.start()
    try:
        got = interpret_posix("linux", result, NONCE)
        scan = HostScan(Target("mass", "127.0.0.1"), got.status, listeners=got.listeners)
        del got
        now = datetime.now(UTC)
        findings = tuple(evaluate(policy, [scan], now=now))
        run = ScanRun("mass", now, now, (scan,), findings)
        gc.collect()
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return run, kept, peak


def test_parse_and_policy_cost_under_1_kb_per_listener(
    mass_run: tuple[ScanRun, int, int],
) -> None:
    run, kept, peak = mass_run
    (scan,) = run.scans
    assert scan.status is Status.OK
    assert {x.key for x in scan.listeners} == mass_ss_keys(N)
    assert kept / N <= 512, f"{kept / N:.0f} bytes kept per listener"
    assert peak / N <= 1024, f"{peak / N:.0f} bytes per listener at the peak"


#: bytes per listener a writer may add while it writes. report.html embeds
#: every listener's line in its data block up to 20,000 listeners (about
#: 0.6-0.7 KB per listener then, 0.35 KB above that, where lines are left out)
WRITER_BOUND = {"json": 512, "junit": 512, "html": 1024, "csv": 256}


@pytest.mark.parametrize("fmt", ["json", "junit", "html", "csv"])
def test_writing_a_report_adds_a_bounded_cost_per_listener(
    mass_run: tuple[ScanRun, int, int], fmt: str, tmp_path: Path
) -> None:
    """report.json is written an array item at a time, report.html a rendered
    chunk at a time, the CSV files a row at a time (junit.xml has a testcase
    per finding, not per listener): no writer holds a whole document of a
    listener each."""
    run = mass_run[0]
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        written = write_reports(run, tmp_path, [fmt])
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    (path,) = [p for p in written[fmt] if p.name in ("listeners.csv", f"report.{fmt}", "junit.xml")]
    size = path.stat().st_size
    if fmt != "junit":
        assert size > N * 20  # every listener is in the report
    assert peak / N <= WRITER_BOUND[fmt], f"{fmt}: {peak / N:.0f} bytes per listener"
    if fmt == "json":
        assert peak <= size / 4, f"{peak / MIB:.1f} MiB held for a {size / MIB:.1f} MiB file"


@pytest.mark.parametrize("fmt", ["json", "junit"])
def test_a_finding_on_every_listener_is_written_one_at_a_time(
    mass_run: tuple[ScanRun, int, int], fmt: str, tmp_path: Path
) -> None:
    """A strict map (every listener but ssh undocumented) makes a finding, and
    a JUnit testcase, per listener: report.json and junit.xml still hold one
    at a time."""
    (scan,) = mass_run[0].scans
    strict = tmp_path / "strict.yaml"
    strict.write_text(
        "version: 1\nexpected:\n  - id: map\n    hosts: ['*']\n"
        "    listeners:\n      - {proto: tcp, port: 22, process: sshd}\n"
    )
    now = datetime.now(UTC)
    findings = tuple(evaluate(load_policies([str(strict)]), [scan], now=now))
    assert len(findings) == N
    run = ScanRun("strict", now, now, (scan,), findings)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        written = write_reports(run, tmp_path / "out", [fmt])
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    text = written[fmt][0].read_text()
    assert text.count("undocumented") >= N
    assert peak / N <= 512, f"{fmt}: {peak / N:.0f} bytes per finding while writing"


@pytest.mark.parametrize("shape", ["as-is", "no-hosts", "no-listeners"])
def test_the_streamed_report_json_is_the_document_json_dump_writes(shape: str) -> None:
    """Made while it is written (generators for arrays), byte for byte the
    document ``json.dump(run_to_dict(run), indent=2)`` writes, empty arrays too."""
    import io
    import json

    from fleetscan.reports.json import run_to_dict, stream_json
    from tests.reports.conftest import build_hostile_run, build_realistic_run

    for run in (build_realistic_run(), build_hostile_run()):
        if shape == "no-hosts":
            run = replace(run, scans=(), findings=())
        elif shape == "no-listeners":
            scans = tuple(replace(s, listeners=(), unparsed=()) for s in run.scans)
            run = replace(run, scans=scans, findings=())
        out = io.StringIO()
        stream_json(run, out)
        assert out.getvalue() == json.dumps(run_to_dict(run), ensure_ascii=False, indent=2) + "\n"


@pytest.mark.parametrize("shape", ["as-is", "no-hosts", "no-findings"])
def test_the_streamed_junit_is_the_document_build_tree_makes(shape: str) -> None:
    """One testcase at a time, counts first: byte for byte build_tree's document."""
    import io

    from fleetscan.reports.junit import build_tree, stream_junit
    from tests.reports.conftest import build_hostile_run, build_realistic_run

    for run in (build_realistic_run(), build_hostile_run()):
        if shape == "no-hosts":
            run = replace(run, scans=(), findings=())
        elif shape == "no-findings":
            run = replace(run, findings=())
        whole = io.StringIO()
        whole.write("<?xml version='1.0' encoding='utf-8'?>\n")
        build_tree(run).write(whole, encoding="unicode")
        whole.write("\n")
        streamed = io.StringIO()
        stream_junit(run, streamed)
        assert streamed.getvalue() == whole.getvalue()


WINDOWS_HEAD = (
    b"\r\nActive Connections\r\n\r\n"
    b"  Proto  Local Address          Foreign Address        State           PID\r\n"
)
WINDOWS_FLOODS = {
    "row": b"  TCP    0.0.0.0:1              0.0.0.0:0              LISTENING       4\r\n",
    "yes": b"y\r\n",
}


@pytest.mark.parametrize("flood_kind", list(WINDOWS_FLOODS))
def test_reading_a_windows_flood_holds_at_most_four_times_the_cap(flood_kind: str) -> None:
    """The Windows collector's reading of a cut netstat -ano (decode, let the
    bytes go, parse, merge): under 4x the cap, the bytes included."""
    from fleetscan.collectors.windows import interpret_windows

    cap = 16 * MIB
    row = WINDOWS_FLOODS[flood_kind]
    flood = (WINDOWS_HEAD + row * (cap // len(row) + 1))[:cap]
    gc.collect()
    tracemalloc.start()
    try:
        stdout = bytes(flood)
        del flood
        results = [
            CommandResult("netstat -ano", None, stdout, b"", 1.0, truncated=True),
            CommandResult(
                "tasklist /FO CSV /NH", 0, b'"System","4","Services","0","8 K"\r\n', b"", 0.1
            ),
        ]
        del stdout
        got = interpret_windows(results)
        gc.collect()
        _kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert results == []  # handed over: nothing else held the bytes
    assert len(got.listeners) == (flood_kind == "row")
    assert len(got.unparsed) <= MAX_OUTPUT_LINES + 1
    if flood_kind == "row":
        assert got.status is Status.PARTIAL and "output cut at the size limit" in got.message
    else:
        assert got.status is Status.PARSE_ERROR
        assert f"more than {MAX_OUTPUT_LINES:,} lines" in got.message
    assert peak <= 4 * cap, f"peak {peak / MIB:.1f} MiB for a {cap / MIB:.0f} MiB cap"


@pytest.mark.parametrize("late", [False, True])
def test_tasklist_is_read_up_to_the_line_bound(late: bool) -> None:
    """tasklist is bounded like netstat: a name past MAX_OUTPUT_LINES lines is not read."""
    from fleetscan.collectors.windows import interpret_windows

    netstat = WINDOWS_HEAD + b"  TCP    0.0.0.0:135    0.0.0.0:0    LISTENING    1712\r\n"
    filler = b'"junk.exe","1","Services","0","8 K"\r\n' * (MAX_OUTPUT_LINES - 1 + late)
    tasklist = filler + b'"rpc.exe","1712","Services","0","8 K"\r\n'
    got = interpret_windows(
        [
            CommandResult("netstat -ano", 0, netstat, b"", 0.1),
            CommandResult("tasklist /FO CSV /NH", 0, tasklist, b"", 0.1),
        ]
    )
    (one,) = got.listeners
    assert one.process_names == (() if late else ("rpc.exe",))


def test_an_unframed_flood_is_not_copied_to_look_for_a_windows_shell() -> None:
    """A host of unknown platform that floods without the script's frame: the
    check for a Windows shell's refusal reads the start of each stream only."""
    from fleetscan.collectors.posix import windows_shell

    garbage = bytes(range(256)) * (16 * MIB // 256)  # undecodable: 2 bytes a char once decoded
    refused = b"'sh' is not recognized as an internal or external command,\r\n"
    gc.collect()
    tracemalloc.start()
    try:
        flooding = windows_shell(CommandResult("sh -s", None, garbage, b"", 1.0, truncated=True))
        _kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert flooding is False
    assert peak <= MIB, f"peak {peak / MIB:.1f} MiB"
    assert windows_shell(CommandResult("sh -s", 1, garbage, refused, 1.0)) is True
