"""The alert tables of the history store: open alerts (dedup) and the outbox.

Both live in the same database as the runs, so the dedup state follows the
history wherever it is (SQLite file or PostgreSQL), and an alert that could
not be delivered survives the process until a later run delivers it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, update

from fleetscan.alerts.events import OpenAlert
from fleetscan.model import Severity
from fleetscan.store.engine import write_transaction
from fleetscan.store.schema import alert_outbox, alert_state, runs

#: a message a destination refused this many times is dropped (and said so)
MAX_ATTEMPTS = 50


@dataclass(frozen=True)
class Queued:
    """A message waiting in the outbox for one destination."""

    pk: int
    destination: str
    run_id: str
    body: dict[str, Any]
    attempts: int


class AlertStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def open_alerts(self) -> list[OpenAlert]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(alert_state)).all()
        return [
            OpenAlert(
                key=r.key,
                host=r.host,
                severity=Severity.parse(r.severity),
                rule_id=r.rule_id,
                message=r.message,
                listener=r.listener,
            )
            for r in rows
        ]

    def runs_before(self, run_id: str) -> int:
        """How many runs other than ``run_id`` the history holds."""
        with self.engine.connect() as conn:
            n = conn.scalar(select(func.count()).select_from(runs).where(runs.c.run_id != run_id))
        return int(n or 0)

    def replace_open(
        self, before: Sequence[OpenAlert], after: Sequence[OpenAlert], run_id: str
    ) -> None:
        """Apply the difference between two open sets in one transaction."""
        old = {a.key for a in before}
        new = {a.key: a for a in after}
        gone = old - set(new)
        added = [a for k, a in new.items() if k not in old]
        with write_transaction(self.engine) as conn:
            if gone:
                conn.execute(delete(alert_state).where(alert_state.c.key.in_(sorted(gone))))
            for a in added:
                conn.execute(
                    insert(alert_state).values(
                        key=a.key,
                        host=a.host,
                        severity=str(a.severity),
                        rule_id=a.rule_id,
                        message=a.message,
                        listener=dict(a.listener) if a.listener is not None else None,
                        run_id=run_id,
                    )
                )

    def queue(self, destination: str, run_id: str, body: dict[str, Any], error: str) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(
                insert(alert_outbox).values(
                    destination=destination,
                    run_id=run_id,
                    created=datetime.now(UTC).isoformat(),
                    body=body,
                    attempts=1,
                    last_error=error[:200],
                )
            )

    def pending(self, destinations: Iterable[str]) -> list[Queued]:
        wanted = sorted(set(destinations))
        if not wanted:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(alert_outbox)
                .where(alert_outbox.c.destination.in_(wanted))
                .order_by(alert_outbox.c.pk)
            ).all()
        return [Queued(r.pk, r.destination, r.run_id, r.body, r.attempts) for r in rows]

    def delivered(self, pk: int) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(delete(alert_outbox).where(alert_outbox.c.pk == pk))

    def failed_again(self, item: Queued, error: str) -> bool:
        """Count another failed attempt; False when the message was given up."""
        with write_transaction(self.engine) as conn:
            if item.attempts + 1 >= MAX_ATTEMPTS:
                conn.execute(delete(alert_outbox).where(alert_outbox.c.pk == item.pk))
                return False
            conn.execute(
                update(alert_outbox)
                .where(alert_outbox.c.pk == item.pk)
                .values(attempts=item.attempts + 1, last_error=error[:200])
            )
        return True
