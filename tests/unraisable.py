"""Catch what the interpreter reports as unraisable inside a block: an
exception raised by a ``__del__``, such as asyncio's "Event loop is closed"
from a subprocess transport left for the garbage collector."""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def unraisable() -> Iterator[list[str]]:
    """The unraisable exceptions of the block, one line each; the garbage
    collector runs at its end, so what was left for it is caught too."""
    caught: list[str] = []
    old = sys.unraisablehook
    sys.unraisablehook = lambda u: caught.append(f"{u.exc_type.__name__}: {u.object!r}")
    try:
        yield caught
        gc.collect()
    finally:
        sys.unraisablehook = old
