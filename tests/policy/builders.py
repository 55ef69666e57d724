"""Builders for in-memory scans, shared by the policy tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent
from typing import Any

from fleetscan.addresses import normalise_address
from fleetscan.model import HostScan, Listener, Process, Status, Target
from fleetscan.policy import Policy, load_policies

#: a fixed clock: the policy tests never read the real time
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def listener(
    proto: str,
    sock: str,
    *procs: str | tuple[str, int | None, str | None],
) -> Listener:
    """``listener("tcp", "0.0.0.0:22", ("sshd", 700, "root"))`` — procs are
    names or (name, pid, user)."""
    host, _, port = sock.rpartition(":")
    addr = normalise_address(host.strip("[]"))
    processes = tuple(
        Process(p) if isinstance(p, str) else Process(p[0], p[1], p[2]) for p in procs
    )
    return Listener(
        proto=proto,  # type: ignore[arg-type]
        family=addr.family,  # type: ignore[arg-type]
        address=addr.address,
        port=int(port),
        processes=processes,
        zone=addr.zone,
        raw=f"{proto} {sock}",
    )


def scan(
    name: str,
    groups: Sequence[str] = (),
    listeners: Sequence[Listener] = (),
    status: Status = Status.OK,
    message: str = "",
    **target: Any,
) -> HostScan:
    return HostScan(
        target=Target(name=name, address=name, groups=tuple(groups), **target),
        status=status,
        message=message,
        listeners=tuple(listeners),
    )


def make_policy(tmp_path: Path, text: str, name: str = "policy.yaml") -> Policy:
    """Write ``text`` (dedented) as a policy file and load it."""
    path = tmp_path / name
    path.write_text(dedent(text).lstrip("\n"), encoding="utf-8")
    return load_policies([path])
