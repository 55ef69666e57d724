"""The history store on SQLite and on a real PostgreSQL (every test runs on both):
runs recorded whole, read back identical, compared with the right scan, cheap
for unchanged hosts, baselines, retention."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import URL

from fleetscan.model import LearnedKey, Status, WaiverRef
from fleetscan.reports.json import run_to_dict
from fleetscan.store import History, Store, StoreError
from fleetscan.store.schema import blobs, host_scans

from .factory import T0, finding, fleet, lst, run, scan

SSH = lst("tcp", "0.0.0.0", 22, "sshd", pid=812)
PG_LOCAL = lst("tcp", "127.0.0.1", 5432, "postgres", pid=900, user="postgres")


@pytest.fixture
def store(db_url: URL) -> Store:
    s = Store.open(db_url)
    yield s  # type: ignore[misc]
    s.close()


def record(history: History, run_id: str, scans: list, day: int = 0, **kw: object):  # type: ignore[no-untyped-def]
    changes, compared = history.compare(scans)
    r = replace(run(run_id, scans, day=day, **kw), changes=changes, compared_to=compared)  # type: ignore[arg-type]
    return history.record(r)


def test_a_stored_run_reads_back_identical(store: Store) -> None:
    evil = lst("tcp", "0.0.0.0", 6667, "nc\x1b]0;x\x07\udcff\x00", user="nobody")
    waived = replace(finding("web", SSH), waiver=WaiverRef("W1", "jump host", "2099-01-01", "ops"))
    scans = [scan("web", [SSH, PG_LOCAL, evil]), scan("down", status=Status.UNREACHABLE)]
    original = replace(
        run("R1", scans, findings=[finding("web", evil), waived]),
        inventory_known_hosts_trusted=True,
        accept_new_file="/home/ops/.ssh/known_hosts",
        keys_learned=(LearnedKey("web", "[127.0.0.1]:2222", "ssh-ed25519", "SHA256:abc"),),
    )
    h = History(store)
    saved = h.record(original)
    loaded = store.load("R1")
    assert run_to_dict(loaded) == run_to_dict(saved)
    assert loaded.scans == saved.scans and set(loaded.findings) == set(saved.findings)
    assert [t.run for t in loaded.trend] == ["R1"]


def test_changes_against_each_hosts_previous_complete_scan(store: Store) -> None:
    h = History(store)
    first = record(h, "R1", fleet({"a": [SSH, PG_LOCAL], "b": [SSH]}))
    assert first.changes == () and first.compared_to is not None
    assert first.compared_to.baseline_hosts == ("a", "b") and first.compared_to.run is None
    # R2: a restarted (new pids), b unreachable
    restarted = [replace(SSH, processes=(replace(SSH.processes[0], pid=9999),)), PG_LOCAL]
    second = record(h, "R2", [scan("a", restarted), scan("b", status=Status.UNREACHABLE)], day=1)
    assert second.changes == ()
    assert second.compared_to is not None and second.compared_to.unknown_hosts == ("b",)
    # R3: on a, 5432 rebound to the wildcard and a new listener; b back, unchanged
    widened = lst("tcp", "0.0.0.0", 5432, "postgres", pid=901, user="postgres")
    nc = lst("tcp", "0.0.0.0", 4444, "nc")
    third = record(h, "R3", fleet({"a": [SSH, widened, nc], "b": [SSH]}), day=2)
    got = [(c.host, c.kind, c.port, c.since_run) for c in third.changes]
    # b is compared with R1, its last complete scan (R2 did not reach it)
    assert got == [("a", "new", 4444, "R2"), ("a", "widened", 5432, "R2")]
    assert third.compared_to is not None and third.compared_to.runs == ("R1", "R2")
    assert [r.id for r in store.list_runs()] == ["R3", "R2", "R1"]
    assert [r.changes for r in store.list_runs()] == [2, 0, 0]
    assert [r.id for r in store.list_runs(limit=1)] == ["R3"]
    assert store.load("R3").changes == third.changes
    assert store.diff("R1", "R3") == store.diff("R1", "R3", host="a")  # b unchanged
    assert store.diff("R1", "R3", host="b") == ()
    assert [c.kind for c in store.diff("R3", "R1")] == ["gone", "narrowed"]


def test_baseline_mode_compares_with_the_pinned_run(store: Store) -> None:
    h = History(store)
    record(h, "R1", fleet({"a": [SSH], "b": [SSH]}))
    record(h, "R2", fleet({"a": [SSH, PG_LOCAL], "b": [SSH, PG_LOCAL]}), day=1)
    base = History(store, mode="baseline")
    # no pin: the first complete scan is the baseline
    changes, _ = base.compare(fleet({"a": [SSH, PG_LOCAL], "b": [SSH, PG_LOCAL]}))
    assert [(c.host, c.kind, c.since_run) for c in changes] == [
        ("a", "new", "R1"),
        ("b", "new", "R1"),
    ]
    assert store.set_baseline("R2", "a") == ["a"]
    changes, compared = base.compare(fleet({"a": [SSH, PG_LOCAL], "b": [SSH, PG_LOCAL]}))
    assert [(c.host, c.since_run) for c in changes] == [("b", "R1")]
    assert compared.mode == "baseline"
    assert [(x[0], x[1]) for x in store.list_baselines()] == [("a", "R2")]


def test_unchanged_host_costs_a_row_of_digests_not_a_copy(store: Store) -> None:
    h = History(store)
    many = [lst("tcp", "0.0.0.0", 1000 + i, f"svc{i}") for i in range(50)]
    record(h, "R1", fleet({"big": many}))
    with store.engine.connect() as conn:
        blobs_before = conn.scalar(select(func.count()).select_from(blobs))
    record(h, "R2", fleet({"big": many}), day=1)
    with store.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(blobs)) == blobs_before
        row = conn.execute(select(host_scans).order_by(host_scans.c.run_pk.desc())).first()
    assert row is not None
    stored = sum(len(str(v)) for v in row)
    assert stored < 300, row


def test_interrupted_run_is_stored_whole_and_marked(store: Store) -> None:
    h = History(store)
    scans = [scan("a", [SSH]), scan("b", status=Status.INTERRUPTED)]
    record(h, "R1", scans, interrupted=True)
    (row,) = store.list_runs()
    assert row.interrupted and row.by_status == {"ok": 1, "interrupted": 1}
    assert [s.status for s in store.load("R1").scans] == [Status.OK, Status.INTERRUPTED]


def test_prune_keeps_pinned_baselines(store: Store) -> None:
    h = History(store)
    for day in range(4):
        record(h, f"R{day}", fleet({"a": [SSH, lst("tcp", "0.0.0.0", 8000 + day)]}), day=day)
    store.set_baseline("R1")
    n = store.prune(T0 + timedelta(days=3))
    assert n == 2  # R0 and R2; R1 is pinned, R3 is newer
    assert [r.id for r in store.list_runs()] == ["R3", "R1"]
    assert store.load("R1").scans[0].listeners[1].port == 8001  # its blobs are kept


def test_run_references_resolve(store: Store) -> None:
    h = History(store)
    record(h, "20261101T020000Z-aaaa", fleet({"a": [SSH]}))
    record(h, "20261102T020000Z-bbbb", fleet({"a": [SSH]}), day=1)
    assert store.resolve("latest") == "20261102T020000Z-bbbb"
    assert store.resolve("20261101") == "20261101T020000Z-aaaa"
    with pytest.raises(StoreError, match="several runs"):
        store.resolve("2026110")
    with pytest.raises(StoreError, match="no run"):
        store.resolve("1999")
    with pytest.raises(StoreError, match="no run"):
        store.resolve("%")  # LIKE wildcards are literal
