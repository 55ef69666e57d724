"""Probe hosts end to end over SSH (in-process simulated hosts, real TCP
connects on 127.0.0.1): each probe method, the fallbacks, a Windows probe
host, a probe host that cannot probe, and the findings of the matrix."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fleetscan.model import ScanRun, Status
from fleetscan.testing.fleet import sim_fleet
from fleetscan.testing.simhost import SimHost
from tests.exposure.simprobe import (
    FIX,
    closed_port,
    listening,
    matrix,
    probe_run,
    ss_output,
    tool_dir,
)

CORPUS = FIX / "corpus"


def _app_host(open_ports: list[int], refused: int) -> SimHost:
    rows = [("tcp", "0.0.0.0", p) for p in open_ports]
    rows += [("tcp", "0.0.0.0", refused), ("tcp", "127.0.0.1", 9), ("udp", "0.0.0.0", 5353)]
    return SimHost("app-01", outputs={"ss": ss_output(rows)})


POLICY = """
version: 1
zones:
  lab:
    probe_hosts: [{probes}]
    skip_hosts: [probe-*]
exposure:
  - id: nothing-from-lab
    not_reachable_from: [lab]
    except_ports: [{allowed}]
    severity: critical
  - id: refused-port-needed-from-lab
    ports: [{refused}]
    reachable_from: [lab]
    severity: medium
"""


def _scan(tmp: Path, probes: list[SimHost], open_ports: list[int], refused: int) -> ScanRun:
    text = POLICY.format(
        probes=", ".join(p.name for p in probes), allowed=open_ports[0], refused=refused
    )

    async def main() -> ScanRun:
        async with sim_fleet(tmp, [_app_host(open_ports, refused), *probes]) as fleet:
            return await probe_run(fleet, tmp, text, ["lab"])

    return asyncio.run(main())


def _expect_app_matrix(run: ScanRun, open_ports: list[int], refused: int, via: str) -> None:
    got = {k: v for k, v in matrix(run).items() if k[0] == "app-01"}
    want = {("app-01", "0.0.0.0", p, "lab"): "open" for p in open_ports}
    want[("app-01", "0.0.0.0", refused, "lab")] = "refused"
    want[("app-01", "127.0.0.1", 9, "lab")] = "not_probed"
    want[("app-01", "0.0.0.0", 5353, "lab")] = "not_probed"
    assert got == want
    probed = [r for r in run.exposure if r.host == "app-01" and r.result != "not_probed"]
    assert {r.probe_host for r in probed} == {via}
    assert all(r.address == "127.0.0.1" for r in probed)


@pytest.mark.parametrize(
    ("method", "tools"),
    [
        ("bash", ["bash", "timeout"]),
        ("nc", ["nc"]),
        ("python3", ["python3"]),
        ("nc", ["bash", "nc"]),  # bash without timeout cannot bound a connect: next method
    ],
)
def test_posix_probe_host_uses_the_first_tool_it_has(
    tmp_path: Path, method: str, tools: list[str]
) -> None:
    probe = SimHost(
        "probe-1", outputs={"ss": ss_output([])}, probe_path=tool_dir(tmp_path, method, tools)
    )
    with listening(2) as ports:
        refused = closed_port()
        run = _scan(tmp_path, [probe], ports, refused)
    _expect_app_matrix(run, ports, refused, "probe-1")
    probe_cmds = [c for c in probe.commands if c == "sh -s"]
    assert len(probe_cmds) == 2  # the collector, then ONE probe program for all endpoints
    # the second open port is forbidden from lab; the refused one is required from lab
    rules = sorted(
        (f.rule_id, f.listener.port) for f in run.findings if f.listener and f.host == "app-01"
    )
    assert rules == sorted(
        [
            ("nothing-from-lab", ports[1]),
            ("refused-port-needed-from-lab", refused),
            ("exposure-wide-bind-filtered", refused),
        ]
    )
    reasons = {r.reason for r in run.exposure if r.host == "app-01" and r.result != "not_probed"}
    assert reasons and all(x.startswith(f"{method}: ") for x in reasons), reasons


def test_probe_host_without_any_tool_falls_back_to_the_next_probe_host(tmp_path: Path) -> None:
    bare = SimHost(
        "probe-bare", outputs={"ss": ss_output([])}, probe_path=tool_dir(tmp_path, "bare", [])
    )
    good = SimHost(
        "probe-py", outputs={"ss": ss_output([])}, probe_path=tool_dir(tmp_path, "py", ["python3"])
    )
    with listening(1) as ports:
        refused = closed_port()
        run = _scan(tmp_path, [bare, good], ports, refused)
    _expect_app_matrix(run, ports, refused, "probe-py")


def test_zone_whose_probe_hosts_cannot_probe_is_not_probed_with_the_reason(tmp_path: Path) -> None:
    bare = SimHost(
        "probe-bare", outputs={"ss": ss_output([])}, probe_path=tool_dir(tmp_path, "bare", [])
    )
    down = SimHost("probe-down", outputs={"ss": ss_output([])}, behaviour="auth_fail")
    with listening(1) as ports:
        refused = closed_port()
        run = _scan(tmp_path, [bare, down], ports, refused)
    cells = [r for r in run.exposure if r.host == "app-01"]
    assert {r.result for r in cells} == {"not_probed"}
    probed_rows = [
        r for r in cells if r.listener.proto == "tcp" and r.listener.address == "0.0.0.0"
    ]
    for r in probed_rows:
        assert "probe-bare: no bash 5 with timeout, no nc and no python3" in r.reason
        assert "probe host probe-down was not scanned (auth_failed)" in r.reason
    # probing never changes a host's scan status, and nothing is judged from not_probed
    statuses = {s.host: s.status for s in run.scans}
    assert statuses["app-01"] is Status.OK and statuses["probe-down"] is Status.AUTH_FAILED
    assert not [f for f in run.findings if f.rule_id.startswith(("nothing", "refused"))]


def test_windows_probe_host_probes_with_powershell(tmp_path: Path) -> None:
    win = SimHost(
        "probe-win",
        platform="windows",
        shell="powershell",
        outputs={
            "netstat-ano": (CORPUS / "windows/netstat-ano/jc_windows-10_netstat-aon.out").read_text(
                encoding="utf-8"
            ),
            "tasklist": (FIX / "windows/tasklist-fo-csv-nh.txt").read_text(encoding="utf-8"),
        },
    )
    with listening(2) as ports:
        refused = closed_port()
        run = _scan(tmp_path, [win], ports, refused)
    _expect_app_matrix(run, ports, refused, "probe-win")
    from fleetscan.exposure.remote import POWERSHELL_COMMAND

    assert POWERSHELL_COMMAND in win.commands
    # the probe host's own listeners are excluded from the zone by policy (skip_hosts)
    own = [r for r in run.exposure if r.host == "probe-win"]
    assert own and {r.result for r in own} == {"not_probed"}
    assert {
        r.reason for r in own if r.listener.proto == "tcp" and r.listener.address == "0.0.0.0"
    } == {"host excluded from this zone by policy"}


def test_probe_phase_has_its_own_deadline_and_keeps_what_finished(tmp_path: Path) -> None:
    stuck = tmp_path / "bin-stuck"
    stuck.mkdir()
    (stuck / "python3").write_text("#!/bin/sh\nexec /bin/sleep 60\n")
    (stuck / "python3").chmod(0o755)
    for tool in ("cat",):
        (stuck / tool).symlink_to(f"/bin/{tool}")
    probe = SimHost("probe-stuck", outputs={"ss": ss_output([])}, probe_path=str(stuck))
    text = "version: 1\nzones:\n  lab: {probe_hosts: [probe-stuck]}\n"

    async def main() -> ScanRun:
        with listening(1) as ports:
            app = _app_host(ports, closed_port())
            async with sim_fleet(tmp_path, [app, probe]) as fleet:
                return await probe_run(fleet, tmp_path, text, ["scanner", "lab"], deadline=3.0)

    run = asyncio.run(main())
    lab = [r for r in run.exposure if r.zone == "lab" and r.host == "app-01"]
    assert {(r.result, r.reason) for r in lab if r.listener.proto == "tcp"} >= {
        ("not_probed", "probe phase deadline (3s) reached")
    }
    scanner = {r.result for r in run.exposure if r.zone == "scanner" and r.host == "app-01"}
    assert scanner == {"open", "refused", "not_probed"}
    assert {s.status for s in run.scans} == {Status.OK, Status.PARTIAL}  # ss without owners


def test_stop_during_the_probe_phase_marks_the_run_interrupted(tmp_path: Path) -> None:
    from fleetscan.app import RunInputs, run_scan
    from fleetscan.exposure import ProbeSettings
    from fleetscan.policy import load_policies

    stuck = tmp_path / "bin-stuck"
    stuck.mkdir()
    (stuck / "python3").write_text("#!/bin/sh\nexec /bin/sleep 60\n")
    (stuck / "python3").chmod(0o755)
    (stuck / "cat").symlink_to("/bin/cat")
    probe = SimHost("probe-stuck", outputs={"ss": ss_output([])}, probe_path=str(stuck))
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nzones:\n  lab: {probe_hosts: [probe-stuck]}\n")

    async def main() -> ScanRun:
        with listening(1) as ports:
            app = _app_host(ports, closed_port())
            async with sim_fleet(tmp_path, [app, probe]) as fleet:
                stop = asyncio.Event()
                seen: list[str] = []

                def on_result(scan: object) -> None:
                    seen.append("x")
                    if len(seen) == 2:  # every host scanned: stop while probing
                        asyncio.get_running_loop().call_later(1.0, stop.set)

                inputs = RunInputs(
                    targets=tuple(fleet.targets),
                    policy=load_policies([policy]),
                    settings=fleet.settings(),
                    probe=ProbeSettings(zones=("scanner", "lab"), deadline=60.0),
                )
                return await asyncio.wait_for(run_scan(inputs, on_result=on_result, stop=stop), 30)

    run = asyncio.run(main())
    assert run.interrupted and run.exposure == ()
    assert {s.host: s.status for s in run.scans}["app-01"] is Status.OK


def test_zone_probes_the_address_its_address_var_names(tmp_path: Path) -> None:
    import dataclasses

    probe = SimHost(
        "probe-1", outputs={"ss": ss_output([])}, probe_path=tool_dir(tmp_path, "b", ["python3"])
    )
    text = (
        "version: 1\nzones:\n  lab: {probe_hosts: [probe-1], address_var: lab_ip, "
        "skip_hosts: [probe-*]}\n"
    )

    async def main() -> ScanRun:
        with listening(1) as ports:  # bound to 127.0.0.1 only: 127.0.0.2 refuses
            app = _app_host(ports, closed_port())
            async with sim_fleet(tmp_path, [app, probe]) as fleet:
                fleet.targets = [
                    dataclasses.replace(t, vars={"lab_ip": "127.0.0.2"})
                    if t.name == "app-01"
                    else t
                    for t in fleet.targets
                ]
                return await probe_run(fleet, tmp_path, text, ["scanner", "lab"])

    run = asyncio.run(main())
    probed = [r for r in run.exposure if r.host == "app-01" and r.result != "not_probed"]
    assert {(r.zone, r.address) for r in probed} == {("scanner", "127.0.0.1"), ("lab", "127.0.0.2")}
    assert {r.result for r in probed if r.zone == "lab"} == {"refused"}
    assert "open" in {r.result for r in probed if r.zone == "scanner"}


def test_firewall_evidence_is_one_more_evidence_per_scanned_host_and_changes_no_status(
    tmp_path: Path,
) -> None:
    from fleetscan.app import RunInputs, run_scan
    from fleetscan.exposure import ProbeSettings
    from fleetscan.policy import load_policies

    hosts = [
        SimHost("lin", outputs={"ss": ss_output([("tcp", "0.0.0.0", 22)])}),
        SimHost(
            "win",
            platform="windows",
            outputs={
                "netstat-ano": (
                    CORPUS / "windows/netstat-ano/jc_windows-10_netstat-aon.out"
                ).read_text(encoding="utf-8"),
                "tasklist": (FIX / "windows/tasklist-fo-csv-nh.txt").read_text(encoding="utf-8"),
            },
        ),
        SimHost("down", behaviour="auth_fail"),
    ]
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\n")

    async def main() -> ScanRun:
        async with sim_fleet(tmp_path, hosts) as fleet:
            inputs = RunInputs(
                targets=tuple(fleet.targets),
                policy=load_policies([policy]),
                settings=fleet.settings(),
                probe=ProbeSettings(zones=(), firewall_evidence=True),
            )
            return await run_scan(inputs)

    run = asyncio.run(main())
    by_host = {s.host: s for s in run.scans}
    assert {h: s.status for h, s in by_host.items()} == {
        "lin": Status.OK,
        "win": Status.OK,
        "down": Status.AUTH_FAILED,
    }
    rulesets = {
        h: [e for e in s.evidence if e.command.startswith("firewall ruleset")]
        for h, s in by_host.items()
    }
    assert [e.command for e in rulesets["win"]] == [
        "firewall ruleset: netsh advfirewall firewall show rule name=all"
    ]
    assert len(rulesets["lin"]) == 1 and rulesets["down"] == []
    assert run.exposure == () and run.probe_zones == ()
