"""Distributed scans with real parts: redis-server on loopback, real Celery
worker processes (``fleetscan worker``) for two sites, a real OpenSSH fleet in
network namespaces (two hosts per site).

Each site's workers hold only their own site's host keys (their own
known_hosts), so a shard reaching the wrong site could not pass host-key
checking. The coordinator is the real CLI (``fleetscan scan --distributed``).

Proved here:

* the distributed run equals a local scan of the same fleet (report.json
  compared field by field, timings, run ids and per-scan nonces aside);
* a site with no worker → its hosts ``not_scanned`` "no worker for site …";
* kill -9 of the worker holding a shard → the shard is redelivered to the
  other worker of the site and completes there; every host once;
* all workers of a site killed mid-shard → its hosts ``not_scanned``
  "worker lost" before the run's deadline, exit 3;
* the broker killed mid-run → exit 3, report of what finished, the rest
  ``not_scanned``.

One module (longer than most) so that the namespace fleet, the broker and
the shared workers — module-scoped fixtures — are built once for all of these.

Slow hosts are "tarpits": a loopback socket that accepts TCP but never sends
an SSH banner, so a scan of it lasts exactly the connect timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .cluster import Cluster, Redis, find_redis, start_redis, wait_for_log
from .harness import (
    BASELINE,
    KeyMaterial,
    describe,
    find_sshd,
    forbidden_rule_for,
    known_hosts_entry,
    load_report,
    require,
    run_cli,
)
from .test_netns_fleet import NsHost, Sock, _free_octets, _link, _start_listeners, _start_sshd

pytestmark = [pytest.mark.netns, pytest.mark.slow, pytest.mark.timeout(240)]

SITES = {"dc1": ("dc1-a", "dc1-b"), "dc2": ("dc2-c", "dc2-d")}
FORBIDDEN_PORT = 4444
NONCE = re.compile(r"@@FLEETSCAN-[0-9a-f]+")
# the machine's process list (pid -> user, for sockets' owners): the namespaces
# share the pid namespace, so it changes between any two scans
PS_SECTION = re.compile(r"(@@FLEETSCAN-N begin ps\n).*?(@@FLEETSCAN-N end ps)", re.DOTALL)


@dataclass
class SiteFleet:
    hosts: list[NsHost]
    site_of: dict[str, str]
    known_hosts: dict[str, Path]  # per site: only that site's host keys
    all_known_hosts: Path
    key: Path
    workdir: Path


@pytest.fixture(scope="module")
def redis_binary() -> str:
    binary = find_redis()
    require(binary is not None, "no redis-server (scripts/test-deps.sh installs it)")
    assert binary is not None
    return binary


@pytest.fixture(scope="module")
def site_fleet(ssh_keys: KeyMaterial) -> Iterator[SiteFleet]:
    require(os.geteuid() == 0, "network namespaces need root")
    for tool in ("ip", "unshare", "mount"):
        require(shutil.which(tool) is not None, f"{tool} is not installed")
    sshd = find_sshd()
    require(sshd is not None, "no sshd (install openssh-server: scripts/test-deps.sh does it)")
    assert sshd is not None
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    suffix = secrets.token_hex(3)
    workdir = ssh_keys.tmp / f"distributed-{suffix}"
    workdir.mkdir()
    with contextlib.ExitStack() as stack:
        try:
            octets = _free_octets(4)
            names = [n for hosts in SITES.values() for n in hosts]
            hosts = []
            for i, (name, octet) in enumerate(zip(names, octets, strict=True)):
                addr = f"10.213.{octet}.2"
                socks = (Sock("tcp", "0.0.0.0", 8000 + i), Sock("udp", addr, 5300 + i))
                if name == "dc2-d":  # a forbidden port: the runs must agree on a finding
                    socks += (Sock("tcp", "0.0.0.0", FORBIDDEN_PORT),)
                hosts.append(NsHost(name, f"fs-{suffix}-{name[-1]}", addr, False, socks))
            for host, octet in zip(hosts, octets, strict=True):
                _link(stack, host, octet, suffix)
                _start_sshd(stack, host, sshd, workdir, ssh_keys.keys_dir, workdir / "unused")
                _start_listeners(stack, host)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            require(False, f"could not build the namespace fleet: {exc}")
            raise
        site_of = {n: site for site, hs in SITES.items() for n in hs}
        per_site = {}
        for site in SITES:
            f = workdir / f"known_hosts-{site}"
            f.write_text(
                "".join(
                    known_hosts_entry(h.address, 22, h.host_key)
                    for h in hosts
                    if site_of[h.name] == site and h.host_key
                )
            )
            per_site[site] = f
        everything = workdir / "known_hosts"
        everything.write_text("".join(p.read_text() for p in per_site.values()))
        yield SiteFleet(hosts, site_of, per_site, everything, ssh_keys.client_key, workdir)


def write_inventory(
    path: Path, fleet: SiteFleet, extra: Mapping[str, Mapping[str, object]] = ()
) -> Path:
    """YAML inventory: one group per site carrying ``fleetscan_site`` as a group var."""
    import yaml

    children: dict[str, Any] = {
        site: {
            "vars": {"fleetscan_site": site},
            "hosts": {h.name: {"ansible_host": h.address} for h in fleet.hosts if h.name in hs},
        }
        for site, hs in SITES.items()
    }
    for name, hostvars in dict(extra).items():
        children.setdefault("extra", {"hosts": {}})["hosts"][name] = dict(hostvars)
    doc = {
        "all": {
            "vars": {"ansible_user": "root", "ansible_ssh_private_key_file": str(fleet.key)},
            "children": children,
        }
    }
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def redis(redis_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    try:
        server = start_redis(redis_binary, tmp_path_factory.mktemp("redis"))
    except (RuntimeError, OSError) as exc:
        require(False, f"could not start redis-server: {exc}")
        raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cluster(
    redis: Redis, site_fleet: SiteFleet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Two workers for dc1, one for dc2, each with its own site's known_hosts."""
    c = Cluster(redis, tmp_path_factory.mktemp("workers"))
    try:
        for site in ("dc1", "dc1", "dc2"):
            c.start_worker(site, known_hosts=site_fleet.known_hosts[site], key=site_fleet.key)
        yield c
    finally:
        c.stop()


@contextlib.contextmanager
def tarpit() -> Iterator[int]:
    """A loopback port that completes TCP handshakes but never speaks SSH."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield int(s.getsockname()[1])


def history(out: Path) -> list[str]:
    """A history database of this run's own (never the user's default one)."""
    return ["--db", f"sqlite:///{out.parent / (out.name + '-history.sqlite')}"]


def scan(
    inventory: Path,
    out: Path,
    *,
    distributed: Redis | None = None,
    known_hosts: Path | None = None,
    extra: tuple[str, ...] = (),
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    args = ["scan", "-i", str(inventory), "-p", str(BASELINE), "-o", str(out), *history(out)]
    args += ["--format", "json,csv,junit,html", "--connect-timeout", "10", "--host-timeout", "30"]
    args += extra
    if distributed is None:
        assert known_hosts is not None
        empty = out.parent / "ssh_config"
        empty.write_text("")  # read no ssh_config of the machine
        args += ["--known-hosts", str(known_hosts), "--ssh-config", str(empty)]
        return run_cli(args, cwd=out.parent, timeout=timeout)
    args += ["--distributed", distributed.url]
    return subprocess.run(
        [sys.executable, "-m", "fleetscan", *args],
        cwd=out.parent,
        env=distributed.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_scan(inventory: Path, out: Path, redis: Redis, *extra: str) -> subprocess.Popen[str]:
    args = ["scan", "-i", str(inventory), "-p", str(BASELINE), "-o", str(out), *history(out)]
    args += ["--format", "json,csv,junit,html", "--distributed", redis.url, *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "fleetscan", *args],
        cwd=out.parent,
        env=redis.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def hosts_by_name(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    names = [h["name"] for h in report["hosts"]]
    assert len(names) == len(set(names)), f"a host appears twice: {names}"
    return {h["name"]: h for h in report["hosts"]}


def comparable(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report without what differs between any two runs: ids, clocks,
    nonces and the machine-wide process list."""
    doc = json.loads(NONCE.sub("@@FLEETSCAN-N", json.dumps(report)))
    for key in ("id", "started", "finished", "duration_seconds"):
        doc["run"].pop(key)
    for host in doc["hosts"]:
        host.pop("duration_seconds")
        for ev in host["evidence"]:
            ev.pop("duration_seconds")
            ev["stdout"] = PS_SECTION.sub(r"\1(process list)\n\2", ev["stdout"])
    return dict(doc)


# --- equality ------------------------------------------------------------------------------


def test_distributed_run_equals_local_scan(
    site_fleet: SiteFleet, cluster: Cluster, tmp_path: Path
) -> None:
    inventory = write_inventory(tmp_path / "fleet.yaml", site_fleet)
    local = scan(inventory, tmp_path / "local", known_hosts=site_fleet.all_known_hosts)
    spread = scan(inventory, tmp_path / "spread", distributed=cluster.redis)
    local_doc = load_report(tmp_path / "local", local)
    spread_doc = load_report(tmp_path / "spread", spread)
    assert set(hosts_by_name(spread_doc)) == set(site_fleet.site_of), describe(spread)
    statuses = {h["name"]: h["status"] for h in spread_doc["hosts"]}
    assert set(statuses.values()) == {"ok"}, describe(spread)
    a, b = comparable(local_doc), comparable(spread_doc)
    assert a["run"] == b["run"]
    for name in site_fleet.site_of:
        assert hosts_by_name(a)[name] == hosts_by_name(b)[name], name
    assert a["hosts"] == b["hosts"]  # same order too
    assert a["findings"] == b["findings"]
    rule = forbidden_rule_for(FORBIDDEN_PORT)
    assert [(f["host"], f["rule_id"]) for f in b["findings"] if f["gating"]] == [("dc2-d", rule)]
    assert (local.returncode, spread.returncode) == (1, 1)
    # one run in the history, every host once, as for a local scan
    with sqlite3.connect(tmp_path / "spread-history.sqlite") as db:
        runs = db.execute("select run_id from runs").fetchall()
        statuses_kept = db.execute("select status from host_scans").fetchall()
    assert runs == [(spread_doc["run"]["id"],)]
    assert sorted(statuses_kept) == [("ok",)] * 4
    # each site's hosts were scanned by that site's workers only
    for w in cluster.workers:
        mine = set(re.findall(r"shard \S+: scanning (.*)", w.log_text()))
        for line in mine:
            assert {n.strip() for n in line.split(",")} <= set(SITES[w.site]), (w.site, line)


def test_site_without_worker_ends_not_scanned_at_once(
    site_fleet: SiteFleet, cluster: Cluster, tmp_path: Path
) -> None:
    inventory = write_inventory(
        tmp_path / "fleet.yaml",
        site_fleet,
        {"dc3-x": {"ansible_host": "127.0.0.1", "fleetscan_site": "dc3"}},
    )
    proc = scan(inventory, tmp_path / "out", distributed=cluster.redis)
    report = load_report(tmp_path / "out", proc)
    hosts = hosts_by_name(report)
    assert hosts["dc3-x"]["status"] == "not_scanned", describe(proc)
    assert hosts["dc3-x"]["message"] == "no worker for site dc3"
    assert hosts["dc3-x"]["verdict"] == "not-scanned"
    assert {hosts[n]["status"] for n in site_fleet.site_of} == {"ok"}
    assert report["run"]["summary"]["by_status"]["not_scanned"] == 1
    assert proc.returncode in (1, 3)  # the fleet has findings; dc3-x alone would be 3
    csv = (tmp_path / "out" / "hosts.csv").read_text()
    junit = (tmp_path / "out" / "junit.xml").read_text()
    html = (tmp_path / "out" / "report.html").read_text()
    for text in (csv, junit, html):
        assert "not_scanned" in text and "no worker for site dc3" in text


def test_a_shard_delivered_twice_gives_each_host_once(
    site_fleet: SiteFleet, cluster: Cluster, tmp_path: Path
) -> None:
    """The workers' visibility timeout (4 s) is shorter than this shard lasts
    (a tarpit holds it for the 12 s connect timeout): Redis hands the shard to
    the second dc1 worker while the first still scans it. Both answer; the
    run holds every host once."""
    dc1 = [w for w in cluster.workers if w.site == "dc1"]
    before = [len(w.log_text()) for w in dc1]
    with tarpit() as port:
        inventory = write_inventory(
            tmp_path / "fleet.yaml", site_fleet, {"dc1-slow": _slow_host(port, "dc1")}
        )
        proc = scan(
            inventory,
            tmp_path / "out",
            distributed=cluster.redis,
            extra=("--connect-timeout", "12"),
        )
    report = load_report(tmp_path / "out", proc)
    hosts = hosts_by_name(report)  # asserts: no host twice
    assert set(hosts) == {*site_fleet.site_of, "dc1-slow"}
    assert hosts["dc1-slow"]["status"] == "timeout", describe(proc)
    # both dc1 workers received the same shard
    for w, offset in zip(dc1, before, strict=True):
        assert re.search(r"shard \S+/dc1/0: scanning .*dc1-slow", w.log_text()[offset:]), w.name


def test_ctrl_c_on_the_coordinator_ends_the_run_interrupted_exit_130(
    site_fleet: SiteFleet, cluster: Cluster, tmp_path: Path
) -> None:
    # a host name of its own: an earlier test's redelivered shard may still be
    # logged by a worker while this one runs
    dc1 = [w for w in cluster.workers if w.site == "dc1"]
    offsets = [len(w.log_text()) for w in dc1]
    with tarpit() as port:
        inventory = write_inventory(
            tmp_path / "fleet.yaml", site_fleet, {"dc1-stop": _slow_host(port, "dc1")}
        )
        out = tmp_path / "out"
        proc = start_scan(inventory, out, cluster.redis, "--connect-timeout", "30")

        def started() -> bool:
            return any("dc1-stop" in w.log_text()[n:] for w, n in zip(dc1, offsets, strict=True))

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not started():
            time.sleep(0.05)
        assert started(), "no dc1 worker took the shard"
        proc.send_signal(signal.SIGINT)
        done = finish(proc)
    assert done.returncode == 130, describe(done)
    report = load_report(out, done)
    assert report["run"]["interrupted"] is True
    hosts = hosts_by_name(report)
    assert set(hosts) == {*site_fleet.site_of, "dc1-stop"}
    assert hosts["dc1-stop"]["status"] == "interrupted"


# --- faults --------------------------------------------------------------------------------


@pytest.fixture
def fresh_cluster(redis_binary: str, tmp_path: Path, site_fleet: SiteFleet) -> Iterator[Cluster]:
    """A broker and workers of this test's own (so killing them harms no other test)."""
    try:
        server = start_redis(redis_binary, tmp_path / "redis")
    except (RuntimeError, OSError) as exc:
        require(False, f"could not start redis-server: {exc}")
        raise
    c = Cluster(server, tmp_path / "workers")
    c.workdir.mkdir()
    try:
        yield c
    finally:
        c.stop()
        server.stop()


def _slow_host(port: int, site: str) -> dict[str, object]:
    return {"ansible_host": "127.0.0.1", "ansible_port": port, "fleetscan_site": site}


def _read_until(proc: subprocess.Popen[str], names: set[str]) -> list[str]:
    """Read the coordinator's ``-v`` lines (one per finished host) until all of
    ``names`` have finished."""
    assert proc.stderr is not None
    seen: list[str] = []
    while names - {line.split(":", 1)[0] for line in seen}:
        line = proc.stderr.readline()
        if not line:
            raise AssertionError(f"the scan ended early: {seen}")
        seen.append(line)
    return seen


def test_worker_killed_mid_shard_its_shard_completes_on_the_other_worker(
    site_fleet: SiteFleet, fresh_cluster: Cluster, tmp_path: Path
) -> None:
    workers = [
        fresh_cluster.start_worker(
            site, known_hosts=site_fleet.known_hosts[site], key=site_fleet.key
        )
        for site in ("dc1", "dc1", "dc2")
    ]
    with tarpit() as port:
        inventory = write_inventory(
            tmp_path / "fleet.yaml", site_fleet, {"dc1-slow": _slow_host(port, "dc1")}
        )
        out = tmp_path / "out"
        proc = start_scan(
            inventory, out, fresh_cluster.redis, "--shard-size", "1", "--connect-timeout", "6"
        )
        deadline = time.monotonic() + 60
        holder = None
        while holder is None and time.monotonic() < deadline:
            holder = next((w for w in workers[:2] if "scanning dc1-slow" in w.log_text()), None)
            time.sleep(0.05)
        assert holder is not None, [w.log_text()[-2000:] for w in workers]
        holder.kill()  # kill -9 the worker and its pool: mid-shard, never acknowledged
        done = finish(proc)
    other = next(w for w in workers[:2] if w is not holder)
    report = load_report(out, done)
    hosts = hosts_by_name(report)  # every host exactly once
    assert set(hosts) == {*site_fleet.site_of, "dc1-slow"}
    # redelivered: the surviving dc1 worker scanned it to its real end (the tarpit
    # never speaks SSH, so the handshake times out)
    assert "scanning dc1-slow" in other.log_text(), describe(done)
    assert hosts["dc1-slow"]["status"] == "timeout", describe(done)
    assert {hosts[n]["status"] for n in site_fleet.site_of} == {"ok"}, describe(done)


def test_all_workers_of_a_site_lost_its_hosts_end_not_scanned_before_the_deadline(
    site_fleet: SiteFleet, fresh_cluster: Cluster, tmp_path: Path
) -> None:
    for site in ("dc1", "dc2"):
        fresh_cluster.start_worker(
            site, known_hosts=site_fleet.known_hosts[site], key=site_fleet.key
        )
    dc2 = fresh_cluster.workers[1]
    with tarpit() as port:
        inventory = write_inventory(
            tmp_path / "fleet.yaml", site_fleet, {"dc2-slow": _slow_host(port, "dc2")}
        )
        out = tmp_path / "out"
        proc = start_scan(
            inventory, out, fresh_cluster.redis, "--connect-timeout", "30", "--run-deadline", "200"
        )
        wait_for_log(dc2, "scanning dc2-c", 60)
        dc2.kill()
        done = finish(proc)
    report = load_report(out, done)
    hosts = hosts_by_name(report)
    for name in ("dc2-c", "dc2-d", "dc2-slow"):
        assert hosts[name]["status"] == "not_scanned", describe(done)
        # found by the worker check, not by the 200 s deadline
        assert hosts[name]["message"] == "worker lost: no worker left for site dc2"
        assert hosts[name]["verdict"] == "not-scanned"
    assert {hosts[n]["status"] for n in SITES["dc1"]} == {"ok"}
    assert done.returncode == 3, describe(done)
    assert report["run"]["exit_code"] == 3


def test_broker_lost_mid_run_ends_with_what_finished_exit_3(
    site_fleet: SiteFleet, fresh_cluster: Cluster, tmp_path: Path
) -> None:
    for site in ("dc1", "dc2"):
        fresh_cluster.start_worker(
            site, known_hosts=site_fleet.known_hosts[site], key=site_fleet.key
        )
    with tarpit() as port:
        inventory = write_inventory(
            tmp_path / "fleet.yaml", site_fleet, {"dc2-slow": _slow_host(port, "dc2")}
        )
        out = tmp_path / "out"
        proc = start_scan(inventory, out, fresh_cluster.redis, "-v", "--connect-timeout", "30")
        _read_until(proc, set(SITES["dc1"]))  # dc1's results are in the run
        fresh_cluster.redis.kill()
        done = finish(proc)
    report = load_report(out, done)
    hosts = hosts_by_name(report)
    assert {hosts[n]["status"] for n in SITES["dc1"]} == {"ok"}, describe(done)
    for name in ("dc2-c", "dc2-d", "dc2-slow"):
        assert hosts[name]["status"] == "not_scanned", describe(done)
        assert hosts[name]["message"].startswith(
            "no answer from the broker redis://:***@127.0.0.1:"
        )
    assert done.returncode == 3, describe(done)
    for f in out.iterdir():  # the broker password is in no report and no output
        assert fresh_cluster.redis.password not in f.read_text(errors="replace"), f
    assert fresh_cluster.redis.password not in done.stdout + done.stderr
