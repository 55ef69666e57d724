"""``--distributed`` and ``fleetscan worker`` option errors: exit 2, one line
naming the option, before any broker or host is contacted (the broker URLs
point at a closed loopback port)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.cli import cli_env, run_cli

POLICY = "version: 1\nforbidden:\n  - id: irc\n    ports: 6667\n"
INVENTORY = "[dc1]\nweb1 ansible_host=127.0.0.1 ansible_port=1 fleetscan_site=dc1\n"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "hosts").write_text(INVENTORY)
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "known_hosts").write_text("")
    return tmp_path


BROKER = f"redis://127.0.0.1:{closed_port()}/0"
SCAN = ("scan", "-i", "hosts", "-p", "policy.yaml", "-o", "out")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            (*SCAN, "--distributed", BROKER.replace("//", "//:pw@")),
            "--distributed: the broker password must not be on the command line",
        ),
        ((*SCAN, "--distributed", "amqp://127.0.0.1//"), "--distributed: broker URL must start"),
        (
            (*SCAN, "--distributed", BROKER, "--known-hosts", "known_hosts"),
            "--known-hosts with --distributed: workers use their own known_hosts",
        ),
        (
            (*SCAN, "--distributed", BROKER, "--no-host-key-check"),
            "--no-host-key-check with --distributed",
        ),
        ((*SCAN, "--distributed", BROKER, "--shard-size", "0"), "--shard-size: must be at least"),
        ((*SCAN, "--distributed", BROKER, "--run-deadline", "-1"), "--run-deadline: must be"),
        (("worker", "--site", "dc 1", "--broker", BROKER), "--site: site 'dc 1' must match"),
        (("worker", "--site", "dc1"), "--broker: no broker URL"),
        (
            ("worker", "--site", "dc1", "--broker", BROKER, "--known-hosts", "nope"),
            "nope: --known-hosts: file not found",
        ),
        (
            ("worker", "--site", "dc1", "--broker", BROKER, "--concurrency", "0"),
            "--concurrency: must be at least 1",
        ),
    ],
)
def test_distributed_option_errors_exit_2_with_one_line(
    files: Path, args: tuple[str, ...], expected: str
) -> None:
    env = cli_env(files)
    env.pop("FLEETSCAN_BROKER_URL", None)
    env.pop("FLEETSCAN_BROKER_PASSWORD", None)
    proc = run_cli(args, cwd=files, env=env)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fleetscan: error: "), proc.stderr
    assert expected in lines[0]
    assert "Traceback" not in proc.stderr and not (files / "out").exists()
    assert "pw@" not in proc.stderr


def test_a_broker_that_does_not_answer_leaves_every_host_not_scanned_exit_3(
    files: Path,
) -> None:
    proc = run_cli((*SCAN, "--distributed", BROKER, "--format", "json"), cwd=files, timeout=120)
    assert proc.returncode == 3, proc.stderr
    import json

    report = json.loads((files / "out" / "report.json").read_text())
    (host,) = report["hosts"]
    assert host["status"] == "not_scanned"
    assert host["message"].startswith("no answer from the broker redis://127.0.0.1:")
