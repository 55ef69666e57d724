"""A real fleet: three Linux hosts in network namespaces, scanned as one inventory.

Each namespace has its own veth link to the root namespace (10.213.K.0/30,
addresses of our own namespaces only), its own sshd listening on its own
address, and its own listeners started by the test. In namespace "c", ``ss``
and ``netstat`` are replaced (bind mounts in a private mount namespace of that
sshd) by a script that says "not here" and exits 127, so the collector chain
has to fall through to ``/proc``. The test checks that every host is ``ok``
and reports exactly the sockets of its namespace, by port and pid, and that
this agrees with ``ss`` run directly inside the namespace.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .harness import (
    KeyMaterial,
    Sshd,
    comm_of,
    describe,
    find_sshd,
    forbidden_rule_for,
    host_entry,
    keygen,
    known_hosts_entry,
    load_report,
    require,
    run,
    run_cli,
    scan_args,
    sshd_config,
    start_sshd,
    validate_sshd_config,
)

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]

FORBIDDEN_PORT = 4444
FAKE_TOOL = '#!/bin/sh\necho "not here" >&2\nexit 127\n'
SOCKET_TOOLS = ("/usr/bin/ss", "/usr/sbin/ss", "/bin/ss", "/bin/netstat", "/usr/bin/netstat")

# Binds every "proto,address,port" given as argument, prints its pid once all
# are bound, then holds them until stdin closes (the test's cleanup closes it).
LISTENER_SCRIPT = r"""
import os, socket, sys
held = []
for spec in sys.argv[1:]:
    proto, addr, port = spec.split(",")
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, int(port)))
    if proto == "tcp":
        s.listen(8)
    held.append(s)
print(os.getpid(), flush=True)
sys.stdin.read()
"""

# Runs in a fresh private mount namespace (unshare --mount): hide the socket
# tools behind FAKE_TOOL, then become sshd. Values arrive as arguments, never
# interpolated into the script.
HIDE_TOOLS_THEN_SSHD = (
    'fake=$1 sshd=$2 cfg=$3; shift 3; for t in "$@"; do '
    'mount --bind "$fake" "$t" || exit 1; done; exec "$sshd" -D -e -f "$cfg"'
)


@dataclass(frozen=True)
class Sock:
    proto: str
    address: str
    port: int


@dataclass
class NsHost:
    """One namespace host: its address, sshd, and the listeners the test started."""

    name: str
    netns: str
    address: str
    hide_tools: bool
    socks: tuple[Sock, ...]
    sshd: Sshd | None = None
    sshd_pid: int = 0
    listener_pid: int = 0
    listener_comm: str = ""
    host_key: Path | None = None

    def expected(self) -> set[tuple[str, str, int, frozenset[tuple[str, int]]]]:
        """Every socket of the namespace: sshd's and the test's, with their owner."""
        out = {("tcp", self.address, 22, frozenset({("sshd", self.sshd_pid)}))}
        owner = frozenset({(self.listener_comm, self.listener_pid)})
        out |= {(s.proto, s.address, s.port, owner) for s in self.socks}
        return out


@dataclass
class Fleet:
    hosts: list[NsHost]
    inventory: Path
    known_hosts: Path
    fake_tool: Path
    hidden: list[str] = field(default_factory=list)


def _free_octets(count: int) -> list[int]:
    """Third octets K for 10.213.K.0/30 links not used by any interface here."""
    used = set(re.findall(r"10\.213\.(\d+)\.", run(["ip", "-o", "addr", "show"])))
    free = [k for k in range(1, 255) if str(k) not in used]
    start = secrets.randbelow(len(free))
    rotated = free[start:] + free[:start]
    return rotated[:count]


def _host_specs(octets: list[int], suffix: str) -> list[NsHost]:
    addr = [f"10.213.{k}.2" for k in octets]
    return [
        NsHost(
            "ns-a",
            f"fs-{suffix}-a",
            addr[0],
            False,
            (Sock("tcp", "0.0.0.0", 8080), Sock("udp", "127.0.0.1", 5300)),
        ),
        NsHost(
            "ns-b",
            f"fs-{suffix}-b",
            addr[1],
            False,
            (Sock("tcp", "127.0.0.1", 9000), Sock("tcp", "::", 9443), Sock("udp", addr[1], 6000)),
        ),
        NsHost(
            "ns-c",
            f"fs-{suffix}-c",
            addr[2],
            True,
            (
                Sock("tcp", "0.0.0.0", FORBIDDEN_PORT),
                Sock("udp", "0.0.0.0", 6001),
                Sock("tcp", addr[2], 7000),
            ),
        ),
    ]


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _finish(proc: subprocess.Popen[str]) -> None:
    """Close the listeners' stdin (they exit on EOF), reap them, close the pipes."""
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
    _stop(proc)


def _quiet(argv: list[str]) -> None:
    """A cleanup command: run it, never raise (the next cleanup step must run)."""
    subprocess.run(argv, capture_output=True, timeout=20, check=False)


def _link(stack: contextlib.ExitStack, host: NsHost, octet: int, suffix: str) -> None:
    ns = host.netns
    run(["ip", "netns", "add", ns])
    stack.callback(_quiet, ["ip", "netns", "del", ns])
    outer, inner = f"fs{suffix}{host.name[-1]}h", f"fs{suffix}{host.name[-1]}n"
    run(["ip", "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns])
    # deleting the namespace removes the pair; this covers a failure in between
    stack.callback(_quiet, ["ip", "link", "del", outer])
    run(["ip", "addr", "add", f"10.213.{octet}.1/30", "dev", outer])
    run(["ip", "link", "set", outer, "up"])
    inns = ["ip", "netns", "exec", ns]
    run([*inns, "ip", "link", "set", "lo", "up"])
    run([*inns, "ip", "addr", "add", f"{host.address}/30", "dev", inner])
    run([*inns, "ip", "link", "set", inner, "up"])


def _start_sshd(
    stack: contextlib.ExitStack, host: NsHost, sshd: str, workdir: Path, keys_dir: Path, fake: Path
) -> list[str]:
    d = workdir / host.name
    d.mkdir()
    host.host_key = keygen(d / "host_ed25519", f"fleetscan-test-{host.name}")
    pid_file = d / "sshd.pid"
    cfg = d / "sshd_config"
    cfg.write_text(
        sshd_config(
            port=22,
            listen=host.address,
            host_key=host.host_key,
            pid_file=pid_file,
            keys_dir=keys_dir,
        )
    )
    validate_sshd_config(sshd, cfg)
    argv = ["ip", "netns", "exec", host.netns]
    hidden: list[str] = []
    if host.hide_tools:
        real = {os.path.realpath(p): p for p in SOCKET_TOOLS if os.path.exists(p)}
        hidden = sorted(real.values())
        argv += ["unshare", "--mount", "--propagation", "private", "--"]
        argv += ["sh", "-c", HIDE_TOOLS_THEN_SSHD, "sh", str(fake), sshd, str(cfg), *hidden]
    else:
        argv += [sshd, "-D", "-e", "-f", str(cfg)]
    host.sshd = start_sshd(argv, address=host.address, port=22, log=d / "sshd.log")
    stack.callback(host.sshd.stop)
    host.sshd_pid = int(pid_file.read_text().split()[0])
    return hidden


def start_listeners(stack: contextlib.ExitStack, netns: str, specs: list[str]) -> int:
    """Bind every ``proto,address,port`` of ``specs`` in ``netns`` (held until the
    stack closes); returns the holding process's pid."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", LISTENER_SCRIPT, *specs],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stack.callback(_finish, proc)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.strip().isdigit():
        _stop(proc)
        err = proc.stderr.read() if proc.stderr else ""  # read before the pipes are closed
        raise RuntimeError(f"listeners in {netns} did not start ({specs}): {err}")
    return int(line)


def _start_listeners(stack: contextlib.ExitStack, host: NsHost) -> None:
    specs = [f"{s.proto},{s.address},{s.port}" for s in host.socks]
    host.listener_pid = start_listeners(stack, host.netns, specs)
    host.listener_comm = comm_of(host.listener_pid)


@pytest.fixture(scope="module")
def fleet(ssh_keys: KeyMaterial) -> Iterator[Fleet]:
    require(os.geteuid() == 0, "network namespaces need root")
    for tool in ("ip", "unshare", "mount"):
        require(shutil.which(tool) is not None, f"{tool} is not installed")
    sshd = find_sshd()
    require(sshd is not None, "no sshd (install openssh-server: scripts/test-deps.sh does it)")
    assert sshd is not None
    suffix = secrets.token_hex(3)
    workdir = ssh_keys.tmp / f"netns-{suffix}"
    workdir.mkdir()
    fake = workdir / "not-here"
    fake.write_text(FAKE_TOOL)
    fake.chmod(0o755)
    with contextlib.ExitStack() as stack:
        try:
            octets = _free_octets(3)
            hosts = _host_specs(octets, suffix)
            hidden: list[str] = []
            for host, octet in zip(hosts, octets, strict=True):
                _link(stack, host, octet, suffix)
                hidden += _start_sshd(stack, host, sshd, workdir, ssh_keys.keys_dir, fake)
                _start_listeners(stack, host)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            require(False, f"could not build the namespace fleet: {exc}")
            raise
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text(
            "".join(known_hosts_entry(h.address, 22, h.host_key) for h in hosts if h.host_key)
        )
        inventory = workdir / "fleet.yaml"
        inventory.write_text(_yaml_inventory(hosts, ssh_keys.client_key))
        yield Fleet(hosts, inventory, known_hosts, fake, hidden)


def _yaml_inventory(hosts: list[NsHost], key: Path) -> str:
    import yaml

    doc = {
        "all": {
            "vars": {"ansible_user": "root", "ansible_ssh_private_key_file": str(key)},
            "children": {"netns": {"hosts": {h.name: {"ansible_host": h.address} for h in hosts}}},
        }
    }
    return "# three namespace hosts, written by tests/real\n" + yaml.safe_dump(doc)


@dataclass(frozen=True)
class FleetScan:
    proc: subprocess.CompletedProcess[str]
    report: dict[str, Any]


@pytest.fixture(scope="module")
def fleet_scan(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> FleetScan:
    tmp = tmp_path_factory.mktemp("netns-scan")
    out = tmp / "out"
    proc = run_cli(scan_args(fleet.inventory, out, fleet.known_hosts), cwd=tmp)
    return FleetScan(proc, load_report(out, proc))


def _reported(host: dict[str, Any]) -> set[tuple[str, str, int, frozenset[tuple[str, int]]]]:
    return {
        (
            x["proto"],
            x["address"],
            x["port"],
            frozenset((p["name"], p["pid"]) for p in x["processes"]),
        )
        for x in host["listeners"]
    }


def _by_name(fleet: Fleet, name: str) -> NsHost:
    return next(h for h in fleet.hosts if h.name == name)


HOSTS = ["ns-a", "ns-b", "ns-c"]


def test_every_namespace_host_is_scanned_ok(fleet_scan: FleetScan) -> None:
    statuses = {h["name"]: (h["status"], h["message"]) for h in fleet_scan.report["hosts"]}
    assert statuses == {name: ("ok", "") for name in HOSTS}, describe(fleet_scan.proc)


@pytest.mark.parametrize("name", HOSTS)
def test_each_host_reports_exactly_the_sockets_of_its_namespace(
    name: str, fleet: Fleet, fleet_scan: FleetScan
) -> None:
    host = host_entry(fleet_scan.report, name)
    assert _reported(host) == _by_name(fleet, name).expected()


def _ss_in_namespace(netns: str) -> set[tuple[str, int, frozenset[int]]]:
    """(proto, port, pids) from ``ss -tulnpH`` run directly inside the namespace."""
    out = run(["ip", "netns", "exec", netns, "ss", "-tulnpH"])
    found = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        port = int(fields[4].rsplit(":", 1)[1])
        pids = frozenset(int(p) for p in re.findall(r"pid=(\d+)", line))
        found.add((fields[0], port, pids))
    return found


@pytest.mark.parametrize("name", HOSTS)
def test_report_agrees_with_ss_run_inside_the_namespace(
    name: str, fleet: Fleet, fleet_scan: FleetScan
) -> None:
    host = host_entry(fleet_scan.report, name)
    reported = {
        (x["proto"], x["port"], frozenset(p["pid"] for p in x["processes"]))
        for x in host["listeners"]
    }
    assert reported == _ss_in_namespace(_by_name(fleet, name).netns)


def test_host_without_ss_and_netstat_is_scanned_from_proc(
    fleet: Fleet, fleet_scan: FleetScan
) -> None:
    c = _by_name(fleet, "ns-c")
    # what ns-c's sshd (and so every login to it) sees in place of the tools
    assert fleet.hidden, "no ss/netstat on this machine to hide"
    for tool in fleet.hidden:
        assert Path(f"/proc/{c.sshd_pid}/root{tool}").read_text() == FAKE_TOOL
        assert Path(tool).read_bytes()[:4] == b"\x7fELF"  # the machine's own is untouched
    collectors = {h["name"]: h["collector"] or "" for h in fleet_scan.report["hosts"]}
    assert collectors["ns-c"].startswith("/proc")
    assert not collectors["ns-a"].startswith("/proc")
    assert not collectors["ns-b"].startswith("/proc")


def test_forbidden_port_in_one_namespace_is_a_finding_for_that_host_only(
    fleet: Fleet, fleet_scan: FleetScan
) -> None:
    rule = forbidden_rule_for(FORBIDDEN_PORT)
    hits = [f for f in fleet_scan.report["findings"] if f["rule_id"] == rule]
    c = _by_name(fleet, "ns-c")
    assert [(f["host"], f["severity"], f["listener"]["port"]) for f in hits] == [
        ("ns-c", "critical", FORBIDDEN_PORT)
    ]
    assert {p["pid"] for p in hits[0]["listener"]["processes"]} == {c.listener_pid}
    assert fleet_scan.proc.returncode == 1, describe(fleet_scan.proc)


def test_process_owner_is_a_user_name_whatever_the_collector(fleet_scan: FleetScan) -> None:
    users = {
        h["name"]: {p["user"] for x in h["listeners"] for p in x["processes"]}
        for h in fleet_scan.report["hosts"]
    }
    assert users == {name: {"root"} for name in HOSTS}
