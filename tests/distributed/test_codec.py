"""The wire codec: JSON only, strict both ways, no secrets in a shard, and a
result can speak only about the hosts of its own shard."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fleetscan import __version__
from fleetscan.distributed import codec
from fleetscan.distributed.plan import plan_shards, queue_name
from fleetscan.model import (
    CommandEvidence,
    HostScan,
    Listener,
    Process,
    Status,
    Target,
    UnparsedLine,
)

SETTINGS = codec.ShardSettings(connect_timeout=5.0, host_timeout=30.0, max_output=1 << 20)


def target(name: str, site: str = "dc1", **kw: Any) -> Target:
    return Target(name=name, address="127.0.0.1", port=2222, user="scan", site=site, **kw)


def shard(*names: str) -> codec.Shard:
    return codec.Shard("run/dc1/0", "dc1", SETTINGS, tuple(target(n) for n in names))


def full_scan(t: Target) -> HostScan:
    return HostScan(
        target=t,
        status=Status.OK,
        platform="linux",
        collector="ss -tulnp",
        listeners=(
            Listener(
                "tcp",
                6,
                "fe80::1",
                22,
                processes=(Process("sshd", 812, "root"), Process("sshd", 9, None)),
                zone="eth0",
                raw='tcp LISTEN 0 128 [fe80::1%eth0]:22 users:(("sshd",pid=812))',
                line=3,
            ),
            Listener("udp", 4, "0.0.0.0", 53, state="UNCONN", raw="udp …"),
        ),
        unparsed=(UnparsedLine(7, "garbage \udcff\x1b[31m"),),
        evidence=(CommandEvidence("ss -tulnp", 0, "out\udcfe", "", 0.25, truncated=True),),
        started=1000.5,
        finished=1001.25,
    )


def result_doc(sh: codec.Shard, scans: list[HostScan], **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        codec.encode_result(sh.id, sh.site, "w1@zone", scans, hostkey_checking=True)
    )
    doc.update(over)
    return doc


def test_shard_round_trips_without_inventory_variables() -> None:
    t = target(
        "h1",
        vars={"ansible_password": "s3cr3t", "api_token": "tok-123"},
        key_files=("~/.ssh/id_zone",),
        password_env="ZONE_PASS",
        passphrase_env="ZONE_KEY_PASS",
        become=True,
        groups=("web", "dc1"),
        jump_host="bastion",
    )
    sh = codec.Shard("run/dc1/0", "dc1", SETTINGS, (t,))
    text = codec.encode_shard(sh)
    assert "s3cr3t" not in text and "tok-123" not in text  # only names travel
    back = codec.decode_shard(text)
    assert back.targets == (t,)  # Target equality ignores vars
    (bt,) = back.targets
    assert dict(bt.vars) == {}
    assert (bt.key_files, bt.password_env, bt.passphrase_env) == (
        ("~/.ssh/id_zone",),
        "ZONE_PASS",
        "ZONE_KEY_PASS",
    )
    assert back.settings == SETTINGS and back.site == "dc1"


def test_result_round_trips_every_field_including_undecodable_bytes() -> None:
    sh = shard("h1")
    scan = full_scan(sh.targets[0])
    text = codec.encode_result(sh.id, sh.site, "w1", [scan], hostkey_checking=True)
    assert text.isascii()
    back = codec.decode_result(text, sh)
    assert back.scans["h1"] == scan
    assert back.worker == "w1" and back.hostkey_checking is True


def test_the_coordinators_own_target_is_attached_not_the_workers() -> None:
    sh = shard("h1")
    doc = result_doc(sh, [full_scan(target("h1", address_override := "x"))])
    del address_override
    back = codec.decode_result(json.dumps(doc), sh)
    assert back.scans["h1"].target is sh.targets[0]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(extra=1), "extra"),
        (lambda d: d.update(kind="fleetscan.shard"), "kind"),
        (lambda d: d.update(protocol=codec.PROTOCOL + 1), "wire protocol"),
        (lambda d: d.update(version="99.0.0"), "major.minor"),
        (lambda d: d.update(shard="run/dc1/1"), "answers shard"),
        (lambda d: d.update(site="dc2"), "answers shard"),
        (lambda d: d["scans"][0].update(name="intruder"), "not in the shard"),
        (lambda d: d["scans"].append(dict(d["scans"][0])), "appears twice"),
        (lambda d: d["scans"][0].update(status="not_scanned"), "cannot report not_scanned"),
        (lambda d: d["scans"][0].update(status="pwned"), "status"),
        (lambda d: d["scans"][0]["listeners"][0].update(port=70000), "port"),
        (lambda d: d["scans"][0]["listeners"][0].update(port="22"), "port"),
        (lambda d: d["scans"][0]["listeners"][0].update(proto="sctp"), "proto"),
        (lambda d: d["scans"][0]["listeners"][0].update(family=5), "family"),
        (lambda d: d["scans"][0].update(started=-1), "started"),
        (lambda d: d["scans"][0].update(message="x" * (codec.MAX_WIRE_TEXT + 200)), "message"),
        (lambda d: d["scans"][0].update(listeners={}), "listeners"),
        (lambda d: d.update(hostkey_checking="yes"), "hostkey_checking"),
    ],
)
def test_a_result_that_breaks_the_contract_is_refused_with_the_field_named(
    mutate: Any, expected: str
) -> None:
    sh = shard("h1", "h2")
    doc = result_doc(sh, [full_scan(sh.targets[0])])
    mutate(doc)
    with pytest.raises(codec.WireError) as err:
        codec.decode_result(json.dumps(doc), sh)
    assert expected in str(err.value)


@pytest.mark.parametrize(
    "text",
    [None, b"{}", "not json", "[]", '{"kind": "fleetscan.result"}', '{"a": NaN}', "[" * 100000],
)
def test_garbage_instead_of_a_result_is_a_wire_error_never_a_crash(text: object) -> None:
    with pytest.raises(codec.WireError):
        codec.decode_result(text, shard("h1"))


def test_a_result_may_leave_hosts_out_the_caller_decides_their_fate() -> None:
    sh = shard("h1", "h2")
    back = codec.decode_result(json.dumps(result_doc(sh, [full_scan(sh.targets[0])])), sh)
    assert set(back.scans) == {"h1"}


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("address", "-oProxyCommand=touch /tmp/x", "must not start with '-'"),
        ("name", "bad name", "whitespace"),
        ("user", "-l", "invalid user name"),
        ("transport", "telnet", "unknown transport"),
        ("jump_host", "a b", "whitespace"),
        ("port", 0, "port"),
        ("become", "yes", "become"),
    ],
)
def test_a_forged_shard_is_checked_like_an_inventory(field: str, value: Any, expected: str) -> None:
    doc = json.loads(codec.encode_shard(shard("h1")))
    doc["targets"][0][field] = value
    with pytest.raises(codec.WireError) as err:
        codec.decode_shard(json.dumps(doc))
    assert expected in str(err.value)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("protocol",), 0, "wire protocol"),
        (("site",), "../x", "invalid site"),
        (("settings", "host_timeout"), 0, "host_timeout"),
        (("settings", "max_output"), 10**12, "max_output"),
        (("settings", "transport"), "evil", "unknown transport"),
        (("targets",), [], "targets"),
    ],
)
def test_a_forged_shard_header_is_refused(path: tuple[str, ...], value: Any, expected: str) -> None:
    doc = json.loads(codec.encode_shard(shard("h1")))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(codec.WireError) as err:
        codec.decode_shard(json.dumps(doc))
    assert expected in str(err.value)


def test_duplicate_hosts_in_a_shard_are_refused() -> None:
    doc = json.loads(codec.encode_shard(shard("h1")))
    doc["targets"].append(doc["targets"][0])
    with pytest.raises(codec.WireError, match="twice"):
        codec.decode_shard(json.dumps(doc))


@pytest.mark.parametrize(
    ("protocol", "version", "ok"),
    [
        (codec.PROTOCOL, __version__, True),
        (codec.PROTOCOL, ".".join([*__version__.split(".")[:2], "999"]), True),
        (codec.PROTOCOL + 1, __version__, False),
        (codec.PROTOCOL, "9.9.0", False),
    ],
)
def test_compatibility_is_protocol_and_major_minor(protocol: int, version: str, ok: bool) -> None:
    assert (codec.compatible(protocol, version) is None) is ok


def test_shards_are_per_site_bounded_and_in_inventory_order() -> None:
    targets = [target(f"a{i}", "dc1") for i in range(5)] + [target("b0", "dc2")]
    targets.insert(2, target("b1", "dc2"))
    shards = plan_shards(targets, SETTINGS, run_id="R", shard_size=2)
    assert [(s.id, s.site, [t.name for t in s.targets]) for s in shards] == [
        ("R/dc1/0", "dc1", ["a0", "a1"]),
        ("R/dc1/1", "dc1", ["a2", "a3"]),
        ("R/dc1/2", "dc1", ["a4"]),
        ("R/dc2/0", "dc2", ["b1", "b0"]),
    ]
    assert queue_name("dc1") == "fleetscan.site.dc1"
    with pytest.raises(ValueError):
        plan_shards(targets, SETTINGS, run_id="R", shard_size=0)
