"""--verbose: one line per finished host on stderr, inert whatever the host sent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fleetscan.cli import host_line
from fleetscan.model import HostScan, Status, Target


def test_demo_verbose_prints_one_line_per_host_on_stderr(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "fleetscan", "demo", "-o", str(tmp_path / "out"), "-v"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 1, run.stderr
    lines = {line.split(":", 1)[0]: line for line in run.stderr.splitlines() if ": " in line}
    assert lines["web-01"].startswith("web-01: ok | ")
    assert "6 listeners via ss -tulnp" in lines["web-01"]
    assert lines["down-01"].startswith("down-01: unreachable | ")
    assert "connection refused" in lines["down-01"]
    assert lines["mon-01"].startswith("mon-01: partial | ") and "sudo -n refused" in lines["mon-01"]
    # stdout keeps the summary only: the per-host lines do not mix into it
    assert "web-01: ok" not in run.stdout


def test_host_line_shows_hostile_text_inert() -> None:
    scan = HostScan(
        target=Target("evil\x1b]0;pwned\x07", "127.0.0.1"),
        status=Status.NO_COLLECTOR,
        message="ss: \x1b[31mred\nsecond line",
    )
    line = host_line(scan)
    assert "\x1b" not in line and "\n" not in line and "\x07" not in line
    assert "\\x1b]0;pwned" in line and "no_collector" in line
