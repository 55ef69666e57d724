"""What the store modules share: errors, chunking, blob reads, history rows."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from fleetscan.store.schema import blobs

CHUNK = 500  # bound parameters per IN (...) list
TREND_RUNS = 30


class StoreError(Exception):
    """The history database cannot be used (unreachable, locked, corrupt, unknown run)."""


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def blob_docs(conn: Connection, keys: Sequence[str]) -> Iterator[tuple[str, Any]]:
    """(digest, decoded document) of the blobs ``keys``."""
    for part in chunks(keys):
        query = select(blobs.c.digest, blobs.c.body).where(blobs.c.digest.in_(part))
        for key, body in conn.execute(query):
            yield key, json.loads(body)


def insert_ignore(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows whose key may already exist (a concurrent run, an equal blob)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(table).on_conflict_do_nothing(), rows)
    else:
        from sqlalchemy.dialects.sqlite import insert as lite_insert

        conn.execute(lite_insert(table).on_conflict_do_nothing(), rows)


@dataclass(frozen=True)
class RunRow:
    """One line of ``fleetscan history``."""

    id: str
    started: str
    finished: str
    hosts: int
    by_status: dict[str, int]
    active_by_severity: dict[str, int]
    listeners: int
    changes: int
    interrupted: bool
    exit_code: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "started": self.started,
            "finished": self.finished,
            "hosts": self.hosts,
            "by_status": self.by_status,
            "active_findings_by_severity": self.active_by_severity,
            "listeners": self.listeners,
            "changes": self.changes,
            "interrupted": self.interrupted,
            "exit_code": self.exit_code,
        }


def run_row(r: Any) -> RunRow:
    return RunRow(
        id=r.run_id,
        started=r.started,
        finished=r.finished,
        hosts=r.hosts,
        by_status=r.by_status,
        active_by_severity=r.active_by_severity,
        listeners=r.listeners,
        changes=r.changes,
        interrupted=r.interrupted,
        exit_code=r.exit_code,
    )
