"""The history through the real command line: bad ``--db`` values stop the run
before any host is contacted (exit 2, one line), and ``history``, ``diff``,
``report``, ``baseline`` and ``history prune`` read a recorded history."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetscan.model import Status
from fleetscan.reports import write_reports
from fleetscan.store import History, resolve
from tests.cli import cli_env, run_cli
from tests.cli.test_bad_input import GOOD_POLICY, connections_to, inventory_for
from tests.store.factory import fleet, lst, run, scan

SSH = lst("tcp", "0.0.0.0", 22, "sshd")
PG = lst("tcp", "127.0.0.1", 5432, "postgres", user="postgres")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s


BAD_DB = [
    pytest.param(("--db", "not a url"), {}, "--db: not a database URL", id="garbage"),
    pytest.param(("--db", "mysql://u@localhost/x"), {}, "--db: unsupported database", id="mysql"),
    pytest.param(("--db", "sqlite://"), {}, "--db: 'sqlite://' names no file", id="memory"),
    pytest.param(
        ("--db", "sqlite:////nonexistent-fleetscan-dir/h.sqlite"),
        {},
        "/nonexistent-fleetscan-dir/h.sqlite: --db: folder",
        id="missing-folder",
    ),
    pytest.param((), {"FLEETSCAN_DB": "bogus"}, "FLEETSCAN_DB: not a database URL", id="env"),
    pytest.param(
        ("--db", "postgresql://u:s3cret@/x?host=/nonexistent-fleetscan-socket"),
        {},
        "--db: cannot open the history database postgresql+psycopg://u:***@/x",
        id="postgres-unreachable",
    ),
    pytest.param(("--compare-to", "yesterday"), {}, "--compare-to: choose", id="compare-to"),
]


@pytest.mark.parametrize(("args", "env", "error"), BAD_DB)
def test_bad_db_is_exit_2_before_any_connection(
    tmp_path: Path, listener: socket.socket, args: tuple[str, ...], env: dict[str, str], error: str
) -> None:
    (tmp_path / "inv.ini").write_text(inventory_for(listener))
    (tmp_path / "pol.yaml").write_text(GOOD_POLICY)
    result = run_cli(
        ("scan", "-i", "inv.ini", "-p", "pol.yaml", "-o", "out", "--connect-timeout", "2", *args),
        cwd=tmp_path,
        env=cli_env(tmp_path, env),
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("fleetscan: error: " + error), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "s3cret" not in result.stderr
    assert connections_to(listener) == 0
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_bad_drift_rule_is_exit_2_naming_file_line_and_field(
    tmp_path: Path, listener: socket.socket
) -> None:
    (tmp_path / "inv.ini").write_text(inventory_for(listener))
    (tmp_path / "pol.yaml").write_text(
        "version: 1\ndrift:\n  - id: new-svc\n    when: [new, appeared]\n    severity: high\n"
    )
    result = run_cli(("scan", "-i", "inv.ini", "-p", "pol.yaml", "-o", "out"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("fleetscan: error: pol.yaml:4: drift[0].when[1]: "), (
        result.stderr
    )
    assert connections_to(listener) == 0


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[str, Path]:
    """A history of three runs: R1 baseline, R2 with b unreachable, R3 with changes on a."""
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    history = History.open(resolve(url))
    originals = tmp_path / "originals"
    specs = [
        ("20261101T020000Z-r1", fleet({"a": [SSH, PG], "b": [SSH]})),
        ("20261102T020000Z-r2", [scan("a", [SSH, PG]), scan("b", status=Status.UNREACHABLE)]),
        (
            "20261103T020000Z-r3",
            fleet(
                {
                    "a": [SSH, replace(PG, address="0.0.0.0"), lst("tcp", "0.0.0.0", 4444, "nc")],
                    "b": [SSH],
                }
            ),
        ),
    ]
    for day, (run_id, scans) in enumerate(specs):
        changes, compared = history.compare(scans)
        saved = history.record(
            replace(run(run_id, scans, day=day), changes=changes, compared_to=compared)
        )
        write_reports(saved, originals / run_id, ["html", "csv", "json", "junit"])
    history.close()
    return url, originals


def test_history_lists_runs_newest_first(tmp_path: Path, recorded: tuple[str, Path]) -> None:
    url, _ = recorded
    result = run_cli(("history", "--db", url, "--format", "json"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["id"] for r in rows] == [
        "20261103T020000Z-r3",
        "20261102T020000Z-r2",
        "20261101T020000Z-r1",
    ]
    assert [r["changes"] for r in rows] == [2, 0, 0]
    assert rows[1]["by_status"] == {"ok": 1, "unreachable": 1}
    assert set(rows[0]) >= {
        "id",
        "started",
        "hosts",
        "by_status",
        "active_findings_by_severity",
        "changes",
    }
    limited = run_cli(("history", "--db", url, "--limit", "1", "--format", "json"), cwd=tmp_path)
    assert [r["id"] for r in json.loads(limited.stdout)] == ["20261103T020000Z-r3"]
    table = run_cli(("history", "--db", url, "--host", "a"), cwd=tmp_path)
    assert table.returncode == 0 and "20261101T020000Z-r1" in table.stdout


def test_diff_defaults_to_the_last_two_runs(tmp_path: Path, recorded: tuple[str, Path]) -> None:
    url, _ = recorded
    result = run_cli(("diff", "--db", url, "--format", "json"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["from"], doc["to"]) == ("20261102T020000Z-r2", "20261103T020000Z-r3")
    # b was unreachable in r2: unknown there, so no change for b at all
    assert [(c["host"], c["kind"], c["port"]) for c in doc["changes"]] == [
        ("a", "new", 4444),
        ("a", "widened", 5432),
    ]
    assert doc["changes"][1]["before"]["address"] == "127.0.0.1"
    assert set(doc["changes"][0]) == {
        "host",
        "kind",
        "proto",
        "address",
        "port",
        "before",
        "after",
        "since_run",
    }
    back = run_cli(
        ("diff", "--db", url, "20261103", "20261101", "--host", "a", "--format", "json"),
        cwd=tmp_path,
    )
    assert [c["kind"] for c in json.loads(back.stdout)["changes"]] == ["gone", "narrowed"]
    table = run_cli(("diff", "--db", url, "20261101"), cwd=tmp_path)
    assert table.returncode == 0 and "widened" in table.stdout
    missing = run_cli(("diff", "--db", url, "nope"), cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.startswith("fleetscan: error: no run 'nope'")


def test_report_rerenders_a_stored_run_identically(
    tmp_path: Path, recorded: tuple[str, Path]
) -> None:
    url, originals = recorded
    for run_id in ("20261101T020000Z-r1", "20261103T020000Z-r3"):
        out = tmp_path / "again" / run_id
        result = run_cli(("report", "--db", url, run_id, "-o", str(out)), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        for name in (
            "report.json",
            "report.html",
            "changes.csv",
            "findings.csv",
            "hosts.csv",
            "listeners.csv",
            "junit.xml",
        ):
            assert (out / name).read_bytes() == (originals / run_id / name).read_bytes(), name


def test_baseline_set_show_and_prune(tmp_path: Path, recorded: tuple[str, Path]) -> None:
    url, _ = recorded
    pinned = run_cli(("baseline", "set", "--db", url, "20261101", "--limit", "a"), cwd=tmp_path)
    assert pinned.returncode == 0, pinned.stderr
    assert "pinned for 1 hosts: a" in pinned.stdout
    shown = run_cli(("baseline", "show", "--db", url, "--format", "json"), cwd=tmp_path)
    assert [(b["host"], b["run"]) for b in json.loads(shown.stdout)] == [
        ("a", "20261101T020000Z-r1")
    ]
    pruned = run_cli(("history", "prune", "--db", url, "--older-than", "1d"), cwd=tmp_path)
    assert pruned.returncode == 0 and "pruned 2 runs" in pruned.stdout
    left = json.loads(run_cli(("history", "--db", url, "--format", "json"), cwd=tmp_path).stdout)
    assert [r["id"] for r in left] == ["20261101T020000Z-r1"]  # the pinned baseline stays
    bad = run_cli(("history", "prune", "--db", url, "--older-than", "soon"), cwd=tmp_path)
    assert bad.returncode == 2 and "--older-than" in bad.stderr


def test_diff_since_an_age(tmp_path: Path, recorded: tuple[str, Path]) -> None:
    url, _ = recorded
    r2_started = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # factory.T0 + 1 day
    hours = int((datetime.now(UTC) - r2_started).total_seconds() // 3600)
    result = run_cli(
        ("diff", "--db", url, "--since", f"{hours}h", "--format", "json"), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["from"], doc["to"]) == ("20261102T020000Z-r2", "20261103T020000Z-r3")
    bad = run_cli(("diff", "--db", url, "--since", "yesterday"), cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("fleetscan: error: --since:")


def test_demo_records_in_the_default_sqlite_file(tmp_path: Path) -> None:
    env = cli_env(tmp_path, {"XDG_DATA_HOME": str(tmp_path / "data")})
    env.pop("FLEETSCAN_DB", None)
    first = run_cli(("demo", "-o", "out1"), cwd=tmp_path, env=env, timeout=120)
    assert first.returncode == 1, first.stderr  # the demo's critical finding
    assert (tmp_path / "data" / "fleetscan" / "history.sqlite").is_file()
    assert "first complete scan (baseline)" in first.stdout
    second = run_cli(("demo", "-o", "out2"), cwd=tmp_path, env=env, timeout=120)
    rows = json.loads(run_cli(("history", "--format", "json"), cwd=tmp_path, env=env).stdout)
    assert len(rows) == 2 and rows[0]["changes"] == 0
    # the demo's daemons are new processes each time: restarts are not changes
    assert f"no changes since {rows[1]['id']}" in second.stdout
