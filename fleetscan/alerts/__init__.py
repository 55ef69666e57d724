"""Alerts: decide what a run should tell people (:mod:`.events`, pure), format
it (:mod:`.messages`) and deliver it (:mod:`.destinations`), with what could
not be delivered kept in the history store's outbox for the next run."""

from fleetscan.alerts.destinations import (
    Attempt,
    DeliveryError,
    Email,
    Webhook,
    deliver,
    deliver_all,
)
from fleetscan.alerts.events import Alert, AlertKind, AlertPlan, OpenAlert, alert_key, plan_alerts
from fleetscan.alerts.messages import payload

__all__ = [
    "Alert",
    "AlertKind",
    "AlertPlan",
    "Attempt",
    "DeliveryError",
    "Email",
    "OpenAlert",
    "Webhook",
    "alert_key",
    "deliver",
    "deliver_all",
    "payload",
    "plan_alerts",
]
