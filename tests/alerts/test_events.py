"""Which alerts a run raises: dedup across runs, resolved notices, first-run summary."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from fleetscan.alerts import AlertKind, OpenAlert, plan_alerts
from fleetscan.model import Finding, HostScan, ScanRun, Severity, Status
from fleetscan.policy import evaluate
from tests.policy.builders import NOW, listener, make_policy, scan

POLICY = """
version: 1
forbidden:
  - id: backdoor
    ports: [4444]
    severity: critical
  - id: irc
    ports: [6667]
    severity: low
"""


def run_of(tmp_path: Path, scans: list[HostScan], n: int = 1) -> ScanRun:
    policy = make_policy(tmp_path, POLICY)
    findings = evaluate(policy, scans, now=NOW)
    return ScanRun(
        id=f"run-{n}",
        started=NOW + timedelta(hours=n),
        finished=NOW + timedelta(hours=n, seconds=5),
        scans=tuple(scans),
        findings=tuple(findings),
    )


def web(*extra: str, pid: int = 700) -> HostScan:
    lst = [listener("tcp", "0.0.0.0:22", ("sshd", pid, "root"))]
    lst += [listener("tcp", f"0.0.0.0:{p}", ("nc", pid + 1, "root")) for p in extra]
    return scan("web-01", listeners=lst)


def test_first_run_is_one_summary_then_nothing_while_unchanged(tmp_path: Path) -> None:
    first = plan_alerts(run_of(tmp_path, [web("4444")]), [], fold=None)
    assert [a.kind for a in first.alerts] == [AlertKind.SUMMARY]
    assert first.alerts[0].counts["finding_critical"] == 1
    assert [i.rule_id for i in first.alerts[0].items] == ["backdoor"]
    again = plan_alerts(run_of(tmp_path, [web("4444")], 2), first.open_after)
    assert again.alerts == ()
    assert {a.key for a in again.open_after} == {a.key for a in first.open_after}


def test_new_finding_alerts_once_and_restart_is_not_new(tmp_path: Path) -> None:
    base = plan_alerts(run_of(tmp_path, [web()]), [], fold=None)
    opened = plan_alerts(run_of(tmp_path, [web("4444")], 2), base.open_after)
    assert [(a.kind, a.host, a.rule_id) for a in opened.alerts] == [
        (AlertKind.FINDING, "web-01", "backdoor")
    ]
    assert opened.alerts[0].listener is not None
    assert opened.alerts[0].listener["port"] == 4444
    # same socket, restarted daemon (other pid): no new alert
    restarted = plan_alerts(run_of(tmp_path, [web("4444", pid=900)], 3), opened.open_after)
    assert restarted.alerts == ()
    closed = plan_alerts(run_of(tmp_path, [web()], 4), restarted.open_after)
    assert [(a.kind, a.rule_id) for a in closed.alerts] == [(AlertKind.RESOLVED, "backdoor")]
    assert closed.open_after == ()


def test_below_threshold_is_not_alerted(tmp_path: Path) -> None:
    plan = plan_alerts(run_of(tmp_path, [web("6667")]), [], threshold=Severity.HIGH)
    assert plan.alerts == ()
    low = plan_alerts(run_of(tmp_path, [web("6667")]), [], threshold=Severity.LOW)
    assert [a.rule_id for a in low.alerts] == ["irc"]


def test_unscanned_host_keeps_its_findings_open_not_resolved(tmp_path: Path) -> None:
    opened = plan_alerts(run_of(tmp_path, [web("4444")]), [], fold=())
    down = scan("web-01", status=Status.TIMEOUT, message="no SSH handshake")
    plan = plan_alerts(run_of(tmp_path, [down], 2), opened.open_after)
    assert [a.kind for a in plan.alerts] == [AlertKind.HOST]
    assert "timeout" in plan.alerts[0].message
    assert any(o.rule_id == "backdoor" for o in plan.open_after)


@pytest.mark.parametrize("status", [Status.HOSTKEY_MISMATCH, Status.AUTH_FAILED])
def test_host_becoming_unscanned_alerts_once_then_resolves(tmp_path: Path, status: Status) -> None:
    base = plan_alerts(run_of(tmp_path, [web()]), [], fold=None)
    bad = scan("web-01", status=status, message="m")
    one = plan_alerts(run_of(tmp_path, [bad], 2), base.open_after)
    assert [(a.kind, a.host) for a in one.alerts] == [(AlertKind.HOST, "web-01")]
    two = plan_alerts(run_of(tmp_path, [bad], 3), one.open_after)
    assert two.alerts == ()
    back = plan_alerts(run_of(tmp_path, [web()], 4), two.open_after)
    assert [a.kind for a in back.alerts] == [AlertKind.RESOLVED]


def test_drift_findings_alert_whatever_their_severity(tmp_path: Path) -> None:
    run = run_of(tmp_path, [web()])
    drift = Finding(
        rule_id="new-service",
        severity=Severity.LOW,
        host="web-01",
        message="new listener tcp 0.0.0.0:8080",
        listener=listener("tcp", "0.0.0.0:8080", "python3"),
        kind="drift",
    )
    run = ScanRun(run.id, run.started, run.finished, run.scans, (*run.findings, drift))
    plan = plan_alerts(run, [OpenAlert("x", "gone-host", Severity.HIGH, "r", "m")])
    assert [a.rule_id for a in plan.alerts] == ["new-service"]
    # the open alert of a host that left the run is kept, not resolved
    assert any(o.key == "x" for o in plan.open_after)


def test_hosts_new_to_the_fleet_fold_into_one_summary(tmp_path: Path) -> None:
    base = plan_alerts(run_of(tmp_path, [web()]), [], fold=None)
    newcomers = [
        scan(f"new-{i}", listeners=[listener("tcp", "0.0.0.0:4444", "nc")]) for i in range(5)
    ]
    plan = plan_alerts(
        run_of(tmp_path, [web("4444"), *newcomers], 2),
        base.open_after,
        fold={s.host for s in newcomers},
    )
    kinds = [(a.kind, a.host) for a in plan.alerts]
    assert kinds == [(AlertKind.SUMMARY, None), (AlertKind.FINDING, "web-01")]
    assert plan.alerts[0].counts["finding_critical"] == 5
    assert "first complete scan of 5 host(s)" in plan.alerts[0].message
