"""Prometheus metrics: the textfile and the /metrics endpoint, read back with
prometheus_client's own parser and checked against the run."""

from __future__ import annotations

import urllib.request
from datetime import timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from fleetscan.metrics import MetricsServer, RunMetrics
from fleetscan.model import ScanRun, Status
from fleetscan.policy import evaluate
from tests.policy.builders import NOW, listener, make_policy, scan

POLICY = "version: 1\nforbidden:\n  - id: backdoor\n    ports: [4444]\n    severity: critical\n"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def a_run(tmp_path: Path, interrupted: bool = False) -> ScanRun:
    scans = [
        scan(
            "web-01",
            listeners=[
                listener("tcp", "0.0.0.0:22", "sshd"),
                listener("tcp", "0.0.0.0:4444", "nc"),
            ],
        ),
        scan('evil"\n} 1\nfleetscan_hosts{status="ok"', status=Status.HOSTKEY_MISMATCH),
    ]
    findings = evaluate(make_policy(tmp_path, POLICY), scans, now=NOW)
    return ScanRun(
        "r1",
        NOW,
        NOW + timedelta(seconds=42),
        tuple(scans),
        tuple(findings),
        interrupted=interrupted,
    )


def test_textfile_values_match_the_run(tmp_path: Path) -> None:
    metrics = RunMetrics()
    metrics.observe(a_run(tmp_path), change_kinds=["new", "new", "gone"], delivery_failures=2)
    out = tmp_path / "fleetscan.prom"
    metrics.write_textfile(out)
    got = samples(out.read_text())
    assert got[("fleetscan_host_up", (("host", "web-01"), ("status", "ok")))] == 1
    hostile = 'evil"\\n} 1\\nfleetscan_hosts{status="ok"'
    assert got[("fleetscan_host_up", (("host", hostile), ("status", "hostkey_mismatch")))] == 0
    assert got[("fleetscan_host_listeners", (("host", "web-01"),))] == 2
    assert got[("fleetscan_hosts", (("status", "ok"),))] == 1
    assert got[("fleetscan_hosts", (("status", "hostkey_mismatch"),))] == 1
    assert got[("fleetscan_findings_active", (("severity", "critical"),))] == 1
    assert got[("fleetscan_drift_changes", (("kind", "new"),))] == 2
    assert got[("fleetscan_drift_changes", (("kind", "gone"),))] == 1
    assert got[("fleetscan_run_duration_seconds", ())] == 42
    assert (
        got[("fleetscan_last_complete_run_timestamp_seconds", ())]
        == (NOW + timedelta(seconds=42)).timestamp()
    )
    assert got[("fleetscan_alert_delivery_failures_total", ())] == 2
    # the hostile name forged no series of its own
    assert sum(1 for name, _ in got if name == "fleetscan_hosts") == len(Status)


def test_endpoint_serves_the_latest_run_on_loopback(tmp_path: Path) -> None:
    metrics = RunMetrics()
    server = MetricsServer(metrics, port=0).start()
    try:
        metrics.observe(a_run(tmp_path))
        metrics.observe(a_run(tmp_path, interrupted=True))
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as r:
            got = samples(r.read().decode())
    finally:
        server.close()
    assert got[("fleetscan_host_listeners", (("host", "web-01"),))] == 2
    # an interrupted run does not move the "last complete run" timestamp
    assert (
        got[("fleetscan_last_complete_run_timestamp_seconds", ())]
        == (NOW + timedelta(seconds=42)).timestamp()
    )
