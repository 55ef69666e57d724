"""With CI=true a test that skips fails (its environment is broken); the run
always ends by counting the skips. Checked by running pytest on a small suite
whose conftest is the project's own CI-honesty plugin (tests/ci_honesty.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parents[1] / "ci_honesty.py"
SUITE = """
import pytest

def test_needs_a_browser():
    pytest.skip("chromium is not installed")

@pytest.mark.skipif(True, reason="sshd is not installed")
def test_needs_sshd():
    pass

def test_plain():
    pass

@pytest.mark.xfail(reason="known")
def test_expected_failure():
    raise AssertionError
"""


def run_suite(tmp_path: Path, ci: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_env.py").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_with_ci_true_a_skip_is_a_failure_naming_its_reason(tmp_path: Path) -> None:
    proc = run_suite(tmp_path, "true")
    assert proc.returncode == 1, proc.stdout
    assert "chromium is not installed" in proc.stdout
    assert "sshd is not installed" in proc.stdout
    assert "1 passed" in proc.stdout and "1 xfailed" in proc.stdout  # xfail stays xfail
    assert proc.stdout.rstrip().splitlines()[-1].startswith("fleetscan tests: 0 skipped")


@pytest.mark.parametrize("ci", ["", "false"])
def test_outside_ci_a_skip_stays_a_skip_and_is_counted_last(tmp_path: Path, ci: str) -> None:
    proc = run_suite(tmp_path, ci)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.rstrip().splitlines()[-1].startswith("fleetscan tests: 2 skipped")
