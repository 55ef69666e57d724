"""The embedded demo fleet: several simulated hosts on 127.0.0.1.

``fleetscan demo`` starts these SSH servers in-process, writes a real Ansible
YAML inventory and a known_hosts file for them, and scans them through
exactly the code path of ``fleetscan scan`` (inventory loader, asyncssh
transport with strict host-key checking, collectors, parsers, policy engine,
reporters). Nothing outside the machine is touched.

Hosts (see policies/demo.yaml for what the policy says about them):

* web-01 — nginx on 80/443 (master + worker on one socket), gunicorn on loopback
* db-01 — PostgreSQL wrongly bound to 0.0.0.0:5432, redis on loopback
* app-01 — compromised: ``nc`` listening on 4444, an undocumented php-fpm
* mon-01 — the login user has no sudo: scanned, but ``partial``
* win-01 — Windows Server: ``netstat -ano`` + ``tasklist`` through cmd.exe
* mac-01 — macOS: ``lsof``; launchd holds port 22 (waived), an undocumented app
* bsd-01 — FreeBSD: ``sockstat -46l``, with a kernel-owned NFS socket
* down-01 — does not answer (connection refused)
* rogue-01 — its host key does not match known_hosts
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fleetscan.model import Severity
from fleetscan.options import RunOptions
from fleetscan.testing.fleet import SimFleet, free_port, start_fleet, threaded_fleet
from fleetscan.testing.simhost import RunningHost, SimHost, render_ss


def _ps(users: dict[int, str]) -> str:
    return "".join(f"{pid:>7} {user}\n" for pid, user in sorted(users.items()))


WINDOWS_NETSTAT = """\r
Active Connections\r
\r
  Proto  Local Address          Foreign Address        State           PID\r
  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       912\r
  TCP    0.0.0.0:445            0.0.0.0:0              LISTENING       4\r
  TCP    0.0.0.0:3389           0.0.0.0:0              LISTENING       1104\r
  TCP    0.0.0.0:5985           0.0.0.0:0              LISTENING       4\r
  TCP    10.0.0.15:22           10.0.0.2:51022         ESTABLISHED     3220\r
  TCP    0.0.0.0:22             0.0.0.0:0              LISTENING       3220\r
  TCP    [::]:135               [::]:0                 LISTENING       912\r
  TCP    [::]:445               [::]:0                 LISTENING       4\r
  UDP    0.0.0.0:123            *:*                                    1380\r
  UDP    [::]:500               *:*                                    2288\r
"""

WINDOWS_TASKLIST = (
    '"System Idle Process","0","Services","0","8 K"\r\n'
    '"System","4","Services","0","5,772 K"\r\n'
    '"svchost.exe","912","Services","0","12,704 K"\r\n'
    '"svchost.exe","1104","Services","0","18,116 K"\r\n'
    '"svchost.exe","1380","Services","0","9,020 K"\r\n'
    '"IKEEXT Service.exe","2288","Services","0","4,100 K"\r\n'
    '"sshd.exe","3220","Services","0","6,512 K"\r\n'
)


# macOS: `lsof -nP -iTCP -sTCP:LISTEN; lsof -nP -iUDP` (two tables). launchd holds
# port 22 (sshd is socket-activated); lsof escapes the space in "My Server" as \x20
MACOS_LSOF = r"""COMMAND     PID           USER   FD   TYPE             DEVICE SIZE/OFF NODE NAME
launchd       1           root   35u  IPv6 0x6f3c1a2b3c4d5e01      0t0  TCP *:22 (LISTEN)
launchd       1           root   36u  IPv4 0x6f3c1a2b3c4d5e02      0t0  TCP *:22 (LISTEN)
ControlCe   512          alice    9u  IPv4 0x6f3c1a2b3c4d5e03      0t0  TCP *:7000 (LISTEN)
postgres    811      _postgres    7u  IPv6 0x6f3c1a2b3c4d5e05      0t0  TCP [::1]:5432 (LISTEN)
postgres    811      _postgres    8u  IPv4 0x6f3c1a2b3c4d5e06      0t0  TCP 127.0.0.1:5432 (LISTEN)
My\x20Ser  4242          alice   11u  IPv4 0x6f3c1a2b3c4d5e07      0t0  TCP *:8080 (LISTEN)
COMMAND     PID           USER   FD   TYPE             DEVICE SIZE/OFF NODE NAME
mDNSRespo   301 _mdnsresponder    8u  IPv4 0x6f3c1a2b3c4d5e08      0t0  UDP *:5353
"""

# FreeBSD: `sockstat -46l`; the `?` row is a kernel socket (NFS) with no owner
FREEBSD_SOCKSTAT = """USER     COMMAND    PID   FD  PROTO  LOCAL ADDRESS         FOREIGN ADDRESS
root     sshd        812  4   tcp6   *:22                  *:*
root     sshd        812  5   tcp4   *:22                  *:*
www      nginx      1020  6   tcp4   *:80                  *:*
root     syslogd     601  7   udp4   *:514                 *:*
?        ?          ?     ?   udp6   *:2049                *:*
"""


def demo_hosts() -> list[SimHost]:
    """The modelled machines of the demo fleet (down-01 and rogue-01 are
    handled by :func:`start_demo_fleet`)."""
    resolved = ("udp", "127.0.0.53%lo", 53, [("systemd-resolve", 512)])
    sshd = ("tcp", "0.0.0.0", 22, [("sshd", 733)])
    sshd6 = ("tcp", "::", 22, [("sshd", 733)])
    web = [
        resolved,
        sshd,
        ("tcp", "0.0.0.0", 80, [("nginx", 1200), ("nginx", 1201)]),
        ("tcp", "0.0.0.0", 443, [("nginx", 1200), ("nginx", 1201)]),
        ("tcp", "127.0.0.1", 8080, [("gunicorn", 1410)]),
        sshd6,
    ]
    db = [
        resolved,
        sshd,
        ("tcp", "0.0.0.0", 5432, [("postgres", 812)]),
        ("tcp", "127.0.0.1", 6379, [("redis-server", 845)]),
        sshd6,
    ]
    app = [
        ("udp", "0.0.0.0", 5353, [("avahi-daemon", 640)]),
        sshd,
        ("tcp", "0.0.0.0", 8000, [("java", 2001)]),
        ("tcp", "0.0.0.0", 4444, [("nc", 6666)]),
        ("tcp", "127.0.0.1", 9000, [("php-fpm", 2300)]),
    ]
    # mon-01: no sudo, so ss shows only the login user's own processes
    mon = [
        ("tcp", "0.0.0.0", 22, []),
        ("tcp", "0.0.0.0", 9100, [("node_exporter", 3100)]),
        ("tcp", "0.0.0.0", 3000, [("grafana", 3150)]),
    ]
    base_users = {1: "root", 512: "systemd-resolve", 733: "root"}
    return [
        SimHost(
            "web-01",
            outputs={"ss": render_ss(web)},
            ps=_ps({**base_users, 1200: "root", 1201: "www-data", 1410: "www-data"}),
        ),
        SimHost(
            "db-01",
            outputs={"ss": render_ss(db)},
            ps=_ps({**base_users, 812: "postgres", 845: "redis"}),
        ),
        SimHost(
            "app-01",
            outputs={"ss": render_ss(app)},
            ps=_ps({**base_users, 640: "avahi", 2001: "app", 6666: "www-data", 2300: "www-data"}),
        ),
        SimHost(
            "mon-01",
            outputs={"ss": render_ss(mon)},
            ps=_ps({**base_users, 3100: "monitor", 3150: "monitor"}),
            uid=1001,
            sudo="password",
        ),
        SimHost("mac-01", platform="darwin", outputs={"lsof": MACOS_LSOF}),
        SimHost("bsd-01", platform="freebsd", outputs={"sockstat": FREEBSD_SOCKSTAT}),
        SimHost(
            "win-01",
            platform="windows",
            outputs={"netstat-ano": WINDOWS_NETSTAT, "tasklist": WINDOWS_TASKLIST},
        ),
    ]


GROUPS = {
    "web-01": "web",
    "db-01": "db",
    "app-01": "app",
    "mon-01": "monitoring",
    "win-01": "windows",
    "mac-01": "macos",
    "bsd-01": "freebsd",
    "down-01": "web",
    "rogue-01": "db",
}


def write_demo_inventory(fleet: SimFleet, path: Path) -> Path:
    """The demo's Ansible YAML inventory: the hosts in their groups, a Linux
    group with become, and down-01 on a port nothing listens on."""
    hosts: dict[str, dict[str, Any]] = fleet.inventory_hosts()
    for entry in hosts.values():  # user and key are set once, for all
        del entry["ansible_user"], entry["ansible_ssh_private_key_file"]
    hosts["mon-01"]["ansible_user"] = "monitor"
    hosts["down-01"] = {"ansible_host": "127.0.0.1", "ansible_port": free_port()}
    children: dict[str, dict[str, Any]] = {}
    for name, group in GROUPS.items():
        children.setdefault(group, {"hosts": {}})["hosts"][name] = hosts[name]
    linux_names = [n for n in GROUPS if n not in ("win-01", "mac-01", "bsd-01")]
    linux = {"hosts": dict.fromkeys(linux_names), "vars": {"ansible_become": True}}
    inventory = {
        "all": {
            "vars": {"ansible_user": "fleetscan", "ansible_ssh_private_key_file": str(fleet.key)},
            "children": {**children, "linux": linux},
        }
    }
    path.write_text(
        "# Demo fleet inventory written by `fleetscan demo` (Ansible YAML format)\n"
        + yaml.safe_dump(inventory, sort_keys=False)
    )
    return path


def demo_fleet_hosts() -> list[SimHost]:
    """Every running demo host; rogue-01's key is not the one known_hosts has."""
    return [*demo_hosts(), SimHost("rogue-01", outputs={"ss": ""})]


async def start_demo_fleet(workdir: Path) -> DemoFleet:
    """Start the demo servers and write ``inventory.yaml``, ``known_hosts`` and
    a client key into ``workdir``."""
    fleet = await start_fleet(workdir, demo_fleet_hosts(), wrong_key=("rogue-01",))
    return DemoFleet(fleet, write_demo_inventory(fleet, workdir / "inventory.yaml"))


@dataclass
class DemoFleet:
    fleet: SimFleet
    inventory: Path

    @property
    def hosts(self) -> list[RunningHost]:
        return self.fleet.running

    @property
    def known_hosts(self) -> Path:
        return self.fleet.known_hosts

    @property
    def client_key(self) -> Path:
        return self.fleet.key

    async def stop(self) -> None:
        await self.fleet.stop()


@contextlib.contextmanager
def running_demo_fleet() -> Iterator[DemoFleet]:
    """The demo fleet, served from a background thread's event loop (so the
    scan runs in the main thread, signals included), in a temporary folder."""
    with (
        tempfile.TemporaryDirectory(prefix="fleetscan-demo-") as tmp,
        threaded_fleet(Path(tmp), demo_fleet_hosts(), wrong_key=("rogue-01",)) as fleet,
    ):
        yield DemoFleet(fleet, write_demo_inventory(fleet, Path(tmp) / "inventory.yaml"))


def demo_options(fleet: DemoFleet, *, output: Path, fail_on: Severity) -> RunOptions:
    """What ``fleetscan demo`` runs: the shipped baseline + demo policies, the
    fleet's own known_hosts, no ssh config or agent of the user's."""
    from fleetscan.policy import builtin_policy_path

    return RunOptions(
        inventory=(fleet.inventory,),
        policies=(builtin_policy_path("baseline"), builtin_policy_path("demo")),
        output=output,
        fail_on=fail_on,
        concurrency=10,
        connect_timeout=5.0,
        host_timeout=30.0,
        known_hosts=fleet.known_hosts,
        ssh_config=(),
        use_agent=False,
    )
