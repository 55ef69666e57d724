"""SIGINT and SIGTERM for a whole run (:class:`StopSignals`).

The exit-130 contract holds from the first host to the last report: a signal
during the scan stops it (hosts still running end ``interrupted``); one that
arrives while policy, the store or the reports run is remembered, and
:func:`fleetscan.app.execute` then marks the run interrupted and writes its
reports again, complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType


class StopSignals:
    """SIGINT and SIGTERM for a whole run, from the first host to the last report.

    The first signal stops the scan (see :func:`run_scan`); one that arrives
    later (policy, reports) is remembered, and :func:`execute` then marks the
    run interrupted and writes its reports again. Outside the main thread
    (``fleetscan demo`` runs the scan in one) signals are left alone."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self._stop: Callable[[], None] | None = None
        self._saved: dict[int, object] = {}

    def _handler(self, signum: int, _frame: FrameType | None = None) -> None:
        if self.received is None:
            self.received = signum
        if self._stop is not None:
            self._stop()

    def _install(self) -> None:
        for sig in self.SIGNALS:
            signal.signal(sig, self._handler)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._saved = {sig: signal.getsignal(sig) for sig in self.SIGNALS}
            self._install()
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    @contextlib.contextmanager
    def stopping(self, stop: asyncio.Event) -> Iterator[None]:
        """While the event loop runs: a signal sets ``stop``. asyncio's own
        handlers are used there, because they wake the loop even when the
        signal landed on another thread (paramiko's, a parser's)."""
        loop = asyncio.get_running_loop()
        self._stop = stop.set
        if self.received is not None:
            stop.set()
        installed: list[int] = []
        if self._saved:
            for sig in map(int, self.SIGNALS):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, self._handler, sig)
                    installed.append(sig)
        try:
            yield
        finally:
            self._stop = None
            for sig in installed:
                loop.remove_signal_handler(sig)
            if installed:
                self._install()  # remove_signal_handler put the defaults back
