"""Exposure probes for real: a routed network of namespaces (see
``netns_topology``), real sshd and listeners in each, real nftables rules in
the targets, scanned by the CLI with probes from the scanner and from probe
hosts in four zones.

Firewall rules (source networks: office 10.B.1.0/24, app 10.B.2.0/24):

* db  5432  dropped from office                → filtered from office
* db  6379  dropped from everyone              → filtered everywhere (wide bind, info)
* db  8443  rejected with a TCP reset from office → refused from office
* web 8080  rejected with ICMP admin-prohibited from app → unreachable from app

Everything else a host reported is open from every zone that probes. Zone
``lab``'s only probe host has no bash, nc or python3: every cell there is
``not_probed`` with that reason. Counters in the targets' rulesets prove that
no SYN reached a port the host did not report (the loopback-only listener's
port included) and that no UDP packet was sent; port 80 got exactly one
connection per probing zone.
"""

from __future__ import annotations

import contextlib
import csv
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

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
from .netns_topology import Host, Sock, Topology, build, have_tools

pytestmark = [pytest.mark.netns, pytest.mark.timeout(180)]

ZONES = ["scanner", "office", "app", "ops", "lab"]
PROBING = ["scanner", "office", "app", "ops"]  # lab cannot probe

# counters first, then the filter; {B} is the second octet of the network
NFT = """
table inet fsx {{
  counter unlisted {{ }}
  counter udp_in {{ }}
  counter syn80 {{ }}
  chain input {{
    type filter hook input priority filter; policy accept;
    iif "lo" accept
    tcp flags & (syn | ack) == syn tcp dport != {{ {listed} }} counter name "unlisted"
    tcp flags & (syn | ack) == syn tcp dport 80 counter name "syn80"
    meta l4proto udp counter name "udp_in"
{rules}
  }}
}}
"""

DB_RULES = """\
    tcp dport 5432 ip saddr 10.{B}.1.0/24 drop
    tcp dport 6379 drop
    tcp dport 8443 ip saddr 10.{B}.1.0/24 reject with tcp reset"""

WEB_RULES = """\
    tcp dport 8080 ip saddr 10.{B}.2.0/24 reject with icmpx type admin-prohibited"""


def _nft(listed: list[int], rules: str) -> str:
    text = NFT.format(listed=", ".join(map(str, listed)), rules=rules)
    return text.replace("{{B}}", "{B}")


def _hosts() -> list[Host]:
    db_socks = (
        Sock("tcp", "0.0.0.0", 5432),
        Sock("tcp", "0.0.0.0", 6379),
        Sock("tcp", "0.0.0.0", 8443),
        Sock("tcp", "127.0.0.1", 9000),  # loopback only: never probed
        Sock("udp", "0.0.0.0", 5353),  # UDP: never probed
    )
    web_socks = (
        Sock("tcp", "0.0.0.0", 80),
        Sock("tcp", "0.0.0.0", 3306),
        Sock("tcp", "0.0.0.0", 8080),
    )
    return [
        Host("office", 1),
        Host("app", 2, hide=("bash",)),
        Host("db", 3, socks=db_socks, nft=_nft([22, 5432, 6379, 8443], DB_RULES)),
        Host("web", 4, socks=web_socks, nft=_nft([22, 80, 3306, 8080], WEB_RULES)),
        Host("ops", 5, hide=("bash", "nc")),
        Host("bare", 6, hide=("bash", "nc", "python3")),
    ]


POLICY = """\
version: 1
zones:
  office: {probe_hosts: [office]}
  app: {probe_hosts: [app]}
  ops: {probe_hosts: [ops]}
  lab: {probe_hosts: [bare]}
exposure:
  - id: db-only-from-app
    hosts: [db]
    ports: [5432]
    reachable_from: [app]
    required: false
    severity: high
  - id: nothing-from-office
    hosts: [db, web]
    except_ports: [22, 80, 8080]
    not_reachable_from: [office]
    severity: critical
  - id: web-8080-for-everyone
    hosts: [web]
    ports: [8080]
    reachable_from: [scanner, office, app, ops]
    severity: medium
"""


@dataclass
class Probed:
    topo: Topology
    proc: subprocess.CompletedProcess[str]
    report: dict[str, Any]
    out: Path


@pytest.fixture(scope="module")
def probed(ssh_keys: KeyMaterial, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probed]:
    require(os.geteuid() == 0, "network namespaces need root")
    missing = have_tools()
    require(not missing, f"missing {', '.join(missing)} (scripts/test-deps.sh installs them)")
    sshd = find_sshd()
    require(sshd is not None, "no sshd (install openssh-server: scripts/test-deps.sh does it)")
    assert sshd is not None
    workdir = ssh_keys.tmp / f"exposure-{os.getpid()}"
    workdir.mkdir()
    with contextlib.ExitStack() as stack:
        try:
            topo = build(stack, _hosts(), sshd=sshd, workdir=workdir, keys_dir=ssh_keys.keys_dir)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            require(False, f"could not build the exposure topology: {exc}")
            raise
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text(
            "".join(
                known_hosts_entry(h.address, 22, h.host_key)
                for h in topo.hosts.values()
                if h.host_key
            )
        )
        inventory = workdir / "hosts.ini"
        lines = ["[fleet]"]
        for h in topo.hosts.values():
            lines.append(
                f"{h.name} ansible_host={h.address} ansible_user=root "
                f"ansible_ssh_private_key_file={ssh_keys.client_key}"
            )
        inventory.write_text("\n".join(lines) + "\n")
        policy = workdir / "exposure.yaml"
        policy.write_text(POLICY)
        tmp = tmp_path_factory.mktemp("exposure-scan")
        out = tmp / "out"
        args = scan_args(inventory, out, known_hosts, policy)
        # an empty ssh_config as a regular file (fleetscan refuses devices such as /dev/null)
        empty = workdir / "ssh_config"
        empty.write_text("")
        args = [str(empty) if a == "/dev/null" else a for a in args]
        args += ["--format", "json,csv,html", "--probe-zones", ",".join(ZONES)]
        args += ["--probe-timeout", "1", "--firewall-evidence"]
        proc = run_cli(args, cwd=tmp, timeout=120)
        yield Probed(topo, proc, load_report(out, proc), out)


def _expected(topo: Topology) -> dict[tuple[str, str, int, str], str]:
    """(host, bind address, port, zone) → result, for every listener and zone."""
    listeners: dict[str, list[tuple[str, str, int]]] = {}
    for h in topo.hosts.values():
        listeners[h.name] = [
            ("tcp", h.address, 22),
            *((s.proto, s.address, s.port) for s in h.socks),
        ]
    special = {
        ("db", 5432, "office"): "filtered",
        ("db", 8443, "office"): "refused",
        ("web", 8080, "app"): "unreachable",
        **{("db", 6379, z): "filtered" for z in PROBING},
    }
    want = {}
    for host, socks in listeners.items():
        for proto, addr, port in socks:
            for zone in ZONES:
                if zone == "lab" or proto == "udp" or addr == "127.0.0.1":
                    result = "not_probed"
                else:
                    result = special.get((host, port, zone), "open")
                want[(host, addr, port, zone)] = result
    return want


def test_every_host_is_scanned_ok_and_probing_changes_no_status(probed: Probed) -> None:
    statuses = {h["name"]: h["status"] for h in probed.report["hosts"]}
    assert statuses == dict.fromkeys(probed.topo.hosts, "ok"), describe(probed.proc)


def test_the_matrix_is_exact_for_every_listener_and_zone(probed: Probed) -> None:
    got = {
        (r["host"], r["address"], r["port"], r["zone"]): r["result"]
        for r in probed.report["exposure"]
    }
    assert len(got) == len(probed.report["exposure"])  # one row per (listener, zone)
    assert got == _expected(probed.topo), describe(probed.proc)


def test_each_zone_probes_from_its_probe_host_with_the_tool_it_has(probed: Probed) -> None:
    method = {"office": "bash", "app": "nc", "ops": "python3"}
    for r in probed.report["exposure"]:
        if r["result"] == "not_probed":
            continue
        assert r["probed_address"] == probed.topo.hosts[r["host"]].address
        if r["zone"] == "scanner":
            assert r["probe_host"] is None
        else:
            assert r["probe_host"] == r["zone"]
            assert r["reason"].startswith(method[r["zone"]] + ": "), r


def test_not_probed_cells_say_why(probed: Probed) -> None:
    reasons = {
        (r["host"], r["port"], r["zone"]): r["reason"]
        for r in probed.report["exposure"]
        if r["result"] == "not_probed"
    }
    assert reasons[("db", 9000, "scanner")] == "bound to loopback only"
    assert reasons[("db", 5353, "office")].startswith("udp")
    assert (
        "probe host bare: no bash 5 with timeout, no nc and no python3"
        in (reasons[("web", 80, "lab")])
    )


def test_exposure_findings_and_exit_code(probed: Probed) -> None:
    found = sorted(
        (f["rule_id"], f["host"], f["listener"]["port"], f["severity"], f["gating"])
        for f in probed.report["findings"]
    )
    assert found == sorted(
        [
            # the firewall leaks: 5432 is open from zones other than app
            ("db-only-from-app", "db", 5432, "high", True),
            ("db-only-from-app", "db", 5432, "high", True),
            # 3306 must not be reachable from office, and is
            ("nothing-from-office", "web", 3306, "critical", True),
            # 8080 must be reachable from app, and is blocked
            ("web-8080-for-everyone", "web", 8080, "medium", False),
            # bound to 0.0.0.0 but filtered from every zone that probed
            ("exposure-wide-bind-filtered", "db", 6379, "info", False),
        ]
    ), describe(probed.proc)
    leaks = [f["message"] for f in probed.report["findings"] if f["rule_id"] == "db-only-from-app"]
    assert any("from zone scanner" in m for m in leaks) and any("from zone ops" in m for m in leaks)
    assert probed.proc.returncode == 1, describe(probed.proc)


def test_no_connection_went_to_a_port_the_host_did_not_report(probed: Probed) -> None:
    for host in ("db", "web"):
        assert probed.topo.nft_counter(host, "unlisted") == 0
        assert probed.topo.nft_counter(host, "udp_in") == 0
    # one connection per (listener, zone): web's port 80 from the four probing zones
    assert probed.topo.nft_counter("web", "syn80") == len(PROBING)


def test_exposure_csv_and_html_carry_the_matrix(probed: Probed) -> None:
    with (probed.out / "exposure.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(probed.report["exposure"])
    assert {(r["host"], r["port"], r["zone"], r["result"]) for r in rows} >= {
        ("web", "8080", "app", "unreachable"),
        ("db", "8443", "office", "refused"),
    }
    html = (probed.out / "report.html").read_text(encoding="utf-8")
    assert html.count('class="data compact exposure"') == len(probed.topo.hosts)
    assert "probe-unreachable" in html and "probe-filtered" in html


def test_firewall_ruleset_is_shown_as_evidence_of_each_host(probed: Probed) -> None:
    def ruleset(name: str) -> dict[str, Any]:
        host = next(h for h in probed.report["hosts"] if h["name"] == name)
        (ev,) = [e for e in host["evidence"] if e["command"].startswith("firewall ruleset")]
        return dict(ev)

    db = ruleset("db")
    assert "### nft list ruleset" in db["stdout"] and "table inet fsx" in db["stdout"]
    assert "tcp dport 6379 drop" in db["stdout"]
    office = ruleset("office")  # no rules there: the listing is empty, not an error
    assert "### nft list ruleset" in office["stdout"] and "table inet fsx" not in office["stdout"]
    html = (probed.out / "report.html").read_text(encoding="utf-8")
    assert html.count('<pre class="ruleset"') == len(probed.topo.hosts)
    assert "tcp dport 8080 ip saddr" in html
