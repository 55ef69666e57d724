"""fleetscan.drift: what counts as a change (pure; no database)."""

from __future__ import annotations

from fleetscan.drift import Reference, compare, host_changes
from fleetscan.model import Status

from .factory import lst, scan


def kinds(changes: object) -> list[tuple[str, str, str, int]]:
    return [(c.kind, c.proto, c.address, c.port) for c in changes]  # type: ignore[attr-defined]


def test_restarted_service_is_not_a_change() -> None:
    before = [
        lst("tcp", "0.0.0.0", 22, "sshd", pid=812),
        lst("udp", "127.0.0.1", 53, "dnsmasq", 90),
    ]
    after = [
        lst("tcp", "0.0.0.0", 22, "sshd", pid=4242),
        lst("udp", "127.0.0.1", 53, "dnsmasq", 91),
    ]
    assert host_changes("h", before, after, "R1") == []


def test_new_gone_and_owner_changed() -> None:
    before = [lst("tcp", "0.0.0.0", 22, "sshd"), lst("tcp", "0.0.0.0", 80, "nginx", user="www")]
    after = [
        lst("tcp", "0.0.0.0", 22, "sshd"),
        lst("tcp", "0.0.0.0", 80, "nc", user="www"),
        lst("tcp", "0.0.0.0", 4444, "nc"),
    ]
    got = host_changes("h", before, after, "R1")
    assert kinds(got) == [("owner_changed", "tcp", "0.0.0.0", 80), ("new", "tcp", "0.0.0.0", 4444)]
    owner = got[0]
    assert owner.before is not None and owner.before.processes[0].name == "nginx"
    assert owner.after is not None and owner.after.processes[0].name == "nc"
    assert all(c.since_run == "R1" for c in got)
    assert kinds(host_changes("h", after, before, "R2"))[-1] == ("gone", "tcp", "0.0.0.0", 4444)


def test_same_process_other_user_is_an_owner_change() -> None:
    got = host_changes(
        "h",
        [lst("tcp", "0.0.0.0", 5432, "postgres", user="postgres")],
        [lst("tcp", "0.0.0.0", 5432, "postgres", user="root")],
        "R1",
    )
    assert kinds(got) == [("owner_changed", "tcp", "0.0.0.0", 5432)]


def test_loopback_to_wildcard_is_one_widened_change() -> None:
    before = [lst("tcp", "127.0.0.1", 5432, "postgres")]
    after = [lst("tcp", "0.0.0.0", 5432, "postgres")]
    (change,) = host_changes("db", before, after, "R1")
    assert change.kind == "widened"
    assert change.before is not None and change.before.address == "127.0.0.1"
    assert change.after is not None and change.after.address == "0.0.0.0"
    (back,) = host_changes("db", after, before, "R1")
    assert back.kind == "narrowed"


def test_widening_to_ipv6_wildcard_and_to_a_private_address() -> None:
    got = host_changes(
        "h",
        [lst("tcp", "::1", 8080), lst("udp", "127.0.0.1", 161)],
        [lst("tcp", "::", 8080), lst("udp", "10.0.0.5", 161)],
        "R1",
    )
    assert kinds(got) == [("widened", "udp", "10.0.0.5", 161), ("widened", "tcp", "::", 8080)]


def test_move_within_one_exposure_class_is_gone_and_new() -> None:
    got = host_changes("h", [lst("tcp", "10.0.0.1", 80)], [lst("tcp", "10.0.0.2", 80)], "R1")
    assert sorted(c.kind for c in got) == ["gone", "new"]


def test_other_port_or_proto_is_never_paired_as_widening() -> None:
    got = host_changes("h", [lst("tcp", "127.0.0.1", 80)], [lst("udp", "0.0.0.0", 80)], "R1")
    assert sorted(c.kind for c in got) == ["gone", "new"]


def test_extra_sockets_on_the_same_port_do_not_hide_changes() -> None:
    # pre-forked daemon: the same socket listed twice with two pids is one listener
    before = [lst("tcp", "0.0.0.0", 80, "nginx", pid=1), lst("tcp", "0.0.0.0", 80, "nginx", pid=2)]
    after = [lst("tcp", "0.0.0.0", 80, "nginx", pid=7)]
    assert host_changes("h", before, after, "R1") == []


def test_host_not_fully_scanned_has_unknown_changes_never_gone() -> None:
    ref = {"a": Reference("R1", (lst("tcp", "0.0.0.0", 22, "sshd"),))}
    for status in (Status.UNREACHABLE, Status.PARTIAL, Status.TIMEOUT, Status.INTERRUPTED):
        changes, compared = compare([scan("a", [], status=status)], ref)
        assert changes == ()
        assert compared.unknown_hosts == ("a",) and compared.run is None


def test_first_complete_scan_is_the_baseline_not_a_flood_of_new() -> None:
    scans = [scan("a", [lst("tcp", "0.0.0.0", 22), lst("tcp", "0.0.0.0", 80)]), scan("b", [])]
    ref = {"b": Reference("R1", (lst("tcp", "0.0.0.0", 443),))}
    changes, compared = compare(scans, ref)
    assert kinds(changes) == [("gone", "tcp", "0.0.0.0", 443)]
    assert compared.baseline_hosts == ("a",) and compared.run == "R1" and compared.runs == ("R1",)
