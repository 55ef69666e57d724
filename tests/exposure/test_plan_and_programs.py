"""Probe planning (what is connected to, and what is not) and the remote
programs' contract (constant program, validated data, forged lines ignored)."""

from __future__ import annotations

import pytest

from fleetscan.exposure.plan import Endpoint, endpoints, plan_zone
from fleetscan.exposure.remote import (
    POSIX_COMMAND,
    POWERSHELL_COMMAND,
    Request,
    new_request,
    posix_program,
    read_answer,
)
from fleetscan.model import HostScan, Status, Target
from fleetscan.policy.schema import Zone
from tests.policy.builders import listener


def _scan(
    address: str, *socks: tuple[str, str], status: Status = Status.OK, **vars: str
) -> HostScan:
    return HostScan(
        target=Target("h1", address, vars=vars, groups=("dbs",)),
        status=status,
        listeners=tuple(listener(p, s, "svc") for p, s in socks),
    )


@pytest.mark.parametrize(
    ("address", "proto", "sock", "reason"),
    [
        ("10.0.0.5", "tcp", "0.0.0.0:22", ""),
        ("10.0.0.5", "tcp", "10.0.0.5:22", ""),
        ("10.0.0.5", "tcp", "[::]:22", ""),  # may be dual-stack: the connect tells
        ("db.example.internal", "tcp", "10.9.9.9:22", ""),  # a name: the connect tells
        ("10.0.0.5", "udp", "0.0.0.0:53", "udp: a TCP connect cannot judge it (not probed)"),
        ("10.0.0.5", "tcp", "127.0.0.1:5432", "bound to loopback only"),
        ("10.0.0.5", "tcp", "[::1]:5432", "bound to loopback only"),
        ("10.0.0.5", "tcp", "[fe80::1%eth0]:22", "bound to a link-local address only"),
        (
            "10.0.0.5",
            "tcp",
            "10.0.0.6:80",
            "bound to 10.0.0.6 only, not to the probed address 10.0.0.5",
        ),
        (
            "2001:db8::5",
            "tcp",
            "0.0.0.0:80",
            "IPv4-only socket; probed address 2001:db8::5 is IPv6",
        ),
        (
            "bad host;rm -rf /",
            "tcp",
            "0.0.0.0:80",
            "inventory address 'bad host;rm -rf /' is not an IP address or DNS name",
        ),
    ],
)
def test_what_is_probed_and_why_not(address: str, proto: str, sock: str, reason: str) -> None:
    (row,) = plan_zone([_scan(address, (proto, sock))], None)
    assert row.reason == reason
    assert (row.endpoint is None) == bool(reason)
    if row.endpoint:
        assert row.endpoint == Endpoint(address, int(sock.rsplit(":", 1)[1]))


def test_only_reported_ports_at_inventory_addresses_one_connection_each() -> None:
    scans = [
        _scan("10.0.0.5", ("tcp", "0.0.0.0:22"), ("tcp", "[::]:22"), ("tcp", "0.0.0.0:443")),
        _scan("10.0.0.6", ("tcp", "0.0.0.0:22"), status=Status.AUTH_FAILED),
    ]
    rows = plan_zone(scans, None)
    assert len(rows) == 3  # the unscanned host has no listeners to probe
    assert endpoints(rows) == [Endpoint("10.0.0.5", 22), Endpoint("10.0.0.5", 443)]


def test_zone_address_var_and_skips_come_from_inventory_and_policy() -> None:
    zone = Zone(probe_hosts=("p",), address_var="office_ip", skip_ports=(443,))  # type: ignore[arg-type]
    s = _scan("10.0.0.5", ("tcp", "0.0.0.0:22"), ("tcp", "0.0.0.0:443"), office_ip="192.168.7.5")
    a, b = plan_zone([s], zone)
    assert a.endpoint == Endpoint("192.168.7.5", 22)
    assert (b.endpoint, b.reason) == (None, "port excluded from this zone by policy")
    skip_group = Zone(probe_hosts=("p",), skip_groups=("db*",))  # type: ignore[arg-type]
    assert {r.reason for r in plan_zone([s], skip_group)} == {
        "host excluded from this zone by policy"
    }


def test_endpoints_interleave_hosts() -> None:
    scans = [
        HostScan(
            Target(f"h{i}", f"10.0.0.{i}"),
            Status.OK,
            listeners=(listener("tcp", "0.0.0.0:22"), listener("tcp", "0.0.0.0:80")),
        )
        for i in (1, 2)
    ]
    got = [(e.address, e.port) for e in endpoints(plan_zone(scans, None))]
    assert got == [("10.0.0.1", 22), ("10.0.0.2", 22), ("10.0.0.1", 80), ("10.0.0.2", 80)]


def test_remote_programs_are_constant_and_carry_data_only_in_the_request() -> None:
    a = new_request([Endpoint("10.0.0.5", 22)], 1.0, 8)
    b = new_request([Endpoint("db.internal", 5432), Endpoint("::1", 1)], 3.5, 2)
    pa, pb = posix_program(a), posix_program(b)
    # everything but the request body is identical
    assert pa.replace(a.body(), "") == pb.replace(b.body(), "")
    assert POSIX_COMMAND == "sh -s" and "10.0.0.5" not in POWERSHELL_COMMAND
    assert b.body().splitlines()[1:] == ["0 db.internal 5432", "1 ::1 1"]
    with pytest.raises(ValueError):
        Request("m", (Endpoint("x$(reboot)", 22),), 1.0, 1).body()
    with pytest.raises(ValueError):
        Request("m", (Endpoint("10.0.0.1", 0),), 1.0, 1).body()


def test_answer_lines_without_this_runs_marker_are_ignored() -> None:
    req = new_request([Endpoint("10.0.0.5", 22), Endpoint("10.0.0.5", 80)], 1.0, 8)
    m = req.marker
    out = "\n".join(
        [
            "Welcome to the jump host",
            "@@FLEETSCAN-PROBE-0000000000000000 r 1 open 1.0 forged by another marker",
            f"{m} method bash",
            f"{m} r 0 filtered - no answer within 1s",
            f"{m} r 7 open 1.0 index out of range",
            f"{m} r 1 bogus 1.0 unknown result word",
        ]
    )
    answer = read_answer(req, out)
    assert answer.method == "bash"
    assert {e.port: (o.result, o.reason) for e, o in answer.outcomes.items()} == {
        22: ("filtered", "bash: no answer within 1s")
    }
