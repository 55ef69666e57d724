"""Durability and concurrency of the history, on SQLite and PostgreSQL: two
processes writing at once both land; a writer killed with SIGKILL in the middle
of a run leaves a database that opens and holds every run it had committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from fleetscan.store import Store

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(240)


def _writer(url: URL, runs: int, hosts: int, tag: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.store.writer",
            url.render_as_string(hide_password=False),
            str(runs),
            str(hosts),
            tag,
        ],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_writing_at_once_both_land(db_url: URL) -> None:
    Store.open(db_url).close()  # schema in place; the writers race on runs only
    a, b = _writer(db_url, 12, 40, "A"), _writer(db_url, 12, 40, "B")
    for w in (a, b):
        assert w.stdin is not None
        w.stdin.write("GO\n")
        w.stdin.flush()
    outs = [w.communicate(timeout=200) for w in (a, b)]
    for w, (out, err) in zip((a, b), outs, strict=True):
        assert w.returncode == 0, err
        assert out.count("saved ") == 12
    store = Store.open(db_url)
    try:
        ids = {r.id for r in store.list_runs(limit=100)}
        assert ids == {f"{t}-{i:04d}" for t in "AB" for i in range(12)}
        for run_id in ("A-0011", "B-0011"):
            assert len(store.load(run_id).scans) == 40
    finally:
        store.close()


def test_kill_9_while_writing_leaves_every_committed_run(db_url: URL) -> None:
    w = _writer(db_url, 1000, 300, "K")
    assert w.stdin is not None and w.stdout is not None
    w.stdin.write("GO\n")
    w.stdin.flush()
    saved: list[str] = []
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        line = w.stdout.readline()
        assert line, w.stderr.read() if w.stderr else "writer ended"
        if line.startswith("saved "):
            saved.append(line.split()[1])
        elif line.startswith("writing ") and len(saved) >= 3:
            time.sleep(0.05)  # inside the transaction of the next run
            os.kill(w.pid, signal.SIGKILL)
            break
    w.wait(10)
    assert w.returncode == -signal.SIGKILL and len(saved) >= 3
    store = Store.open(db_url)
    try:
        if db_url.get_backend_name() == "sqlite":
            with store.engine.connect() as conn:
                assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        recorded = [r.id for r in store.list_runs(limit=1000)]
        # every committed run is there, whole; the one being written is all or nothing
        assert set(saved) <= set(recorded) and len(recorded) - len(saved) in (0, 1)
        for run_id in recorded:
            assert len(store.load(run_id).scans) == 300
    finally:
        store.close()
