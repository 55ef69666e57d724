"""Report-folder rotation of ``fleetscan watch``: the newest run is kept and
``latest`` points at it, even when several runs start within one second."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from fleetscan.model import new_run_id
from fleetscan.watch import LATEST, RUN_DIR, rotate


def run_dir(root: Path, name: str) -> Path:
    d = root / name
    d.mkdir()
    (d / "report.json").write_text(name)
    return d


def test_run_ids_sort_in_the_order_runs_started_also_within_one_second() -> None:
    second = datetime(2026, 11, 30, 0, 15, 21, tzinfo=UTC)
    starts = [second + timedelta(microseconds=us) for us in (0, 1, 17, 4095, 65_536, 999_999)]
    for _ in range(50):  # the random digits never outrank the microsecond
        ids = [new_run_id(t) for t in starts]
        assert sorted(ids) == ids
        assert all(RUN_DIR.match(i) and i.startswith("20261130T001521Z-") for i in ids)
    # the second before sorts first; a local-time start is named in UTC
    cet = datetime(2026, 11, 30, 1, 15, 21, tzinfo=timezone(timedelta(hours=1)))
    assert new_run_id(cet).startswith("20261130T001521Z-")
    assert new_run_id(second - timedelta(microseconds=1)) < new_run_id(second)
    # two runs of the same microsecond still get two ids (random low digits)
    assert len({new_run_id(second) for _ in range(64)}) > 1
    assert re.fullmatch(r"[0-9a-f]{8}", new_run_id(second).split("-")[1])


def test_runs_of_the_same_second_keep_their_start_order(tmp_path: Path) -> None:
    second = datetime(2026, 11, 29, 22, 14, 50, tzinfo=UTC)
    earlier_second = run_dir(tmp_path, new_run_id(second - timedelta(seconds=1)))
    older = run_dir(tmp_path, new_run_id(second + timedelta(microseconds=10)))
    newer = run_dir(tmp_path, new_run_id(second + timedelta(microseconds=900_000)))
    (tmp_path / "operator-notes").mkdir()  # not a run folder: never touched
    rotate(tmp_path, 2)
    assert (tmp_path / LATEST).resolve() == newer.resolve()
    assert newer.exists() and older.exists()
    assert not earlier_second.exists()
    assert (tmp_path / "operator-notes").is_dir()


def test_the_cycle_s_own_folder_is_the_newest_whatever_its_name(tmp_path: Path) -> None:
    # a clock stepped back between two cycles: this cycle's name sorts first
    mine = run_dir(tmp_path, "20261129T221449Z-00000000")
    other = run_dir(tmp_path, "20261129T221450Z-ffffffff")
    rotate(tmp_path, 1, newest=mine)
    assert mine.exists() and not other.exists()
    assert (tmp_path / LATEST).resolve() == mine.resolve()
