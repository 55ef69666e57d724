"""Where ``fleetscan scan`` writes its reports, end to end through the CLI:

* an unwritable destination — a read-only folder (a real read-only bind
  mount in a private mount namespace, so it holds for root too), a report
  name that is a folder — is one error line and
  exit 2 before any connection (issue 7, item 10);
* reports are owner-only, a planted symlink is replaced, not followed;
* ``--format json -o -`` puts the report alone on standard output (the
  summary goes to stderr), so ``fleetscan scan … | jq`` works (issue 8 §5).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from tests.cli import FLEETSCAN, cli_env, run_cli
from tests.cli.test_bad_input import GOOD_POLICY, connections_to, inventory_for, listener

__all__ = ["listener"]  # the fixture, shared with test_bad_input

#: this machine, scanned through the local transport, is compliant (0) or partial
#: (3): a process ended between the listing and the owner lookup, or a listener
#: belongs to a process outside this PID namespace (a container's sandbox), so
#: ``ss -p`` names no owner
SCANNED = (0, 3)
LOCAL = "localhost ansible_connection=local\n"


def scan_args(*extra: str) -> tuple[str, ...]:
    return ("scan", "-i", "inv.ini", "-p", "pol.yaml", "--connect-timeout", "2", *extra)


def setup(cwd: Path, inventory: str) -> None:
    (cwd / "inv.ini").write_text(inventory)
    (cwd / "pol.yaml").write_text(GOOD_POLICY)


def assert_output_error(result: subprocess.CompletedProcess[str], prefix: str) -> None:
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("fleetscan: error: " + prefix), line


def readonly_argv0(folder: Path) -> tuple[str, ...]:
    """Run fleetscan in a private mount namespace where ``folder`` is a
    read-only bind mount of itself."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("a read-only bind mount needs root and unshare(1)")
        pytest.skip("a read-only bind mount needs root and unshare(1)")
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    return (
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
        str(folder),
        *FLEETSCAN,
    )


@pytest.mark.parametrize("output", ["ro", "ro/new/sub"], ids=["folder", "subfolder"])
def test_read_only_folder_fails_before_connecting(
    tmp_path: Path, listener: socket.socket, output: str
) -> None:
    setup(tmp_path, inventory_for(listener))
    (tmp_path / "ro").mkdir()
    result = run_cli(scan_args("-o", output), cwd=tmp_path, argv0=readonly_argv0(tmp_path / "ro"))
    assert_output_error(result, f"{output}: --output: ")
    assert "Read-only file system" in result.stderr
    assert connections_to(listener) == 0
    assert list((tmp_path / "ro").iterdir()) == []


def test_default_folder_unwritable_fails_before_connecting(
    tmp_path: Path, listener: socket.socket
) -> None:
    """No -o: ./fleetscan-reports is checked before connecting too."""
    work = tmp_path / "work"
    work.mkdir()
    setup(work, inventory_for(listener))
    result = run_cli(scan_args(), cwd=work, argv0=readonly_argv0(work), env=cli_env(tmp_path))
    assert_output_error(result, "fleetscan-reports: --output: ")
    assert connections_to(listener) == 0


@pytest.mark.parametrize("name", ["report.html", "junit.xml", "listeners.csv"])
def test_report_name_that_is_a_folder_fails_before_connecting(
    tmp_path: Path, listener: socket.socket, name: str
) -> None:
    setup(tmp_path, inventory_for(listener))
    (tmp_path / "out" / name).mkdir(parents=True)
    result = run_cli(scan_args("-o", "out"), cwd=tmp_path)
    assert_output_error(result, f"out/{name}: --output: is a folder")
    assert connections_to(listener) == 0


def test_scan_reports_are_owner_only_and_replace_a_planted_symlink(tmp_path: Path) -> None:
    setup(tmp_path, LOCAL)
    victim = tmp_path / "victim.html"
    victim.write_text("precious\n")
    out = tmp_path / "reports" / "today"
    out.mkdir(parents=True)
    (out / "report.html").symlink_to(victim)
    result = run_cli(scan_args("-o", str(out)), cwd=tmp_path)
    assert result.returncode in SCANNED, result.stdout
    assert victim.read_text() == "precious\n"
    assert not (out / "report.html").is_symlink()
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    new = tmp_path / "fresh" / "run"
    assert run_cli(scan_args("-o", str(new)), cwd=tmp_path).returncode in SCANNED
    assert stat.S_IMODE((tmp_path / "fresh").stat().st_mode) == 0o700


def test_second_scan_into_the_same_folder_leaves_no_stale_report(tmp_path: Path) -> None:
    setup(tmp_path, LOCAL)
    assert run_cli(scan_args("-o", "out"), cwd=tmp_path).returncode in SCANNED
    (tmp_path / "out" / "README.txt").write_text("the operator's own file\n")
    assert run_cli(scan_args("-o", "out", "--format", "junit"), cwd=tmp_path).returncode in SCANNED
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [".fleetscan-manifest.json", "README.txt", "junit.xml"]


def test_json_report_on_standard_output_pipes_into_a_json_reader(tmp_path: Path) -> None:
    setup(tmp_path, LOCAL)
    result = run_cli(scan_args("--format", "json", "-o", "-"), cwd=tmp_path)
    assert result.returncode in SCANNED, result.stderr
    doc = json.loads(result.stdout)  # stdout holds the report and nothing else
    assert doc["schema"] == "fleetscan.report"
    assert [h["name"] for h in doc["hosts"]] == ["localhost"]
    # the summary, with the verdict's exit code, went to stderr
    assert f"exit {result.returncode}" in result.stderr
    assert not (tmp_path / "fleetscan-reports").exists() and not (tmp_path / "-").exists()
    if shutil.which("jq"):
        jq = subprocess.run(
            ["jq", "-r", ".hosts[0].status"],
            input=result.stdout,
            capture_output=True,
            text=True,
            check=True,
        )
        assert jq.stdout == doc["hosts"][0]["status"] + "\n"
        assert jq.stdout == ("ok\n" if result.returncode == 0 else "partial\n")


@pytest.mark.parametrize("formats", ["json,html", "csv", "html,csv,json,junit"])
def test_standard_output_with_several_files_is_a_config_error(
    tmp_path: Path, listener: socket.socket, formats: str
) -> None:
    setup(tmp_path, inventory_for(listener))
    result = run_cli(scan_args("--format", formats, "-o", "-"), cwd=tmp_path)
    assert_output_error(result, "--output: standard output takes exactly one")
    assert connections_to(listener) == 0
