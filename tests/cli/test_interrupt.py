"""Ctrl-C and SIGTERM stop a real ``fleetscan scan`` cleanly.

The scan runs as a subprocess against simulated hosts living in a third
process (:mod:`tests.cli.simserver`): one healthy host and several whose
collector command never returns. Once the healthy host is done and the others
are stuck, the CLI gets SIGTERM (what systemd and CI runners send on a
timeout or cancel) or SIGINT (Ctrl-C). It must then:

* exit promptly with 130;
* still write every report, marked interrupted — the healthy host with its
  listeners, the stuck hosts as ``interrupted`` (nothing is lost, nothing is
  passed off as scanned);
* leave no connection open on the hosts.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cli import FLEETSCAN, LINUX_HOST_LISTENERS, cli_env, linux_host, write_yaml_inventory
from tests.cli.simserver import SimProcess, sim_process

HUNG = ("hung-01", "hung-02", "hung-03")
POLICY = "version: 1\nforbidden:\n  - id: irc\n    ports: 6667\n"
#: seconds the CLI has to finish after the signal (reports included)
EXIT_BOUND = 15.0


def collector_started(host: dict[str, Any]) -> bool:
    return any(c in ("sh -s", "sudo -n sh -s") for c in host["commands"])


def healthy_done_and_others_stuck(state: dict[str, Any]) -> bool:
    hosts = state["hosts"]
    ok = hosts["ok-01"]
    return (
        collector_started(ok)
        and ok["total"] >= 1
        and ok["open"] == 0  # the CLI has finished with it and hung up
        and all(collector_started(hosts[h]) and hosts[h]["open"] == 1 for h in HUNG)
    )


def established_ports() -> set[int]:
    """Local ports of the ESTABLISHED TCP connections on this machine, as ss shows them."""
    out = subprocess.run(
        ["ss", "-Htn", "state", "established"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    ports = set()
    for row in out.splitlines():
        cols = row.split()
        if len(cols) >= 4:
            ports.add(int(cols[2].rsplit(":", 1)[1]))  # Recv-Q Send-Q Local Peer
    return ports


def start_scan(sim: SimProcess, cwd: Path) -> subprocess.Popen[bytes]:
    hosts = {
        name: {
            "ansible_host": "127.0.0.1",
            "ansible_port": sim.port(name),
            "ansible_user": "tester",
            "ansible_ssh_private_key_file": str(sim.client_key),
        }
        for name in ("ok-01", *HUNG)
    }
    write_yaml_inventory(cwd / "inventory.yaml", hosts)
    (cwd / "policy.yaml").write_text(POLICY)
    args = ["scan", "-i", "inventory.yaml", "-p", "policy.yaml", "-o", "out"]
    args += ["--known-hosts", str(sim.known_hosts), "--host-timeout", "60"]
    return subprocess.Popen(
        [*FLEETSCAN, *args],
        cwd=cwd,
        env=cli_env(cwd),
        stdin=subprocess.DEVNULL,
        stdout=(cwd / "stdout.txt").open("wb"),
        stderr=(cwd / "stderr.txt").open("wb"),
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_scan_with_130_and_complete_reports(
    tmp_path: Path, sig: signal.Signals
) -> None:
    specs: list[dict[str, Any]] = [linux_host("ok-01")]
    specs += [{"name": h, "behaviour": "hang"} for h in HUNG]
    with sim_process(tmp_path / "sim", specs) as sim:
        proc = start_scan(sim, tmp_path)
        try:
            sim.wait_until(healthy_done_and_others_stuck, "ok-01 scanned, the others hung")
            assert proc.poll() is None, "the scan ended although three hosts hang"
            proc.send_signal(sig)
            code = proc.wait(timeout=EXIT_BOUND)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        # the hosts see every connection closed, and none was opened twice
        state = sim.wait_until(
            lambda s: all(h["open"] == 0 for h in s["hosts"].values()), "connections closed"
        )
        assert {n: h["total"] for n, h in state["hosts"].items()} == dict.fromkeys(
            ("ok-01", *HUNG), 1
        )
        if shutil.which("ss"):
            sim_ports = {h["port"] for h in state["hosts"].values()}
            assert not sim_ports & established_ports()

    stdout = (tmp_path / "stdout.txt").read_text()
    stderr = (tmp_path / "stderr.txt").read_text()
    assert "Traceback" not in stdout + stderr
    assert code == 130, stderr
    assert "INTERRUPTED" in stdout

    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["run"]["interrupted"] is True
    assert report["run"]["exit_code"] == 130
    hosts = {h["name"]: h for h in report["hosts"]}
    assert hosts["ok-01"]["status"] == "ok"
    assert {(x["proto"], x["address"], x["port"]) for x in hosts["ok-01"]["listeners"]} == (
        LINUX_HOST_LISTENERS
    )
    for name in HUNG:
        assert hosts[name]["status"] == "interrupted"
        assert hosts[name]["verdict"] == "not-scanned"
        assert hosts[name]["listeners"] == []

    html = (tmp_path / "out" / "report.html").read_text()
    assert "INTERRUPTED." in html
    junit = (tmp_path / "out" / "junit.xml").read_text()
    assert 'name="interrupted" value="true"' in junit
