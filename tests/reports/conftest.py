"""Scan runs built in memory for the reporter tests.

``realistic_run``: a small fleet as a real scan would produce it — one host
per :class:`Status`, ``ss``/``netstat`` evidence lines, a socket shared by
several processes, findings of every kind, a waived finding and an expired
waiver, unparsed lines and command evidence.

``hostile_run``: the same shapes, but every string a host controls carries
an attack on one of the report formats: HTML/script injection, quotes,
newlines, terminal escapes (SGR and OSC), spreadsheet formulas, Trojan-source
bidi overrides and an undecodable byte (lone surrogate).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fleetscan.model import (
    CommandEvidence,
    Finding,
    HostScan,
    Listener,
    Origin,
    Process,
    ScanRun,
    Severity,
    Status,
    Target,
    UnparsedLine,
    WaiverRef,
)

STARTED = datetime(2025, 3, 14, 2, 0, 0, tzinfo=UTC)
FINISHED = datetime(2025, 3, 14, 2, 3, 7, tzinfo=UTC)

SS_CMD = "ss -H -tulnp"


def ss_line(proto: str, local: str, procs: str = "", state: str = "LISTEN") -> str:
    users = f" users:({procs})" if procs else ""
    return f"{proto}   {state} 0      4096      {local}      0.0.0.0:*{users}"


def listener(
    proto: str,
    address: str,
    port: int,
    *procs: Process,
    family: int = 4,
    line: int = 1,
    state: str = "LISTEN",
    raw: str | None = None,
) -> Listener:
    shown = f"[{address}]" if family == 6 else address
    users = ",".join(f'("{p.name}",pid={p.pid},fd=3)' for p in procs)
    return Listener(
        proto=proto,  # type: ignore[arg-type]
        family=family,  # type: ignore[arg-type]
        address=address,
        port=port,
        state=state,
        processes=procs,
        raw=raw if raw is not None else ss_line(proto, f"{shown}:{port}", users, state),
        line=line,
    )


def target(name: str, address: str, *groups: str, platform: str = "linux") -> Target:
    return Target(
        name=name,
        address=address,
        port=22,
        user="audit",
        platform=platform,
        groups=groups,
        source=Origin("inventories/prod.ini", len(name)),
    )


def ok_evidence(stdout: str = "") -> tuple[CommandEvidence, ...]:
    return (
        CommandEvidence("uname -s", 0, "Linux\n", "", 0.04),
        CommandEvidence(SS_CMD, 0, stdout, "", 0.11),
    )


SSHD = Process("sshd", 812, "root")
NGINX_MASTER = Process("nginx", 1201, "root")
NGINX_WORKERS = (Process("nginx", 1202, "www-data"), Process("nginx", 1203, "www-data"))
POSTGRES = Process("postgres", 933, "postgres")
CHRONY = Process("chronyd", 640, "_chrony")

WEB_LISTENERS = (
    listener("tcp", "0.0.0.0", 22, SSHD, line=1),
    listener("tcp", "::", 22, SSHD, family=6, line=2),
    listener("tcp", "0.0.0.0", 80, NGINX_MASTER, *NGINX_WORKERS, line=3),
    listener("tcp", "0.0.0.0", 443, NGINX_MASTER, *NGINX_WORKERS, line=4),
    listener("udp", "127.0.0.1", 323, CHRONY, line=5, state="UNCONN"),
    listener("tcp", "0.0.0.0", 4444, Process("nc", 31337, "nobody"), line=6),
)
DB_LISTENERS = (
    listener("tcp", "0.0.0.0", 22, SSHD, line=1),
    listener("tcp", "0.0.0.0", 5432, POSTGRES, line=2),
    listener("tcp", "127.0.0.1", 6379, Process("redis-server", 702, "redis"), line=3),
)
PARTIAL_LISTENERS = (
    Listener("tcp", 4, "0.0.0.0", 22, raw="tcp   0   0 0.0.0.0:22   0.0.0.0:*   LISTEN", line=3),
    Listener(
        "tcp", 4, "10.20.0.7", 8080, raw="tcp   0   0 10.20.0.7:8080   0.0.0.0:*   LISTEN", line=4
    ),
)

FAILED = {
    Status.UNREACHABLE: "connect to 10.20.0.40 port 22: No route to host",
    Status.AUTH_FAILED: "Permission denied (publickey) for user audit",
    Status.HOSTKEY_MISMATCH: "host key for 10.20.0.42 does not match known_hosts line 17",
    Status.HOSTKEY_UNKNOWN: "no key for 10.20.0.43 in known_hosts (unknown host)",
    Status.TIMEOUT: "no result within the 30s per-host deadline",
    Status.NO_COLLECTOR: "neither ss nor netstat nor /proc/net/tcp is usable",
    Status.PARSE_ERROR: "ss output could not be parsed: 0 of 12 lines understood",
    Status.INTERNAL_ERROR: "KeyError('users') in parser linux_ss",
    Status.INTERRUPTED: "the run was interrupted before this host finished",
    Status.NOT_SCANNED: "site dc2: no worker answered (worker lost)",
}

WAIVER = WaiverRef(
    "WVR-2025-004", "legacy monitoring agent until migration (CHG-8812)", "2099-12-31", "ops-team"
)


def _incomplete_finding(scan: HostScan) -> Finding:
    return Finding(
        "scan-incomplete",
        Severity.HIGH,
        scan.host,
        f"host not fully scanned ({scan.status.value}): {scan.message}",
        kind="host",
    )


def build_realistic_run() -> ScanRun:
    web = HostScan(
        target("web-01", "10.20.0.11", "web", "prod"),
        Status.OK,
        platform="linux",
        collector=SS_CMD,
        listeners=WEB_LISTENERS,
        unparsed=(UnparsedLine(7, "tcp   LISTEN 0 128 *%lo:9090 *:* weird-column"),),
        evidence=ok_evidence("\n".join(x.raw for x in WEB_LISTENERS)),
        started=100.0,
        finished=101.4,
    )
    db = HostScan(
        target("db-01", "10.20.0.21", "db", "prod"),
        Status.OK,
        platform="linux",
        collector=SS_CMD,
        listeners=DB_LISTENERS,
        evidence=ok_evidence(),
        started=100.0,
        finished=100.9,
    )
    clean = HostScan(
        target("bastion-01", "10.20.0.5", "bastion"),
        Status.OK,
        platform="linux",
        collector=SS_CMD,
        listeners=(DB_LISTENERS[0],),
        evidence=ok_evidence(),
        started=100.0,
        finished=100.5,
    )
    partial = HostScan(
        target("app-01", "10.20.0.31", "app"),
        Status.PARTIAL,
        message="netstat ran without root: process owners unknown",
        platform="linux",
        collector="netstat -tuln",
        listeners=PARTIAL_LISTENERS,
        evidence=(
            CommandEvidence("sudo -n ss -tulnp", 1, "", "sudo: a password is required\n", 0.05),
            CommandEvidence("netstat -tuln", 0, "...", "", 0.07),
        ),
        started=100.0,
        finished=101.0,
    )
    failed = tuple(
        HostScan(
            target(f"{st.value.replace('_', '-')}-01", f"10.20.0.{40 + i}"),
            st,
            message=msg,
            evidence=(CommandEvidence("ssh", 255, "", msg + "\n", 3.0),)
            if st is Status.UNREACHABLE
            else (),
            started=100.0,
            finished=103.0,
        )
        for i, (st, msg) in enumerate(FAILED.items())
    )
    scans = (web, db, clean, partial, *failed)
    findings = (
        Finding(
            "forbidden-ports",
            Severity.CRITICAL,
            "web-01",
            "port 4444 is a known backdoor port (Metasploit default)",
            WEB_LISTENERS[5],
        ),
        Finding(
            "db-loopback",
            Severity.HIGH,
            "db-01",
            "postgres must bind loopback only, listens on 0.0.0.0:5432",
            DB_LISTENERS[1],
        ),
        Finding(
            "undocumented",
            Severity.MEDIUM,
            "db-01",
            "listener not in the infrastructure map",
            DB_LISTENERS[2],
            waiver=WAIVER,
        ),
        Finding(
            "undocumented",
            Severity.MEDIUM,
            "app-01",
            "listener not in the infrastructure map",
            PARTIAL_LISTENERS[1],
        ),
        Finding(
            "ssh-owner",
            Severity.LOW,
            "web-01",
            "port 22 is sshd",
            WEB_LISTENERS[1],
            waiver=WaiverRef("WVR-2024-001", "dual-stack sshd accepted", None),
        ),
        Finding(
            "waiver-expired",
            Severity.MEDIUM,
            "web-01",
            "waiver WVR-2024-017 expired on 2025-01-31; it no longer waives 'undocumented'",
            kind="waiver",
        ),
        Finding("undocumented", Severity.INFO, "web-01", "chronyd on loopback", WEB_LISTENERS[4]),
        *(_incomplete_finding(s) for s in scans if not s.status.complete),
    )
    return ScanRun(
        id="20250314T020000Z-7f3a",
        started=STARTED,
        finished=FINISHED,
        scans=scans,
        findings=findings,
        inventory_digest="sha256:" + "ab" * 32,
        policy_digest="sha256:" + "cd" * 32,
        policy_files=("policies/baseline.yaml",),
        inventory_files=("inventories/prod.ini",),
        fail_on=Severity.HIGH,
        tool_version="0.1.0",
    )


# --- hostile --------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
TITLE_SCRIPT = "<script>document.title='pwned'</script>"
IMG_ONERROR = "<img src=x onerror=\"document.title='pwned'\">"
SGR = "\x1b[31mRED\x1b[0m"
OSC = "\x1b]0;pwned\x07"
FORMULA = '=HYPERLINK("http://evil.example/","click me")'
FORMULAS = (
    FORMULA,
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "  =1+1",
)
BIDI = "evil\u202egpj.exe"
SURROGATE = "bad\udcffbyte"
QUOTES = 'it\'s "quoted" & <b>bold</b>\nsecond line [bold red]markup[/]'

HOSTILE_NAMES = (SCRIPT, TITLE_SCRIPT, IMG_ONERROR, SGR, OSC, *FORMULAS, BIDI, SURROGATE, QUOTES)


def build_hostile_run() -> ScanRun:
    procs = tuple(Process(name, 1000 + i, f"user{i}") for i, name in enumerate(HOSTILE_NAMES))
    listeners = tuple(
        Listener(
            "tcp",
            4,
            addr,
            7000 + i,
            processes=(procs[i % len(procs)],),
            raw=f'tcp LISTEN 0 1 {addr}:{7000 + i} *:* users:(("{procs[i % len(procs)].name}"))',
            line=i + 1,
        )
        for i, addr in enumerate((*HOSTILE_NAMES, "0.0.0.0", "::1"))
    )
    shared = Listener("tcp", 4, "0.0.0.0", 6666, processes=procs, raw=SCRIPT + OSC, line=99)
    evil = HostScan(
        Target(name="evil-01", address="10.66.0.1", groups=("dmz",)),
        Status.OK,
        message=SCRIPT + OSC,
        platform="linux",
        collector=SS_CMD,
        listeners=(*listeners, shared),
        unparsed=tuple(UnparsedLine(100 + i, t) for i, t in enumerate(HOSTILE_NAMES)),
        evidence=(CommandEvidence(SS_CMD, 0, "\n".join(HOSTILE_NAMES), SGR + OSC + SCRIPT, 0.2),),
        started=1.0,
        finished=2.0,
    )
    down = HostScan(
        Target(name="evil-02", address="10.66.0.2"),
        Status.PARSE_ERROR,
        message=f"{OSC}{IMG_ONERROR}\n{FORMULA}",
        started=1.0,
        finished=1.5,
    )
    # A hostile name in the inventory too: the name reaches every format.
    odd = HostScan(
        Target(name="odd\"<host>'=1", address="10.66.0.3"),
        Status.TIMEOUT,
        message=SGR + QUOTES,
        started=1.0,
        finished=1.5,
    )
    findings = (
        *(
            Finding(
                "forbidden-ports",
                Severity.CRITICAL,
                "evil-01",
                f"forbidden listener {x.process_names[0]!s} {SCRIPT}",
                x,
            )
            for x in listeners
        ),
        Finding(
            "undocumented",
            Severity.MEDIUM,
            "evil-01",
            QUOTES,
            shared,
            waiver=WaiverRef(f"W-{SCRIPT}", f"{FORMULA} {OSC}", "2099-01-01", IMG_ONERROR),
        ),
        Finding("scan-incomplete", Severity.HIGH, "evil-02", down.message, kind="host"),
        Finding("scan-incomplete", Severity.HIGH, odd.host, SGR, kind="host"),
    )
    return ScanRun(
        id="hostile-run",
        started=STARTED,
        finished=FINISHED,
        scans=(evil, down, odd),
        findings=findings,
        hostkey_checking=False,
        interrupted=True,
        inventory_files=(f"inv/{SCRIPT}.ini",),
        policy_files=(FORMULA,),
        tool_version="0.1.0",
    )


@pytest.fixture
def realistic_run() -> ScanRun:
    return build_realistic_run()


@pytest.fixture
def hostile_run() -> ScanRun:
    return build_hostile_run()


@pytest.fixture(params=["realistic", "hostile"])
def any_run(request: pytest.FixtureRequest) -> ScanRun:
    return build_realistic_run() if request.param == "realistic" else build_hostile_run()
