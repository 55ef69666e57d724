"""A small routed network of namespaces for the exposure tests.

::

    root namespace (the scanner, 10.B.0.1)
        │ veth 10.B.0.0/30
    router namespace (forwards; 10.B.K.1 on each segment)
        ├── segment 10.B.1.0/24 ── office  (probe host, zone office: bash)
        ├── segment 10.B.2.0/24 ── app     (probe host, zone app: bash hidden → nc)
        ├── segment 10.B.3.0/24 ── db      (target, nftables)
        ├── segment 10.B.4.0/24 ── web     (target, nftables)
        ├── segment 10.B.5.0/24 ── ops     (probe host, zone ops: bash, nc hidden → python3)
        └── segment 10.B.6.0/24 ── bare    (probe host, zone lab: bash, nc, python3 hidden)

B is a second octet no interface of this machine uses; every name holds the
test's pid, so parallel runs do not collide. Tools are hidden per host with
bind mounts in a private mount namespace of that host's sshd (a
non-executable empty file over the binary: ``command -v`` no longer finds
it), together with an ``/etc/passwd`` whose root shell is ``/bin/sh`` (root's
usual shell, bash, may be one of the hidden tools).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .harness import Sshd, keygen, run, sshd_config, start_sshd, validate_sshd_config
from .test_netns_fleet import Sock, _quiet, start_listeners

#: the PATH sshd gives root's sessions (where the probe program looks for tools)
SSHD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

HIDE_THEN_SSHD = (
    'hidden=$1 passwd=$2 sshd=$3 cfg=$4; shift 4; mount --bind "$passwd" /etc/passwd || exit 1; '
    'for t in "$@"; do mount --bind "$hidden" "$t" || exit 1; done; '
    'exec "$sshd" -D -e -f "$cfg"'
)


@dataclass
class Host:
    name: str
    segment: int
    hide: tuple[str, ...] = ()
    socks: tuple[Sock, ...] = ()
    nft: str = ""  # the nftables ruleset of the host (a format string: {B} = second octet)
    netns: str = ""
    address: str = ""
    host_key: Path | None = None
    sshd: Sshd | None = None


@dataclass
class Topology:
    octet: int
    suffix: str
    router: str
    hosts: dict[str, Host] = field(default_factory=dict)

    @property
    def scanner_address(self) -> str:
        return f"10.{self.octet}.0.1"

    def net(self, segment: int) -> str:
        return f"10.{self.octet}.{segment}.0/24"

    def nft_counter(self, host: str, counter: str) -> int:
        out = run(
            [
                "ip",
                "netns",
                "exec",
                self.hosts[host].netns,
                "nft",
                "list",
                "counter",
                "inet",
                "fsx",
                counter,
            ]
        )
        m = re.search(r"packets (\d+)", out)
        assert m, out
        return int(m.group(1))


def free_octet() -> int:
    used = set(re.findall(r"\b10\.(\d+)\.", run(["ip", "-o", "addr", "show"])))
    used |= set(re.findall(r"\b10\.(\d+)\.", run(["ip", "route", "show", "table", "all"])))
    free = [b for b in range(160, 250) if str(b) not in used]
    if not free:
        raise RuntimeError("no free 10.B.0.0/16 for the test network")
    return free[secrets.randbelow(len(free))]


def tool_paths(tools: tuple[str, ...]) -> list[str]:
    """Real files of ``tools`` on sshd's PATH (what a login would run)."""
    found: set[str] = set()
    for tool in tools:
        for d in SSHD_PATH.split(":"):
            p = Path(d) / tool
            if p.exists() and os.access(p, os.X_OK):
                found.add(os.path.realpath(p))
    return sorted(found)


def build(
    stack: contextlib.ExitStack,
    hosts: list[Host],
    *,
    sshd: str,
    workdir: Path,
    keys_dir: Path,
) -> Topology:
    suffix = f"{os.getpid() % 100000}{secrets.token_hex(1)}"
    octet = free_octet()
    topo = Topology(octet, suffix, f"fsx{suffix}rt")
    B = octet
    run(["ip", "netns", "add", topo.router])
    stack.callback(_quiet, ["ip", "netns", "del", topo.router])
    rt = ["ip", "netns", "exec", topo.router]
    run([*rt, "ip", "link", "set", "lo", "up"])
    run([*rt, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
    up = f"fx{suffix}u"
    run(["ip", "link", "add", up, "type", "veth", "peer", "name", "up0", "netns", topo.router])
    stack.callback(_quiet, ["ip", "link", "del", up])
    run(["ip", "addr", "add", f"10.{B}.0.1/30", "dev", up])
    run(["ip", "link", "set", up, "up"])
    run([*rt, "ip", "addr", "add", f"10.{B}.0.2/30", "dev", "up0"])
    run([*rt, "ip", "link", "set", "up0", "up"])
    run(["ip", "route", "add", f"10.{B}.0.0/16", "via", f"10.{B}.0.2", "dev", up])
    hidden_file = workdir / "hidden"
    hidden_file.write_text("")
    hidden_file.chmod(0o644)
    passwd = workdir / "passwd"
    passwd.write_text(
        re.sub(r"^(root:.*:)[^:\n]*$", r"\1/bin/sh", Path("/etc/passwd").read_text(), flags=re.M)
    )
    files = _Files(sshd, workdir, keys_dir, hidden_file, passwd)
    for host in hosts:
        _add_host(stack, topo, host, files)
        topo.hosts[host.name] = host
    return topo


@dataclass(frozen=True)
class _Files:
    """What every host's sshd needs: the binary and the test's files."""

    sshd: str
    workdir: Path
    keys_dir: Path
    hidden: Path  # the non-executable file mounted over hidden tools
    passwd: Path  # /etc/passwd with root's shell set to /bin/sh


def _add_host(stack: contextlib.ExitStack, topo: Topology, host: Host, files: _Files) -> None:
    B, k = topo.octet, host.segment
    host.netns = f"fsx{topo.suffix}{host.name}"
    host.address = f"10.{B}.{k}.2"
    run(["ip", "netns", "add", host.netns])
    stack.callback(_quiet, ["ip", "netns", "del", host.netns])
    outer = f"fx{topo.suffix}s{k}"
    run(["ip", "link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", host.netns])
    stack.callback(_quiet, ["ip", "link", "del", outer])
    run(["ip", "link", "set", outer, "netns", topo.router])
    rt = ["ip", "netns", "exec", topo.router]
    run([*rt, "ip", "addr", "add", f"10.{B}.{k}.1/24", "dev", outer])
    run([*rt, "ip", "link", "set", outer, "up"])
    ns = ["ip", "netns", "exec", host.netns]
    run([*ns, "ip", "link", "set", "lo", "up"])
    run([*ns, "ip", "addr", "add", f"{host.address}/24", "dev", "eth0"])
    run([*ns, "ip", "link", "set", "eth0", "up"])
    run([*ns, "ip", "route", "add", "default", "via", f"10.{B}.{k}.1"])
    if host.nft:
        rules = files.workdir / f"{host.name}.nft"
        rules.write_text(host.nft.replace("{B}", str(B)))
        run([*ns, "nft", "-f", str(rules)])
    _start_sshd(stack, host, files)
    if host.socks:
        start_listeners(stack, host.netns, [f"{s.proto},{s.address},{s.port}" for s in host.socks])


def _start_sshd(stack: contextlib.ExitStack, host: Host, files: _Files) -> None:
    sshd = files.sshd
    d = files.workdir / host.name
    d.mkdir()
    host.host_key = keygen(d / "host_ed25519", f"fleetscan-exposure-{host.name}")
    cfg = d / "sshd_config"
    cfg.write_text(
        sshd_config(
            port=22,
            listen=host.address,
            host_key=host.host_key,
            pid_file=d / "sshd.pid",
            keys_dir=files.keys_dir,
        )
    )
    validate_sshd_config(sshd, cfg)
    argv = ["ip", "netns", "exec", host.netns]
    if host.hide:
        paths = tool_paths(host.hide)
        if not paths:
            raise RuntimeError(f"none of {host.hide} is installed: nothing to hide")
        argv += [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            HIDE_THEN_SSHD,
            "sh",
            str(files.hidden),
            str(files.passwd),
            sshd,
            str(cfg),
            *paths,
        ]
    else:
        argv += [sshd, "-D", "-e", "-f", str(cfg)]
    host.sshd = start_sshd(argv, address=host.address, port=22, log=d / "sshd.log")
    stack.callback(host.sshd.stop)


def have_tools() -> list[str]:
    """Programs the topology needs that are missing here."""
    return [
        t
        for t in ("ip", "nft", "unshare", "mount", "nc", "bash", "timeout", "python3")
        if shutil.which(t, path=SSHD_PATH) is None
    ]
