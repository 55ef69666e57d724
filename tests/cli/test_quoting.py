"""Inventory strings never reach a shell.

Host names, groups and variables come from files people edit and tools
generate; some are copied from the hosts themselves. fleetscan runs only its
collectors' constant commands and never builds one from the inventory
(docs/architecture.md, "Rules"). Two outcomes are acceptable for a string
full of shell metacharacters:

* it is refused — exit 2 naming file, line and field — when it would be used
  where a shell or ssh could read it (host name, address, user, port, become
  method, jump host);
* it is accepted as data (group names, group and host variables, host names
  without whitespace) and then the hosts see only the collector commands,
  and none of the payloads (``touch /tmp/pwned-…``) ever runs — not over SSH,
  not through the local transport, not as a ProxyCommand.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetscan.demo import WINDOWS_NETSTAT, WINDOWS_TASKLIST
from tests.cli import (
    COLLECTOR_COMMANDS,
    LINUX_HOST_LISTENERS,
    cli_env,
    linux_host,
    run_cli,
    run_cli_many,
)
from tests.cli.simserver import SimProcess, sim_process

POLICY = "version: 1\nforbidden:\n  - id: irc\n    ports: 6667\n"


@pytest.fixture
def pwned() -> Iterator[str]:
    """A unique ``/tmp/pwned-<random>`` prefix; every payload touches a file under it."""
    prefix = f"/tmp/pwned-{secrets.token_hex(6)}"
    yield prefix
    for path in Path("/tmp").glob(Path(prefix).name + "*"):
        path.unlink()


def created(prefix: str) -> list[str]:
    return sorted(str(p) for p in Path("/tmp").glob(Path(prefix).name + "*"))


# --- refused: exit 2 naming file, line and field ------------------------------------

REFUSED = [
    pytest.param(
        {"web;rm -rf /": {}},
        5,
        "all.children.web.hosts.web;rm -rf /",
        "contains whitespace",
        id="host-name-with-command",
    ),
    pytest.param(
        {"$(touch${IFS}PWNED)\nid": {}},
        5,
        "all.children.web.hosts",
        "control character",
        id="host-name-with-newline",
    ),
    pytest.param(
        {"web\x1bc\x07": {}},  # ESC c resets the terminal, BEL rings
        5,
        "all.children.web.hosts",
        "control character",
        id="host-name-with-terminal-escape",
    ),
    pytest.param(
        {"-oProxyCommand=touch${IFS}PWNED": {}},
        5,
        "all.children.web.hosts.-oProxyCommand=touch${IFS}PWNED",
        "must not start with '-'",
        id="host-name-as-ssh-option",
    ),
    pytest.param(
        {"web1": {"ansible_user": "root; touch PWNED"}},
        6,
        "ansible_user",
        "invalid user name",
        id="user-with-command",
    ),
    pytest.param(
        {"web1": {"ansible_user": "-oProxyCommand=touch${IFS}PWNED"}},
        6,
        "ansible_user",
        "invalid user name",
        id="user-as-ssh-option",
    ),
    pytest.param(
        {"web1": {"ansible_user": "root\ntouch PWNED"}},
        6,
        "ansible_user",
        "control character",
        id="user-with-newline",
    ),
    pytest.param(
        {"web1": {"ansible_user": "tester;touch${IFS}PWNED-user"}},
        6,
        "ansible_user",
        "shell metacharacter ';'",
        id="user-with-semicolon",
    ),
    pytest.param(
        {"web;touch${IFS}PWNED-hostname": {"ansible_host": "127.0.0.1"}},
        5,
        "all.children.web.hosts.web;touch${IFS}PWNED-hostname",
        "shell metacharacter ';'",
        id="host-name-with-semicolon",
    ),
    pytest.param(
        {"`touch${IFS}PWNED-tick`'\"": {"ansible_host": "127.0.0.1"}},
        5,
        "all.children.web.hosts.`touch${IFS}PWNED-tick`'\"",
        "shell metacharacter '`'",
        id="host-name-with-backticks",
    ),
    pytest.param(
        {"web1": {"fleetscan_jump_host": "bastion;touch${IFS}PWNED-jump"}},
        6,
        "fleetscan_jump_host",
        "shell metacharacter ';'",
        id="jump-host-with-command",
    ),
    pytest.param(
        {"web1": {"ansible_host": "127.0.0.1 -oProxyCommand=touch${IFS}PWNED"}},
        6,
        "ansible_host",
        "contains whitespace",
        id="address-with-ssh-option",
    ),
    pytest.param(
        {"web1": {"ansible_host": "-oProxyCommand=touch${IFS}PWNED"}},
        6,
        "ansible_host",
        "must not start with '-'",
        id="address-as-ssh-option",
    ),
    pytest.param(
        {"web1": {"ansible_port": "22;touch PWNED"}},
        6,
        "ansible_port",
        "port must be an integer",
        id="port-with-command",
    ),
    pytest.param(
        {"web1": {"ansible_become": True, "ansible_become_method": "sudo; touch PWNED"}},
        7,
        "ansible_become_method",
        "is not supported",
        id="become-method-with-command",
    ),
    pytest.param(
        {"web1": {"fleetscan_jump_host": "bastion -oProxyCommand=touch${IFS}PWNED"}},
        6,
        "fleetscan_jump_host",
        "contains whitespace",
        id="jump-host-with-ssh-option",
    ),
    pytest.param(
        {"web1": {"fleetscan_transport": "asyncssh;touch PWNED"}},
        6,
        "fleetscan_transport",
        "unknown transport",
        id="transport-with-command",
    ),
]


@pytest.fixture(scope="module")
def refused_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, dict[str, subprocess.CompletedProcess[str]]]]:
    """Every REFUSED inventory given to ``fleetscan scan``, run once, concurrently."""
    prefix = f"/tmp/pwned-{secrets.token_hex(6)}"
    jobs = {}
    for param in REFUSED:
        hosts = json.loads(json.dumps(param.values[0]).replace("PWNED", prefix))
        cwd = tmp_path_factory.mktemp(str(param.id))
        # line 5: the host key; line 6: its first variable
        inventory = {"all": {"children": {"web": {"hosts": hosts}}}}
        (cwd / "inv.yaml").write_text(yaml.safe_dump(inventory, width=1000))
        (cwd / "policy.yaml").write_text(POLICY)
        args = ("scan", "-i", "inv.yaml", "-p", "policy.yaml", "-o", "out")
        jobs[str(param.id)] = (args, cwd, cli_env(cwd, {"COLUMNS": "100000"}))
    yield prefix, run_cli_many(jobs)
    for path in Path("/tmp").glob(Path(prefix).name + "*"):
        path.unlink()


@pytest.mark.parametrize(("hosts", "line", "field", "message"), REFUSED)
def test_hostile_connection_value_is_refused_naming_file_line_field(
    request: pytest.FixtureRequest,
    refused_runs: tuple[str, dict[str, subprocess.CompletedProcess[str]]],
    hosts: dict[str, Any],
    line: int,
    field: str,
    message: str,
) -> None:
    pwned, runs = refused_runs
    result = runs[request.node.callspec.id]
    field = field.replace("PWNED", pwned)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 2, result.stdout
    # one line, and nothing in it a terminal would interpret
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert not any(ord(c) < 32 for c in result.stderr.rstrip("\n")), result.stderr
    assert result.stderr.startswith(f"fleetscan: error: inv.yaml:{line}: {field}"), result.stderr
    assert message in result.stderr
    assert created(pwned) == []


# --- accepted as data: only constant commands run -----------------------------------


def hostile_vars(pwned: str) -> dict[str, str]:
    """Variables full of shell syntax, each payload touching its own file."""
    return {
        "motd": f"$(touch {pwned}-subst)",
        "banner": f"`touch {pwned}-backtick`",
        "quoted": f"'; touch {pwned}-squote; '\"; touch {pwned}-dquote; \"",
        "multiline": f"line one\ntouch {pwned}-newline\n",
        "semicolon": f"x; touch {pwned}-semicolon && touch {pwned}-and | sh",
    }


def build_inventory(sim: SimProcess, pwned: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The inventory, and which simulated host each inventory host really is."""

    def at(sim_name: str, **extra: Any) -> dict[str, Any]:
        return {
            "ansible_host": "127.0.0.1",
            "ansible_port": sim.port(sim_name),
            "ansible_ssh_private_key_file": str(sim.client_key),
            **extra,
        }

    # host names and users with shell syntax are refused up front (REFUSED above);
    # everything else hostile is data that must reach no shell
    hosts = {
        "web-01": ("lin-01", at("lin-01")),
        "web-02": ("lin-02", at("lin-02", ansible_become=True)),
        "db-01": ("lin-03", at("lin-03", ansible_user="tester", ansible_become="yes")),
        "app-01": (
            "lin-04",
            at("lin-04", ansible_ssh_common_args=f'-o ProxyCommand="touch {pwned}-proxycommand"'),
        ),
        "win-01": ("win-01", at("win-01", ansible_shell_type="cmd")),
    }
    group = f"g$(touch${{IFS}}{pwned}-group)"
    inventory = {
        "all": {
            "vars": {"ansible_user": "tester", **hostile_vars(pwned)},
            "children": {
                group: {
                    "hosts": {name: spec for name, (_, spec) in hosts.items()},
                    "vars": {f"k{i}": v for i, v in enumerate(hostile_vars(pwned).values())},
                }
            },
        }
    }
    return inventory, {name: sim_name for name, (sim_name, _) in hosts.items()}


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[SimProcess]:
    windows = {
        "name": "win-01",
        "platform": "windows",
        "outputs": {"netstat-ano": WINDOWS_NETSTAT, "tasklist": WINDOWS_TASKLIST},
    }
    hosts = [linux_host(f"lin-0{i}") for i in range(1, 5)] + [windows]
    with sim_process(tmp_path / "sim", hosts) as sim:
        yield sim


def test_hostile_names_and_vars_reach_no_shell(
    tmp_path: Path, fleet: SimProcess, pwned: str
) -> None:
    inventory, real = build_inventory(fleet, pwned)
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(inventory, width=1000))
    (tmp_path / "policy.yaml").write_text(POLICY)
    result = run_cli(
        [
            *("scan", "-i", "inv.yaml", "-p", "policy.yaml", "-o", "out", "--format", "json"),
            *("--known-hosts", str(fleet.known_hosts)),
        ],
        cwd=tmp_path,
        env=cli_env(tmp_path),
    )
    assert "Traceback" not in result.stdout + result.stderr
    state = fleet.state()["hosts"]
    report = json.loads((tmp_path / "out" / "report.json").read_text())

    assert created(pwned) == []
    for sim_name, host in state.items():
        assert host["commands"], f"{sim_name} was never scanned"
        assert set(host["commands"]) <= COLLECTOR_COMMANDS, (sim_name, host["commands"])
    assert state["lin-03"]["usernames"] == ["tester"]
    # become: sudo was asked for the listing command only, inside the one `sh -s`
    assert "sh -s" in state["lin-03"]["commands"]
    assert state["lin-03"]["sudo"] == ["ss -tulnpe"]
    assert "netstat -ano" in state["win-01"]["commands"]

    # every host was scanned under its own name, none lost or renamed
    hosts = {h["name"]: h for h in report["hosts"]}
    assert set(hosts) == set(real)
    for name, sim_name in real.items():
        assert hosts[name]["status"] == "ok", (name, hosts[name]["message"])
        if sim_name != "win-01":
            got = {(x["proto"], x["address"], x["port"]) for x in hosts[name]["listeners"]}
            assert got == LINUX_HOST_LISTENERS
    assert result.returncode in (0, 1), result.stderr


ODD_PATHS = [
    pytest.param(
        {"ansible_ssh_private_key_file": "$(touch PWNED-keyfile)"}, id="key-file-with-subst"
    ),
    pytest.param({"fleetscan_known_hosts": "/nonexistent; touch PWNED-kh"}, id="known-hosts-path"),
    pytest.param(
        {"ansible_connection": "local", "fleetscan_platform": "linux; touch PWNED-platform"},
        id="local-transport-with-odd-platform",
    ),
]


@pytest.mark.parametrize("extra", ODD_PATHS)
def test_hostile_paths_and_names_are_opened_or_resolved_never_run(
    tmp_path: Path, pwned: str, extra: dict[str, str]
) -> None:
    """Values accepted as file paths or host names are used as such: a missing
    file or an unknown name fails that host, and nothing is executed."""
    extra = {k: v.replace("PWNED", pwned) for k, v in extra.items()}
    inventory = {"all": {"hosts": {"web1": {"ansible_host": "127.0.0.1", "ansible_port": 1}}}}
    inventory["all"]["hosts"]["web1"].update(extra)
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(inventory, width=1000))
    (tmp_path / "policy.yaml").write_text(POLICY)
    result = run_cli(
        [
            *("scan", "-i", "inv.yaml", "-p", "policy.yaml", "-o", "out", "--format", "json"),
            *("--connect-timeout", "2"),
        ],
        cwd=tmp_path,
        env=cli_env(tmp_path),
    )
    assert "Traceback" not in result.stdout + result.stderr
    assert created(pwned) == []
    if "ansible_ssh_private_key_file" in extra:
        # a key file that does not exist is a config error before any connection
        assert result.returncode == 2, result.stderr
        assert "inv.yaml:" in result.stderr and "key file" in result.stderr
        return
    if "fleetscan_known_hosts" in extra:
        # the operator did not pass --trust-inventory-known-hosts: config error
        assert result.returncode == 2, result.stderr
        assert "inv.yaml:" in result.stderr and "fleetscan_known_hosts" in result.stderr
        return
    assert result.returncode == 3, result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [(h["name"], h["complete"]) for h in report["hosts"]] == [("web1", False)]


def test_payload_probe_would_be_seen(pwned: str) -> None:
    """The control: the same payload given to a shell does create the file,
    so an empty ``created()`` above really means nothing ran."""
    subprocess.run(["sh", "-c", f"touch${{IFS}}{pwned}-control"], check=True, timeout=10)
    assert created(pwned) == [f"{pwned}-control"]
