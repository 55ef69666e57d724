"""What a scan loads: a run pays start-up CPU and memory for every library it
imports (issue 12), so the libraries of features a run does not use stay
unimported. Checked on the real command line, scanning this machine through
the local transport, in a fresh interpreter that lists its modules at exit."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.cli import run_cli

#: runs the CLI, then writes the top-level packages it imported to argv[1]
_PROBE = (
    "import atexit, json, sys\n"
    "out = sys.argv.pop(1)\n"
    "top = lambda: sorted({m.split('.')[0] for m in sys.modules})\n"
    "atexit.register(lambda: open(out, 'w').write(json.dumps(top())))\n"
    "sys.argv[0] = 'fleetscan'\n"
    "from fleetscan.cli import main\n"
    "main()\n"
)
#: libraries of optional features: none is needed by a plain scan
OPTIONAL = ("alembic", "celery", "kombu", "redis", "httpx", "prometheus_client", "paramiko")
#: never at run time (the CSV writer is the standard library's)
NEVER = ("pandas", "numpy", "psycopg")
SCANNED = (0, 3)  # compliant, or partial when a process ended mid-scan


def _imported(tmp_path: Path, *extra: str) -> tuple[set[str], str]:
    (tmp_path / "inv.ini").write_text("localhost ansible_connection=local\n")
    (tmp_path / "policy.yaml").write_text("version: 1\nforbidden:\n  - id: irc\n    ports: 6667\n")
    listing = tmp_path / "modules.json"
    out = run_cli(
        ["scan", "-i", "inv.ini", "-p", "policy.yaml", "-o", "out", *extra],
        cwd=tmp_path,
        argv0=(sys.executable, "-c", _PROBE, str(listing)),
    )
    assert out.returncode in SCANNED, out.stdout + out.stderr
    return set(json.loads(listing.read_text())), out.stdout


@pytest.mark.skipif(shutil.which("ss") is None, reason="iproute2 ss not installed")
def test_a_scan_without_history_never_imports_the_store(tmp_path: Path) -> None:
    mods, stdout = _imported(tmp_path, "--no-history")
    assert "history: off" in stdout
    assert {"fleetscan", "jinja2"} <= mods  # the probe saw the run (it wrote report.html)
    assert "sqlalchemy" not in mods
    assert not mods & {*OPTIONAL, *NEVER}


@pytest.mark.skipif(shutil.which("ss") is None, reason="iproute2 ss not installed")
def test_a_scan_with_history_imports_sqlalchemy_core_only(tmp_path: Path) -> None:
    mods, stdout = _imported(tmp_path)  # history in the default SQLite file
    assert "recorded in" in stdout and "history.sqlite" in stdout
    assert "sqlalchemy" in mods
    assert "uvloop" in mods  # the event loop (fleetscan.runtime)
    assert not mods & {*OPTIONAL, *NEVER}
