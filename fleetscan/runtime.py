"""Process-wide settings of the fleetscan CLI: the garbage collector, with
glibc the allocator, and the event loop. :func:`fleetscan.cli.main` applies
the first two once, before the command runs; ``bench.reports`` applies the
same, so its figures are the CLI's. Every event loop fleetscan runs is
started by :func:`run`.

* **Collector.** The modules imported at start-up are never garbage:
  :func:`gc.freeze` takes them out of every collection, and the first
  generation is collected every 20,000 allocations (:data:`GC_THRESHOLD`)
  rather than 700. A scan allocates millions of short-lived objects; with Python's
  defaults the long-lived heap was re-scanned over and over (0.2 s of a
  500-host run, and report writing grew faster than the fleet). Few of a
  run's objects form cycles (reference counting frees the rest), so
  collecting less often costs no memory (measured: the same peak).
* **Allocator (glibc only).** Blocks from :data:`MMAP_THRESHOLD` up are
  mapped on their own and given back to the system when freed. glibc's
  default raises that threshold after the first large free (up to 32 MiB),
  so the megabytes of one huge output — the bytes read, their decoded text,
  a report's chunks — stayed in the heap afterwards, and the next ones were
  placed beside them: a host of 100,000 listeners peaked 11 MiB higher.
  An operator's own ``MALLOC_*`` environment variables win: nothing is
  changed then.
* **Event loop.** uvloop (libuv) where it is installed — a dependency on
  Linux and macOS — and the standard library's loop elsewhere. A scan's
  client CPU is mostly the SSH library's packets and the loop that carries
  them; uvloop's loop costs about 10 % less CPU of a 500-host run (measured
  in ``docs/architecture.md``, "Speed"). ``FLEETSCAN_EVENT_LOOP=asyncio``
  chooses the standard loop (to rule the loop out when debugging);
  ``=uvloop`` requires uvloop; another value is a configuration error.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fleetscan.errors import ConfigError

T = TypeVar("T")

GC_THRESHOLD = (20_000, 20, 20)
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value, kept fixed
_M_MMAP_THRESHOLD = -3  # mallopt parameter (malloc.h)
LOOP_ENV = "FLEETSCAN_EVENT_LOOP"
LOOPS = ("uvloop", "asyncio")


def tune_process() -> None:
    """Apply the collector and allocator settings (see the module docstring)."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    tune_malloc()


def tune_malloc() -> bool:
    """Fix glibc's mmap threshold; True when it was set. Not glibc, or the
    operator set ``MALLOC_*`` variables: nothing is changed."""
    if sys.platform != "linux" or any(k.startswith("MALLOC_") for k in os.environ):
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (ValueError, OSError, AttributeError):
        return False


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """How :func:`run` makes its loop: uvloop's, or None for the standard
    library's (see the module docstring); ConfigError for a bad choice."""
    choice = os.environ.get(LOOP_ENV, "").strip().lower()
    if choice and choice not in LOOPS:
        raise ConfigError(f"expected one of {', '.join(LOOPS)}, got {choice!r}", field=LOOP_ENV)
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigError("uvloop is not installed", field=LOOP_ENV) from None
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop :func:`loop_factory` chooses."""
    try:
        factory = loop_factory()
    except ConfigError:
        main.close()  # never awaited: no "coroutine was never awaited" warning
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
