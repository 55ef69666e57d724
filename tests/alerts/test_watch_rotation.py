"""Report-folder rotation of ``fleetscan watch``: the newest run is kept and
``latest`` points at it, even when several runs start within one second (their
ids then differ only in the random suffix, which says nothing about order)."""

from __future__ import annotations

import os
from pathlib import Path

from fleetscan.watch import LATEST, rotate


def run_dir(root: Path, name: str, written_ns: int) -> Path:
    d = root / name
    d.mkdir()
    (d / "report.json").write_text(name)
    os.utime(d, ns=(written_ns, written_ns))
    return d


def test_runs_of_the_same_second_are_ordered_by_when_they_were_written(tmp_path: Path) -> None:
    base = 1_795_990_000 * 10**9
    older = run_dir(tmp_path, "20261129T221450Z-ffffffff", base)
    newer = run_dir(tmp_path, "20261129T221450Z-00000000", base + 5_000_000)
    earlier_second = run_dir(tmp_path, "20261129T221449Z-aaaaaaaa", base + 9_000_000)
    (tmp_path / "operator-notes").mkdir()  # not a run folder: never touched
    rotate(tmp_path, 2)
    assert (tmp_path / LATEST).resolve() == newer.resolve()
    assert newer.exists() and older.exists()
    assert not earlier_second.exists()  # the name's second outranks a later write
    assert (tmp_path / "operator-notes").is_dir()


def test_the_cycle_s_own_folder_is_the_newest_whatever_its_name(tmp_path: Path) -> None:
    base = 1_795_990_000 * 10**9
    mine = run_dir(tmp_path, "20261129T221450Z-00000000", base)
    other = run_dir(tmp_path, "20261129T221450Z-ffffffff", base)  # same second, same mtime
    rotate(tmp_path, 1, newest=mine)
    assert mine.exists() and not other.exists()
    assert (tmp_path / LATEST).resolve() == mine.resolve()
