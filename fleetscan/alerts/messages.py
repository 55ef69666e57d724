"""What an alert looks like on the wire: the JSON payload, Slack text, e-mail.

One message per run and destination, holding every alert of the run. Host
text (names, process names, messages) is untrusted: the JSON payload keeps
it as received (JSON escapes it; receivers must escape it for their own
display), the Slack form escapes ``& < >`` (so ``<!channel>`` or a link
cannot be smuggled in) and makes control characters visible, and the e-mail
is plain text with visible controls and a subject built from counts only.

Payload schema ``fleetscan.alerts`` version 1 (docs/alerts.md)::

    {"schema": "fleetscan.alerts", "schema_version": 1,
     "run": {"id": str, "started": str, "finished": str, "report_url": str|null},
     "alerts": [{"kind": "finding"|"host"|"resolved"|"summary", "key": str,
                 "severity": str, "host": str|null, "rule": str|null,
                 "listener": {...}|null, "message": str, "counts"?: {...}}]}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fleetscan.alerts.events import Alert, AlertKind
from fleetscan.model import ScanRun
from fleetscan.reports.sanitize import clip, visible_controls

if TYPE_CHECKING:
    from email.message import EmailMessage

SCHEMA = "fleetscan.alerts"
SCHEMA_VERSION = 1
MAX_LINES = 50  # a chat message or mail lists this many alerts, then counts the rest


def payload(run: ScanRun, alerts: Sequence[Alert], report_url: str | None) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "run": {
            "id": run.id,
            "started": run.started.isoformat(),
            "finished": run.finished.isoformat(),
            "report_url": report_url,
        },
        "alerts": [a.to_dict() for a in alerts],
    }


def _inert(text: str, limit: int = 300) -> str:
    return visible_controls(clip(text, limit))


def _slack_escape(text: str) -> str:
    return _inert(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _where(alert: dict[str, Any]) -> str:
    lst = alert.get("listener")
    if not lst:
        return ""
    address = str(lst.get("address", ""))
    if ":" in address:
        address = f"[{address}]"
    names = ",".join(str(p.get("name", "")) for p in lst.get("processes", []))
    return f" {lst.get('proto')} {address}:{lst.get('port')}" + (f" ({names})" if names else "")


def alert_line(alert: dict[str, Any]) -> str:
    """One plain line per alert (from the payload dict, so the outbox needs no model)."""
    host = alert.get("host") or "fleet"
    rule = f" [{alert['rule']}]" if alert.get("rule") else ""
    return (
        f"{str(alert['kind']).upper()} {str(alert['severity']).upper()} {host}"
        f"{_where(alert)}{rule}: {alert['message']}"
    )


def _headline(body: dict[str, Any]) -> str:
    alerts = body["alerts"]
    kinds: dict[str, int] = {}
    for a in alerts:
        kinds[a["kind"]] = kinds.get(a["kind"], 0) + 1
    parts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    return f"fleetscan run {body['run']['id']}: {parts or 'no alerts'}"


def _lines(body: dict[str, Any], escape: Any) -> list[str]:
    alerts = body["alerts"]
    lines = [escape(alert_line(a)) for a in alerts[:MAX_LINES]]
    if len(alerts) > MAX_LINES:
        lines.append(f"… and {len(alerts) - MAX_LINES} more (see the report)")
    for a in alerts:
        if a["kind"] == AlertKind.SUMMARY.value and a.get("counts"):
            counts = ", ".join(f"{k} {v}" for k, v in sorted(a["counts"].items()))
            lines.append(escape(f"counts: {counts}"))
    url = body["run"].get("report_url")
    if url:
        lines.append(f"report: {escape(url)}")
    return lines


def slack_text(body: dict[str, Any]) -> dict[str, str]:
    """Slack/Mattermost incoming-webhook form: ``{"text": …}``."""
    lines = [_slack_escape(_headline(body)), *_lines(body, _slack_escape)]
    return {"text": "\n".join(lines)}


def email_message(body: dict[str, Any], *, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """One plain-text mail per run. The subject holds no host text."""
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = _headline(body)
    msg.set_content("\n".join(_lines(body, _inert)) + "\n")
    return msg
