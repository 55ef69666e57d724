"""The alert stage of a run: plan against the store's open alerts, deliver, remember.

Order, after the run is recorded in the history and before its reports:

1. messages still in the outbox (a destination was down last time) are sent
   first, oldest first — "the alert arrives in the next run";
2. this run's alerts are planned (:func:`~fleetscan.alerts.events.plan_alerts`)
   against the open set, and sent as one message per destination; a message a
   destination did not take goes to the outbox;
3. the new open set is stored, whether or not delivery worked (the outbox
   holds what is owed).

Nothing here can fail the run: a database or delivery problem is returned as
an :class:`~fleetscan.model.AlertDelivery` that the reports show, and the exit
code never depends on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fleetscan.alerts.destinations import Attempt, Destination, deliver
from fleetscan.alerts.events import plan_alerts
from fleetscan.alerts.messages import payload
from fleetscan.model import AlertDelivery, AlertReport, ScanRun, Severity

log = logging.getLogger("fleetscan.alerts")


@dataclass(frozen=True)
class AlertSettings:
    """Where alerts go and what raises one (from the command line or config)."""

    destinations: tuple[Destination, ...] = ()
    threshold: Severity = Severity.HIGH
    #: link to the report in each message; ``{run_id}`` is replaced
    report_url: str | None = None
    tries: int = 3
    backoff: float = 0.5

    def link(self, run_id: str) -> str | None:
        return self.report_url.replace("{run_id}", run_id) if self.report_url else None


def alert_stage(
    engine: Any,
    run: ScanRun,
    settings: AlertSettings,
    *,
    sleep: Callable[[float], None] | None = None,
) -> AlertReport:
    """Deliver what is owed and what this run raises; never raises itself."""
    from sqlalchemy.exc import SQLAlchemyError

    from fleetscan.store.alerting import AlertStore

    store = AlertStore(engine)
    kw: dict[str, Any] = {"tries": settings.tries, "backoff": settings.backoff}
    if sleep is not None:
        kw["sleep"] = sleep
    try:
        down: set[str] = set()  # destinations that failed this run: not hammered again
        deliveries = _flush_outbox(store, settings, kw, down)
        before = store.open_alerts()
        fold = None if store.runs_before(run.id) == 0 else run_first_seen(run)
        plan = plan_alerts(run, before, threshold=settings.threshold, fold=fold)
        if plan.alerts:
            body = payload(run, plan.alerts, settings.link(run.id))
            for dest in settings.destinations:
                attempt = (
                    deliver(dest, body, **kw)
                    if dest.id not in down
                    else Attempt(dest.id, False, error="destination down earlier in this run")
                )
                if not attempt.ok:
                    down.add(dest.id)
                    store.queue(dest.id, run.id, body, attempt.error)
                deliveries.append(
                    AlertDelivery(
                        destination=dest.label,
                        run_id=run.id,
                        alerts=len(plan.alerts),
                        ok=attempt.ok,
                        error=attempt.error,
                        queued=not attempt.ok,
                    )
                )
        store.replace_open(before, plan.open_after, run.id)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        log.warning("alerts not evaluated: history database error: %s", reason[:1])
        return AlertReport(
            raised=0,
            deliveries=(
                AlertDelivery(
                    destination="history database",
                    run_id=run.id,
                    alerts=0,
                    ok=False,
                    error="alerts not evaluated: the history database failed",
                ),
            ),
        )
    return AlertReport(raised=len(plan.alerts), deliveries=tuple(deliveries))


def run_first_seen(run: ScanRun) -> frozenset[str]:
    """Hosts whose first complete scan this is (the history's drift says so)."""
    if run.compared_to is None:
        return frozenset()
    return frozenset(run.compared_to.baseline_hosts)


def _flush_outbox(
    store: Any, settings: AlertSettings, kw: dict[str, Any], down: set[str]
) -> list[AlertDelivery]:
    by_id = {d.id: d for d in settings.destinations}
    out: list[AlertDelivery] = []
    for item in store.pending(by_id):
        if item.destination in down:
            continue  # still owed; the next run tries again
        dest = by_id[item.destination]
        attempt = deliver(dest, item.body, **kw)
        if not attempt.ok:
            down.add(dest.id)
        if attempt.ok:
            store.delivered(item.pk)
            kept = False
        else:
            kept = store.failed_again(item, attempt.error)
        out.append(
            AlertDelivery(
                destination=dest.label,
                run_id=item.run_id,
                alerts=len(item.body.get("alerts", [])),
                ok=attempt.ok,
                error=attempt.error
                if attempt.ok
                else attempt.error + ("" if kept else "; given up"),
                queued=not attempt.ok and kept,
            )
        )
    return out
