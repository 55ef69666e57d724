"""The watch loop over simulated hosts: each cycle a full run (history, alerts,
metrics, rotating reports); dedup, resolved notice and outbox retry across cycles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleetscan.options import RunOptions
from fleetscan.testing.fleet import threaded_fleet
from fleetscan.testing.simhost import SimHost, render_ss
from fleetscan.watch import LATEST, RUN_DIR, WatchSettings, watch

from .receivers import http_receiver

BASE = [
    ("tcp", "0.0.0.0", 22, [("sshd", 733)]),
    ("tcp", "127.0.0.1", 5432, [("postgres", 812)]),
]
BACKDOOR = ("tcp", "0.0.0.0", 4444, [("nc", 6666)])
PS = "  733 root\n  812 postgres\n 6666 root\n"
POLICY = "version: 1\nforbidden:\n  - id: backdoor\n    ports: [4444]\n    severity: critical\n"


def metric(path: Path, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise AssertionError(f"{name}{labels} not in {path}")


def test_watch_cycles_alert_once_resolve_and_retry_after_receiver_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a service's working folder (/ under ProtectSystem=strict) is no report folder:
    # the watch writes under -o only, never into ./fleetscan-reports
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "fleetscan-reports").write_text("not a folder")
    monkeypatch.chdir(cwd)
    web = SimHost("web-01", outputs={"ss": render_ss(BASE)}, ps=PS)
    db = SimHost("db-01", outputs={"ss": render_ss(BASE)}, ps=PS)
    with threaded_fleet(tmp_path / "fleet", [web, db]) as fleet, http_receiver() as rec:
        inv = fleet.write_inventory(tmp_path / "inventory.yaml")
        (tmp_path / "policy.yaml").write_text(POLICY)
        options = RunOptions(
            inventory=(inv,),
            policies=(tmp_path / "policy.yaml",),
            known_hosts=fleet.known_hosts,
            ssh_config=(),
            use_agent=False,
            output=tmp_path / "reports",
            db=f"sqlite:///{tmp_path / 'history.sqlite'}",
            webhooks=(rec.url,),
            metrics_file=tmp_path / "fleetscan.prom",
            report_url="https://reports.example.invalid/{run_id}/report.html",
        )
        one = WatchSettings(every=0.01, max_cycles=1, keep_reports=3)

        def cycle() -> list[Any]:
            before = len(rec.bodies)
            assert watch(options, one) == 0
            return [a for body in rec.bodies[before:] for a in body["alerts"]]

        # cycle 1: the fleet's first run → one summary, not a storm
        first = cycle()
        assert [a["kind"] for a in first] == ["summary"]
        assert rec.bodies[0]["run"]["report_url"].startswith("https://reports.example.invalid/")
        # cycle 2: nothing changed → nothing sent
        assert cycle() == []
        # a backdoor opens on web-01 → exactly one alert naming host and port
        web.outputs["ss"] = render_ss([*BASE, BACKDOOR])
        [opened] = cycle()
        assert (opened["kind"], opened["host"], opened["listener"]["port"]) == (
            "finding",
            "web-01",
            4444,
        )
        prom = tmp_path / "fleetscan.prom"
        assert metric(prom, "fleetscan_findings_active", severity="critical") == 1
        # still open: no second alert
        assert cycle() == []
        # receiver down while the backdoor closes: the resolved notice waits in the outbox
        rec.status = 503
        web.outputs["ss"] = render_ss(BASE)
        assert cycle() == []
        assert metric(prom, "fleetscan_findings_active", severity="critical") == 0
        assert metric(prom, "fleetscan_alert_delivery_failures_total") == 1
        latest = tmp_path / "reports" / LATEST
        assert '"queued": true' in (latest / "report.json").read_text()
        # receiver back: the notice arrives with the next cycle, and only once
        rec.status = 200
        [resolved] = cycle()
        assert (resolved["kind"], resolved["host"], resolved["rule"]) == (
            "resolved",
            "web-01",
            "backdoor",
        )
        assert cycle() == []
    runs = sorted(p.name for p in (tmp_path / "reports").iterdir() if RUN_DIR.match(p.name))
    assert len(runs) == 3  # rotated: the newest three kept
    assert latest.resolve().name == runs[-1]
