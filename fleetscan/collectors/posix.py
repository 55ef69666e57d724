"""The POSIX collector (Linux, macOS, FreeBSD): run the script, read its framed output.

The script (:mod:`fleetscan.collectors.posix_script`) prints each
step's output between ``@@FLEETSCAN-<nonce> begin/end`` lines, its uid, the
platform when it had to find it out, and the owners tables the chosen step
needs (``passwd``: uid → name; ``ps``: pid → user and comm). Here that output becomes a
:class:`~fleetscan.collectors.base.Collected`: the first step that worked is
parsed, process owners filled in, and anything missing makes the host
``partial`` (fail closed).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from fleetscan import parsers
from fleetscan.collectors.base import (
    Collected,
    HostSession,
    first_stderr_line,
    parse_inline,
    too_many_lines,
    within_lines,
)
from fleetscan.collectors.owners import parse_passwd, with_uid_names
from fleetscan.collectors.posix_script import (
    OWNERS_PASSWD,
    OWNERS_PS,
    UNAME_PLATFORMS,
    Step,
    marker,
    new_nonce,
    posix_chain,
    posix_script,
)
from fleetscan.collectors.windows import WindowsCollector
from fleetscan.model import Listener, Process, Status
from fleetscan.parsers.base import merge_duplicates
from fleetscan.transports.base import CommandResult


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    text: str
    exit_status: int | None
    first_line: int  # 1-based line of the section's first output line in stdout
    cut: bool = False  # lines past MAX_OUTPUT_LINES were not kept


_SECTION = re.compile(
    r"^(?P<m>@@FLEETSCAN-[0-9a-f]+) (?P<what>begin|end|uid|os|none)(?: (?P<rest>.*))?$"
)


@dataclass(frozen=True, slots=True)
class Framed:
    """The collector script's output, split: sections by name, and the uid
    and platform lines. Text printed outside sections (login banners, shell
    noise) is not kept: it is in the command's bounded evidence."""

    sections: dict[str, Section]
    uid: str | None
    os: str | None
    marked: bool  # the marker appears at all (the script ran)


def split_sections(stdout: bytes, nonce: str) -> Framed:
    """Split framed output into decoded sections and the uid and os lines.

    Only the frame lines are looked at one by one: a section's text is one
    slice of the output, decoded once (a 16 MiB flood is never a list of
    140,000 line strings here). Lines end at ``\n`` only (``str.splitlines()``
    would also break inside a hostile process name holding ``\x1c``,
    ``\x85`` or ``\u2028``), and a CRLF ending reads as LF. Undecodable bytes
    become U+FFFD, as decoding the whole output would make them."""
    m = marker(nonce)
    needle = (m + " ").encode()
    data = memoryview(stdout)
    sections: dict[str, Section] = {}
    uid: str | None = None
    os: str | None = None
    current: str | None = None
    pieces: list[tuple[int, int]] = []  # byte ranges of the open section
    seg = start = 0
    counted = lines = 0  # newlines in stdout[:counted]
    pos = 0
    while (at := stdout.find(needle, pos)) != -1:
        pos = at + 1
        if at and stdout[at - 1] != 0x0A:  # not at the start of a line
            continue
        eol = stdout.find(b"\n", at)
        stop = len(stdout) if eol == -1 else eol
        line = stdout[at:stop].decode("utf-8", "replace")
        match = _SECTION.match(line[:-1] if line.endswith("\r") else line)
        if not match or match.group("m") != m:
            continue  # a section's own line that happens to start like a marker
        lines += stdout.count(b"\n", counted, at)
        counted = at
        what, rest = match.group("what"), (match.group("rest") or "").strip()
        if current is not None:
            pieces.append((seg, at))  # a frame line is never part of a section
        seg = stop + 1
        if what == "uid":
            uid = rest
        elif what == "os":
            os = rest
        elif what == "begin":
            current, pieces, start = rest, [], lines + 2
        elif what == "end" and current is not None:
            _name, _, code = rest.partition(" ")
            status = int(code) if code.strip().lstrip("-").isdigit() else None
            # ended by its marker line: the output's last line was complete
            pieces, cut = within_lines(stdout, pieces)
            sections[current] = Section(current, _text(data, pieces), status, start, cut)
            current = None
        if eol == -1:
            break
        pos = seg
    if current is not None:  # cut off (output cap, dropped connection)
        pieces.append((seg, len(stdout)))
        pieces, cut = within_lines(stdout, pieces)
        text = _text(data, pieces)
        sections[current] = Section(
            current, text[:-1] if text.endswith("\r") else text, None, start, cut
        )
    marked = pos > 0 or needle[:-1] in stdout
    return Framed(sections, uid, os, marked)


def _text(data: memoryview, pieces: list[tuple[int, int]]) -> str:
    """The decoded text of byte ranges of the output, CRLF read as LF."""
    if len(pieces) == 1:
        a, b = pieces[0]
        text = str(data[a:b], "utf-8", "replace") if b > a else ""
    else:
        text = b"".join(data[a:b] for a, b in pieces if b > a).decode("utf-8", "replace")
    return text.replace("\r\n", "\n") if "\r" in text else text


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
    # the same owners hold many sockets (a load balancer's 100,000): work once per set
    seen: dict[tuple[Process, ...], tuple[Process, ...]] = {}
    for lst in listeners:
        procs = seen.get(lst.processes)
        if procs is None:
            procs = seen[lst.processes] = tuple(
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


def _chosen_step(
    chain: Sequence[Step], sections: dict[str, Section], truncated: bool
) -> tuple[tuple[Step, Section] | None, list[str]]:
    """The first step that worked, and why the ones before it did not."""
    failures: list[str] = []
    for step in chain:
        sec = sections.get(step.name)
        if sec is None:
            continue
        if sec.exit_status is not None and sec.exit_status in step.ok_exit:
            return (step, sec), failures
        if sec.exit_status is None and truncated:
            return (step, sec), failures
        label = step.command.splitlines()[0][:40] if step.name != "proc" else "/proc/net"
        if sec.exit_status is None:
            failures.append(f"{label}: output ended inside the listing (connection closed?)")
        else:
            failures.append(f"{label} exited {sec.exit_status}")
    return None, failures


def interpret_posix(
    platform: str | None, result: CommandResult, nonce: str, *, become: bool = False
) -> Collected:
    """Turn the framed output of the collector script into a :class:`Collected`
    (``platform`` None: the script said which platform it found; ``become``:
    the script asked sudo for its listing commands)."""
    return interpret_framed(platform, split_sections(result.stdout, nonce), result, become=become)


def interpret_framed(
    platform: str | None, framed: Framed, result: CommandResult, *, become: bool = False
) -> Collected:
    """:func:`interpret_posix` of output already split: ``result`` gives the
    exit status, stderr and whether the output was cut, never the stdout
    (the collector drops it once split, before the parser's work)."""
    sections, uid = framed.sections, framed.uid
    if platform is None:
        if framed.os is None:
            return Collected(Status.NO_COLLECTOR, _no_script_message(result))
        platform = UNAME_PLATFORMS.get(framed.os)
        if platform is None:
            shown = framed.os.lower()[:40] or "(uname -s printed nothing)"
            return Collected(Status.NO_COLLECTOR, f"no collector for platform {shown!r}")
    chain = posix_chain(platform)
    chosen, failures = _chosen_step(chain, sections, result.truncated)
    if chosen is None:
        if not framed.marked:
            return Collected(Status.NO_COLLECTOR, _no_script_message(result), platform=platform)
        tried = ", ".join(s.name for s in chain)
        detail = f" ({'; '.join(failures)})" if failures else ""
        err = first_stderr_line(result)
        return Collected(
            Status.NO_COLLECTOR,
            f"no usable socket listing command (tried {tried}){detail}"
            + (f"; stderr: {err}" if err else ""),
            platform=platform,
        )
    step, sec = chosen
    try:
        # numbered as the whole output from the start: no second pass to renumber
        parsed = parsers.get(step.parser).parse(sec.text, sec.first_line)
        # one listener per socket address, whatever the tool printed, before the
        # per-listener work below (a cut flood of one row repeated stays one)
        parsed = replace(parsed, listeners=merge_duplicates(parsed.listeners))
    except Exception as exc:  # a parser bug must stay this host's problem
        return Collected(
            Status.PARSE_ERROR,
            f"parser {step.parser} failed: {type(exc).__name__}: {exc}",
            platform=platform,
        )
    listeners = parsed.listeners
    if OWNERS_PASSWD in step.owners:  # numeric uids (/proc, ss -e, netstat -e), named without ps
        passwd = sections.get("passwd")
        listeners = with_uid_names(listeners, parse_passwd(passwd.text) if passwd else {})
    if OWNERS_PS in step.owners:
        ps = sections.get("ps")
        # pids without users (macOS netstat -v); netstat's cut names come from ps
        listeners = with_ps(
            listeners, parse_ps(ps.text) if ps else {}, names=step.parser == "linux-netstat"
        )
    collector = step.command.splitlines()[0] if step.name != "proc" else "/proc/net"
    # the listing ran under sudo -n (which succeeded, or the step would have failed)
    privileged = become and step.sudo
    problems: list[str] = []
    if result.truncated:
        problems.append("output cut at the size limit: the listing is incomplete")
    cut = [s.name for s in (sec, sections.get("passwd"), sections.get("ps")) if s and s.cut]
    too_long = too_many_lines(", ".join(cut)) if cut else None
    if too_long:
        problems.append(too_long)
    if uid is not None and uid != "0" and not privileged:
        problems.append(f"ran as uid {uid}, not root: processes of other users are not visible")
    if not parsed.owners_known and (uid is None or uid == "0" or privileged):
        problems.append(f"{collector} gives no process owners")
    if parsed.unparsed:
        # an unreadable line may be a listener: the scan is not complete (fail closed)
        problems.append(f"{len(parsed.unparsed)} line(s) of {collector} output could not be read")
    if not listeners and parsed.unparsed:
        return Collected(
            Status.PARSE_ERROR,
            f"{len(parsed.unparsed)} line(s) of {collector} output could not be read"
            + (f"; {too_long}" if too_long else ""),
            collector,
            (),
            parsed.unparsed,
            platform,
        )
    status = Status.PARTIAL if problems else Status.OK
    return Collected(status, "; ".join(problems), collector, listeners, parsed.unparsed, platform)


def _no_script_message(result: CommandResult) -> str:
    first = first_stderr_line(result)
    if result.exit_status == 127:
        return f"no POSIX shell (sh) on the host: {first}".rstrip(": ")
    return f"collector script did not run (exit {result.exit_status}): {first}".rstrip(": ")


#: how sudo says no (sudo 1.8/1.9, doas-free systems): a password would be
#: needed, the user or this command is not allowed, or there is no sudo at all
_SUDO_REFUSALS = (
    re.compile(r"^sudo: "),
    re.compile(r"^Sorry, user \S+ (may not run sudo|is not allowed to execute)"),
    re.compile(r"is not in the sudoers file"),
    re.compile(r"\bsudo: (command )?not found"),
)


def sudo_refused(result: CommandResult) -> str | None:
    """The first line where ``sudo -n`` refused a listing command, if any."""
    for line in result.stderr.decode("utf-8", "replace").split("\n"):
        line = line.strip()
        if any(p.search(line) for p in _SUDO_REFUSALS):
            return line[:200]
    return None


#: how much of each stream a Windows shell's refusal is looked for in: it is
#: all the shell prints, so it is at the start (a flooding host's 16 MiB of
#: output without a frame is not copied, decoded and lowered whole)
WINDOWS_REFUSAL_BYTES = 16 * 1024


def windows_shell(result: CommandResult) -> bool:
    """True when the script was refused by a Windows shell: cmd.exe ("'sh' is
    not recognized as an internal or external command") or PowerShell ("The
    term 'sh' is not recognized as the name of a cmdlet")."""
    head = result.stdout[:WINDOWS_REFUSAL_BYTES] + b"\n" + result.stderr[:WINDOWS_REFUSAL_BYTES]
    text = head.decode("utf-8", "replace").lower()
    return "is not recognized as" in text or "commandnotfoundexception" in text


class PosixCollector:
    """Runs the platform's chain in one exec channel (``sh -s``, the script on
    stdin); with become, each listing command under ``sudo -n``. When sudo
    refuses (password needed, command not granted) and no listing ran
    privileged, the chain runs again without sudo: the host is scanned and
    can be no better than partial.

    ``platform`` None (the inventory did not say): the script finds out on the
    host, in the same channel; a host whose shell turns out to be Windows'
    is handed to the Windows collector."""

    def __init__(self, platform: str | None) -> None:
        self.platform = platform

    async def collect(self, host: HostSession) -> Collected:
        become = host.target.become
        got, result, windows = await self._run(host, become)
        if self.platform is None and got.platform is None and windows:
            return await WindowsCollector().collect(host)
        refused = sudo_refused(result) if become and not got.privileged else None
        if refused:
            got, _, _ = await self._run(host, False)
            got = got.degraded(f"sudo -n refused ({refused}); scanned without privileges")
        return got

    async def _run(self, host: HostSession, become: bool) -> tuple[Collected, CommandResult, bool]:
        """The collected host, the command's result without its stdout, and
        whether a Windows shell refused the script."""
        nonce = new_nonce()
        script = posix_script(self.platform, nonce, become=become)
        how = ", listings under sudo -n" if become else ""
        label = f"sh -s <fleetscan {self.platform or 'posix'} collector{how}>"
        result = await host.run("sh -s", stdin=script, label=label)
        # splitting and parsing are CPU work: a large output goes off the event
        # loop, so one huge or hostile output cannot stall the other hosts' I/O
        # and deadlines; a typical one (a few KB) costs less to parse than the
        # hand-off to a worker thread
        inline = parse_inline(result)
        if inline:
            framed = split_sections(result.stdout, nonce)
        else:
            framed = await asyncio.to_thread(split_sections, result.stdout, nonce)
        windows = self.platform is None and framed.os is None and windows_shell(result)
        # the raw output is not kept past its split (its evidence excerpt is
        # already taken): a flood's cap is not held twice while it is parsed
        result = replace(result, stdout=b"")
        if inline:
            got = interpret_framed(self.platform, framed, result, become=become)
        else:
            got = await asyncio.to_thread(
                interpret_framed, self.platform, framed, result, become=become
            )
        return got, result, windows
