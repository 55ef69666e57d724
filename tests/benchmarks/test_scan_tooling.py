"""The benchmark's own logic (bench/scan.py, bench/latency.py): arguments, address
mapping, tables, verification. The benchmark itself never runs in CI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.latency import NAT_RULES, client_ip, parse_ms
from bench.scan import Run, curve_table, fleetscan_ok, inventory, parse_args, table


def test_defaults_measure_both_transports_at_fleetscans_default_concurrency() -> None:
    a = parse_args([])
    assert (a.n, a.concurrency, a.transport) == (500, [50], ["asyncssh", "paramiko"])
    assert (a.latency, a.curve, a.bare_concurrency, a.delay_via) == (None, None, 200, "auto")


@pytest.mark.parametrize(("text", "ms"), [("50ms", 50.0), ("50", 50.0), ("0.05s", 50.0)])
def test_latency_takes_milliseconds_or_seconds(text: str, ms: float) -> None:
    assert parse_ms(text) == ms
    assert parse_args(["1000", "--latency", text]).latency == ms


def test_curve_points_are_sorted_and_distinct() -> None:
    assert parse_args(["--curve", "2000,500,1000,500"]).curve == [500, 1000, 2000]


@pytest.mark.parametrize(
    "argv",
    [
        ["--curve", "500,6000"],  # fleet.py stops at 5,000
        ["--curve", "500,lots"],
        ["--curve", "500", "--latency", "50ms"],
        ["--latency", "0ms"],
        ["6000"],
    ],
)
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as e:
        parse_args(argv)
    assert e.value.code == 2


def test_fleet_addresses_map_onto_the_delayed_network() -> None:
    assert client_ip("127.0.10.1") == "10.231.10.1"
    assert client_ip("127.0.29.250") == "10.231.29.250"  # host 5,000
    with pytest.raises(ValueError, match=r"not a fleet\.py address"):
        client_ip("10.0.0.1")
    # the namespace's rule maps the same /16 back onto the fleet's loopback addresses
    assert "10.231.0.0/16 : 127.0.0.0/16" in NAT_RULES


def m(wall: float, cli: float, srv: float, peak: float, rss: float = 0.0) -> dict[str, float]:
    return {
        "wall_s": wall,
        "cli_cpu_s": cli,
        "srv_cpu_s": srv,
        "cli_mem_peak_mb": peak,
        "max_rss_mb": rss,
    }


def test_table_gives_each_row_its_ratios_to_its_own_reference() -> None:
    ref = Run("bare asyncssh (c50)", 1000, m(10.0, 2.0, 20.0, 40.0, 50.0), ok=1000)
    fs = Run("fleetscan asyncssh (c50)", 1000, m(12.0, 3.0, 22.0, 60.0, 80.0), ok=999, ref=ref)
    lines = table([ref, fs])
    assert lines[2] == (
        "| bare asyncssh (c50) | 1000 | 1000/1000 | 10.0 | 2.0 | 20.0 | 40.0 | 50.0 "
        "| - | - | - | - |"
    )
    assert lines[3] == (
        "| fleetscan asyncssh (c50) | 1000 | 999/1000 | 12.0 | 3.0 | 22.0 | 60.0 | 80.0 "
        "| 1.20x | 1.50x | 1.10x | 1.50x |"
    )


def test_a_run_without_figures_shows_zeroes_and_no_ratio() -> None:
    ref = Run("bare", 10, {}, ok=None)
    lines = table([ref, Run("fleetscan", 10, {}, ok=None, ref=ref)])
    assert lines[3].startswith("| fleetscan | 10 | ? | 0.0 |")
    assert lines[3].endswith("| - | - | - | - |")


def test_curve_reports_growth_per_added_host_between_points_and_overall() -> None:
    pts = [
        Run(
            "fleetscan asyncssh (c50)", 500, m(1, 1, 1, 100.0, 90.0) | {"reports_mb": 12.5}, ok=500
        ),
        Run("fleetscan asyncssh (c50)", 1000, m(1, 1, 1, 105.0, 92.0), ok=1000),
        Run("fleetscan asyncssh (c50)", 5000, m(1, 1, 1, 145.0, 100.0), ok=5000),
    ]
    lines = curve_table(pts)
    assert lines[2].endswith("| 90.0 | 12.5 | - | - |")
    assert lines[3].endswith("| 92.0 | - | 10.2 | 4.1 |")  # 5 MB / 500 hosts, 2 MB / 500 hosts
    assert lines[4].endswith("| 10.2 | 2.0 |")  # 40 MB / 4000 hosts, 8 MB / 4000
    assert lines[5].startswith("| fleetscan asyncssh (c50) | 500→5000 |")
    assert lines[5].endswith("| | 10.2 | 2.3 |")
    assert all(
        line.count("|") == lines[0].count("|") for line in lines
    )  # 45 MB / 4500, 10 MB / 4500


FLEET = {
    "port": 2222,
    "user": "root",
    "client_key": "/k",
    "hosts": [
        {"name": "h0001", "ip": "127.0.10.1", "listeners": 13},
        {"name": "h0002", "ip": "127.0.10.2", "listeners": 8},
        {"name": "h0003", "ip": "127.0.10.3", "listeners": 13},
    ],
}


def test_a_host_counts_ok_only_with_every_listener_the_fleet_served(tmp_path: Path) -> None:
    report = {
        "hosts": [
            {"name": "h0001", "status": "ok", "listeners": [{}] * 13},
            {"name": "h0002", "status": "ok", "listeners": [{}] * 7},  # one missing
            {"name": "h0003", "status": "timeout", "listeners": []},
        ]
    }
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert fleetscan_ok(tmp_path, FLEET) == 1
    assert fleetscan_ok(tmp_path / "missing", FLEET) is None


def test_inventory_of_the_first_k_hosts(tmp_path: Path) -> None:
    text = inventory(FLEET, tmp_path / "f.ini", 2).read_text()
    assert text.splitlines() == [
        "[fleet]",
        "h0001 ansible_host=127.0.10.1 ansible_port=2222 ansible_user=root "
        "ansible_ssh_private_key_file=/k",
        "h0002 ansible_host=127.0.10.2 ansible_port=2222 ansible_user=root "
        "ansible_ssh_private_key_file=/k",
    ]
