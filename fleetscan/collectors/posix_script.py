"""What the POSIX collector runs (Linux, macOS, FreeBSD): one script, one exec channel.

With become (``ansible_become``), sudo is asked for the listing commands
themselves — ``sudo -n ss -tulnp``, ``sudo -n netstat -tulnpW``, ``sudo -n
lsof …``, ``sudo -n sockstat -46l`` — never for a shell, inside the same
single channel: ``examples/sudoers.d/fleetscan`` grants exactly these. The
script itself, ``ps`` and the /proc fallback run as the login user.

Per platform an ordered chain of steps, each a constant command plus the
parser that reads it (pyinfra's "fact" idea). The whole chain runs as ONE
script over ONE exec channel (``sh -s``, script on stdin, so the login shell —
bash, zsh, fish, csh — does not matter); the first step whose program exists
and succeeds wins. Each step's output is framed by marker lines carrying a
per-scan random nonce, so a hostile host cannot forge a section by printing a
marker from a process name.

Nothing from the inventory is ever interpolated into these commands.
"""

from __future__ import annotations

import secrets
import shlex
from dataclasses import dataclass

from fleetscan.parsers.linux_proc import PROC_SCRIPT

POSIX_PLATFORMS = ("linux", "darwin", "freebsd")


@dataclass(frozen=True, slots=True)
class Step:
    """One way of listing sockets: ``program`` must exist for ``command`` to run."""

    name: str
    program: str | None  # checked with ``command -v``; None: always try
    command: str
    parser: str
    ok_exit: tuple[int, ...] = (0,)
    sudo: bool = True  # asked for under sudo with become (the /proc script is not)

    def script_command(self, become: bool) -> str:
        """The command as the script runs it: each listing under ``sudo -n``
        with become (``sudo`` itself never prompts: -n)."""
        if not (become and self.sudo):
            return self.command
        return "; ".join("sudo -n " + part.strip() for part in self.command.split(";"))


def posix_chain(platform: str) -> tuple[Step, ...]:
    """The ordered command chain for a POSIX platform ('' when unknown)."""
    if platform == "linux":
        return (
            Step("ss", "ss", "ss -tulnp", "linux-ss"),
            # -W: net-tools cuts long IPv6 addresses without it
            Step("netstat", "netstat", "netstat -tulnpW", "linux-netstat"),
            Step("proc", None, PROC_SCRIPT, "linux-proc", sudo=False),
        )
    if platform == "darwin":
        return (
            # lsof exits 1 when one of the two listings is empty
            Step("lsof", "lsof", "lsof -nP -iTCP -sTCP:LISTEN; lsof -nP -iUDP", "lsof", (0, 1)),
            Step("netstat", "netstat", "netstat -anv", "bsd-netstat"),
            Step("netstat-an", "netstat", "netstat -an", "bsd-netstat"),
        )
    if platform == "freebsd":
        return (
            Step("sockstat", "sockstat", "sockstat -46l", "freebsd-sockstat"),
            Step("netstat", "netstat", "netstat -an", "bsd-netstat"),
        )
    return ()


def new_nonce() -> str:
    return secrets.token_hex(8)


def marker(nonce: str) -> str:
    return f"@@FLEETSCAN-{nonce}"


def posix_script(platform: str, nonce: str, *, become: bool = False) -> str:
    """The sh script that runs the chain for ``platform`` and frames each output."""
    m = marker(nonce)
    lines = [
        "LC_ALL=C; export LC_ALL; LANG=C; export LANG",
        'PATH="$PATH:/usr/sbin:/sbin:/usr/bin:/bin"; export PATH',
        f"m='{m}'",
        'echo "$m uid $(id -u 2>/dev/null)"',
    ]
    calls = []
    for i, step in enumerate(posix_chain(platform)):
        check = (
            f"command -v {shlex.quote(step.program)} >/dev/null 2>&1 || return 127; "
            if step.program
            else ""
        )
        ok = " || ".join(f"[ $r -eq {c} ]" for c in step.ok_exit)
        command = step.script_command(become)
        lines.append(
            f's{i}() {{ {check}echo "$m begin {step.name}"; (\n{command}\n); r=$?; '
            f'echo "$m end {step.name} $r"; {ok}; }}'
        )
        calls.append(f"s{i}")
    lines.append(" || ".join([*calls, 'echo "$m none"']))
    lines.append(
        'echo "$m begin ps"; (ps -eo pid=,user:32=,comm= 2>/dev/null || '
        "ps -o pid,user,comm 2>/dev/null); "
        'echo "$m end ps $?"'
    )
    return "\n".join(lines) + "\n"
