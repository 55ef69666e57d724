"""The hostile-host fault matrix: every way a host can misbehave, in ONE fleet scan.

Each row of :data:`FAULTS` is a host that fails in one way — at the TCP,
SSH-handshake, authentication, command or output stage — and the status and
message words a person must get for it. All rows run in one scan beside two
healthy hosts, through the real asyncssh transport against real SSH servers
on loopback (:mod:`fleetscan.testing.simhost`). For every row the test pins:

* the status (one explicit status per host, fail closed);
* a message a person can act on (its key words);
* the time to result: connect-stage faults end within ``connect_timeout``,
  every other within the per-host deadline (deadline properties, with a
  margin for a loaded 2-core machine — not performance assertions);

and for the run: the healthy hosts are complete with their exact listeners,
the whole scan ends within the per-host deadline (hosts run at once, none
waits for another), and no SSH connection is left open.

The "name does not resolve" row runs in a sealed network namespace through
the CLI (see :mod:`tests.faults.dns_case`): no DNS query can leave the machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fleetscan.model import HostScan, Listener, Process, Status, Target
from fleetscan.runner import scan_all
from fleetscan.testing.fleet import free_port, sim_fleet
from fleetscan.testing.simhost import (
    GARBAGE_LINES,
    ConnectionCounter,
    SimHost,
    mass_ss_keys,
    mass_ss_output,
    stalled_server,
    with_garbage,
)
from tests.faults import dns_case
from tests.orchestration.test_host_statuses import GOOD_PS, GOOD_SS, assert_good_listeners, good

CONNECT_TIMEOUT = 2.0
HOST_TIMEOUT = 10.0  # the 100k-listener host shares the CPU with the flood host
# the flood host's cut output (12 MiB of rows) is parsed on the event loop in
# about 3 s on this 2-core machine; the 100k-listener host's 9 MB in under 1 s
MARGIN = 6.0
MAX_OUTPUT = 12 * 1024 * 1024
MASS = 100_000
HEALTHY = ("healthy-1", "healthy-2")
KEX_BANNER = b"SSH-2.0-OpenSSH_9.6\r\n"
NETLINK_DENIED = "Cannot open netlink socket: Operation not permitted\n"

CONNECT = "connect"  # the fault is met before any command runs
COMMAND = "command"  # the fault is met while the collector runs


@dataclass(frozen=True)
class Fault:
    """One row: a misbehaving host and what fleetscan must make of it.

    ``host`` builds the simulated SSH host; rows without one are endpoints that
    are not SSH servers at all (``endpoint``: refused, silent, banner, dns)."""

    name: str
    status: Status
    words: tuple[str, ...]
    stage: str
    host: Callable[[str], SimHost] | None = None
    endpoint: str | None = None
    wrong_key: bool = False
    become: bool = False
    #: what must hold of the scan besides status and message (never xfailed)
    keeps: Callable[[HostScan], None] | None = field(default=None, compare=False)


def _keeps_good_listeners(scan: HostScan) -> None:
    assert_good_listeners(scan)
    assert scan.unparsed == ()


def _keeps_garbage_as_unparsed(scan: HostScan) -> None:
    assert_good_listeners(scan)  # the readable rows are all there
    texts = [u.text for u in scan.unparsed]
    # invalid UTF-8 arrives as U+FFFD, control bytes as they were: text, never a crash
    assert texts == [
        line.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        for line in GARBAGE_LINES * 2
    ]


def _keeps_every_mass_listener(scan: HostScan) -> None:
    assert len(scan.listeners) == MASS
    assert {x.key for x in scan.listeners} == mass_ss_keys(MASS)
    assert {x.process_names for x in scan.listeners} == {("haproxy",)}


def _keeps_the_cut_evidence(scan: HostScan) -> None:
    assert scan.evidence[-1].truncated
    assert scan.collector == "ss -tulnpe"


def _mass(name: str) -> SimHost:
    return SimHost(name, outputs={"ss": mass_ss_output(MASS)}, ps="4242 haproxy\n")


def _garbage_lines(name: str) -> SimHost:
    return SimHost(name, outputs={"ss": with_garbage(GOOD_SS)}, ps=GOOD_PS)


def _netlink_denied(name: str) -> SimHost:
    # ss exists but the kernel refuses its netlink socket (seccomp, a locked-down
    # container), and there is no netstat and no /proc fallback on this host
    return SimHost(
        name, outputs={"ss": ""}, step_exit={"ss": 1}, step_stderr={"ss": NETLINK_DENIED}
    )


FAULTS: tuple[Any, ...] = (
    Fault("refused", Status.UNREACHABLE, ("connection refused",), CONNECT, endpoint="refused"),
    Fault("no-dns", Status.UNREACHABLE, ("does not resolve",), CONNECT, endpoint="dns"),
    Fault("no-banner", Status.TIMEOUT, ("no SSH handshake", "2s"), CONNECT, endpoint="silent"),
    Fault(
        "kex-stall", Status.TIMEOUT, ("no SSH handshake", "key exchange"), CONNECT, endpoint="kex"
    ),
    Fault(
        "auth-refused",
        Status.AUTH_FAILED,
        ("authentication refused", "tester"),
        CONNECT,
        host=lambda n: good(n, behaviour="auth_fail"),
    ),
    Fault(
        "key-changed",
        Status.HOSTKEY_MISMATCH,
        ("host key not verified", "known_hosts", "reinstalled"),
        CONNECT,
        host=good,
        wrong_key=True,
    ),
    Fault(
        "never-returns",
        Status.TIMEOUT,
        (f"{HOST_TIMEOUT:.0f}s deadline",),
        COMMAND,
        host=lambda n: good(n, behaviour="hang"),
    ),
    Fault(
        "trickle-1-byte-per-s",
        Status.TIMEOUT,
        (f"{HOST_TIMEOUT:.0f}s deadline",),
        COMMAND,
        host=lambda n: good(n, behaviour="trickle", trickle_interval=1.0),
    ),
    Fault(
        "flood",
        Status.PARTIAL,
        ("size limit", "incomplete"),
        COMMAND,
        host=lambda n: good(n, behaviour="flood"),
        keeps=_keeps_the_cut_evidence,
    ),
    pytest.param(
        Fault(
            "garbage-lines",
            Status.PARTIAL,
            ("could not be read",),
            COMMAND,
            host=_garbage_lines,
            keeps=_keeps_garbage_as_unparsed,
        ),
        id="garbage-lines",
    ),
    pytest.param(
        Fault(
            "garbage-stream",
            Status.NO_COLLECTOR,
            ("ss -tulnpe", "output ended inside"),
            COMMAND,
            host=lambda n: good(n, behaviour="garbage"),
        ),
        id="garbage-stream",
    ),
    Fault(
        "disconnect-mid-output",
        Status.UNREACHABLE,
        ("connection lost while the command ran",),
        COMMAND,
        host=lambda n: good(n, behaviour="disconnect"),
    ),
    pytest.param(
        Fault(
            "ss-not-permitted",
            Status.NO_COLLECTOR,
            ("no usable socket listing command", "exited 1", "Operation not permitted"),
            COMMAND,
            host=_netlink_denied,
        ),
        id="ss-not-permitted",
    ),
    Fault(
        "sudo-wants-password",
        Status.PARTIAL,
        ("sudo -n refused", "a password is required", "not root"),
        COMMAND,
        host=lambda n: good(n, sudo="password", uid=1000),
        become=True,
        keeps=assert_good_listeners,
    ),
    Fault(
        "login-banner-noise",
        Status.OK,
        (),
        COMMAND,
        host=lambda n: good(n, behaviour="noise"),
        keeps=_keeps_good_listeners,
    ),
    Fault(
        "100k-listeners",
        Status.OK,
        (),
        COMMAND,
        host=_mass,
        keeps=_keeps_every_mass_listener,
    ),
)


def _row(param: Any) -> Fault:
    return param.values[0] if hasattr(param, "values") else param  # type: ignore[no-any-return]


ROWS = [_row(p) for p in FAULTS]
IDS = [r.name for r in ROWS]


@dataclass
class Run:
    """One fleet scan: every host's scan, the wall time, connections left open."""

    scans: dict[str, HostScan]
    elapsed: float
    open_connections: int = 0


# --------------------------------------------------------------------------- the one scan


async def _scan_matrix(tmp: Path) -> Run:
    sim_rows = [r for r in ROWS if r.host is not None]
    hosts = [good(n) for n in HEALTHY] + [r.host(r.name) for r in sim_rows if r.host]
    counter = ConnectionCounter()
    async with (
        sim_fleet(
            tmp,
            hosts,
            wrong_key=[r.name for r in sim_rows if r.wrong_key],
            become=[r.name for r in sim_rows if r.become],
            counter=counter,
        ) as fleet,
        stalled_server() as silent_port,
        stalled_server(KEX_BANNER) as kex_port,
    ):
        ports = {"refused": free_port(), "silent": silent_port, "kex": kex_port}
        endpoints = [
            Target(
                r.name,
                "127.0.0.1",
                port=ports[r.endpoint],
                user="tester",
                key_files=(str(fleet.key),),
            )
            for r in ROWS
            if r.endpoint in ports
        ]
        settings = fleet.settings(
            connect_timeout=CONNECT_TIMEOUT,
            host_timeout=HOST_TIMEOUT,
            max_output=MAX_OUTPUT,
            concurrency=64,  # every host at once: no row waits for another
        )
        start = time.monotonic()
        scans = await scan_all([*fleet.targets, *endpoints], settings)
        elapsed = time.monotonic() - start
        # the servers see the client's close a moment later
        for _ in range(50):
            if counter.current == 0:
                break
            await asyncio.sleep(0.1)
        return Run({s.host: s for s in scans}, elapsed, counter.current)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return asyncio.run(_scan_matrix(tmp_path_factory.mktemp("matrix")))


# --------------------------------------------------------------------------- the dns row


def _dns_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create a network namespace (ip netns add)"
    if shutil.which("ip") is None:
        return "needs iproute2 (ip netns) to seal the resolver"
    return None


def _sh(*argv: str) -> None:
    subprocess.run(list(argv), check=True, capture_output=True, timeout=20)


@pytest.fixture(scope="module")
def dns_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """The scan with the unresolvable host, run by the CLI in a namespace whose
    only interface is loopback and whose resolv.conf names 127.0.0.1."""
    reason = _dns_skip_reason()
    if reason:
        pytest.skip(reason)
    ns = f"fsfault{os.getpid()}"
    etc = Path("/etc/netns") / ns
    work = tmp_path_factory.mktemp("dns")
    work.chmod(0o755)
    try:
        _sh("ip", "netns", "add", ns)
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        _sh("ip", "-n", ns, "link", "set", "lo", "up")
        proc = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "tests.faults.dns_case", str(work)],
            capture_output=True,
            text=True,
            timeout=90,
            cwd=str(dns_case.REPO),
            stdin=subprocess.DEVNULL,
        )
        assert proc.returncode == 0, proc.stderr
        got = json.loads(proc.stdout)
        assert got["exit_code"] == 3, got  # hosts not fully scanned (no gating finding)
        scans = {h["name"]: _scan_of(h) for h in got["hosts"]}
        yield Run(scans, got["elapsed"])
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        shutil.rmtree(etc, ignore_errors=True)


def _scan_of(host: dict[str, Any]) -> HostScan:
    """Enough of a HostScan from a report.json host for the matrix's checks."""
    listeners = tuple(
        Listener(
            proto=x["proto"],
            family=x["family"],
            address=x["address"],
            port=x["port"],
            state=x["state"],
            processes=tuple(Process(p["name"], p["pid"], p["user"]) for p in x["processes"]),
        )
        for x in host["listeners"]
    )
    return HostScan(
        target=Target(host["name"], host["address"], port=host["port"]),
        status=Status(host["status"]),
        message=host["message"],
        listeners=listeners,
        started=0.0,
        finished=float(host["duration_seconds"]),
    )


def _run_for(row: Fault, request: pytest.FixtureRequest) -> Run:
    run: Run = request.getfixturevalue("dns_run" if row.endpoint == "dns" else "matrix")
    return run


# --------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("row", FAULTS, ids=IDS)
def test_fault_ends_in_its_status_with_an_actionable_message(
    row: Fault, request: pytest.FixtureRequest
) -> None:
    scan = _run_for(row, request).scans[row.name]
    assert scan.status is row.status, f"{row.name}: {scan.status} {scan.message!r}"
    for word in row.words:
        assert word in scan.message, f"{row.name}: {word!r} not in {scan.message!r}"
    if row.status is Status.OK:
        assert scan.message == ""


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_fault_time_to_result_is_within_its_deadline(
    row: Fault, request: pytest.FixtureRequest
) -> None:
    """Deadline property: a connect-stage fault costs at most connect_timeout,
    any other at most the per-host deadline."""
    scan = _run_for(row, request).scans[row.name]
    bound = CONNECT_TIMEOUT if row.stage == CONNECT else HOST_TIMEOUT
    assert scan.duration < bound + MARGIN, f"{row.name}: {scan.duration:.1f}s"


@pytest.mark.parametrize("row", [r for r in ROWS if r.keeps], ids=[r.name for r in ROWS if r.keeps])
def test_fault_keeps_what_the_host_did_send(row: Fault, request: pytest.FixtureRequest) -> None:
    assert row.keeps is not None
    row.keeps(_run_for(row, request).scans[row.name])


@pytest.mark.parametrize("which", ["matrix", "dns_run"])
def test_healthy_hosts_complete_beside_the_faults(
    which: str, request: pytest.FixtureRequest
) -> None:
    run: Run = request.getfixturevalue(which)
    for name in HEALTHY:
        scan = run.scans[name]
        assert scan.status is Status.OK, f"{name}: {scan.status} {scan.message}"
        assert_good_listeners(scan)


@pytest.mark.parametrize("which", ["matrix", "dns_run"])
def test_whole_run_ends_within_the_host_deadline(
    which: str, request: pytest.FixtureRequest
) -> None:
    """Hosts are scanned at once: the run lasts about one host deadline, not the
    sum of them. (The CLI run adds its own start-up and report writing.)"""
    run: Run = request.getfixturevalue(which)
    startup = 10.0 if which == "dns_run" else 0.0
    assert run.elapsed < HOST_TIMEOUT + MARGIN + startup, f"{run.elapsed:.1f}s"


def test_every_host_of_the_run_has_exactly_one_result(matrix: Run) -> None:
    expected = {*HEALTHY, *(r.name for r in ROWS if r.endpoint != "dns")}
    assert set(matrix.scans) == expected


def test_no_ssh_connection_is_left_open_after_the_run(matrix: Run) -> None:
    """Hung, trickling, flooding and dropped hosts alike: every connection the
    scan opened is closed by the time the run returns."""
    assert matrix.open_connections == 0
