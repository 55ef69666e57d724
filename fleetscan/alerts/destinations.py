"""Where alerts go: webhooks (httpx) and e-mail (the standard library's smtplib).

Delivery never blocks a scan for long and never loses it: every attempt has a
bounded timeout, a failed attempt is retried a few times with backoff, and
what still failed is handed back to the caller (which keeps it in the
outbox for the next run). Secrets — a webhook bearer token, the SMTP
password — are read from the operator's environment at delivery time, by the
variable name the operator configured; they are never logged, and URLs are
logged without their path or query (a Slack hook URL *is* a secret).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from fleetscan.alerts.messages import email_message, slack_text
from fleetscan.errors import ConfigError

if TYPE_CHECKING:
    import ssl

# httpx, smtplib and ssl are imported when an alert is sent: every run checks its
# alert options (this module), few send anything, and httpx alone costs ~50 ms
log = logging.getLogger("fleetscan.alerts")
# httpx logs every request's full URL at INFO (httpcore at DEBUG): with -vv that
# would print a Slack hook URL, which is itself the secret
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)

WebhookFormat = Literal["json", "slack"]
SmtpSecurity = Literal["starttls", "tls", "none"]


class DeliveryError(Exception):
    """A destination did not take the message (after the retries)."""


def redact_url(url: str) -> str:
    """``scheme://host[:port]/…`` — what a log line may show of a URL."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…"


def check_url(url: str, field: str, file: str | None = None) -> str:
    """A webhook URL must be http(s) with a host, without user:password."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a bad port
    except ValueError as exc:
        raise ConfigError(f"not a valid URL: {exc}", file=file, field=field) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("must be an http:// or https:// URL with a host", file=file, field=field)
    if parts.username or parts.password:
        raise ConfigError(
            "must not hold credentials (give a token through an environment variable)",
            file=file,
            field=field,
        )
    return url


def _secret(env_name: str | None) -> str | None:
    if not env_name:
        return None
    value = os.environ.get(env_name)
    if value is None:
        raise DeliveryError(f"environment variable {env_name} is not set")
    return value


@dataclass(frozen=True)
class Webhook:
    url: str
    format: WebhookFormat = "json"
    token_env: str | None = None  # bearer token, read at delivery time
    timeout: float = 10.0

    @property
    def id(self) -> str:
        digest = hashlib.sha256(f"{self.format}\x1f{self.url}".encode()).hexdigest()[:16]
        return f"webhook:{digest}"

    @property
    def label(self) -> str:
        return f"webhook {redact_url(self.url)}"

    def send(self, body: dict[str, Any]) -> None:
        data = slack_text(body) if self.format == "slack" else body
        headers = {"Content-Type": "application/json", "User-Agent": "fleetscan-alerts"}
        token = _secret(self.token_env)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        import httpx

        try:
            with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
                response = client.post(
                    self.url, content=json.dumps(data, ensure_ascii=False), headers=headers
                )
        except httpx.HTTPError as exc:
            # the exception text can hold the URL: say only what kind of failure it was
            raise DeliveryError(f"{type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"HTTP {response.status_code}")


@dataclass(frozen=True)
class Email:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    security: SmtpSecurity = "starttls"
    username: str | None = None
    password_env: str | None = None
    timeout: float = 15.0
    ca_file: str | None = None  # extra CA to trust (a private relay's)

    @property
    def id(self) -> str:
        ident = f"{self.host}\x1f{self.port}\x1f{','.join(self.recipients)}"
        return "email:" + hashlib.sha256(ident.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        return f"email via {self.host}:{self.port}"

    def _context(self) -> ssl.SSLContext:
        import ssl

        return ssl.create_default_context(cafile=self.ca_file)

    def send(self, body: dict[str, Any]) -> None:
        import smtplib
        import ssl

        msg = email_message(body, sender=self.sender, recipients=self.recipients)
        password = _secret(self.password_env)
        try:
            smtp: smtplib.SMTP
            if self.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self._context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=self._context())
                if self.username:
                    smtp.login(self.username, password or "")
                smtp.send_message(msg)
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            # never the exception's arguments: an auth error can echo what was sent
            raise DeliveryError(type(exc).__name__) from None


Destination = Webhook | Email


@dataclass(frozen=True)
class Attempt:
    destination: str
    ok: bool
    error: str = ""
    tries: int = 0


def deliver(
    destination: Destination,
    body: dict[str, Any],
    *,
    tries: int = 3,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> Attempt:
    """Send ``body`` to ``destination``: ``tries`` attempts, doubling pauses."""
    error = ""
    for n in range(1, tries + 1):
        try:
            destination.send(body)
        except DeliveryError as exc:
            error = str(exc)
            log.warning(
                "alert delivery to %s failed (try %d of %d): %s", destination.label, n, tries, error
            )
            if n < tries:
                sleep(backoff * 2 ** (n - 1))
            continue
        log.info("alerts delivered to %s", destination.label)
        return Attempt(destination.id, True, tries=n)
    return Attempt(destination.id, False, error=error, tries=tries)


def deliver_all(
    destinations: Sequence[Destination], body: dict[str, Any], **kw: Any
) -> list[Attempt]:
    return [deliver(d, body, **kw) for d in destinations]
