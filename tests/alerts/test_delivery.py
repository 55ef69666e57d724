"""Delivery to a real local HTTP receiver and a real SMTP server (aiosmtpd):
exact payloads, Slack escaping, STARTTLS and implicit TLS with AUTH, retries,
and no secret in any log line."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from fleetscan.alerts import Email, Webhook, deliver, payload, plan_alerts
from fleetscan.alerts.destinations import check_url, redact_url
from fleetscan.errors import ConfigError
from fleetscan.model import ScanRun
from fleetscan.policy import evaluate
from tests.policy.builders import NOW, listener, make_policy, scan

from .receivers import free_port, http_receiver, smtp_receiver

HOSTILE = "nc<!channel>&\x1b[31m\nx"
POLICY = "version: 1\nforbidden:\n  - id: backdoor\n    ports: [4444]\n    severity: critical\n"


def alert_body(tmp_path: Path) -> dict[str, object]:
    scans = [scan("app-01", listeners=[listener("tcp", "0.0.0.0:4444", (HOSTILE, 66, "root"))])]
    findings = evaluate(make_policy(tmp_path, POLICY), scans, now=NOW)
    run = ScanRun("run-7", NOW, NOW + timedelta(seconds=3), tuple(scans), tuple(findings))
    plan = plan_alerts(run, [])
    return payload(run, plan.alerts, "https://reports.example.invalid/run-7/report.html")


def no_sleep(_: float) -> None:
    return None


def test_webhook_json_payload_is_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETSCAN_TEST_TOKEN", "tok-Zq81")
    body = alert_body(tmp_path)
    with http_receiver() as rec:
        hook = Webhook(rec.url, token_env="FLEETSCAN_TEST_TOKEN")
        assert deliver(hook, body, sleep=no_sleep).ok
    [(headers, got)] = rec.posts
    assert headers["Authorization"] == "Bearer tok-Zq81"
    assert got == {
        "schema": "fleetscan.alerts",
        "schema_version": 1,
        "run": {
            "id": "run-7",
            "started": NOW.isoformat(),
            "finished": (NOW + timedelta(seconds=3)).isoformat(),
            "report_url": "https://reports.example.invalid/run-7/report.html",
        },
        "alerts": [
            {
                "kind": "finding",
                "key": "finding\x1fapp-01\x1fbackdoor\x1ftcp\x1f0.0.0.0\x1f4444",
                "severity": "critical",
                "host": "app-01",
                "rule": "backdoor",
                "listener": {
                    "proto": "tcp",
                    "family": 4,
                    "address": "0.0.0.0",
                    "port": 4444,
                    "state": "LISTEN",
                    "processes": [{"name": HOSTILE, "pid": 66, "user": "root"}],
                },
                "message": got["alerts"][0]["message"],
            }
        ],
    }
    assert "4444" in got["alerts"][0]["message"]


def test_slack_text_escapes_host_text(tmp_path: Path) -> None:
    with http_receiver() as rec:
        assert deliver(Webhook(rec.url, format="slack"), alert_body(tmp_path), sleep=no_sleep).ok
    [text] = [b["text"] for b in rec.bodies]
    assert "<!channel>" not in text and "&lt;!channel&gt;&amp;" in text
    assert "\x1b" not in text
    assert "app-01 tcp 0.0.0.0:4444" in text
    assert text.splitlines()[0] == "fleetscan run run-7: 1 finding"


def test_receiver_down_is_retried_then_reported_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pauses: list[float] = []
    with http_receiver() as rec:
        rec.status = 503
        attempt = deliver(Webhook(rec.url), alert_body(tmp_path), sleep=pauses.append)
        assert not attempt.ok and attempt.error == "HTTP 503" and attempt.tries == 3
        assert pauses == [0.5, 1.0]
        rec.status = 200
        assert deliver(Webhook(rec.url), alert_body(tmp_path), sleep=no_sleep).ok
    closed = Webhook(f"http://127.0.0.1:{free_port()}/x/SECRETPATH", timeout=2)
    refused = deliver(closed, alert_body(tmp_path), tries=1, sleep=no_sleep)
    assert not refused.ok and refused.error == "ConnectError"
    assert "SECRETPATH" not in caplog.text and "T0SECRETPATH" not in caplog.text


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("implicit_tls", [False, True], ids=["starttls", "implicit-tls"])
def test_email_over_tls_with_auth(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    implicit_tls: bool,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("FLEETSCAN_SMTP_PASSWORD", "pw-S3cr3t-mail")
    with smtp_receiver(
        tmp_path, implicit_tls=implicit_tls, user="alerts", password="pw-S3cr3t-mail"
    ) as rec:
        mail = Email(
            host="127.0.0.1",
            port=rec.port,
            sender="fleetscan@example.invalid",
            recipients=("sec@example.invalid", "ops@example.invalid"),
            security="tls" if implicit_tls else "starttls",
            username="alerts",
            password_env="FLEETSCAN_SMTP_PASSWORD",
            ca_file=str(rec.cert),
        )
        assert deliver(mail, alert_body(tmp_path), sleep=no_sleep).ok
        monkeypatch.setenv("FLEETSCAN_SMTP_PASSWORD", "wrong")
        bad = deliver(replace(mail, timeout=2), alert_body(tmp_path), tries=1, sleep=no_sleep)
    # aiosmtpd answers 535 to each mechanism smtplib tries, then hangs up
    assert not bad.ok and bad.error in ("SMTPAuthenticationError", "SMTPServerDisconnected")
    assert ("alerts", "wrong") in rec.logins
    [msg] = rec.messages
    assert msg["Subject"] == "fleetscan run run-7: 1 finding"
    assert msg["To"] == "sec@example.invalid, ops@example.invalid"
    text = msg.get_payload(decode=True).decode()
    assert "FINDING CRITICAL app-01 tcp 0.0.0.0:4444" in text
    assert "\x1b" not in text
    assert "pw-S3cr3t-mail" not in caplog.text


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x/y",
        "http://",
        "not a url",
        "https://user:pw@hooks.example.invalid/x",
        "http://h:99999/",
    ],
)
def test_bad_webhook_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="--webhook"):
        check_url(url, field="--webhook")


def test_redacted_url_hides_path_and_query() -> None:
    assert (
        redact_url("https://hooks.slack.com/services/T0/B0/XyZ?x=1") == "https://hooks.slack.com/…"
    )


def test_the_terminal_says_what_was_not_delivered(tmp_path: Path) -> None:
    import io
    from dataclasses import replace as dc_replace

    from rich.console import Console

    from fleetscan.commands.progress import alert_summary
    from fleetscan.model import AlertDelivery, AlertReport

    run = ScanRun("run-7", NOW, NOW, (), ())
    report = AlertReport(
        2,
        (
            AlertDelivery("webhook https://h/…", "run-7", 2, False, "HTTP 503\x1b[2J", True),
            AlertDelivery("email via m:587", "run-7", 2, True),
        ),
    )
    out = io.StringIO()
    alert_summary(dc_replace(run, alerts=report), Console(file=out, width=200))
    lines = out.getvalue().splitlines()
    assert lines[0] == "alerts: 2 raised; 1 delivered, 1 failed"
    assert "webhook https://h/…: HTTP 503" in lines[1] and "kept for the next run" in lines[1]
    assert "\x1b" not in out.getvalue()


def test_the_html_report_says_what_was_not_delivered(tmp_path: Path) -> None:
    from dataclasses import replace as dc_replace

    from fleetscan.model import AlertDelivery, AlertReport
    from fleetscan.reports.html import render_html

    run = ScanRun("run-7", NOW, NOW, (), ())
    hostile = "<script>x</script>"
    report = AlertReport(
        1, (AlertDelivery("webhook https://h/…", "run-7", 1, False, f"HTTP 503 {hostile}", True),)
    )
    page = render_html(dc_replace(run, alerts=report))
    assert "Alert not delivered:" in page and "webhook https://h/… — HTTP 503" in page
    assert "kept; the next run sends it" in page
    assert hostile not in page and "&lt;script&gt;" in page
    assert "Alert not delivered" not in render_html(run)
