"""A connect or command attempt running in a worker thread, abortable from the event loop."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Attempt:
    """What a connect attempt opened so far, so the event loop can abort it.

    Sockets and clients are closed by whoever comes last: the worker when it
    notices ``aborted``, or :meth:`abort` for what the worker already opened."""

    stage: str = "tcp"
    aborted: bool = False
    opened: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keep(self, thing: Any) -> None:
        with self.lock:
            self.opened.append(thing)
            if not self.aborted:
                return
        close_quietly(thing)
        raise Aborted()

    def abort(self) -> None:
        with self.lock:
            self.aborted = True
            things = list(self.opened)
        for thing in reversed(things):
            close_quietly(thing)


class Aborted(Exception):
    """The event loop gave up on this worker (timeout or cancel)."""


def close_quietly(thing: Any) -> None:
    with contextlib.suppress(Exception):
        thing.close()
