"""Run history: every scan recorded in a real database (SQLite by default,
PostgreSQL by URL), the reference each host is compared with, and stored runs
read back for ``history``, ``diff``, ``report`` and ``baseline``.

The pipeline uses exactly this API::

    history = History.open(resolve(options.db), mode="previous")  # before any connection
    changes, compared_to = history.compare(scans)                   # before policy evaluation
    run = history.record(run)                                        # after; adds the trend

SQLAlchemy 2 Core + Alembic (migrations in ``migrations/``, applied on open);
PostgreSQL through psycopg 3.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.engine import URL

from fleetscan import drift
from fleetscan.model import Change, ComparedTo, HostScan, ScanRun
from fleetscan.store.repo import Store
from fleetscan.store.rows import RunRow, StoreError
from fleetscan.store.url import ENV_VAR, default_path, resolve, shown

COMPARE_MODES = ("previous", "baseline")

__all__ = [
    "COMPARE_MODES",
    "ENV_VAR",
    "History",
    "RunRow",
    "Store",
    "StoreError",
    "default_path",
    "resolve",
    "shown",
]


@dataclass
class History:
    """The history stage of one run: an open store and the comparison mode."""

    store: Store
    mode: str = "previous"
    url: URL | None = None

    @classmethod
    def open(cls, url: URL, mode: str = "previous") -> History:
        """Open (and migrate) the database; StoreError when it cannot be used."""
        return cls(Store.open(url), mode, url)

    def compare(self, scans: Iterable[HostScan]) -> tuple[tuple[Change, ...], ComparedTo]:
        scans = tuple(scans)
        return drift.compare(scans, self.store.references(scans, self.mode), self.mode)

    def record(self, run: ScanRun) -> ScanRun:
        """Store ``run`` in one transaction; return it with its trend."""
        self.store.save(run)
        return self.store.with_trend(run)

    def mark_interrupted(self, run_id: str) -> None:
        """A stop signal arrived after the run was recorded (policy, reports)."""
        self.store.mark_interrupted(run_id)

    def close(self) -> None:
        self.store.close()
