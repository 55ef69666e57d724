"""The policies shipped in policies/: they load, and they say what they claim."""

from __future__ import annotations

from pathlib import Path

import pytest

import fleetscan
from fleetscan.errors import ConfigError
from fleetscan.model import Severity
from fleetscan.policy import builtin_policy_names, builtin_policy_path, evaluate, load_policies

from .builders import NOW, listener, scan

SHIPPED = builtin_policy_names()


def test_the_documented_policies_are_shipped() -> None:
    assert {"baseline", "demo", "example-infra"} <= set(SHIPPED)


def with_baseline(name: str) -> list[Path]:
    """Site policies are written to be used on top of the baseline (their waivers
    may name baseline rules)."""
    paths = [builtin_policy_path("baseline")]
    return paths if name == "baseline" else [*paths, builtin_policy_path(name)]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_policy_loads_on_top_of_the_baseline(name: str) -> None:
    policy = load_policies(with_baseline(name))
    assert policy.files == tuple(str(p) for p in with_baseline(name))
    assert policy.forbidden and policy.owner and policy.bind


def test_every_baseline_rule_explains_itself() -> None:
    policy = load_policies([builtin_policy_path("baseline")])
    assert all(r.reason for r in (*policy.forbidden, *policy.bind, *policy.owner))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_waivers_are_all_owned_and_justified(name: str) -> None:
    for w in load_policies(with_baseline(name)).waivers:
        assert len(w.justification) > 20 and w.owner, w.id


@pytest.fixture(scope="module")
def baseline() -> fleetscan.policy.Policy:
    return load_policies([builtin_policy_path("baseline")])


@pytest.mark.parametrize(
    ("port", "proto", "rule", "severity"),
    [
        (4444, "tcp", "backdoor-metasploit", Severity.CRITICAL),
        (31337, "tcp", "backdoor-elite", Severity.CRITICAL),
        (31337, "udp", "backdoor-elite", Severity.CRITICAL),  # Back Orifice used UDP
        (1337, "tcp", "backdoor-leet", Severity.HIGH),
        (6667, "tcp", "c2-irc", Severity.HIGH),
        (6668, "tcp", "c2-irc", Severity.HIGH),
        (6669, "tcp", "c2-irc", Severity.HIGH),
        (12345, "tcp", "trojan-netbus", Severity.CRITICAL),
        (12346, "tcp", "trojan-netbus", Severity.CRITICAL),
        (27374, "tcp", "trojan-subseven", Severity.CRITICAL),
        (5554, "tcp", "worm-sasser", Severity.CRITICAL),
        (9996, "tcp", "worm-sasser", Severity.CRITICAL),
        (2323, "tcp", "telnet-alt-mirai", Severity.HIGH),
        (23, "tcp", "telnet", Severity.HIGH),
    ],
)
def test_baseline_forbids_well_known_backdoor_ports(
    baseline: fleetscan.policy.Policy, port: int, proto: str, rule: str, severity: Severity
) -> None:
    # loopback, so only the forbidden rule can fire
    host = scan("h1", listeners=[listener(proto, f"127.0.0.1:{port}", ("x", 1, "root"))])
    (f,) = evaluate(baseline, [host], now=NOW)
    assert (f.rule_id, f.severity) == (rule, severity)


@pytest.mark.parametrize("port", [6666, 6670, 4445, 8080, 443])
def test_baseline_leaves_neighbouring_ports_alone(
    baseline: fleetscan.policy.Policy, port: int
) -> None:
    host = scan("h1", listeners=[listener("tcp", f"0.0.0.0:{port}", ("x", 1, "root"))])
    assert evaluate(baseline, [host], now=NOW) == ()


@pytest.mark.parametrize("port", [5432, 3306, 6379, 27017, 9200, 11211])
@pytest.mark.parametrize(
    ("sock", "flagged"),
    [("127.0.0.1", False), ("[::1]", False), ("0.0.0.0", True), ("[::]", True), ("10.0.0.4", True)],
)
def test_baseline_keeps_databases_on_loopback(
    baseline: fleetscan.policy.Policy, port: int, sock: str, flagged: bool
) -> None:
    host = scan("h1", listeners=[listener("tcp", f"{sock}:{port}", ("db", 1, "db"))])
    assert [f.rule_id for f in evaluate(baseline, [host], now=NOW)] == (
        ["db-loopback-only"] if flagged else []
    )


def test_baseline_flags_memcached_on_udp(baseline: fleetscan.policy.Policy) -> None:
    host = scan("h1", listeners=[listener("udp", "0.0.0.0:11211", ("memcached", 1, "mc"))])
    assert [f.rule_id for f in evaluate(baseline, [host], now=NOW)] == ["db-loopback-only"]


@pytest.mark.parametrize(
    ("proc", "expected"),
    [
        ("sshd", []),
        ("sshd.exe", []),
        ("dropbear", [("ssh-is-sshd", Severity.HIGH)]),
        (None, [("ssh-is-sshd", Severity.LOW)]),
    ],
)
def test_baseline_requires_sshd_on_port_22(
    baseline: fleetscan.policy.Policy, proc: str | None, expected: list[tuple[str, Severity]]
) -> None:
    procs = [(proc, 1, "root")] if proc else []
    host = scan("h1", listeners=[listener("tcp", "0.0.0.0:22", *procs)])
    assert [(f.rule_id, f.severity) for f in evaluate(baseline, [host], now=NOW)] == expected


def test_example_policy_accepts_a_well_run_three_tier_fleet() -> None:
    policy = load_policies([builtin_policy_path("baseline"), builtin_policy_path("example-infra")])
    common = [
        listener("tcp", "0.0.0.0:22", ("sshd", 1, "root")),
        listener("udp", "127.0.0.53:53", ("systemd-resolve", 2, "systemd-resolve")),
        listener("tcp", "10.10.0.5:9100", ("node_exporter", 3, "prometheus")),
    ]
    fleet = [
        scan("web-01", ["web"], [*common, listener("tcp", "0.0.0.0:443", ("nginx", 4, "root"))]),
        scan(
            "app-01", ["app"], [*common, listener("tcp", "10.20.0.7:8000", ("gunicorn", 5, "app"))]
        ),
        scan(
            "db-01",
            ["db"],
            [*common, listener("tcp", "127.0.0.1:5432", ("postgres", 6, "postgres"))],
        ),
    ]
    assert evaluate(policy, fleet, now=NOW) == ()


def test_example_policy_catches_a_netcat_bind_shell() -> None:
    policy = load_policies([builtin_policy_path("baseline"), builtin_policy_path("example-infra")])
    host = scan("app-01", ["app"], [listener("tcp", "0.0.0.0:4444", ("nc.openbsd", 9, "www"))])
    assert [f.rule_id for f in evaluate(policy, [host], now=NOW)] == [
        "backdoor-metasploit",
        "netcat-listener",
        "nothing-public",
        "undocumented",
    ]


@pytest.mark.parametrize("name", ["baseline", "baseline.yaml"])
def test_builtin_policy_path_accepts_name_with_or_without_suffix(name: str) -> None:
    path = builtin_policy_path(name)
    assert path.name == "baseline.yaml" and path.is_file()


@pytest.mark.parametrize("name", ["nope", "../pyproject", "/etc/passwd", ""])
def test_unknown_builtin_policy_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        builtin_policy_path(name)
    assert "policy" in str(info.value)


def test_unknown_builtin_policy_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError, match=r"available: .*baseline"):
        builtin_policy_path("baselin")


def test_a_checkout_reads_the_top_level_policies_as_package_resources() -> None:
    """One code path: the package's _policies resource is the top-level policies/."""
    repo = Path(__file__).resolve().parents[2]
    for name in SHIPPED:
        path = builtin_policy_path(name)
        assert path.parent.name == "_policies"
        assert path.resolve() == (repo / "policies" / f"{name}.yaml").resolve()
    assert set(SHIPPED) == {p.stem for p in (repo / "policies").glob("*.yaml")}
