"""The CI contract (exit code), host verdicts and the public write_reports API."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fleetscan.model import Finding, HostScan, ScanRun, Severity, Status, Target, WaiverRef
from fleetscan.reports import FORMATS, exit_code, write_reports
from fleetscan.reports.summary import counts, verdicts

from .conftest import FINISHED, STARTED, WEB_LISTENERS

BACKDOOR = Finding("forbidden-ports", Severity.CRITICAL, "a", "4444", WEB_LISTENERS[5])
WAIVED = dataclasses.replace(BACKDOOR, waiver=WaiverRef("W-1", "accepted", "2099-01-01"))
MEDIUM = dataclasses.replace(BACKDOOR, severity=Severity.MEDIUM)
EXPIRED = Finding("waiver-expired", Severity.HIGH, "a", "W-9 expired", kind="waiver")
NOT_SCANNED = Finding("scan-incomplete", Severity.CRITICAL, "b", "timeout", kind="host")


def run_of(
    statuses: dict[str, Status],
    findings: tuple[Finding, ...] = (),
    interrupted: bool = False,
    fail_on: Severity = Severity.HIGH,
) -> ScanRun:
    scans = tuple(HostScan(Target(name, "10.0.0.1"), st) for name, st in statuses.items())
    return ScanRun(
        "r", STARTED, FINISHED, scans, findings, interrupted=interrupted, fail_on=fail_on
    )


ALL_OK = {"a": Status.OK, "b": Status.OK}
B_DOWN = {"a": Status.OK, "b": Status.TIMEOUT}


@pytest.mark.parametrize(
    ("statuses", "findings", "interrupted", "fail_on", "code"),
    [
        pytest.param(ALL_OK, (), False, Severity.HIGH, 0, id="clean-fleet-passes"),
        pytest.param(ALL_OK, (BACKDOOR,), False, Severity.HIGH, 1, id="backdoor-fails"),
        pytest.param(
            B_DOWN,
            (BACKDOOR, NOT_SCANNED),
            False,
            Severity.HIGH,
            1,
            id="backdoor-wins-over-a-down-host",
        ),
        pytest.param(
            B_DOWN,
            (NOT_SCANNED,),
            False,
            Severity.HIGH,
            3,
            id="down-host-is-3-not-1-even-with-critical-host-finding",
        ),
        pytest.param(
            {"a": Status.PARTIAL}, (), False, Severity.HIGH, 3, id="partial-scan-is-incomplete"
        ),
        pytest.param(ALL_OK, (WAIVED,), False, Severity.HIGH, 0, id="waived-finding-passes"),
        pytest.param(ALL_OK, (MEDIUM,), False, Severity.HIGH, 0, id="below-fail-on-passes"),
        pytest.param(ALL_OK, (MEDIUM,), False, Severity.MEDIUM, 1, id="at-fail-on-fails"),
        pytest.param(ALL_OK, (EXPIRED,), False, Severity.HIGH, 1, id="expired-waiver-counts"),
        pytest.param(ALL_OK, (BACKDOOR,), True, Severity.HIGH, 130, id="interrupted-is-130"),
    ],
)
def test_exit_code_contract(
    statuses: dict[str, Status],
    findings: tuple[Finding, ...],
    interrupted: bool,
    fail_on: Severity,
    code: int,
) -> None:
    assert exit_code(run_of(statuses, findings, interrupted, fail_on)) == code


@pytest.mark.parametrize("status", [s for s in Status if s is not Status.OK])
def test_a_host_not_fully_scanned_is_never_compliant(status: Status) -> None:
    assert verdicts(run_of({"a": status}))["a"] == "not-scanned"


def test_waived_finding_leaves_host_compliant() -> None:
    assert verdicts(run_of({"a": Status.OK}, (WAIVED,)))["a"] == "compliant"


def test_realistic_run_verdicts(realistic_run: ScanRun) -> None:
    v = verdicts(realistic_run)
    assert v["web-01"] == "non-compliant"  # port 4444
    assert v["db-01"] == "non-compliant"  # postgres on 0.0.0.0
    assert v["bastion-01"] == "compliant"
    assert v["app-01"] == "not-scanned"  # partial, medium finding only
    c = counts(realistic_run)
    assert sum(c.by_verdict.values()) == c.hosts == len(realistic_run.scans)
    assert c.by_verdict == {"compliant": 1, "non-compliant": 2, "not-scanned": 11}


def test_write_reports_writes_every_format(tmp_path: Path, realistic_run: ScanRun) -> None:
    outdir = tmp_path / "nested" / "out"
    written = write_reports(realistic_run, outdir, FORMATS)
    assert list(written) == list(FORMATS)
    names = sorted(p.name for paths in written.values() for p in paths)
    assert names == [
        "changes.csv",
        "findings.csv",
        "hosts.csv",
        "junit.xml",
        "listeners.csv",
        "report.html",
        "report.json",
    ]
    assert all(p.parent == outdir and p.stat().st_size > 0 for ps in written.values() for p in ps)


def test_unknown_format_names_the_valid_ones(tmp_path: Path, realistic_run: ScanRun) -> None:
    with pytest.raises(ValueError, match=r"'pdf'.*valid formats: html, csv, json, junit"):
        write_reports(realistic_run, tmp_path / "out", ["json", "pdf"])
    assert not (tmp_path / "out").exists()


def test_per_run_verdicts_follow_the_run_object_never_a_stale_one() -> None:
    # runs with the same id, hosts and ids of their parts: each is judged on its own
    clean = run_of(ALL_OK)
    dirty = run_of(ALL_OK, (BACKDOOR,))
    for _ in range(2):
        assert verdicts(clean) == {"a": "compliant", "b": "compliant"}
        assert verdicts(dirty) == {"a": "non-compliant", "b": "compliant"}
        assert counts(dirty).gating == 1 and counts(clean).gating == 0
    stricter = dataclasses.replace(dirty, fail_on=Severity.CRITICAL, findings=(MEDIUM,))
    assert verdicts(stricter)["a"] == "compliant"
    # shared read-only: a report cannot change what the next one sees
    with pytest.raises(TypeError):
        verdicts(dirty)["a"] = "compliant"  # type: ignore[index]
