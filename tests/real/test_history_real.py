"""History and drift against real OpenSSH hosts (network namespaces), on SQLite
and on a real PostgreSQL.

Two namespace hosts, each with its own sshd: ``ns-a`` runs four listeners in
separate processes, ``ns-b`` one. Run 1 is the baseline. Then, for real, on
ns-a: the 8080 listener is stopped, 5432 is re-bound from 127.0.0.1 to
0.0.0.0, 7777 is opened, and the UDP 5300 service is restarted (new pid, same
everything else); ns-b's sshd is stopped (unreachable). Run 2 must report
exactly gone 8080, widened 5432 and new 7777 on ns-a — in report.json,
``fleetscan diff --format json``, the HTML and changes.csv — nothing for ns-b
(changes unknown, never "gone"), and nothing for the restart. Run 3, compared
with the baseline under a drift rule, turns the new listener into a finding
that changes the exit code (3 → 1).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL

from .harness import (
    KeyMaterial,
    describe,
    find_sshd,
    known_hosts_entry,
    load_report,
    require,
    run_cli,
    scan_args,
)
from .test_netns_fleet import (
    LISTENER_SCRIPT,
    NsHost,
    _finish,
    _free_octets,
    _link,
    _start_sshd,
    _yaml_inventory,
)

pytestmark = [pytest.mark.netns, pytest.mark.timeout(240)]

DRIFT_POLICY = (
    "version: 1\n"
    "drift:\n"
    "  - id: new-service\n"
    "    when: [new, widened, owner_changed]\n"
    "    severity: high\n"
)
EMPTY_POLICY = "version: 1\n"


@dataclass
class World:
    a: NsHost
    b: NsHost
    inventory: Path
    known_hosts: Path
    stack: contextlib.ExitStack
    procs: dict[str, subprocess.Popen[str]]

    def listen(self, key: str, *specs: str) -> int:
        """Start a process in ns-a holding ``specs`` ("proto,addr,port"); its pid."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.a.netns, sys.executable, "-c", LISTENER_SCRIPT, *specs],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stack.callback(_finish, proc)
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.strip().isdigit():
            raise RuntimeError(
                f"listener {specs} did not start: {proc.stderr.read() if proc.stderr else ''}"
            )
        self.procs[key] = proc
        return int(line)

    def stop(self, key: str) -> None:
        _finish(self.procs.pop(key))


@pytest.fixture
def world(ssh_keys: KeyMaterial) -> Iterator[World]:
    require(os.geteuid() == 0, "network namespaces need root")
    require(shutil.which("ip") is not None, "ip is not installed")
    sshd = find_sshd()
    require(sshd is not None, "no sshd (install openssh-server: scripts/test-deps.sh does it)")
    assert sshd is not None
    suffix = secrets.token_hex(3)
    workdir = ssh_keys.tmp / f"history-{suffix}"
    workdir.mkdir()
    with contextlib.ExitStack() as stack:
        try:
            octets = _free_octets(2)
            a = NsHost("ns-a", f"fh-{suffix}-a", f"10.213.{octets[0]}.2", False, ())
            b = NsHost("ns-b", f"fh-{suffix}-b", f"10.213.{octets[1]}.2", False, ())
            for host, octet in ((a, octets[0]), (b, octets[1])):
                _link(stack, host, octet, suffix)
                _start_sshd(stack, host, sshd, workdir, ssh_keys.keys_dir, workdir)
            known = workdir / "known_hosts"
            known.write_text(
                "".join(known_hosts_entry(h.address, 22, h.host_key) for h in (a, b) if h.host_key)
            )
            inventory = workdir / "fleet.yaml"
            inventory.write_text(_yaml_inventory([a, b], ssh_keys.client_key))
            w = World(a, b, inventory, known, stack, {})
            w.listen("web", "tcp,0.0.0.0,8080")
            w.listen("db", "tcp,127.0.0.1,5432")
            w.listen("dns", "udp,127.0.0.1,5300")
            w.listen("ssh-alt", "tcp,0.0.0.0,2222")
            other = subprocess.Popen(  # ns-b: one listener of its own
                [
                    "ip",
                    "netns",
                    "exec",
                    b.netns,
                    sys.executable,
                    "-c",
                    LISTENER_SCRIPT,
                    "tcp,0.0.0.0,9000",
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            stack.callback(_finish, other)
            if not (other.stdout and other.stdout.readline().strip().isdigit()):
                raise RuntimeError("the ns-b listener did not start")
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            require(False, f"could not build the namespace hosts: {exc}")
            raise
        yield w


def _scan(
    w: World, db: str, tmp: Path, name: str, policy: str, *extra: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]:
    pol = tmp / f"{name}.yaml"
    pol.write_text(policy)
    out = tmp / name
    args = scan_args(w.inventory, out, w.known_hosts, pol)
    args[args.index("json")] = "json,html,csv"
    proc = run_cli([*args, "--db", db, *extra], cwd=tmp)
    return proc, load_report(out, proc), out


def _changes(items: list[dict[str, Any]]) -> list[tuple[str, str, str, str, int]]:
    return [(c["host"], c["kind"], c["proto"], c["address"], c["port"]) for c in items]


EXPECTED = [
    ("ns-a", "new", "tcp", "0.0.0.0", 7777),
    ("ns-a", "widened", "tcp", "0.0.0.0", 5432),
    ("ns-a", "gone", "tcp", "0.0.0.0", 8080),
]


def test_real_changes_are_reported_exactly_everywhere(
    world: World, db_url: URL, tmp_path: Path
) -> None:
    db = db_url.render_as_string(hide_password=False)
    w = world
    proc1, rep1, _ = _scan(w, db, tmp_path, "run1", DRIFT_POLICY)
    assert proc1.returncode == 0, describe(proc1)
    assert rep1["changes"] == []
    assert rep1["run"]["compared_to"]["baseline_hosts"] == ["ns-a", "ns-b"]
    assert "First scan." in (tmp_path / "run1" / "report.html").read_text()

    # real changes on ns-a; ns-b goes away
    w.stop("web")
    w.stop("db")
    w.listen("db", "tcp,0.0.0.0,5432")
    w.listen("new", "tcp,0.0.0.0,7777")
    w.stop("dns")
    w.listen("dns", "udp,127.0.0.1,5300")  # a restart: new pid, nothing else
    assert w.b.sshd is not None
    w.b.sshd.stop()

    proc2, rep2, out2 = _scan(w, db, tmp_path, "run2", EMPTY_POLICY)
    assert proc2.returncode == 3, describe(proc2)  # ns-b not fully scanned, no finding
    status = {h["name"]: h["status"] for h in rep2["hosts"]}
    assert status == {"ns-a": "ok", "ns-b": "unreachable"}
    assert sorted(_changes(rep2["changes"]), key=lambda c: c[4]) == sorted(
        EXPECTED, key=lambda c: c[4]
    )
    assert {c["since_run"] for c in rep2["changes"]} == {rep1["run"]["id"]}
    assert rep2["run"]["compared_to"]["run"] == rep1["run"]["id"]
    assert rep2["run"]["compared_to"]["unknown_hosts"] == ["ns-b"]
    widened = next(c for c in rep2["changes"] if c["kind"] == "widened")
    assert widened["before"]["address"] == "127.0.0.1" and widened["after"]["address"] == "0.0.0.0"
    assert widened["before"]["processes"][0]["pid"] != widened["after"]["processes"][0]["pid"]

    # the same changes from the stored history
    diff = run_cli(
        ["diff", "--db", db, rep1["run"]["id"], rep2["run"]["id"], "--format", "json"], cwd=tmp_path
    )
    assert diff.returncode == 0, describe(diff)
    doc = json.loads(diff.stdout)
    assert (doc["from"], doc["to"]) == (rep1["run"]["id"], rep2["run"]["id"])
    assert doc["changes"] == rep2["changes"]

    with (out2 / "changes.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(
        (r["host"], r["kind"], r["proto"], r["address"], int(r["port"])) for r in rows
    ) == sorted(EXPECTED)
    html = (out2 / "report.html").read_text()
    assert f"Changes since <code>{rep1['run']['id']}</code>" in html
    assert html.count('<tr class="chg-row chg-widened">') == 1
    assert (
        html.count('<tr class="chg-row chg-new">') == 1
        and html.count('<tr class="chg-row chg-gone">') == 1
    )
    assert "Changes unknown" in html and "ns-b" in html

    # a drift rule makes the new listener (and the widening) findings that gate
    proc3, rep3, _ = _scan(w, db, tmp_path, "run3", DRIFT_POLICY, "--compare-to", "baseline")
    assert proc3.returncode == 1, describe(proc3)
    drift = [
        (f["host"], f["rule_id"], f["listener"]["port"], f["gating"])
        for f in rep3["findings"]
        if f["kind"] == "drift"
    ]
    assert sorted(drift) == [
        ("ns-a", "new-service", 5432, True),
        ("ns-a", "new-service", 7777, True),
    ]
    assert sorted(_changes(rep3["changes"])) == sorted(EXPECTED)

    history = json.loads(run_cli(["history", "--db", db, "--format", "json"], cwd=tmp_path).stdout)
    assert [r["id"] for r in history] == [rep3["run"]["id"], rep2["run"]["id"], rep1["run"]["id"]]
    assert [r["changes"] for r in history] == [3, 3, 0]


def test_two_real_scans_into_one_sqlite_file_at_once_both_land(
    world: World, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    def go(name: str) -> None:
        pol = tmp_path / f"{name}.yaml"
        pol.write_text(EMPTY_POLICY)
        results[name] = run_cli(
            [*scan_args(world.inventory, tmp_path / name, world.known_hosts, pol), "--db", db],
            cwd=tmp_path,
        )

    threads = [threading.Thread(target=go, args=(n,)) for n in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, proc in results.items():
        assert proc.returncode == 0, f"{name}: {describe(proc)}"
        assert "NOT recorded" not in proc.stderr
    ids = {load_report(tmp_path / n, results[n])["run"]["id"] for n in ("x", "y")}
    history = json.loads(run_cli(["history", "--db", db, "--format", "json"], cwd=tmp_path).stdout)
    assert {r["id"] for r in history} == ids
