"""Alert destinations from the operator's options, checked before any connection.

Only the operator's command line, config file and environment configure
alerts — never the inventory. Secrets are *names* of environment variables
(``--webhook-token-env``, ``--smtp-password-env``), read at delivery time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from fleetscan.alerts.destinations import Destination, Email, Webhook, check_url
from fleetscan.alerts.stage import AlertSettings
from fleetscan.errors import ConfigError

if TYPE_CHECKING:
    from fleetscan.options import RunOptions

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ADDRESS = re.compile(r"[^@\s<>,;:\"\\]+@[A-Za-z0-9.-]+\Z")
_HOST = re.compile(r"[A-Za-z0-9.-]+\Z|\[[0-9A-Fa-f:.]+\]\Z")
SMTP_PORTS = {"starttls": 587, "tls": 465, "none": 25}


def _env(name: str | None, field: str) -> str | None:
    if name is not None and not _ENV_NAME.match(name):
        raise ConfigError(f"not an environment variable name: {name!r}", field=field)
    return name


def _smtp_host(text: str, security: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":") if not text.endswith("]") else (text, "", "")
    if not sep:
        host, port = text, ""
    if not host or not _HOST.match(host):
        raise ConfigError(f"expected HOST or HOST:PORT, got {text!r}", field="--smtp")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ConfigError(f"bad port in {text!r}", field="--smtp")
    return host.strip("[]"), int(port) if port else SMTP_PORTS[security]


def _addresses(values: Sequence[str], field: str) -> tuple[str, ...]:
    for v in values:
        if not _ADDRESS.match(v):
            raise ConfigError(f"not an e-mail address: {v!r}", field=field)
    return tuple(values)


def alert_settings(options: RunOptions) -> AlertSettings | None:
    """The run's alert settings, or None when no destination is configured."""
    dests: list[Destination] = []
    if options.webhook_format not in ("json", "slack"):
        raise ConfigError(
            f"choose json or slack, got {options.webhook_format!r}", field="--webhook-format"
        )
    token = _env(options.webhook_token_env, "--webhook-token-env")
    for url in options.webhooks:
        dests.append(
            Webhook(
                check_url(url, field="--webhook"),
                format=options.webhook_format,  # type: ignore[arg-type]
                token_env=token,
            )
        )
    if options.smtp is not None:
        if options.smtp_security not in SMTP_PORTS:
            raise ConfigError(
                f"choose starttls, tls or none, got {options.smtp_security!r}",
                field="--smtp-security",
            )
        host, port = _smtp_host(options.smtp, options.smtp_security)
        if not options.mail_to:
            raise ConfigError("--smtp needs at least one --mail-to", field="--mail-to")
        if options.smtp_password_env and not options.smtp_user:
            raise ConfigError("a password needs --smtp-user", field="--smtp-password-env")
        dests.append(
            Email(
                host=host,
                port=port,
                sender=_addresses([options.mail_from or "fleetscan@localhost"], "--mail-from")[0],
                recipients=_addresses(options.mail_to, "--mail-to"),
                security=options.smtp_security,  # type: ignore[arg-type]
                username=options.smtp_user,
                password_env=_env(options.smtp_password_env, "--smtp-password-env"),
            )
        )
    elif options.mail_to:
        raise ConfigError("--mail-to needs --smtp HOST[:PORT]", field="--smtp")
    if options.report_url is not None:
        check_url(options.report_url.replace("{run_id}", "x"), field="--report-url")
    if not dests:
        return None
    if not options.history:
        raise ConfigError(
            "alerts are deduplicated through the history: drop --no-history", field="--webhook"
        )
    return AlertSettings(
        destinations=tuple(dests), threshold=options.alert_on, report_url=options.report_url
    )
