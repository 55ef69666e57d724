"""What every collector shares: the host session it is given, and what it returns.

A collector (nornir's *task*) is handed a :class:`HostSession` — an open
connection to one host, with the host's deadline and output cap already
applied — runs its commands through it and returns one :class:`Collected`
(nornir's *result*). The runner (connect, deadline, failure → status) never
looks inside; the collector never connects, times or catches transport errors.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Protocol

from fleetscan.errors import CommandTimeout
from fleetscan.model import CommandEvidence, Listener, Status, Target, UnparsedLine
from fleetscan.transports.base import CommandResult, Session

#: the excerpt of a command's output kept as evidence (see :func:`keep_lines_only`)
EVIDENCE_STDOUT = 16 * 1024
EVIDENCE_STDERR = 4 * 1024
#: outputs up to this size are parsed on the event loop: a typical host's
#: listing (a few KB, well under a millisecond) costs less to parse than a
#: hand-off to a worker thread; larger ones go to a thread so a huge or hostile
#: output never stalls the other hosts' I/O and deadlines
INLINE_PARSE_BYTES = 64 * 1024
#: most lines of one output a collector reads. The byte cap alone does not
#: bound a parse: every line is a Python string, and an unreadable one also an
#: unparsed-line record, about 150 bytes however short the line is. 16 MiB of
#: `yes` (two bytes a line) was 8 million lines: 873 MiB and 13 s of CPU in
#: one parser. 250,000 lines is 2.5 times the largest listing measured (a host
#: of 100,000 sockets, a line each); what is past it is not read and the host
#: is partial, as when the byte cap cuts an output.
MAX_OUTPUT_LINES = 250_000


def parse_inline(*results: CommandResult) -> bool:
    """Whether these outputs are small enough to parse on the event loop."""
    return sum(len(r.stdout) + len(r.stderr) for r in results) <= INLINE_PARSE_BYTES


@dataclass(frozen=True, slots=True)
class Collected:
    """The outcome of collecting one host, before it becomes a HostScan."""

    status: Status
    message: str
    collector: str | None = None
    listeners: tuple[Listener, ...] = ()
    unparsed: tuple[UnparsedLine, ...] = ()
    platform: str | None = None
    privileged: bool = False  # the listing ran under sudo (become)

    def degraded(self, reason: str) -> Collected:
        """This result with one more thing missing: ok becomes partial, the
        reason goes first in the message (other statuses stay as they are)."""
        status = Status.PARTIAL if self.status is Status.OK else self.status
        message = "; ".join(x for x in (reason, self.message) if x)
        return replace(self, status=status, message=message)


class HostSession:
    """An open session to one host, as a collector sees it.

    Every command gets the host's *remaining* budget as its timeout (the
    deadline covers connect + every command), the run's output cap, and
    leaves bounded evidence in ``evidence``. A command stopped by the budget
    raises :class:`~fleetscan.errors.CommandTimeout` naming the host deadline.
    """

    def __init__(
        self,
        target: Target,
        session: Session,
        *,
        deadline: float,
        budget: float,
        max_output: int,
        evidence: list[CommandEvidence],
    ) -> None:
        self.target = target
        self._session = session
        self._deadline = deadline  # event-loop time
        self._budget = budget
        self._max_output = max_output
        self.evidence = evidence

    def remaining(self) -> float:
        return self._deadline - asyncio.get_running_loop().time()

    async def run(
        self,
        command: str,
        *,
        stdin: str | None = None,
        max_output: int | None = None,
        label: str | None = None,
    ) -> CommandResult:
        """Run ``command`` (a collector constant, never inventory text)."""
        left = self.remaining()
        if left <= 0:
            raise self._out_of_time(label or command)
        try:
            result = await self._session.run(
                command,
                stdin=stdin,
                timeout=left,
                max_output=max_output or self._max_output,
            )
        except CommandTimeout:
            raise self._out_of_time(label or command) from None
        self.evidence.append(evidence(result, label))
        return result

    def _out_of_time(self, command: str) -> CommandTimeout:
        first = command.splitlines()[0][:80] if command else ""
        return CommandTimeout(
            f"host did not finish within its {self._budget:.0f}s deadline "
            f"(stopped while running `{first}`)"
        )


def within_lines(
    data: bytes, pieces: list[tuple[int, int]], limit: int = MAX_OUTPUT_LINES
) -> tuple[list[tuple[int, int]], bool]:
    """The byte ranges ``pieces`` of ``data`` cut after their ``limit``-th line
    end (a last line without one is kept when there is room), and whether
    anything was cut. Counted before anything is decoded or split."""
    kept: list[tuple[int, int]] = []
    left = limit
    for a, b in pieces:
        ends = data.count(b"\n", a, b)
        if ends < left or (ends == left and (b == a or data[b - 1] == 0x0A)):
            kept.append((a, b))
            left -= ends
            continue
        stop = a
        for _ in range(left):
            stop = data.index(b"\n", stop, b) + 1
        kept.append((a, stop))
        return kept, True
    return kept, False


def first_lines(data: bytes, limit: int = MAX_OUTPUT_LINES) -> tuple[bytes, bool]:
    """``data`` up to its ``limit``-th line end, and whether anything was cut."""
    (kept,), cut = within_lines(data, [(0, len(data))], limit)
    return (data[: kept[1]] if cut else data), cut


def too_many_lines(what: str) -> str:
    """The problem a host has when ``what`` was cut at :data:`MAX_OUTPUT_LINES`."""
    return f"output of {what} has more than {MAX_OUTPUT_LINES:,} lines: the rest was not read"


class Collector(Protocol):
    """Collects one platform's listeners through an open session."""

    @property
    def platform(self) -> str | None: ...  # None: finds it out on the host

    async def collect(self, host: HostSession) -> Collected: ...


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


def keep_lines_only(got: Collected, evidence: list[CommandEvidence]) -> None:
    """Drop the stdout of ``evidence`` when the listing was read in full:
    the host was scanned (ok or partial), no line was left unread and no
    output was cut. Every listener then carries its own line (``raw``), so
    the whole output would be a second copy of the same lines, kept for the
    whole run (4 KB a host, 40 MB at 10,000 hosts). A host that was not
    read in full keeps its bounded excerpt: that output is the evidence of
    what went wrong."""
    if not got.status.scanned or got.unparsed or any(e.truncated for e in evidence):
        return
    evidence[:] = [replace(e, stdout="") if e.stdout else e for e in evidence]


def first_stderr_line(result: CommandResult) -> str:
    for line in result.stderr.decode("utf-8", "replace").split("\n"):
        if line.strip():
            return line.strip()[:200]
    return ""
