"""What the POSIX collector runs (Linux, macOS, FreeBSD): one script, one exec channel.

With become (``ansible_become``), sudo is asked for the listing commands
themselves — ``sudo -n ss -tulnpe``, ``sudo -n netstat -tulnpeW``, ``sudo -n
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

One script, one channel, no process the job does not need: when the inventory
does not say the platform, the script tells it itself (``/proc/sys/kernel/
ostype`` read by the shell on Linux, ``uname -s`` elsewhere) and runs that
platform's chain; the uid comes from ``/proc/self/status`` (``id -u`` only
where there is no /proc). Owners' user names come from the listing itself,
not from a ``ps`` that reads all of /proc (its cost grows with the host's
process count): ``ss -e`` prints the uid of each socket's owner (``uid:N``,
left out when it is 0), net-tools ``netstat -e`` a User column (numeric with
``-n``), the /proc script each process's uid; the script then prints
``/etc/passwd`` read with shell builtins and the collector names the uids
(one it does not know — LDAP, sssd — stays a number). ``lsof`` and
``sockstat`` print user names themselves. ``ps`` runs only after a step that
worked and needs it (``Step.owners``): macOS ``netstat -anv`` (pids without
users) and Linux ``netstat`` (its names are argv[0] cut to fit; ps gives the
comm).

What ss's uid means: the socket's owner, not the user of each process holding
it — a pre-fork server that binds as root and then runs its workers as
``www-data`` shows root for all of them. An ``ss`` that prints no ``-e``
extras at all (it ignored the option: a wrapper or a shim — iproute2 has
printed them since ss began, and an ss that rejected ``-e`` would fail and
the chain would go on to netstat and /proc, which give uids too) leaves the
users unknown: the script cannot tell before the listing has been streamed,
and deciding after it would mean buffering the whole listing in the host's
shell (no streaming, a flooding tool held in memory) or one more process on
every host, so the collector decides and ps is not run.

Nothing from the inventory is ever interpolated into these commands.
"""

from __future__ import annotations

import secrets
import shlex
from dataclasses import dataclass
from functools import lru_cache

from fleetscan.parsers.linux_proc import PROC_SCRIPT

POSIX_PLATFORMS = ("linux", "darwin", "freebsd")

#: the tables a step's listing needs to name its owners (printed after it worked)
OWNERS_PASSWD = "passwd"  # the listing gives uids: /etc/passwd (shell builtins) names them
OWNERS_PS = "ps"  # the listing gives pids only: a ps pid -> user, comm table


@dataclass(frozen=True, slots=True)
class Step:
    """One way of listing sockets: ``program`` must exist for ``command`` to run."""

    name: str
    program: str | None  # checked with ``command -v``; None: always try
    command: str
    parser: str
    ok_exit: tuple[int, ...] = (0,)
    #: the owners tables it needs: () when the listing names users itself
    owners: tuple[str, ...] = ()
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
            # -e: the socket's uid (uid:N, left out for 0)
            Step("ss", "ss", "ss -tulnpe", "linux-ss", owners=(OWNERS_PASSWD,)),
            # -W: net-tools cuts long IPv6 addresses without it; -e: the User
            # column (numeric with -n); ps only for the comm (netstat prints
            # argv[0] cut to fit, e.g. `sshd: /usr/sbi`, which owner rules cannot judge)
            Step(
                "netstat",
                "netstat",
                "netstat -tulnpeW",
                "linux-netstat",
                owners=(OWNERS_PASSWD, OWNERS_PS),
            ),
            Step("proc", None, PROC_SCRIPT, "linux-proc", owners=(OWNERS_PASSWD,), sudo=False),
        )
    if platform == "darwin":
        return (
            # lsof exits 1 when one of the two listings is empty; it prints USER
            Step("lsof", "lsof", "lsof -nP -iTCP -sTCP:LISTEN; lsof -nP -iUDP", "lsof", (0, 1)),
            # -v: pids without users
            Step("netstat", "netstat", "netstat -anv", "bsd-netstat", owners=(OWNERS_PS,)),
            Step("netstat-an", "netstat", "netstat -an", "bsd-netstat"),  # no owners at all
        )
    if platform == "freebsd":
        return (
            Step("sockstat", "sockstat", "sockstat -46l", "freebsd-sockstat"),  # prints USER
            Step("netstat", "netstat", "netstat -an", "bsd-netstat"),  # no owners at all
        )
    return ()


def new_nonce() -> str:
    return secrets.token_hex(8)


def marker(nonce: str) -> str:
    return f"@@FLEETSCAN-{nonce}"


#: what the script prints as the platform (``uname -s``, or Linux's
#: /proc/sys/kernel/ostype) -> the collector's platform
UNAME_PLATFORMS = {"Linux": "linux", "Darwin": "darwin", "FreeBSD": "freebsd"}

# the platform without a process on Linux (the shell reads /proc), uname elsewhere
_OS_LINES = (
    "os=; { IFS= read -r os; } 2>/dev/null </proc/sys/kernel/ostype",
    '[ -n "$os" ] || os=$(uname -s 2>/dev/null)',
    'b="$b$m os $os$N"',
)
# the effective uid without a process where there is /proc
_UID_LINES = (
    "u=; { while read -r k _ e _; do case $k in Uid:) u=$e; break;; esac; done; }"
    " 2>/dev/null </proc/self/status",
    '[ -n "$u" ] || u=$(id -u 2>/dev/null)',
    'b="$b$m uid $u$N"',
)
# uid -> name from /etc/passwd with shell builtins (no getent, no process)
_PASSWD = (
    'pw() { b="$b$m begin passwd$N"; { while IFS=: read -r n _ i _; do b="$b$i $n$N"; done; }'
    ' 2>/dev/null </etc/passwd; b="$b$m end passwd 0$N"; }'
)
_PS = (
    'ps_() { printf %s "$b$m begin ps$N"; b=; (ps -eo pid=,user:32=,comm= 2>/dev/null || '
    'ps -o pid,user,comm 2>/dev/null); b="$m end ps $?$N"; }'
)


#: owners table -> the script function that prints it
_TABLES = {OWNERS_PASSWD: "pw", OWNERS_PS: "ps_"}


def _step_functions(prefix: str, chain: tuple[Step, ...], become: bool) -> tuple[list[str], str]:
    """One sh function per step (it prints its framed output and, when it
    worked, the owners table it needs) and the ``a || b || none`` call line."""
    lines: list[str] = []
    calls: list[str] = []
    for i, step in enumerate(chain):
        check = (
            f"command -v {shlex.quote(step.program)} >/dev/null 2>&1 || return 127; "
            if step.program
            else ""
        )
        ok = " || ".join(f"[ $r -eq {c} ]" for c in step.ok_exit)
        owners = "".join(f" {_TABLES[t]};" for t in step.owners)
        command = step.script_command(become)
        lines.append(
            f's{prefix}{i}() {{ {check}printf %s "$b$m begin {step.name}$N"; b=; (\n{command}\n); '
            f'r=$?; b="$m end {step.name} $r$N"; {{ {ok}; }} || return 1;{owners} }}'
        )
        calls.append(f"s{prefix}{i}")
    return lines, " || ".join([*calls, 'b="$b$m none$N"'])


def posix_script(platform: str | None, nonce: str, *, become: bool = False) -> str:
    """The sh script that runs the chain for ``platform`` and frames each output.

    ``platform`` None: the script finds out (one ``$m os NAME`` line) and runs
    the chain of the platform it is on. Only the marker line differs between
    hosts: the rest is built once per (platform, become)."""
    head, tail = _script_parts(platform, become)
    return f"{head}m='{marker(nonce)}'\n{tail}"


@lru_cache(maxsize=64)
def _script_parts(platform: str | None, become: bool) -> tuple[str, str]:
    head = [
        "LC_ALL=C; export LC_ALL; LANG=C; export LANG",
        'PATH="$PATH:/usr/sbin:/sbin:/usr/bin:/bin"; export PATH',
    ]
    lines = [
        # the script's own lines are gathered in $b and written at once, before
        # each program runs and at the end: each write is a packet sshd sends
        "N='\n'; b=",
        *(_OS_LINES if platform is None else ()),
        *_UID_LINES,
        _PASSWD,
        _PS,
    ]
    if platform is not None:
        functions, call = _step_functions("", posix_chain(platform), become)
        lines += [*functions, call, 'printf %s "$b"']
    else:
        cases = []
        for uname, name in UNAME_PLATFORMS.items():
            functions, call = _step_functions(name[0], posix_chain(name), become)
            lines += functions
            cases.append(f"  {uname}) {call};;")
        lines += ["case $os in", *cases, '  *) b="$b$m none$N";;', "esac", 'printf %s "$b"']
    return "\n".join(head) + "\n", "\n".join(lines) + "\n"
