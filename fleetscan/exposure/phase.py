"""The probe phase: every requested zone probes the listeners found, at once,
within the phase's own deadline. Failure is data: a probe host that cannot
be reached or has no probe tool makes its zone's cells ``not_probed`` with
the reason, and never changes any host's scan status.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from fleetscan.errors import ConfigError, TransportError
from fleetscan.exposure import remote
from fleetscan.exposure.plan import Endpoint, Row, endpoints, plan_zone
from fleetscan.exposure.scanner import Outcome, probe_from_scanner
from fleetscan.model import HostScan, ProbeResult, Target
from fleetscan.policy.schema import SCANNER_ZONE, Policy, Zone
from fleetscan.transports.base import Session

#: bytes of answer allowed per endpoint (one short line) plus slack
ANSWER_BYTES_PER_ENDPOINT = 400


@dataclass(frozen=True)
class ProbeSettings:
    """How the probe phase runs (``--probe``, ``--probe-zones``, ``--probe-timeout``)."""

    zones: tuple[str, ...] = (SCANNER_ZONE,)
    timeout: float = 2.0  # per connection
    deadline: float = 300.0  # the whole phase
    zone_concurrency: int = 64  # connections at once from one zone
    host_concurrency: int = 4  # connections at once to one address (scanner zone)
    remote_parallel: int = 32  # connections at once on a probe host
    firewall_evidence: bool = False  # also collect each host's ruleset (firewall.py)
    evidence_concurrency: int = 50  # hosts asked for their ruleset at once


def check_probe_config(policy: Policy, settings: ProbeSettings, targets: Sequence[Target]) -> None:
    """Before any connection: every requested zone is declared and every probe
    host of those zones is in the selected inventory. Raises ConfigError."""
    known = policy.zone_names()
    names = {t.name for t in targets}
    for zone_name in settings.zones:
        if zone_name not in known:
            from fleetscan.yamlsrc import suggest

            raise ConfigError(
                f"unknown zone {zone_name!r} (the policy declares: {', '.join(known)})"
                + suggest(zone_name, known),
                field="--probe-zones",
            )
        zone = policy.zones.get(zone_name)
        for host in zone.probe_hosts if zone else ():
            if host not in names:
                file, _, line = policy.zone_sources.get(zone_name, "").rpartition(":")
                raise ConfigError(
                    f"zone {zone_name!r}: probe host {host!r} is not in the inventory "
                    "(or not selected by --limit)",
                    file=file or None,
                    line=int(line) if line.isdigit() else None,
                    field=f"zones.{zone_name}.probe_hosts",
                )
    for flag, value in (
        ("--probe-timeout", settings.timeout),
        ("--probe-deadline", settings.deadline),
    ):
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(
                f"must be a finite, positive number of seconds, got {value}", field=flag
            )


class Connector(Protocol):
    """Opens a session to an inventory host (the runner's transports and settings)."""

    async def __call__(self, target: Target) -> Session: ...


async def probe_phase(
    scans: Sequence[HostScan],
    policy: Policy,
    settings: ProbeSettings,
    connect: Connector,
) -> tuple[ProbeResult, ...]:
    """The matrix: one result per (scanned host's listener, requested zone)."""
    by_name = {s.host: s for s in scans}
    end = time.monotonic() + settings.deadline
    late = Outcome("not_probed", f"probe phase deadline ({settings.deadline:g}s) reached")

    async def zone_task(name: str) -> list[ProbeResult]:
        zone = policy.zones.get(name) if name != SCANNER_ZONE else None
        rows = plan_zone(scans, zone)
        work = endpoints(rows)
        got: dict[Endpoint, Outcome] = {}
        source: str | None = None
        missing = late
        try:
            async with asyncio.timeout_at(_loop_time(end)):
                if zone is None:
                    await probe_from_scanner(
                        work,
                        timeout=settings.timeout,
                        zone_concurrency=settings.zone_concurrency,
                        host_concurrency=settings.host_concurrency,
                        into=got,
                    )
                elif work:
                    source, why = await _remote_zone(
                        zone, work, by_name, settings, connect, end, got
                    )
                    missing = Outcome("not_probed", why)
        except TimeoutError:
            missing = late
        return [_result(row, name, source, got, missing) for row in rows]

    per_zone = await asyncio.gather(*(zone_task(z) for z in settings.zones))
    return tuple(r for rows in per_zone for r in rows)


def _loop_time(deadline: float) -> float:
    """``time.monotonic()`` deadline → the running loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline - time.monotonic())


async def _remote_zone(
    zone: Zone,
    work: Sequence[Endpoint],
    by_name: Mapping[str, HostScan],
    settings: ProbeSettings,
    connect: Connector,
    end: float,
    into: dict[Endpoint, Outcome],
) -> tuple[str | None, str]:
    """Probe ``work`` from the zone's first probe host that can; returns that
    host (None if none could) and the reason for endpoints left without answer."""
    reasons: list[str] = []
    for name in zone.probe_hosts:
        scan = by_name.get(name)
        if scan is None:
            reasons.append(f"probe host {name} is not in this run")
            continue
        if not scan.status.scanned:
            reasons.append(f"probe host {name} was not scanned ({scan.status.value})")
            continue
        try:
            answer = await _run_remote(scan, work, settings, connect, end)
        except TransportError as exc:
            reasons.append(f"probe host {name}: {exc}")
            continue
        if answer.method is None:
            reasons.append(f"probe host {name}: {answer.unavailable}")
            continue
        into.update(answer.outcomes)
        return name, f"probe host {name} ({answer.method}) gave no answer for it"
    return None, "; ".join(reasons) or "no probe host"


async def _run_remote(
    scan: HostScan,
    work: Sequence[Endpoint],
    settings: ProbeSettings,
    connect: Connector,
    end: float,
) -> remote.Answer:
    # the window of parallel probes spans interleaved addresses (plan.endpoints);
    # capping it keeps at most ~host_concurrency connections on one address
    addresses = len({ep.address for ep in work})
    parallel = min(settings.remote_parallel, settings.host_concurrency * addresses)
    request = remote.new_request(work, settings.timeout, parallel)
    if scan.platform == "windows":
        command, stdin = remote.POWERSHELL_COMMAND, remote.powershell_stdin(request)
    else:
        command, stdin = remote.POSIX_COMMAND, remote.posix_program(request)
    session = await connect(scan.target)
    try:
        result = await session.run(
            command,
            stdin=stdin,
            timeout=max(0.1, end - time.monotonic()),
            max_output=len(work) * ANSWER_BYTES_PER_ENDPOINT + 4096,
        )
    finally:
        await session.close()
    answer = remote.read_answer(request, result.stdout.decode("utf-8", "replace"))
    if answer.method is None and not answer.unavailable:
        err = " ".join(result.stderr.decode("utf-8", "replace").split())[: remote.MAX_REASON]
        detail = f"exit {result.exit_status}" + (f": {err}" if err else "")
        return remote.Answer(None, f"the probe program gave no answer ({detail})", {})
    return answer


def _result(
    row: Row, zone: str, source: str | None, got: Mapping[Endpoint, Outcome], missing: Outcome
) -> ProbeResult:
    if row.endpoint is None:
        return ProbeResult(
            row.host, row.listener, zone, row.address, "not_probed", None, row.reason
        )
    outcome = got.get(row.endpoint)
    if outcome is None:
        return ProbeResult(
            row.host, row.listener, zone, row.address, "not_probed", source, missing.reason
        )
    return ProbeResult(
        row.host,
        row.listener,
        zone,
        row.address,
        outcome.result,
        source,
        outcome.reason,
        outcome.rtt_ms,
    )
