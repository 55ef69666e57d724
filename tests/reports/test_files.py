"""Report files (issue 7, item 10): written atomically without following a
planted symlink, owner-only, the previous run's own files cleaned up (and
nothing else), an unwritable destination a clear error."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from fleetscan.errors import ConfigError
from fleetscan.model import ScanRun
from fleetscan.reports import FORMATS, prepare_output, write_reports
from fleetscan.reports.files import (
    FILE_NAMES,
    MANIFEST,
    ReportWriteError,
    atomic_open,
    parse_mode,
)

ALL_FILES = sorted(n for names in FILE_NAMES.values() for n in names if n != "exposure.csv")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_each_format_writes_the_names_the_preflight_checks(
    tmp_path: Path, realistic_run: ScanRun
) -> None:
    written = write_reports(realistic_run, tmp_path / "out", FORMATS)
    assert set(written) == set(FILE_NAMES)
    for fmt, paths in written.items():  # exposure.csv only when the run probed
        assert {p.name for p in paths} <= set(FILE_NAMES[fmt])


@pytest.mark.parametrize("name", ALL_FILES)
def test_planted_symlink_is_replaced_and_its_target_untouched(
    tmp_path: Path, realistic_run: ScanRun, name: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    (out / name).symlink_to(victim)
    (out / "dangling.html").symlink_to(tmp_path / "nowhere")
    write_reports(realistic_run, out, FORMATS)
    assert victim.read_text() == "precious\n" and mode_of(victim) == 0o644
    assert not (out / name).is_symlink() and (out / name).stat().st_size > 0
    assert not (tmp_path / "nowhere").exists()


def test_reports_are_owner_only_and_created_folders_0700(
    tmp_path: Path, realistic_run: ScanRun
) -> None:
    out = tmp_path / "a" / "b"
    old = os.umask(0o022)
    try:
        write_reports(realistic_run, out, FORMATS)
    finally:
        os.umask(old)
    assert mode_of(tmp_path / "a") == 0o700 and mode_of(out) == 0o700
    for path in out.iterdir():
        assert mode_of(path) == 0o600, path.name


def test_an_existing_folder_keeps_its_mode(tmp_path: Path, realistic_run: ScanRun) -> None:
    out = tmp_path / "shared"
    out.mkdir(mode=0o755)
    out.chmod(0o755)
    write_reports(realistic_run, out, ["json"])
    assert mode_of(out) == 0o755 and mode_of(out / "report.json") == 0o600


def test_report_mode_is_honoured(tmp_path: Path, realistic_run: ScanRun) -> None:
    write_reports(realistic_run, tmp_path / "out", ["json", "csv"], mode=0o640)
    assert mode_of(tmp_path / "out") == 0o750
    assert {mode_of(p) for p in (tmp_path / "out").iterdir()} == {0o640}


@pytest.mark.parametrize("text", ["0700", "0666", "0400", "644x", "", "1600", "-600"])
def test_unsafe_or_bad_report_modes_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="--report-mode"):
        parse_mode(text)


@pytest.mark.parametrize(("text", "mode"), [("0600", 0o600), ("640", 0o640), ("0664", 0o664)])
def test_report_modes(text: str, mode: int) -> None:
    assert parse_mode(text) == mode


def test_second_run_removes_the_first_runs_stale_files_only(
    tmp_path: Path, realistic_run: ScanRun
) -> None:
    out = tmp_path / "out"
    write_reports(realistic_run, out, FORMATS)
    (out / "notes.txt").write_text("mine\n")  # the operator's own file
    write_reports(replace(realistic_run, id="second"), out, ["json"])
    assert listing(out) == sorted([MANIFEST, "notes.txt", "report.json"])
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["run_id"] == "second" and list(manifest["files"]) == ["report.json"]


def test_files_changed_or_replaced_since_are_not_fleetscans_any_more(
    tmp_path: Path, realistic_run: ScanRun
) -> None:
    out = tmp_path / "out"
    write_reports(realistic_run, out, FORMATS)
    (out / "hosts.csv").write_text("edited by hand\n")
    (out / "junit.xml").unlink()
    (out / "junit.xml").symlink_to(tmp_path / "elsewhere.xml")
    (tmp_path / "elsewhere.xml").write_text("<x/>")
    write_reports(realistic_run, out, ["json"])
    assert (out / "hosts.csv").read_text() == "edited by hand\n"
    assert (out / "junit.xml").is_symlink() and (tmp_path / "elsewhere.xml").exists()
    assert not (out / "report.html").exists() and not (out / "findings.csv").exists()


@pytest.mark.parametrize(
    "files",
    [
        {"../victim": "x"},
        {"/abs/victim": "x"},
        {"sub/victim": "x"},
        "not a mapping",
        {"victim": 5},
    ],
)
def test_a_tampered_manifest_deletes_nothing_outside_its_own_files(
    tmp_path: Path, realistic_run: ScanRun, files: object
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("x")
    (out / "victim").write_text("x")
    (out / MANIFEST).write_text(json.dumps({"schema": "fleetscan.manifest/1", "files": files}))
    write_reports(realistic_run, out, ["json"])
    assert victim.exists() and (out / "victim").exists()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_open(path) as fh:
        fh.write("half")
        raise RuntimeError("disk full")
    assert path.read_text() == "old\n"
    assert listing(tmp_path) == ["report.json"]


def test_preflight_refuses_a_report_name_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "out" / "report.html").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"report\.html: --output: is a folder"):
        prepare_output(tmp_path / "out", ["json", "html"])
    prepare_output(tmp_path / "out", ["json"])  # only the formats written count


def test_preflight_refuses_a_file_as_folder(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        prepare_output(tmp_path / "out", ["json"])


def test_write_failure_after_the_scan_is_a_config_error_not_a_traceback(
    tmp_path: Path, realistic_run: ScanRun
) -> None:
    """Without the preflight (the folder changed during the scan): a
    ReportWriteError (a ConfigError: one line, exit 2) naming the file."""
    (tmp_path / "out" / "junit.xml").mkdir(parents=True)
    with pytest.raises(ReportWriteError, match=r"junit\.xml: --output: cannot write"):
        write_reports(realistic_run, tmp_path / "out", ["junit"])
    assert listing(tmp_path / "out") == ["junit.xml"]  # no temporary left behind


@pytest.mark.parametrize("formats", [["json", "html"], ["csv"], ["html", "csv", "json", "junit"]])
def test_standard_output_takes_one_single_file_format(formats: list[str]) -> None:
    with pytest.raises(ConfigError, match="--output: standard output takes exactly one"):
        prepare_output(Path("-"), formats)


@pytest.mark.parametrize("fmt", ["json", "junit", "html"])
def test_report_on_standard_output(
    fmt: str, realistic_run: ScanRun, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert write_reports(realistic_run, Path("-"), [fmt]) == {fmt: []}
    out = capsys.readouterr().out
    write_reports(realistic_run, tmp_path, [fmt])
    (path,) = (tmp_path / n for n in FILE_NAMES[fmt])
    assert out == path.read_text(encoding="utf-8")


def _resident_pages(path: Path) -> int:
    """Pages of ``path`` in the page cache, by util-linux fincore (mincore(2))."""
    import shutil
    import subprocess

    if shutil.which("fincore") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("fincore (util-linux) is missing")
        pytest.skip("fincore (util-linux) is missing")
    out = subprocess.run(
        ["fincore", "--raw", "--noheadings", "--bytes", "-o", "PAGES", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.split()[0])


def test_written_reports_leave_no_pages_in_the_page_cache(tmp_path: Path) -> None:
    """Reports are written, fsynced and then dropped from the page cache (and
    so are the manifest's reads): a 5,000-host run's 100+ MB of reports is not
    kept cached at the expense of the machine (nor charged to the scan's
    cgroup). The contents are all there."""
    from fleetscan.reports.files import atomic_open

    target = tmp_path / "big.json"
    block = b"0123456789abcdef" * 4096  # 64 KiB
    with atomic_open(target, binary=True) as fh:
        for _ in range(64):  # 4 MiB
            fh.write(block)
    assert target.stat().st_size == 64 * len(block)
    assert _resident_pages(target) == 0
    assert target.read_bytes() == block * 64  # reading brings them back: the data is intact
    assert _resident_pages(target) > 0
