"""The ``scanner`` zone: TCP connects from the machine fleetscan runs on.

One connection per endpoint, closed as soon as the handshake completes (a
FIN, no byte sent), at most ``zone_concurrency`` at once and at most
``host_concurrency`` to one address.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

from fleetscan.exposure.plan import Endpoint
from fleetscan.model import ProbeOutcome

#: connect() errors that mean "no way there" (ICMP unreachable, no route, a
#: firewall's reject-with-icmp admin-prohibited maps to EHOSTUNREACH)
UNREACHABLE_ERRNOS = frozenset(
    {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.EACCES}
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one connection attempt gave: a matrix result, why, how fast."""

    result: ProbeOutcome
    reason: str = ""
    rtt_ms: float | None = None


async def connect_once(address: str, port: int, timeout: float) -> Outcome:
    """One TCP connect to ``address:port`` within ``timeout`` seconds."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            _reader, writer = await asyncio.open_connection(address, port)
    except TimeoutError:
        return Outcome("filtered", f"no answer within {timeout:g}s")
    except ConnectionRefusedError:
        return Outcome("refused", "connection refused", _ms(started))
    except socket.gaierror as exc:
        return Outcome("not_probed", f"cannot resolve {address}: {exc.strerror or exc}")
    except OSError as exc:
        text = exc.strerror or str(exc)
        if exc.errno in UNREACHABLE_ERRNOS:
            return Outcome("unreachable", text, _ms(started))
        return Outcome("not_probed", f"connect failed: {text}")
    rtt = _ms(started)
    writer.close()
    try:
        async with asyncio.timeout(timeout):
            await writer.wait_closed()
    except (TimeoutError, OSError):
        writer.transport.abort()
    return Outcome("open", "handshake completed", rtt)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000.0, 3)


async def probe_from_scanner(
    targets: Sequence[Endpoint],
    *,
    timeout: float,
    zone_concurrency: int,
    host_concurrency: int,
    into: dict[Endpoint, Outcome],
) -> None:
    """Connect to every endpoint once, politely bounded; outcomes go into
    ``into`` as they come (a deadline keeps what finished)."""
    zone_gate = asyncio.Semaphore(max(1, zone_concurrency))
    host_gates: dict[str, asyncio.Semaphore] = {}

    async def one(ep: Endpoint) -> None:
        gate = host_gates.setdefault(ep.address, asyncio.Semaphore(max(1, host_concurrency)))
        async with gate, zone_gate:
            into[ep] = await connect_once(ep.address, ep.port, timeout)

    await asyncio.gather(*(one(ep) for ep in targets))
