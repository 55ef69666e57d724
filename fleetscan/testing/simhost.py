"""Simulated hosts: real asyncssh servers on loopback that answer like a machine.

Used by the embedded demo fleet, the tests and the benchmarks (never by a
real scan; :mod:`fleetscan.testing.fleet` starts many at once). A simulated
host is not a patch of fleetscan's code: it is a real SSH server, reached
through the real transport, that models a host — its ``uname``, which socket
tools it has, their output, whether sudo works, who the login user is — and,
for fault injection, how it misbehaves (hangs, floods, drops the connection,
refuses authentication...).

The POSIX collector sends its script on stdin; the simulator reads the
script's nonce and frames the canned output the way the real script would,
running the chain in the same order (first tool the host "has" wins).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncssh

from fleetscan import collectors
from fleetscan.collectors.posix_script import OWNERS_PASSWD, OWNERS_PS
from fleetscan.testing import probehost as exposure_sim

POWERSHELL_UNAME_ERROR = (
    "uname : The term 'uname' is not recognized as the name of a cmdlet, function, script "
    "file, or operable program.\r\n"
    "    + CategoryInfo          : ObjectNotFound: (uname:String) [], CommandNotFoundException\r\n"
)

WINDOWS_UNAME_ERROR = (
    "'uname' is not recognized as an internal or external command,\r\n"
    "operable program or batch file.\r\n"
)

#: behaviours for fault injection (see tests/orchestration)
BEHAVIOURS = (
    "normal",
    "hang",  # the collector command never returns
    "trickle",  # output at 1 byte per interval
    "flood",  # endless output
    "disconnect",  # drop the connection in the middle of the output
    "reset",  # TCP reset (RST) in the middle of the output
    "garbage",  # binary / invalid UTF-8 output
    "fail",  # non-zero exit with stderr
    "auth_fail",  # refuse every credential
    "noise",  # login banner / shell noise before the output
)

#: lines no socket tool prints: invalid UTF-8 (written as raw bytes through the
#: server's surrogateescape encoding, so only \udc80-\udcff may appear), NULs
#: and control bytes, a torn row
GARBAGE_LINES = (
    "\udcff\udcfe\udc80 tcp LISTEN \udcc3(",  # bytes FF FE 80 and C3 28: invalid UTF-8
    "\x00\x01\x02binary\x7f\x1b[31m",
    "tcp LISTEN 0 128 0.0.0.0:",
)


@dataclass
class SimHost:
    """A modelled host. ``outputs`` maps a collector step name (``ss``,
    ``netstat``, ``proc``, ``lsof``, ``sockstat``, ``netstat-ano``,
    ``tasklist``) to that command's output on this host."""

    name: str
    platform: str = "linux"
    outputs: dict[str, str] = field(default_factory=dict)
    ps: str = ""
    uid: int = 0
    sudo: str = "ok"  # ok | password | denied (sudo -n refuses the listing commands)
    behaviour: str = "normal"
    step_exit: dict[str, int] = field(default_factory=dict)
    #: what a step's tool writes on stderr when it runs (e.g. ss refused netlink)
    step_stderr: dict[str, str] = field(default_factory=dict)
    trickle_interval: float = 1.0
    flood_chunk: int = 1024 * 1024
    jump: bool = False  # allow direct-tcpip forwarding (a bastion)
    password: str | None = None  # accept password auth with this password
    #: every exec command the host received, in order (to check nothing from the
    #: inventory ever reaches a remote shell)
    commands: list[str] = field(default_factory=list)
    usernames: list[str] = field(default_factory=list)
    #: the listing commands the collector script asked sudo to run, in order
    sudo_commands: list[str] = field(default_factory=list)
    shell: str = "cmd"  # Windows OpenSSH default shell: cmd or powershell
    #: a POSIX probe host: run the exposure probe program in this machine's sh
    #: with PATH limited to this folder (None: the host cannot run it)
    probe_path: str | None = None
    noise: str = "Welcome to Ubuntu 22.04 LTS\nLast login: Tue Nov 24 09:12:01 2026\n"

    def __post_init__(self) -> None:
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {self.behaviour!r} (one of {BEHAVIOURS})")


_UNAME = {"linux": "Linux", "darwin": "Darwin", "freebsd": "FreeBSD"}
_NONCE = re.compile(r"m='@@FLEETSCAN-([0-9a-f]+)'")


def _ps_users(host: SimHost) -> dict[int, str]:
    owners: dict[int, str] = {}
    for line in host.ps.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            owners[int(parts[0])] = parts[1]
    return owners


def sim_uids(host: SimHost) -> dict[str, int]:
    """The host's users (from its ``ps`` table) → uid: root 0, the others from 1000."""
    names = sorted(set(_ps_users(host).values()) - {"root"})
    return {"root": 0, **{name: 1000 + i for i, name in enumerate(names)}}


_ROW_END = re.compile(r"pid=[0-9]+,fd=[0-9]+\)\)[ \t]*$")
_PIDS = re.compile(r"pid=([0-9]+),fd=")


def with_ss_extras(text: str, host: SimHost) -> str:
    """``ss -tulnp`` canned output as ``ss -tulnpe`` prints it: each row whose
    users field ends the line gets ``[uid:N] ino:N sk:N``, the uid being the
    user ``ps`` gives the row's lowest pid — the socket's owner, as the master
    of a pre-fork server that bound it before starting its workers (left out
    for root, as ss does). Rows whose pids the ps table does not know, and
    outputs that already carry the extras, are left as they are."""
    if " ino:" in text:
        return text
    users = _ps_users(host)
    uids = sim_uids(host)
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not _ROW_END.search(line):
            continue
        known = sorted(p for p in map(int, _PIDS.findall(line)) if p in users)
        if not known:
            continue
        user = users[known[0]]
        uid = uids[user]
        lines[i] = line.rstrip() + (f" uid:{uid}" if uid else "") + f" ino:{10000 + i} sk:{i:x}"
    return "\n".join(lines)


def frame_posix(host: SimHost, script: str) -> tuple[str, str]:
    """What :func:`fleetscan.collectors.posix_script` would print on this host
    (stdout, stderr). A script that asks sudo for its listings (become) gets
    them when ``host.sudo`` is ``ok``; otherwise each sudo call is refused the
    way sudo refuses, and only the unprivileged steps (/proc) can run."""
    match = _NONCE.search(script)
    if not match:
        return "", ""
    become = "sudo -n " in script
    m = collectors.marker(match.group(1))
    out = []
    if "$m os $os" in script:  # the script finds the platform out itself
        out.append(f"{m} os {_UNAME.get(host.platform, host.platform)}")
    out.append(f"{m} uid {host.uid}")
    err: list[str] = []
    chosen = None
    for step in collectors.posix_chain(host.platform):
        if step.name not in host.outputs:
            continue  # the host does not have this tool: `command -v` fails
        out.append(f"{m} begin {step.name}")
        if become and step.sudo:
            host.sudo_commands.append(step.command)
        if become and step.sudo and host.sudo != "ok":
            err.append(
                "sudo: a password is required\n"
                if host.sudo == "password"
                else f"Sorry, user tester is not allowed to execute '{step.command}' as root.\n"
            )
            out.append(f"{m} end {step.name} 1")
            continue
        code = host.step_exit.get(step.name, 0)
        err.append(host.step_stderr.get(step.name, ""))
        text = host.outputs[step.name]
        if step.name == "ss" and "e" in step.command.split()[-1]:
            text = with_ss_extras(text, host)
        if text:
            out.append(text.rstrip("\n"))
        out.append(f"{m} end {step.name} {code}")
        if code in step.ok_exit:
            chosen = step
            break
    if chosen is None:
        out.append(f"{m} none")
    elif OWNERS_PASSWD in chosen.owners:
        out.append(f"{m} begin passwd")
        out += [f"{i} {name}" for name, i in sim_uids(host).items()]
        out.append(f"{m} end passwd 0")
    if chosen is not None and OWNERS_PS in chosen.owners:
        out.append(f"{m} begin ps")
        if host.ps:
            out.append(host.ps.rstrip("\n"))
        out.append(f"{m} end ps 0")
    return "\n".join(out) + "\n", "".join(err)


# (proto, address, port, [(process, pid)])
Spec = tuple[str, str, int, list[tuple[str, int]]]


def render_ss(specs: Sequence[Spec]) -> str:
    """Render listeners the way iproute2 ``ss -tulnp`` (5.x) prints them."""
    rows = [("Netid", "State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port")]
    procs = [""]
    for proto, addr, port, owners in specs:
        v6 = ":" in addr
        local = f"[{addr}]:{port}" if v6 and "%" not in addr else f"{addr}:{port}"
        peer = "[::]:*" if v6 else "0.0.0.0:*"
        state = "LISTEN" if proto == "tcp" else "UNCONN"
        backlog = "128" if proto == "tcp" else "0"
        rows.append((proto, state, "0", backlog, local, peer))
        users = ",".join(f'("{name}",pid={pid},fd={3 + i})' for i, (name, pid) in enumerate(owners))
        procs.append(f"users:({users})" if owners else "")
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    out = []
    for row, proc in zip(rows, procs, strict=True):
        cells = [
            row[0].ljust(widths[0]),
            row[1].ljust(widths[1]),
            row[2].ljust(widths[2]),
            row[3].ljust(widths[3]),
            row[4].rjust(widths[4]),
            row[5].ljust(widths[5]),
        ]
        line = " ".join(cells)
        if proc == "" and row[0] == "Netid":
            line = line.rstrip() + "Process"
        out.append((line + " " + proc).rstrip())
    return "\n".join(out) + "\n"


#: A healthy Linux host, as ``ss -tulnp`` and ``ps`` print it: sshd, a
#: loopback PostgreSQL, dhclient and a two-worker nginx (the fault tests'
#: and the memory bench's good host).
HEALTHY_SS = render_ss(
    [
        ("tcp", "0.0.0.0", 22, [("sshd", 733)]),
        ("tcp", "127.0.0.1", 5432, [("postgres", 812)]),
        ("udp", "0.0.0.0", 68, [("dhclient", 640)]),
        ("tcp", "::", 443, [("nginx", 1200), ("nginx", 1201)]),
    ]
)
HEALTHY_PS = "  733 root\n  812 postgres\n  640 root\n 1200 root\n 1201 www-data\n"


def mass_ss_output(count: int, process: tuple[str, int] = ("haproxy", 4242)) -> str:
    """``ss -tulnp`` output with ``count`` distinct TCP listeners, all held by
    one process: ports 1-60000 on 127.0.0.1, then on 127.0.0.2, and so on.
    (A load balancer or a honeypot host really can hold this many.)"""
    name, pid = process
    header = "Netid State  Recv-Q Send-Q Local Address:Port  Peer Address:Port Process"
    rows = [header]
    for i in range(count):
        addr = f"127.0.0.{1 + i // 60000}"
        port = 1 + i % 60000
        rows.append(
            f"tcp   LISTEN 0      128    {addr}:{port} 0.0.0.0:* "
            f'users:(("{name}",pid={pid},fd={3 + i}))'
        )
    return "\n".join(rows) + "\n"


def mass_ss_keys(count: int) -> set[tuple[str, int, str, int]]:
    """The listener keys :func:`mass_ss_output` describes."""
    return {("tcp", 4, f"127.0.0.{1 + i // 60000}", 1 + i % 60000) for i in range(count)}


def with_garbage(text: str) -> str:
    """``text`` with :data:`GARBAGE_LINES` after its header and at its end."""
    head, _, rest = text.partition("\n")
    return "\n".join([head, *GARBAGE_LINES, rest.rstrip("\n"), *GARBAGE_LINES]) + "\n"


@dataclass
class ConnectionCounter:
    """Counts simultaneous SSH connections across simulated hosts."""

    current: int = 0
    peak: int = 0
    total: int = 0

    def opened(self) -> None:
        self.current += 1
        self.total += 1
        self.peak = max(self.peak, self.current)

    def closed(self) -> None:
        self.current -= 1


class _Server(asyncssh.SSHServer):
    def __init__(
        self,
        host: SimHost,
        client_keys: list[asyncssh.SSHKey],
        counter: ConnectionCounter | None = None,
    ) -> None:
        self._host = host
        self._client_keys = client_keys
        self._counter = counter

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        if self._counter:
            self._counter.opened()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._counter:
            self._counter.closed()

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> bool:
        # acts as a jump host (ProxyJump), to loopback only
        return self._host.jump and dest_host in ("127.0.0.1", "::1", "localhost")

    def begin_auth(self, username: str) -> bool:
        self._host.usernames.append(username)
        return True

    def password_auth_supported(self) -> bool:
        return self._host.password is not None

    def validate_password(self, username: str, password: str) -> bool:
        return self._host.behaviour != "auth_fail" and password == self._host.password

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        if self._host.behaviour == "auth_fail":
            return False
        wanted = {k.public_data for k in self._client_keys}
        return key.public_data in wanted


async def _handle(host: SimHost, process: asyncssh.SSHServerProcess[str]) -> None:
    command = (process.command or "").strip()
    host.commands.append(process.command or "")
    try:
        if host.behaviour == "noise":
            process.stdout.write(host.noise)
        if command == "uname -s":
            await _answer_uname(host, process)
            return
        if host.platform == "windows" and command == exposure_sim.POWERSHELL_COMMAND:
            process.stdout.write(await exposure_sim.answer_windows(await process.stdin.read()))
            process.exit(0)
            return
        if command in ("sh -s", "sudo -n sh -s") and host.platform == "windows":
            await process.stdin.read()
            _not_a_command(host, process, command)
            return
        if command in ("sh -s", "sudo -n sh -s"):
            script = await process.stdin.read()
            if exposure_sim.is_probe_program(command, script):
                out, err, code = await exposure_sim.run_posix(
                    script, host.probe_path or "/nonexistent"
                )
                process.stdout.write(out)
                process.stderr.write(err)
                process.exit(code)
                return
            if command.startswith("sudo") and host.sudo != "ok":  # a root shell asked for
                process.stderr.write(
                    "sudo: a password is required\n"
                    if host.sudo == "password"
                    else f"sudo: {host.name}: user is not in the sudoers file\n"
                )
                process.exit(1)
                return
            out, err = frame_posix(host, script)
            process.stderr.write(err)
            await _misbehave_or(host, process, out)
            return
        if host.platform == "windows" and command == collectors.WINDOWS_NETSTAT:
            await _misbehave_or(host, process, host.outputs.get("netstat-ano", ""))
            return
        if host.platform == "windows" and command == collectors.WINDOWS_TASKLIST:
            process.stdout.write(host.outputs.get("tasklist", ""))
            process.exit(0)
            return
        _not_a_command(host, process, command)
    except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged, BrokenPipeError):
        process.exit(1)
    except (asyncssh.ConnectionLost, ConnectionResetError):
        pass


def _not_a_command(host: SimHost, process: asyncssh.SSHServerProcess[str], command: str) -> None:
    """How the host's shell refuses a program it does not have."""
    program = command.split()[0] if command else ""
    if host.platform == "windows":
        powershell = host.shell == "powershell"
        error = POWERSHELL_UNAME_ERROR if powershell else WINDOWS_UNAME_ERROR
        process.stderr.write(error.replace("uname", program))
    else:
        process.stderr.write(f"sh: 1: {program}: not found\n")
    process.exit(127 if host.platform != "windows" else 1)


async def _answer_uname(host: SimHost, process: asyncssh.SSHServerProcess[str]) -> None:
    if host.platform == "windows":
        powershell = host.shell == "powershell"
        process.stderr.write(POWERSHELL_UNAME_ERROR if powershell else WINDOWS_UNAME_ERROR)
        process.exit(1)
        return
    names = {"linux": "Linux", "darwin": "Darwin", "freebsd": "FreeBSD"}
    process.stdout.write(names.get(host.platform, host.platform) + "\n")
    process.exit(0)


async def _misbehave_or(host: SimHost, process: asyncssh.SSHServerProcess[str], text: str) -> None:
    b = host.behaviour
    if b == "hang":
        await asyncio.sleep(3600)
    elif b == "trickle":
        for ch in text:
            process.stdout.write(ch)
            await asyncio.sleep(host.trickle_interval)
    elif b == "flood":
        # the tool's output never ends: the frame opens, then rows forever
        head, sep, _ = text.partition(" begin ")
        if sep:
            process.stdout.write(head + sep + text[len(head) + len(sep) :].split("\n", 1)[0] + "\n")
        else:  # an unframed listing (Windows netstat): its header, then the flood
            process.stdout.write(text)
        chunk = (
            "  TCP    0.0.0.0:1              0.0.0.0:0              LISTENING       4\r\n"
            if host.platform == "windows"
            else "tcp LISTEN 0 128 0.0.0.0:1 0.0.0.0:* " + "A" * 80 + "\n"
        )
        block = chunk * max(1, host.flood_chunk // len(chunk))
        while True:
            process.stdout.write(block)
            await process.stdout.drain()
    elif b == "disconnect":
        process.stdout.write(text[: len(text) // 2])
        await process.stdout.drain()
        conn = process.channel.get_connection()
        conn.abort()
        return
    elif b == "reset":
        process.stdout.write(text[: len(text) // 2])
        await process.stdout.drain()
        conn = process.channel.get_connection()
        sock = conn.get_extra_info("socket")
        # linger 0: close() sends a RST instead of a FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.abort()
        return
    elif b == "garbage":
        process.stdout.write(text[: len(text) // 3] + "\udcff\udcfe\x00\x01binary\x7f\n")
    elif b == "fail":
        process.stderr.write("ss: netlink: Operation not permitted\n")
        process.exit(2)
        return
    else:
        process.stdout.write(text)
    process.exit(0)


@dataclass
class RunningHost:
    host: SimHost
    port: int
    host_key: asyncssh.SSHKey
    server: asyncssh.SSHAcceptor


async def start_host(
    host: SimHost,
    client_public_keys: Sequence[asyncssh.SSHKey],
    host_key: asyncssh.SSHKey | None = None,
    address: str = "127.0.0.1",
    port: int = 0,
    counter: ConnectionCounter | None = None,
) -> RunningHost:
    """Start one simulated host on loopback (port 0: a free port)."""
    key = host_key or asyncssh.generate_private_key("ssh-ed25519")
    keys = list(client_public_keys)

    def process_factory(process: asyncssh.SSHServerProcess[str]) -> Any:
        return _handle(host, process)

    server = await asyncssh.create_server(
        lambda: _Server(host, keys, counter),
        address,
        port,
        server_host_keys=[key],
        process_factory=process_factory,
        encoding="utf-8",
        errors="surrogateescape",
        line_editor=False,
        allow_scp=False,
    )
    sockets = server.sockets
    bound = sockets[0].getsockname()[1] if sockets else port
    return RunningHost(host, int(bound), key, server)


async def stop_hosts(hosts: Sequence[RunningHost]) -> None:
    for h in hosts:
        h.server.close()
    for h in hosts:
        with contextlib.suppress(Exception):
            await h.server.wait_closed()


@contextlib.asynccontextmanager
async def stalled_server(banner: bytes = b"") -> AsyncIterator[int]:
    """A raw TCP server on loopback that accepts, writes ``banner`` (e.g.
    ``b"SSH-2.0-OpenSSH_9.6\\r\\n"``: the SSH version line, then nothing, so
    the client waits in key exchange) and never says anything more. Yields the
    port; every accepted connection is closed on exit."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        held.append(w)
        if banner:
            w.write(banner)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    try:
        yield port
    finally:
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()


def known_hosts_line(address: str, port: int, key: asyncssh.SSHKey) -> str:
    """An OpenSSH known_hosts line for a server on a non-default port."""
    pub = key.export_public_key("openssh").decode().strip()
    pattern = address if port == 22 else f"[{address}]:{port}"
    return f"{pattern} {pub}"
