"""Compiled templates are kept between runs in a private per-user cache; the
report is the same with or without it, and a cache folder others could write
(or one that cannot be made) is never used."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetscan.model import ScanRun
from fleetscan.reports import html


@pytest.fixture
def fresh_environment() -> Iterator[None]:
    html.environment.cache_clear()
    yield
    html.environment.cache_clear()


def _render(run: ScanRun) -> str:
    html.environment.cache_clear()  # as a new process: a new environment
    return html.render_html(run)


def test_templates_compiled_once_then_read_from_a_private_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, realistic_run: ScanRun, fresh_environment: None
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = _render(realistic_run)
    folder = tmp_path / "cache" / "fleetscan" / "templates"
    assert html.template_cache_dir() == folder
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = sorted(folder.iterdir())
    assert files and all(stat.S_IMODE(f.stat().st_mode) & 0o077 == 0 for f in files)
    stamps = {f: f.stat().st_mtime_ns for f in files}
    assert _render(realistic_run) == first  # from the cache
    assert {f: f.stat().st_mtime_ns for f in folder.iterdir()} == stamps  # nothing recompiled
    # and exactly what an environment without any cache renders
    (tmp_path / "no-cache").write_text("a file where the folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "no-cache"))
    assert html.template_cache_dir() is None
    assert _render(realistic_run) == first


def test_a_cache_folder_others_can_write_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, realistic_run: ScanRun, fresh_environment: None
) -> None:
    folder = tmp_path / "fleetscan" / "templates"
    folder.mkdir(parents=True)
    folder.chmod(0o777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert html.template_cache_dir() is None
    assert "<html" in _render(realistic_run)
    assert list(folder.iterdir()) == []


def test_a_corrupt_cache_file_is_compiled_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, realistic_run: ScanRun, fresh_environment: None
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = _render(realistic_run)
    for f in (tmp_path / "fleetscan" / "templates").iterdir():
        f.write_bytes(b"garbage")
    assert _render(realistic_run) == first
