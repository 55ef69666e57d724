"""Collectors: what runs on a host, and how its output becomes a HostScan.

A collector is data (pyinfra's "fact" idea): per platform, an ordered chain of
steps, each a constant command plus the parser that reads it. On POSIX hosts
the whole chain runs as ONE script over ONE exec channel (``sh -s``, script
on stdin, so the login shell — bash, zsh, fish, csh — does not matter); the
first step whose program exists and succeeds wins. Each step's output is
framed by marker lines carrying a per-scan random nonce, so a hostile host
cannot forge a section by printing a marker from a process name.

Nothing from the inventory is ever interpolated into these commands.
"""

from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace

from fleetscan import parsers
from fleetscan.model import (
    CommandEvidence,
    Listener,
    ParseResult,
    Process,
    Status,
    UnparsedLine,
)
from fleetscan.parsers.base import merge_duplicates
from fleetscan.parsers.linux_proc import PROC_SCRIPT
from fleetscan.parsers.windows_netstat import apply_tasklist
from fleetscan.transports.base import CommandResult

PROBE_COMMAND = "uname -s"
EVIDENCE_STDOUT = 16 * 1024
EVIDENCE_STDERR = 4 * 1024


@dataclass(frozen=True, slots=True)
class Step:
    """One way of listing sockets: ``program`` must exist for ``command`` to run."""

    name: str
    program: str | None  # checked with ``command -v``; None: always try
    command: str
    parser: str
    ok_exit: tuple[int, ...] = (0,)


def posix_chain(platform: str) -> tuple[Step, ...]:
    """The ordered command chain for a POSIX platform ('' when unknown)."""
    if platform == "linux":
        return (
            Step("ss", "ss", "ss -tulnp", "linux-ss"),
            # -W: net-tools cuts long IPv6 addresses without it
            Step("netstat", "netstat", "netstat -tulnpW", "linux-netstat"),
            Step("proc", None, PROC_SCRIPT, "linux-proc"),
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


POSIX_PLATFORMS = ("linux", "darwin", "freebsd")


def new_nonce() -> str:
    return secrets.token_hex(8)


def marker(nonce: str) -> str:
    return f"@@FLEETSCAN-{nonce}"


def posix_script(platform: str, nonce: str) -> str:
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
        lines.append(
            f's{i}() {{ {check}echo "$m begin {step.name}"; (\n{step.command}\n); r=$?; '
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


def posix_command(become: bool) -> str:
    """The exec command: a shell reading the script from stdin (never a prompt)."""
    return "sudo -n sh -s" if become else "sh -s"


_UNAME = {"linux": "linux", "darwin": "darwin", "freebsd": "freebsd"}


def platform_from_probe(result: CommandResult) -> str | None:
    """Read ``uname -s`` (or the Windows shell's complaint about it)."""
    out = result.stdout.decode("utf-8", "replace").strip()
    err = result.stderr.decode("utf-8", "replace")
    # a login banner or shell noise may come first: uname's answer is the last line
    lines = [line.strip().lower() for line in out.splitlines() if line.strip()]
    if result.exit_status == 0 and lines:
        for line in reversed(lines):
            if line in _UNAME:
                return _UNAME[line]
            if line.startswith(("mingw", "msys", "cygwin", "windows")):
                return "windows"
        return lines[-1][:40]
    text = (out + "\n" + err).lower()
    # cmd.exe: "'uname' is not recognized as an internal or external command";
    # PowerShell: "The term 'uname' is not recognized as the name of a cmdlet"
    if "is not recognized as" in text or "commandnotfoundexception" in text:
        return "windows"
    return None


# --- interpreting the script's output ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    text: str
    exit_status: int | None
    first_line: int  # 1-based line of the section's first output line in stdout


@dataclass(frozen=True, slots=True)
class Collected:
    """The result of interpreting one collector run, before it becomes a HostScan."""

    status: Status
    message: str
    collector: str | None = None
    listeners: tuple[Listener, ...] = ()
    unparsed: tuple[UnparsedLine, ...] = ()

    def degraded(self, reason: str) -> Collected:
        """This result with one more thing missing: ok becomes partial, the
        reason goes first in the message (other statuses stay as they are)."""
        status = Status.PARTIAL if self.status is Status.OK else self.status
        message = "; ".join(x for x in (reason, self.message) if x)
        return replace(self, status=status, message=message)


_SECTION = re.compile(
    r"^(?P<m>@@FLEETSCAN-[0-9a-f]+) (?P<what>begin|end|uid|none)(?: (?P<rest>.*))?$"
)


def split_sections(stdout: str, nonce: str) -> tuple[dict[str, Section], str | None, list[str]]:
    """Split framed output into sections; also returns the uid line and any text
    printed outside sections (login banners, shell noise)."""
    m = marker(nonce)
    sections: dict[str, Section] = {}
    uid: str | None = None
    noise: list[str] = []
    current: str | None = None
    buf: list[str] = []
    start = 0
    # split on \n only: str.splitlines() would also break inside a hostile
    # process name holding \x1c, \x85 or \u2028
    for lineno, raw in enumerate(stdout.split("\n"), 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if line.startswith(m + " "):
            match = _SECTION.match(line)
            if match and match.group("m") == m:
                what, rest = match.group("what"), (match.group("rest") or "").strip()
                if what == "uid":
                    uid = rest
                elif what == "begin":
                    current, buf, start = rest, [], lineno + 1
                elif what == "end" and current is not None:
                    _name, _, code = rest.partition(" ")
                    status = int(code) if code.strip().lstrip("-").isdigit() else None
                    # ended by its marker line: the output's last line was complete
                    text = "".join(f"{x}\n" for x in buf)
                    sections[current] = Section(current, text, status, start)
                    current = None
                continue
        if current is not None:
            buf.append(line)
        elif line.strip():
            noise.append(line)
    if current is not None:  # cut off (output cap, dropped connection)
        sections[current] = Section(current, "\n".join(buf), None, start)
    return sections, uid, noise


@dataclass(frozen=True, slots=True)
class PsEntry:
    """One process as ``ps`` lists it: its user and its comm (None when absent)."""

    user: str
    name: str | None


def parse_ps(text: str) -> dict[int, PsEntry]:
    """pid → user and comm from ``ps -eo pid=,user:32=,comm=`` (or BusyBox
    ``ps -o pid,user,comm``, whose header is skipped). The comm is last, so it
    may hold spaces; procps prints its unprintable characters as ``?``."""
    table: dict[int, PsEntry] = {}
    for line in text.split("\n"):
        parts = line.split(None, 2)
        if len(parts) >= 2 and parts[0].isdigit() and parts[0].isascii():
            name = parts[2].rstrip() if len(parts) > 2 else None
            table[int(parts[0])] = PsEntry(parts[1], name or None)
    return table


def with_ps(
    listeners: Sequence[Listener], table: dict[int, PsEntry], *, names: bool = False
) -> tuple[Listener, ...]:
    """Fill from ``ps``, by pid: Process.user where the parser had none or only
    a numeric uid (/proc), so every collector reports user names alike; with
    ``names``, Process.name too (netstat's name is argv0 cut to fit, e.g.
    ``sshd: /usr/sbi``; ps gives the comm that ss shows and owner rules judge)."""
    if not table:
        return tuple(listeners)
    out = []
    for lst in listeners:
        procs = tuple(
            _from_ps(p, table.get(p.pid) if p.pid is not None else None, names)
            for p in lst.processes
        )
        out.append(replace(lst, processes=procs) if procs != lst.processes else lst)
    return tuple(out)


def _from_ps(process: Process, entry: PsEntry | None, names: bool) -> Process:
    if entry is None:
        return process
    if process.user is None or process.user.isdigit():
        process = replace(process, user=entry.user)
    if names and entry.name is not None and not _masked_same(entry.name, process.name):
        process = replace(process, name=entry.name)
    return process


def _masked_same(ps_name: str, name: str | None) -> bool:
    """True when ps's comm is ``name`` with its unprintable characters masked
    (procps prints ``?`` or ``.`` for them): the parser's exact name is kept,
    not ps's lossy copy."""
    if name is None or name.isprintable() or len(ps_name) > len(name):
        return False
    return all(
        shown == real or (not real.isprintable() and shown in "?.")
        for shown, real in zip(ps_name, name, strict=False)
    )


def shift_lines(result: ParseResult, offset: int) -> ParseResult:
    """Make parser line numbers refer to the whole command output."""
    if offset <= 1:
        return result
    d = offset - 1
    return replace(
        result,
        listeners=tuple(
            replace(x, line=x.line + d) if x.line is not None else x for x in result.listeners
        ),
        unparsed=tuple(replace(u, line=u.line + d) for u in result.unparsed),
    )


def interpret_posix(platform: str, result: CommandResult, nonce: str) -> Collected:
    """Turn the framed output of :func:`posix_script` into a :class:`Collected`."""
    stdout = result.stdout.decode("utf-8", "replace")
    sections, uid, _noise = split_sections(stdout, nonce)
    chain = posix_chain(platform)
    chosen: tuple[Step, Section] | None = None
    failures: list[str] = []
    for step in chain:
        sec = sections.get(step.name)
        if sec is None:
            continue
        if sec.exit_status is not None and sec.exit_status in step.ok_exit:
            chosen = (step, sec)
            break
        if sec.exit_status is None and result.truncated:
            chosen = (step, sec)
            break
        label = step.command.splitlines()[0][:40] if step.name != "proc" else "/proc/net"
        if sec.exit_status is None:
            failures.append(f"{label}: output ended inside the listing (connection closed?)")
        else:
            failures.append(f"{label} exited {sec.exit_status}")
    if chosen is None:
        if marker(nonce) not in stdout:
            return Collected(Status.NO_COLLECTOR, _no_script_message(result))
        tried = ", ".join(s.name for s in chain)
        detail = f" ({'; '.join(failures)})" if failures else ""
        err = _first_stderr_line(result)
        return Collected(
            Status.NO_COLLECTOR,
            f"no usable socket listing command (tried {tried}){detail}"
            + (f"; stderr: {err}" if err else ""),
        )
    step, sec = chosen
    try:
        parsed = shift_lines(parsers.get(step.parser).parse(sec.text), sec.first_line)
    except Exception as exc:  # a parser bug must stay this host's problem
        return Collected(
            Status.PARSE_ERROR, f"parser {step.parser} failed: {type(exc).__name__}: {exc}"
        )
    ps = sections.get("ps")
    # one listener per socket address, whatever the tool printed (a cut flood of
    # one row repeated stays one listener); netstat's cut names come from ps
    listeners = with_ps(
        merge_duplicates(parsed.listeners),
        parse_ps(ps.text) if ps else {},
        names=step.parser == "linux-netstat",
    )
    collector = step.command.splitlines()[0] if step.name != "proc" else "/proc/net"
    problems: list[str] = []
    if result.truncated:
        problems.append("output cut at the size limit: the listing is incomplete")
    if uid is not None and uid != "0":
        problems.append(f"ran as uid {uid}, not root: processes of other users are not visible")
    if not parsed.owners_known and (uid is None or uid == "0"):
        problems.append(f"{collector} gives no process owners")
    if parsed.unparsed:
        # an unreadable line may be a listener: the scan is not complete (fail closed)
        problems.append(f"{len(parsed.unparsed)} line(s) of {collector} output could not be read")
    if not listeners and parsed.unparsed:
        return Collected(
            Status.PARSE_ERROR,
            f"{len(parsed.unparsed)} line(s) of {collector} output could not be read",
            collector,
            (),
            parsed.unparsed,
        )
    status = Status.PARTIAL if problems else Status.OK
    return Collected(status, "; ".join(problems), collector, listeners, parsed.unparsed)


def _first_stderr_line(result: CommandResult) -> str:
    for line in result.stderr.decode("utf-8", "replace").split("\n"):
        if line.strip():
            return line.strip()[:200]
    return ""


def _no_script_message(result: CommandResult) -> str:
    first = _first_stderr_line(result)
    if result.exit_status == 127:
        return f"no POSIX shell (sh) on the host: {first}".rstrip(": ")
    return f"collector script did not run (exit {result.exit_status}): {first}".rstrip(": ")


def sudo_refused(result: CommandResult, nonce: str) -> str | None:
    """When ``sudo -n`` refused (password needed, not in sudoers), its message."""
    if marker(nonce).encode() in result.stdout:
        return None
    err = result.stderr.decode("utf-8", "replace").strip()
    if result.exit_status not in (0, None) and err.lower().startswith("sudo"):
        return err.splitlines()[0][:200]
    return None


# --- Windows ------------------------------------------------------------------------

WINDOWS_NETSTAT = "netstat -ano"
WINDOWS_TASKLIST = "tasklist /FO CSV /NH"


def interpret_windows(netstat: CommandResult, tasklist: CommandResult | None) -> Collected:
    """netstat -ano joined with tasklist for pid → image name."""
    if netstat.exit_status not in (0, None) and not netstat.stdout.strip():
        err = netstat.stderr.decode("utf-8", "replace").strip()[:200]
        return Collected(Status.NO_COLLECTOR, f"netstat -ano failed: {err}")
    text = _decode_console(netstat.stdout)
    try:
        parsed = parsers.get("windows-netstat").parse(text)
        if tasklist is not None and tasklist.exit_status == 0:
            parsed = apply_tasklist(parsed, _decode_console(tasklist.stdout))
    except Exception as exc:
        return Collected(Status.PARSE_ERROR, f"windows parser failed: {type(exc).__name__}: {exc}")
    problems = []
    if tasklist is None or tasklist.exit_status != 0:
        problems.append("tasklist failed: process names unknown")
    if netstat.truncated:
        problems.append("output cut at the size limit: the listing is incomplete")
    if not parsed.listeners and parsed.unparsed:
        return Collected(
            Status.PARSE_ERROR,
            "netstat -ano output could not be read",
            WINDOWS_NETSTAT,
            (),
            parsed.unparsed,
        )
    status = Status.PARTIAL if problems else Status.OK
    return Collected(
        status, "; ".join(problems), WINDOWS_NETSTAT, parsed.listeners, parsed.unparsed
    )


def _decode_console(data: bytes) -> str:
    """Windows consoles write the OEM code page: UTF-8 first, then cp936
    (Chinese), then cp437, which maps every byte and so always succeeds."""
    for enc in ("utf-8", "cp936"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("cp437")


def evidence(result: CommandResult, command_label: str | None = None) -> CommandEvidence:
    """A bounded, decoded copy of a command's output for the reports."""
    out = result.stdout[:EVIDENCE_STDOUT].decode("utf-8", "replace")
    err = result.stderr[:EVIDENCE_STDERR].decode("utf-8", "replace")
    return CommandEvidence(
        command=command_label or result.command,
        exit_status=result.exit_status,
        stdout=out,
        stderr=err,
        duration=round(result.duration, 3),
        truncated=result.truncated or len(result.stdout) > EVIDENCE_STDOUT,
    )
