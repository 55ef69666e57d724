"""A userspace delay line: two TUN devices joined by a process that holds each packet.

    python -m bench.delayline NETNS --one-way-ms 25 [--left tun0] [--right tun1]

Used by :mod:`bench.latency` when the kernel has no ``sch_netem`` (``tc qdisc …
netem`` answers "Specified qdisc kind is unknown", as on the reference box, whose
kernel is built without ``CONFIG_NET_SCH_NETEM``). It is a cable with a fixed
one-way delay: it opens TUN device LEFT in the namespace it starts in (the root
namespace) and TUN device RIGHT inside network namespace NETNS
(``/run/netns/NETNS``), prints ``ready`` on stdout and then copies every IP
packet read from one device to the other after ONE_WAY_MS milliseconds. Both
directions get the same delay, so the round trip gains 2 × ONE_WAY_MS.

The devices are non-persistent: they disappear when this process exits, so a
killed delay line takes its devices with it. The caller gives them addresses
and routes once ``ready`` is printed. Nothing is dropped on purpose and no
bandwidth limit is applied: delay only. The order of packets is kept (each
direction is a FIFO; a constant delay never reorders).

Stdlib only (``ctypes`` for setns(2), which ``os`` gains only in Python 3.12).
It runs at nice -10: netem delays packets in the kernel, ahead of any process,
and on a CPU-bound box the delay line should add as little scheduling delay.
Runs until SIGTERM/SIGINT, then prints the packet counts on stderr.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import fcntl
import os
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000
MAX_BURST = 256  # packets read from one device before the other gets its turn


def open_tun(name: str) -> int:
    """A non-persistent L3 TUN device NAME in the current network namespace."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def enter_netns(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({name}): {os.strerror(err)}")
    finally:
        os.close(fd)


def run(left: int, right: int, delay_s: float) -> tuple[int, int]:
    """Copy packets left→right and right→left, each after delay_s; until signalled."""
    stop = False

    def on_signal(_sig: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # per direction: a FIFO of (due time, packet) and the device it goes out on
    queues: dict[int, collections.deque[tuple[float, bytes]]] = {
        left: collections.deque(),
        right: collections.deque(),
    }
    out = {left: right, right: left}
    counts = {left: 0, right: 0}
    poller = select.poll()
    poller.register(left, select.POLLIN)
    poller.register(right, select.POLLIN)
    clock = time.monotonic
    while not stop:
        now = clock()
        for src, q in queues.items():
            dst = out[src]
            while q and q[0][0] <= now:
                try:
                    os.write(dst, q[0][1])
                except BlockingIOError:
                    break  # the kernel's queue is full: retry on the next turn
                except OSError:
                    pass  # e.g. the far device is going away during teardown
                q.popleft()
        due = [q[0][0] for q in queues.values() if q]
        timeout_ms = max(0.0, (min(due) - clock()) * 1000) if due else 1000.0
        try:
            ready = poller.poll(timeout_ms)
        except InterruptedError:
            continue
        now = clock()
        for fd, _ev in ready:
            q = queues[fd]
            for _ in range(MAX_BURST):
                try:
                    pkt = os.read(fd, 65536)
                except BlockingIOError:
                    break
                q.append((now + delay_s, pkt))
                counts[fd] += 1
    return counts[left], counts[right]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("netns", help="network namespace (by name) holding the right device")
    ap.add_argument("--one-way-ms", type=float, required=True)
    ap.add_argument("--left", default="bl-lat0", help="TUN device in this namespace")
    ap.add_argument("--right", default="bl-lat1", help="TUN device inside NETNS")
    a = ap.parse_args(argv)
    # netem works in softirq context, ahead of every user process; on a saturated box
    # the delay line should not add scheduling delay to its fixed one either
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, -10)
    left = open_tun(a.left)
    enter_netns(a.netns)
    right = open_tun(a.right)
    print("ready", flush=True)
    sent = run(left, right, a.one_way_ms / 1000)
    print(f"delayline: {sent[0]} packets {a.left}→{a.right}, {sent[1]} back", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
