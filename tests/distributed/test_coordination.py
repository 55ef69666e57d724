"""The coordinator's bookkeeping and the worker's refusals, without a broker:
every host ends exactly once, whatever arrives (late, twice, forged, partial)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetscan.distributed import codec
from fleetscan.distributed.coordinator import (
    SITE,
    SiteWorkers,
    _RunState,
    derive_deadline,
    no_worker_message,
    summarise_workers,
)
from fleetscan.distributed.engine import broker_url, redact
from fleetscan.distributed.plan import plan_shards
from fleetscan.distributed.worker import WorkerConfig, scan_shard
from fleetscan.errors import ConfigError
from fleetscan.model import HostScan, Status, Target
from fleetscan.runner import ScanSettings

SETTINGS = codec.ShardSettings(connect_timeout=5.0, host_timeout=30.0, max_output=1 << 20)


def targets(site: str, *names: str) -> list[Target]:
    return [Target(name=n, address="127.0.0.1", port=2222, site=site) for n in names]


def ok(t: Target) -> HostScan:
    return HostScan(t, Status.OK, platform="linux", collector="ss -tulnp")


def result(shard: codec.Shard, scans: list[HostScan], error: str | None = None) -> str:
    return codec.encode_result(
        shard.id, shard.site, "w1", scans, hostkey_checking=True, error=error
    )


def run_state(*ts: Target, size: int = 2) -> tuple[_RunState, list[HostScan]]:
    emitted: list[HostScan] = []
    shards = plan_shards(list(ts), SETTINGS, run_id="R", shard_size=size)
    state = _RunState(shards, emitted.append)
    for i, s in enumerate(state.pending_shards()):
        state.sent(s, f"task-{i}")
    return state, emitted


def test_each_host_is_emitted_once_even_when_a_shard_is_answered_twice() -> None:
    state, emitted = run_state(*targets("dc1", "a", "b"))
    (shard,) = state.shards
    state.take("task-0", result(shard, [ok(t) for t in shard.targets]))
    assert [s.host for s in emitted] == ["a", "b"]
    assert not state.pending()
    # the task is no longer polled, so a redelivered copy finishing later is
    # never read; and nothing that ends the run later can add a second entry
    assert state.task_ids() == []
    state.fail_all("late")
    state.fail_site("dc1", "gone")
    assert [s.host for s in emitted] == ["a", "b"]


def test_hosts_a_worker_leaves_out_end_not_scanned_with_the_reason() -> None:
    state, emitted = run_state(*targets("dc1", "a", "b"))
    (shard,) = state.shards
    state.take("task-0", result(shard, [ok(shard.targets[0])]))
    by = {s.host: s for s in emitted}
    assert by["a"].status is Status.OK
    assert by["b"].status is Status.NOT_SCANNED
    assert by["b"].message == "worker w1 returned no result for this host"


def test_a_forged_result_fails_its_shard_closed() -> None:
    state, emitted = run_state(*targets("dc1", "a"))
    (shard,) = state.shards
    doc = json.loads(result(shard, [ok(shard.targets[0])]))
    doc["scans"][0]["name"] = "someone-else"
    state.take("task-0", json.dumps(doc))
    (scan,) = emitted
    assert scan.status is Status.NOT_SCANNED and not scan.status.complete
    assert "unusable result from site dc1" in scan.message and "not in the shard" in scan.message


def test_an_error_result_names_the_worker() -> None:
    state, emitted = run_state(*targets("dc1", "a"))
    (shard,) = state.shards
    state.take("task-0", result(shard, [], error="incompatible coordinator"))
    assert emitted[0].message == "worker w1: incompatible coordinator"


def test_a_failed_task_fails_its_shard() -> None:
    state, emitted = run_state(*targets("dc1", "a"))
    state.take_failure("task-0", {"exc_type": "MemoryError", "exc_message": "boom"})
    assert emitted[0].status is Status.NOT_SCANNED
    assert emitted[0].message == "worker error on site dc1: MemoryError: boom"


def test_failing_a_site_touches_only_that_site() -> None:
    state, emitted = run_state(*targets("dc1", "a"), *targets("dc2", "b", "c"), size=1)
    state.fail_site("dc2", "worker lost: no worker left for site dc2")
    assert sorted(s.host for s in emitted) == ["b", "c"]
    assert state.pending_sites() == ["dc1"]
    assert sorted(state.abandoned) == ["task-1", "task-2"]
    state.fail_all(f"no result from site {SITE} in time")
    assert emitted[-1].host == "a" and emitted[-1].message == "no result from site dc1 in time"


def _info(site: str, **over: object) -> dict[str, object]:
    from fleetscan import __version__

    info: dict[str, object] = {
        "site": site,
        "version": __version__,
        "protocol": codec.PROTOCOL,
        "slots": 2,
        "host_concurrency": 50,
        "visibility_timeout": 300.0,
        "hostkey_checking": True,
    }
    info.update(over)
    return info


def test_workers_are_folded_by_site_and_incompatible_ones_do_not_count() -> None:
    replies = [
        {"w1@a": _info("dc1")},
        {"w2@a": _info("dc1", slots=3, host_concurrency=10)},
        {"w3@b": _info("dc2", protocol=codec.PROTOCOL + 1)},
        {"w4@c": "not a dict"},
        "garbage",
    ]
    sites = summarise_workers(replies)
    assert sites["dc1"].names == ["w1@a", "w2@a"]
    assert (sites["dc1"].slots, sites["dc1"].host_concurrency) == (5, 10)
    assert sites["dc2"].names == []
    assert no_worker_message("dc2", sites["dc2"]).startswith("no worker for site dc2 (incompatible")
    assert no_worker_message("dc3", None) == "no worker for site dc3"


def test_the_derived_deadline_covers_waves_and_one_redelivery() -> None:
    state, _ = run_state(*targets("dc1", "a", "b", "c", "d", "e"), size=1)
    # unsent shards are what derive_deadline counts: make a fresh, unsent state
    state = _RunState(state.shards, lambda s: None)
    workers = {"dc1": SiteWorkers(names=["w"], slots=2, host_concurrency=1, visibility_timeout=60)}
    # 5 shards over 2 slots = 3 waves of 30 s, + 60 s visibility + one more 30 s shard + 30 s
    assert derive_deadline(state, workers, ScanSettings(host_timeout=30)) == 3 * 30 + 60 + 30 + 30


def _config(**kw: object) -> WorkerConfig:
    return WorkerConfig(site="dc1", name="w1", **kw)  # type: ignore[arg-type]


def test_worker_refuses_to_read_a_password_variable_it_was_not_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZONE_PASS", "hunter2")
    t = Target(name="h1", address="127.0.0.1", port=1, site="dc1", password_env="ZONE_PASS")
    shard = codec.Shard("R/dc1/0", "dc1", SETTINGS, (t,))
    back = codec.decode_result(scan_shard(_config(), codec.encode_shard(shard)), shard)
    scan = back.scans["h1"]
    assert scan.status is Status.AUTH_FAILED
    assert "--allow-secret-env" in scan.message and "hunter2" not in scan.message


def test_worker_never_reads_the_broker_password_for_a_shard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FLEETSCAN_* variables may be secrets on a scanner; on a worker the broker
    password is one, so a password variable must be listed explicitly."""
    monkeypatch.setenv("FLEETSCAN_BROKER_PASSWORD", "broker-secret")
    t = Target(
        name="h1", address="127.0.0.1", port=1, site="dc1", password_env="FLEETSCAN_BROKER_PASSWORD"
    )
    shard = codec.Shard("R/dc1/0", "dc1", SETTINGS, (t,))
    text = scan_shard(_config(), codec.encode_shard(shard))
    scan = codec.decode_result(text, shard).scans["h1"]
    assert scan.status is Status.AUTH_FAILED and "broker-secret" not in text


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ('{"kind": "fleetscan.shard", "shard": "R/dc1/0", "site": "dc1"}', "shard: "),
        ("][", "not valid JSON"),
    ],
)
def test_worker_answers_a_bad_shard_with_an_error_result(payload: str, expected: str) -> None:
    doc = json.loads(scan_shard(_config(), payload))
    assert doc["kind"] == "fleetscan.result" and doc["scans"] == []
    assert expected in doc["error"]


def test_worker_refuses_a_shard_of_another_site() -> None:
    shard = codec.Shard("R/dc2/0", "dc2", SETTINGS, tuple(targets("dc2", "x")))
    doc = json.loads(scan_shard(_config(), codec.encode_shard(shard)))
    assert "reached a dc1 worker" in doc["error"]


def test_broker_password_never_on_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEETSCAN_BROKER_PASSWORD", raising=False)
    monkeypatch.delenv("FLEETSCAN_BROKER_URL", raising=False)
    with pytest.raises(ConfigError, match="must not be on the command line"):
        broker_url("redis://:pw@127.0.0.1:6379/0", field="--distributed")
    with pytest.raises(ConfigError, match="redis:// or rediss://"):
        broker_url("amqp://127.0.0.1//", field="--distributed")
    with pytest.raises(ConfigError, match="no broker URL"):
        broker_url(None, field="--broker")
    monkeypatch.setenv("FLEETSCAN_BROKER_PASSWORD", "p@ss/word")
    url = broker_url("rediss://127.0.0.1:6380/0?ssl_cert_reqs=required", field="--distributed")
    assert url == "rediss://:p%40ss%2Fword@127.0.0.1:6380/0?ssl_cert_reqs=required"
    assert redact(url) == "rediss://:***@127.0.0.1:6380/0?ssl_cert_reqs=required"
    # the whole URL, password included, may come from the environment
    monkeypatch.setenv("FLEETSCAN_BROKER_URL", "redis://fleet:envpw@127.0.0.1:6379/1")
    assert broker_url(None, field="--broker") == "redis://fleet:envpw@127.0.0.1:6379/1"


def test_worker_checks_the_key_files_a_shard_names_on_its_own_disk(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-key")
    t = Target(name="h1", address="127.0.0.1", port=1, site="dc1", key_files=(missing,))
    shard = codec.Shard("R/dc1/0", "dc1", SETTINGS, (t,))
    back = codec.decode_result(scan_shard(_config(), codec.encode_shard(shard)), shard)
    scan = back.scans["h1"]
    assert scan.status is Status.AUTH_FAILED
    assert scan.message.startswith("on worker w1: host h1: private key file")
