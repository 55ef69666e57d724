"""The shared fleet behind a delayed link: the latency mode of :mod:`bench.scan`.

    with LatencyFleet(n=1000, rtt_ms=50, harness=..., fleet_dir=...) as lf:
        lf.client_fleet_json   # fleet.json with the addresses clients must use

Topology (all names and addresses are private to this benchmark):

* network namespace ``benchlat`` holds the fleet: the shared harness's
  ``fleet.py up N`` runs unchanged inside it (``nsenter --net``), so its sshd
  listen on 127.0.10.1 … of the **namespace's** loopback, unreachable from the
  root namespace except over the link below;
* the link: root side ``bl-lat0`` = 10.232.0.1/30, namespace side ``bl-lat1`` =
  10.232.0.2/30. The root namespace routes 10.231.0.0/16 (and nothing else)
  over it;
* in the namespace, one nftables rule maps destination 10.231.a.b to
  127.0.a.b (``dnat ip prefix``), with ``route_localnet`` on so that packets
  from the link may reach the loopback addresses. sshd therefore sees the
  fleet's own 127.0.a.b as its local address and ``fleet-cmd`` serves the
  right canned output; clients use 10.231.a.b (host *i* of fleet.py at
  127.0.a.b is 10.231.a.b), with a known_hosts rewritten to match.

The delay (``RTT_MS`` is the round trip added; each direction gets half):

* ``netem``: the link is a veth pair, each end with
  ``tc qdisc add dev … root netem delay RTT/2 ms``;
* ``tun`` (:mod:`bench.delayline`): the link is two TUN devices joined by a
  userspace process holding each packet RTT/2 ms. For kernels built without
  ``sch_netem`` (this project's reference box). Its CPU is charged to neither
  the client nor the fleet cgroup (it shows in ``box_cpu_s`` only).
* ``auto`` (default): netem when the kernel has it, else tun.

Teardown (:meth:`LatencyFleet.close`, also on errors and Ctrl-C): ``fleet.py
down``, stop the delay line, delete the veth, delete the namespace. A
leftover namespace of an interrupted run is removed before a new one is built.
Nothing is routed anywhere but over the link: :meth:`check_route` refuses to
run clients unless ``ip route get`` of the first fleet address names the link.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

NETNS = "benchlat"
LEFT, RIGHT = "bl-lat0", "bl-lat1"
LEFT_ADDR, RIGHT_ADDR = "10.232.0.1", "10.232.0.2"
FLEET_NET = "10.231.0.0/16"
NAT_RULES = f"""table ip benchlat {{
  chain pre {{
    type nat hook prerouting priority dstnat; policy accept;
    iifname "{RIGHT}" ip daddr {FLEET_NET}
      dnat ip prefix to ip daddr map {{ {FLEET_NET} : 127.0.0.0/16 }}
  }}
}}
"""


def client_ip(fleet_ip: str) -> str:
    """The address a client uses for fleet.py's host at 127.0.a.b: 10.231.a.b."""
    a, b, c, d = fleet_ip.split(".")
    if (a, b) != ("127", "0"):
        raise ValueError(f"not a fleet.py address: {fleet_ip}")
    return f"10.231.{c}.{d}"


def parse_ms(text: str) -> float:
    """'50ms', '50', '0.05s' → milliseconds."""
    t = text.strip().lower()
    if t.endswith("ms"):
        return float(t[:-2])
    if t.endswith("s"):
        return float(t[:-1]) * 1000
    return float(t)


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(cmd), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def in_ns(*cmd: str) -> list[str]:
    """CMD inside the namespace's network only (``ip netns exec`` would also remount
    /sys, hiding the cgroup v1 hierarchy that fleet.py and measure.py use)."""
    return ["nsenter", f"--net=/run/netns/{NETNS}", *cmd]


def netem_available() -> bool:
    """Whether tc can create a netem qdisc (tried on a throwaway dummy-free veth)."""
    probe_a, probe_b = "bl-probe0", "bl-probe1"
    sh("ip", "link", "del", probe_a, check=False)
    if sh(
        "ip", "link", "add", probe_a, "type", "veth", "peer", "name", probe_b, check=False
    ).returncode:
        return False
    try:
        r = sh("tc", "qdisc", "add", "dev", probe_a, "root", "netem", "delay", "1ms", check=False)
        return r.returncode == 0
    finally:
        sh("ip", "link", "del", probe_a, check=False)


def stale_delaylines() -> list[int]:
    """PIDs of delay lines for NETNS left by an earlier run that was killed hard."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            args = Path(f"/proc/{d}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"bench.delayline" in args and NETNS.encode() in args:
            pids.append(int(d))
    return pids


class LatencyFleet:
    """fleet.py's fleet of N hosts in namespace NETNS, RTT_MS away; a context manager."""

    def __init__(
        self, n: int, rtt_ms: float, harness: Path, fleet_dir: Path, method: str = "auto"
    ) -> None:
        self.n, self.rtt_ms, self.harness, self.fleet_dir = n, rtt_ms, harness, fleet_dir
        self.method = method
        self.delayline: subprocess.Popen[str] | None = None
        self.client_dir = fleet_dir / "latency"
        self.client_fleet_json = self.client_dir / "fleet.json"
        self.measured_rtt_ms = 0.0

    # -- bring-up ---------------------------------------------------------------

    def __enter__(self) -> LatencyFleet:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("the latency mode needs root (namespaces, links, sshd)")
        self.close(quiet=True)  # an interrupted earlier run's leftovers
        if self.method == "auto":
            self.method = "netem" if netem_available() else "tun"
        elif self.method == "netem" and not netem_available():
            raise RuntimeError(
                "tc cannot create a netem qdisc (kernel without sch_netem?): "
                "use --delay-via tun, the userspace delay line"
            )
        sh("ip", "netns", "add", NETNS)
        sh(*in_ns("ip", "link", "set", "lo", "up"))
        one_way = f"{self.rtt_ms / 2:g}ms"
        if self.method == "netem":
            sh("ip", "link", "add", LEFT, "type", "veth", "peer", "name", RIGHT, "netns", NETNS)
            sh("tc", "qdisc", "add", "dev", LEFT, "root", "netem", "delay", one_way)
            sh(*in_ns("tc", "qdisc", "add", "dev", RIGHT, "root", "netem", "delay", one_way))
        elif self.method == "tun":
            self.delayline = subprocess.Popen(
                [sys.executable, "-m", "bench.delayline", NETNS, "--one-way-ms",
                 str(self.rtt_ms / 2), "--left", LEFT, "--right", RIGHT],
                cwd=Path(__file__).resolve().parent.parent,
                stdout=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            assert self.delayline.stdout is not None
            if self.delayline.stdout.readline().strip() != "ready":
                raise RuntimeError("the delay line (bench.delayline) did not start")
        else:
            raise ValueError(f"unknown delay method {self.method!r} (netem, tun, auto)")
        sh("ip", "addr", "add", f"{LEFT_ADDR}/30", "dev", LEFT)
        sh("ip", "link", "set", LEFT, "up")
        sh(*in_ns("ip", "addr", "add", f"{RIGHT_ADDR}/30", "dev", RIGHT))
        sh(*in_ns("ip", "link", "set", RIGHT, "up"))
        sh("ip", "route", "add", FLEET_NET, "via", RIGHT_ADDR, "dev", LEFT)
        for key in ("all", RIGHT):
            sh(*in_ns("sysctl", "-qw", f"net.ipv4.conf.{key}.route_localnet=1"))
        nft = subprocess.run(
            in_ns("nft", "-f", "-"), input=NAT_RULES, text=True, capture_output=True
        )
        if nft.returncode:
            raise RuntimeError(f"nft (address mapping in {NETNS}) failed: {nft.stderr.strip()}")
        env = {**os.environ, "FLEET_DIR": str(self.fleet_dir)}
        up = subprocess.run(
            in_ns(sys.executable, str(self.harness / "fleet.py"), "up", str(self.n)),
            env=env,
            capture_output=True,
            text=True,
        )
        if up.returncode:
            raise RuntimeError(f"fleet.py up {self.n} in {NETNS} failed: {up.stderr.strip()}")
        self.write_client_files()
        self.check_route()
        self.measured_rtt_ms = self.tcp_connect_ms(client_ip("127.0.10.1"))

    def write_client_files(self) -> None:
        """fleet.json and known_hosts as a client outside the namespace must use them."""
        fleet = json.loads((self.fleet_dir / "fleet.json").read_text())
        self.client_dir.mkdir(parents=True, exist_ok=True)
        kh = self.client_dir / "known_hosts"
        lines = []
        for line in (self.fleet_dir / "known_hosts").read_text().splitlines():
            host, _, rest = line.partition(" ")
            ip, _, port = host.strip("[").partition("]:")
            lines.append(f"[{client_ip(ip)}]:{port} {rest}")
        kh.write_text("\n".join(lines) + "\n")
        for h in fleet["hosts"]:
            h["ip"] = client_ip(h["ip"])
        fleet["known_hosts"] = str(kh)
        fleet["latency"] = {"rtt_ms": self.rtt_ms, "method": self.method, "netns": NETNS}
        self.client_fleet_json.write_text(json.dumps(fleet, indent=1) + "\n")

    def check_route(self) -> None:
        """Refuse to go on unless the fleet's addresses are routed over our link only."""
        for ip in (client_ip("127.0.10.1"), "10.231.255.254"):
            got = sh("ip", "route", "get", ip).stdout
            if f"dev {LEFT} " not in got:
                raise RuntimeError(f"{ip} is not routed over {LEFT}: {got.strip()}")

    def delay_cpu_s(self) -> float:
        """CPU seconds the userspace delay line has used so far (0 with netem)."""
        if self.delayline is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.delayline.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    @staticmethod
    def tcp_connect_ms(ip: str, port: int = 2222, tries: int = 5) -> float:
        """Median TCP connect time to one fleet host (≈ the added round trip)."""
        times = []
        for _ in range(tries):
            t0 = time.perf_counter()
            with socket.create_connection((ip, port), timeout=10):
                times.append((time.perf_counter() - t0) * 1000)
        return sorted(times)[len(times) // 2]

    # -- teardown ---------------------------------------------------------------

    def close(self, quiet: bool = False) -> None:
        """Stop everything this mode starts; each step runs even if another failed."""
        env = {**os.environ, "FLEET_DIR": str(self.fleet_dir)}
        subprocess.run(
            [sys.executable, str(self.harness / "fleet.py"), "down"],
            env=env,
            check=False,
            capture_output=True,
        )
        if self.delayline is not None:
            self.delayline.send_signal(signal.SIGTERM)
            try:
                self.delayline.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.delayline.kill()
                self.delayline.wait()
            self.delayline = None
        for pid in stale_delaylines():
            os.kill(pid, signal.SIGTERM)
        sh("ip", "route", "del", FLEET_NET, "dev", LEFT, check=False)
        sh("ip", "link", "del", LEFT, check=False)  # veth: removes both ends
        if Path(f"/run/netns/{NETNS}").exists():
            r = sh("ip", "netns", "del", NETNS, check=False)
            if r.returncode and not quiet:
                print(f"could not delete namespace {NETNS}: {r.stderr.strip()}", file=sys.stderr)
