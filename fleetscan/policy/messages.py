"""Finding messages: host values (process names, users, addresses) made safe.

Process names, users and addresses come from scanned hosts and are hostile
input: every one is escaped (control characters shown, never executed by a
terminal) and bounded before it goes into a message. Used by the policy
engine and the drift and exposure rules (through :mod:`fleetscan.policy.engine`).
"""

from __future__ import annotations

from collections.abc import Sequence

from fleetscan.model import Listener, Process
from fleetscan.policy.schema import OwnerRule, PortRange

#: longest process name / user / address copied into a message
MAX_TEXT = 64
#: at most this many processes are named in one message
MAX_PROCS_SHOWN = 3


def _describe(lst: Listener) -> str:
    """``tcp 0.0.0.0:5432 (postgres pid 812)`` — bracketed for IPv6."""
    addr = _clean(lst.address)
    if lst.zone:
        addr += f"%{_clean(lst.zone)}"
    sock = f"[{addr}]:{lst.port}" if ":" in addr else f"{addr}:{lst.port}"
    procs = f" ({_procs_text(lst.processes)})" if lst.processes else ""
    return f"{lst.proto} {sock}{procs}"


def _procs_text(procs: Sequence[Process], *, users: bool = False) -> str:
    parts = []
    for p in procs[:MAX_PROCS_SHOWN]:
        text = _clean(p.name) or "?"
        if p.pid is not None:
            text += f" pid {p.pid}"
        if users:
            text += f" user {_clean(p.user)}" if p.user is not None else " user unknown"
        parts.append(text)
    if len(procs) > MAX_PROCS_SHOWN:
        parts.append(f"+{len(procs) - MAX_PROCS_SHOWN} more")
    return ", ".join(parts)


def _owner_text(rule: OwnerRule) -> str:
    parts = []
    if rule.process:
        parts.append("process " + " or ".join(rule.process))
    if rule.user:
        parts.append("user " + " or ".join(rule.user))
    return " and ".join(parts)


def _ports_text(ranges: Sequence[PortRange]) -> str:
    return ", ".join(str(r) for r in ranges)


def _clean(text: str | None, limit: int = MAX_TEXT) -> str:
    """Escape control characters (a hostile process name must not drive the
    terminal) and bound the length."""
    if text is None:
        return ""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return out if len(out) <= limit else out[: limit - 1] + "…"
