"""``fleetscan watch`` against real OpenSSH, with a real HTTP receiver and a real
SMTP server (aiosmtpd, STARTTLS + AUTH): the issue's timeline, step by step.

cycle 1 baseline → one summary; cycle 2 unchanged → nothing; a listener on a
forbidden port opened for real → exactly one alert naming host and port, by
webhook and by mail; closed → one resolved notice; receiver down while the
port opens again → the alert arrives with the next cycle; SIGTERM ends the
watch within seconds with the history intact. The metrics file and the
/metrics endpoint are checked at each step.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.alerts.receivers import free_port, http_receiver, smtp_receiver

from .harness import OpenSockets, SshdServer, cli_env

pytestmark = [pytest.mark.sshd, pytest.mark.timeout(300)]

EVERY = 4.0  # seconds between cycle starts: a scan of this machine takes about one


class WatchProcess:
    """The CLI in the background; its stderr lines arrive in a queue."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fleetscan", "watch", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            self.lines.put(line)

    def wait_for(self, needle: str, timeout: float = 90) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if needle in line:
                return line
        raise AssertionError(f"no {needle!r} from watch; its log:\n{''.join(self.log)}")

    def cycle(self, n: int) -> str:
        """Wait until cycle ``n`` ended and the watch sleeps (safe to change things)."""
        line = self.wait_for(f"cycle {n} run ")
        self.wait_for("next run in ")
        return line

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise AssertionError(f"{name}{labels} not found")


def alerts_of(bodies: list[Any]) -> list[dict[str, Any]]:
    return [a for body in bodies for a in body["alerts"]]


def test_watch_timeline_alerts_once_resolves_retries_and_stops_cleanly(
    sshd_server: SshdServer, tmp_path: Path
) -> None:
    port = free_port()  # this run's "forbidden" port: nothing else on the machine uses it
    (tmp_path / "policy.yaml").write_text(
        f"version: 1\nforbidden:\n  - id: test-backdoor\n    ports: [{port}]\n"
        "    severity: critical\n"
    )
    inventory = sshd_server.write_inventory(tmp_path / "hosts.ini", user="root")
    metrics_port = free_port()
    prom = tmp_path / "fleetscan.prom"
    env = cli_env()
    with (
        http_receiver() as hook,
        smtp_receiver(tmp_path, implicit_tls=False, user="alerts", password="M41l-pw!") as mail,
    ):
        env.update(
            FLEETSCAN_SMTP_PASSWORD="M41l-pw!",
            SSL_CERT_FILE=str(mail.cert),  # the relay's private CA, as an operator sets it
            XDG_DATA_HOME=str(tmp_path / "data"),
        )
        args = [
            "-i", str(inventory), "-p", str(tmp_path / "policy.yaml"),
            "--known-hosts", str(sshd_server.known_hosts), "--ssh-config", "/dev/null",
            "-o", str(tmp_path / "reports"), "--format", "json",
            "--every", f"{EVERY}s", "--keep-reports", "3",
            "--webhook", hook.url,
            "--smtp", f"127.0.0.1:{mail.port}", "--smtp-user", "alerts",
            "--smtp-password-env", "FLEETSCAN_SMTP_PASSWORD",
            "--mail-from", "fleetscan@example.invalid", "--mail-to", "sec@example.invalid",
            "--metrics-file", str(prom), "--metrics-port", str(metrics_port),
        ]  # fmt: skip
        watch = WatchProcess(args, tmp_path, env)
        sockets = OpenSockets()
        try:
            # cycle 1: the fleet's first run → one summary, by webhook and by mail
            watch.cycle(1)
            assert [a["kind"] for a in alerts_of(hook.bodies)] == ["summary"]
            assert len(mail.messages) == 1
            assert metric(prom.read_text(), "fleetscan_host_up", host="local", status="ok") == 1
            # cycle 2: nothing changed → nothing sent
            watch.cycle(2)
            assert len(hook.bodies) == 1 and len(mail.messages) == 1
            # a listener on the forbidden port, opened for real → exactly one alert
            sockets.tcp("127.0.0.1", port)
            watch.cycle(3)
            [opened] = alerts_of(hook.bodies[1:])
            assert (opened["kind"], opened["host"], opened["rule"]) == (
                "finding",
                "local",
                "test-backdoor",
            )
            assert opened["listener"]["port"] == port
            assert len(mail.messages) == 2
            assert f"127.0.0.1:{port}" in mail.messages[1].get_payload(decode=True).decode()
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as r:
                live = r.read().decode()
            assert metric(live, "fleetscan_findings_active", severity="critical") == 1
            # closed → one resolved notice
            sockets.close()
            watch.cycle(4)
            [resolved] = alerts_of(hook.bodies[2:])
            assert (resolved["kind"], resolved["rule"]) == ("resolved", "test-backdoor")
            assert metric(prom.read_text(), "fleetscan_findings_active", severity="critical") == 0
            # the receiver is down while the port opens again: nothing arrives …
            hook.status = 503
            sockets = OpenSockets()
            sockets.tcp("127.0.0.1", port)
            watch.cycle(5)
            assert len(hook.bodies) == 3
            assert metric(prom.read_text(), "fleetscan_alert_delivery_failures_total") == 1
            # … and it arrives with the next cycle
            hook.status = 200
            watch.cycle(6)
            [late] = alerts_of(hook.bodies[3:])
            assert (late["kind"], late["listener"]["port"]) == ("finding", port)
            # SIGTERM: the watch ends within seconds, the history intact
            stopped = time.monotonic()
            watch.proc.send_signal(signal.SIGTERM)
            assert watch.proc.wait(timeout=30) == 0
            assert time.monotonic() - stopped < 15
        finally:
            sockets.close()
            watch.stop()
    history = subprocess.run(
        [sys.executable, "-m", "fleetscan", "history", "--format", "json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    runs = json.loads(history.stdout)
    assert len(runs) >= 6
    assert "M41l-pw!" not in "".join(watch.log)
    assert not any("M41l-pw!" in p.read_text(errors="replace") for p in tmp_path.rglob("*.json"))
    assert os.path.islink(tmp_path / "reports" / "latest")
