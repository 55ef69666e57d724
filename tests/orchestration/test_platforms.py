"""Each platform's collector chain, end to end over SSH against simulated hosts
answering like that OS: probe, first tool that works, parser, status."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fleetscan.model import HostScan, Status
from fleetscan.runner import scan_all
from fleetscan.testing.fleet import sim_fleet
from fleetscan.testing.simhost import SimHost

FIX = Path(__file__).parent.parent / "fixtures"
CORPUS = FIX / "corpus"


def read(rel: str) -> str:
    return (FIX / rel).read_text(encoding="utf-8")


def scan_one(tmp: Path, host: SimHost) -> HostScan:
    async def main() -> HostScan:
        async with sim_fleet(tmp, [host]) as fleet:
            return (await scan_all(fleet.targets, fleet.settings()))[0]

    return asyncio.run(main())


@pytest.mark.parametrize("shell", ["cmd", "powershell"])
def test_windows_host_is_recognised_from_either_default_shell(tmp_path: Path, shell: str) -> None:
    host = SimHost(
        "win",
        platform="windows",
        shell=shell,
        outputs={
            "netstat-ano": (CORPUS / "windows/netstat-ano/jc_windows-10_netstat-aon.out").read_text(
                encoding="utf-8"
            ),
            "tasklist": read("windows/tasklist-fo-csv-nh.txt"),
        },
    )
    scan = scan_one(tmp_path, host)
    assert (scan.status, scan.platform, scan.collector) == (Status.OK, "windows", "netstat -ano")
    smb = [x for x in scan.listeners if x.port == 445 and x.proto == "tcp"]
    assert smb and all(x.process_names == ("System",) for x in smb)
    assert all(p.pid is not None for x in scan.listeners for p in x.processes)


def test_a_flooding_windows_host_is_cut_and_read_once_per_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """netstat -ano that never stops (one row over and over): cut at the
    output cap, the host partial with its one listener; the collector lets
    go of the output's bytes once decoded (it empties the list it is given)."""
    from fleetscan.collectors import windows

    handed: list[list[object]] = []
    interpret = windows.interpret_windows

    def watching(results: list[object]) -> object:
        handed.append(results)
        return interpret(results)  # type: ignore[arg-type]

    monkeypatch.setattr(windows, "interpret_windows", watching)
    head = "\r\nActive Connections\r\n\r\n  Proto  Local Address  Foreign Address  State  PID\r\n"
    host = SimHost(
        "win-flood",
        platform="windows",
        behaviour="flood",
        flood_chunk=64 * 1024,
        outputs={"netstat-ano": head, "tasklist": '"System","4","Services","0","8 K"\n'},
    )

    async def main() -> HostScan:
        async with sim_fleet(tmp_path, [host]) as fleet:
            settings = fleet.settings(max_output=2 * 1024 * 1024, host_timeout=30.0)
            return (await scan_all(fleet.targets, settings))[0]

    scan = asyncio.run(main())
    assert scan.status is Status.PARTIAL, scan.message
    assert "output cut at the size limit" in scan.message
    (one,) = scan.listeners
    assert (one.proto, one.port, one.process_names) == ("tcp", 1, ("System",))
    assert handed == [[]]  # emptied: the bytes were not held while parsing


def test_german_windows_listeners_are_found_by_row_shape(tmp_path: Path) -> None:
    host = SimHost(
        "win-de",
        platform="windows",
        outputs={"netstat-ano": read("windows/netstat-ano-de.txt"), "tasklist": ""},
    )
    scan = scan_one(tmp_path, host)
    assert scan.platform == "windows"
    assert scan.listeners, scan.message
    assert all(x.state in ("LISTEN", "UNCONN") for x in scan.listeners)
    assert scan.unparsed == ()


def test_macos_without_lsof_falls_back_to_netstat_anv(tmp_path: Path) -> None:
    host = SimHost(
        "mac", platform="darwin", outputs={"netstat": read("macos/netstat-anv-macos14.txt")}
    )
    scan = scan_one(tmp_path, host)
    assert (scan.status, scan.platform, scan.collector) == (Status.OK, "darwin", "netstat -anv")
    assert scan.listeners
    assert all(x.processes and x.processes[0].pid for x in scan.listeners)


def test_macos_lsof_is_preferred(tmp_path: Path) -> None:
    host = SimHost(
        "mac",
        platform="darwin",
        outputs={
            "lsof": read("macos/lsof-nP-iTCP-sTCP-LISTEN-then-iUDP.txt"),
            "netstat": read("macos/netstat-anv-macos14.txt"),
        },
    )
    scan = scan_one(tmp_path, host)
    assert scan.status is Status.OK, scan.message
    assert scan.collector is not None and scan.collector.startswith("lsof -nP")
    assert any(x.proto == "udp" for x in scan.listeners)


def test_freebsd_without_sockstat_uses_netstat_and_is_partial(tmp_path: Path) -> None:
    """netstat on FreeBSD has no process column: the scan is real but partial."""
    text = (CORPUS / "freebsd/netstat-an/jc_freebsd12_netstat-an.out").read_text(encoding="utf-8")
    scan = scan_one(tmp_path, SimHost("bsd", platform="freebsd", outputs={"netstat": text}))
    assert (scan.status, scan.platform, scan.collector) == (
        Status.PARTIAL,
        "freebsd",
        "netstat -an",
    )
    assert "no process owners" in scan.message
    assert {(x.proto, x.address, x.port) for x in scan.listeners} >= {("tcp", "127.0.0.1", 25)}


def test_linux_with_neither_ss_nor_netstat_reads_proc(tmp_path: Path) -> None:
    scan = scan_one(
        tmp_path, SimHost("tiny", outputs={"proc": read("linux/proc-script-capture.out")})
    )
    assert scan.status is Status.OK, scan.message
    assert scan.collector == "/proc/net"
    assert scan.listeners


def test_unknown_platform_is_no_collector_never_compliant(tmp_path: Path) -> None:
    scan = scan_one(tmp_path, SimHost("aix", platform="AIX"))
    assert scan.status is Status.NO_COLLECTOR
    assert "aix" in scan.message
