"""Benchmark: fleetscan's linux-ss parser against jc's ss parser.

Run with ``.venv/bin/python -m bench.parse [LINES]``. Generates a large,
realistic ``ss -tulnp`` output of a very big host (default 200,000 rows: TCP
listeners and bound UDP sockets, IPv4 and IPv6 over 512 addresses, devices,
400 services of which pre-fork ones hold each socket with several processes,
kernel sockets without ``users:``), parses it with both parsers
in the same run (best of 3 each), and prints rows/s, the ratio and the peak
memory each parse allocates (tracemalloc, measured in a separate run so it
does not slow the timed ones). Not a test: the figures depend on the machine.
"""

from __future__ import annotations

import gc
import random
import sys
import time
import tracemalloc
from collections.abc import Callable

from fleetscan.parsers.linux_ss import parse as fleetscan_parse

HEADER = "Netid State  Recv-Q Send-Q  Local Address:Port   Peer Address:PortProcess"
NAMES = ("nginx", "sshd", "postgres", "master", "smtpd", "apache2", "java", "dockerd", "my app")


def _pools(rng: random.Random) -> tuple[list[str], list[str], list[list[tuple[str, int]]]]:
    """A big host: 256 addresses per family, 400 services of 1-8 processes."""
    v4 = ["0.0.0.0", "127.0.0.1", "127.0.0.53%lo"] + [
        f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(253)
    ]
    v6 = ["[::]", "[::1]", "[fe80::1c2:3ff:fe4d:5e6f]%eth0"] + [
        f"[2001:db8:{rng.randrange(65536):x}::{rng.randrange(65536):x}]" for _ in range(253)
    ]
    services = []
    for _ in range(400):
        name = rng.choice(NAMES)
        first = rng.randrange(1, 4_000_000)
        workers = rng.choice((1, 1, 1, 2, 3, 4, 8))
        services.append([(name, first + i) for i in range(workers)])
    return v4, v6, services


def generate(rows: int, seed: int = 7) -> str:
    """A realistic ``ss -tulnp`` output of ``rows`` sockets (plus the header)."""
    rng = random.Random(seed)
    v4, v6, services = _pools(rng)
    lines = [HEADER]
    for _ in range(rows):
        proto = "tcp" if rng.random() < 0.7 else "udp"
        state = "LISTEN" if proto == "tcp" else "UNCONN"
        family = 4 if rng.random() < 0.6 else 6
        host = rng.choice(v4[:3] * 40 + v4) if family == 4 else rng.choice(v6[:3] * 40 + v6)
        local = f"{host}:{rng.randrange(1, 65536)}"
        peer = "0.0.0.0:*" if family == 4 else "[::]:*"
        backlog = 128 if proto == "tcp" else 0
        row = f"{proto}   {state} 0      {backlog:<6} {local:>32} {peer:>14}    "
        if rng.random() < 0.95:  # a few kernel sockets have no users:
            users = ",".join(
                f'("{name}",pid={pid},fd={rng.randrange(3, 9000)})'
                for name, pid in rng.choice(services)
            )
            row += f"users:({users})"
        lines.append(row)
    return "\n".join(lines) + "\n"


def _best_of(runs: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _peak_bytes(fn: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main(argv: list[str]) -> int:
    rows = int(argv[1]) if len(argv) > 1 else 200_000
    text = generate(rows)
    try:
        import jc  # type: ignore[import-untyped]
    except ImportError:
        print("jc is not installed (pip install jc): only fleetscan is timed")
        jc = None

    def ours() -> object:
        return fleetscan_parse(text)

    def theirs() -> object:
        return jc.parse("ss", text, quiet=True)

    result = fleetscan_parse(text)
    assert len(result.listeners) == rows and not result.unparsed, "generator/parser mismatch"
    del result  # a live result would make every timed run's GC passes slower
    print(f"input: {rows:,} rows, {len(text) / 1e6:.1f} MB of ss -tulnp output")
    ours_s = _best_of(3, ours)
    print(f"fleetscan linux-ss: {ours_s:7.3f} s  {rows / ours_s:12,.0f} rows/s", end="")
    print(f"  peak {_peak_bytes(ours) / 1e6:7.1f} MB")
    if jc is not None:
        theirs_s = _best_of(3, theirs)
        print(f"jc ss             : {theirs_s:7.3f} s  {rows / theirs_s:12,.0f} rows/s", end="")
        print(f"  peak {_peak_bytes(theirs) / 1e6:7.1f} MB")
        print(f"speed-up: {theirs_s / ours_s:.1f}x (goal >= 5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
