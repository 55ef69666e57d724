"""Issue 7 item 2 and 12 through the real CLI: the operator, not the
inventory, decides which secrets may leave and which host keys are trusted.

The "attacker" is an in-process SSH server that logs every password it is
offered; the inventory (a file the attacker can edit) points at it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import cli_env, run_cli
from tests.transports.trustsrv import Host, Servers, servers

TOKEN = "Ci-Depl0y-T0ken-Wq3"
POLICY = "version: 1\nforbidden:\n  - id: irc\n    ports: 6667\n"


@pytest.fixture(scope="module")
def attacker() -> Iterator[tuple[Servers, Host]]:
    with servers() as srv:
        yield srv, srv.start(Host("attacker"))


def _setup(tmp_path: Path, host: Host, extra: str) -> Path:
    (tmp_path / "policy.yaml").write_text(POLICY)
    operator_kh = tmp_path / "operator_known_hosts"
    operator_kh.write_text("")  # the operator never vouched for the attacker's key
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "known_hosts").write_text(host.known_hosts_line() + "\n")
    inv = tmp_path / "inv.ini"
    inv.write_text(
        "[web]\n"
        "# the repository's own host list\n"
        f"evil ansible_host=127.0.0.1 ansible_port={host.port} ansible_user=deploy {extra}\n"
    )
    return operator_kh


def _scan(tmp_path: Path, operator_kh: Path, *flags: str) -> tuple[int, str, str]:
    env = cli_env(tmp_path, {"CI_DEPLOY_TOKEN": TOKEN, "FLEETSCAN_TOKEN": TOKEN, "COLUMNS": "400"})
    result = run_cli(
        [
            *("scan", "-i", "inv.ini", "-p", "policy.yaml", "-o", "out"),
            *("--known-hosts", str(operator_kh), "--ssh-config", "/dev/null"),
            *("--connect-timeout", "5", *flags),
        ],
        cwd=tmp_path,
        env=env,
    )
    assert "Traceback" not in result.stdout + result.stderr
    assert TOKEN not in result.stdout + result.stderr
    return result.returncode, result.stdout, result.stderr


@pytest.mark.parametrize(
    "field", ["fleetscan_password_env", "fleetscan_key_passphrase_env"], ids=["password", "phrase"]
)
def test_inventory_may_not_choose_a_secret_variable(
    tmp_path: Path, attacker: tuple[Servers, Host], field: str
) -> None:
    _, host = attacker
    before = len(host.log.usernames)
    kh = _setup(tmp_path, host, f"{field}=CI_DEPLOY_TOKEN")
    code, _, err = _scan(tmp_path, kh)
    assert code == 2, err
    assert f"inv.ini:3: {field}: " in err and "--allow-secret-env CI_DEPLOY_TOKEN" in err, err
    assert len(host.log.usernames) == before  # refused before any connection
    assert TOKEN not in host.log.passwords


def test_an_allowed_variable_still_goes_only_to_a_host_the_operator_trusts(
    tmp_path: Path, attacker: tuple[Servers, Host]
) -> None:
    _, host = attacker
    kh = _setup(tmp_path, host, "fleetscan_password_env=CI_DEPLOY_TOKEN")
    code, _, err = _scan(tmp_path, kh, "--allow-secret-env", "CI_DEPLOY_TOKEN")
    assert code == 3, err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["hosts"][0]["status"] == "hostkey_unknown"
    assert TOKEN not in host.log.passwords


def test_inventory_known_hosts_cannot_widen_trust(
    tmp_path: Path, attacker: tuple[Servers, Host]
) -> None:
    """The attack of the issue: the repository supplies the attacker's key in
    its own known_hosts and asks for a token as password."""
    _, host = attacker
    before = len(host.log.usernames)
    kh = _setup(
        tmp_path,
        host,
        "fleetscan_password_env=FLEETSCAN_TOKEN fleetscan_known_hosts=keys/known_hosts",
    )
    code, _, err = _scan(tmp_path, kh)
    assert code == 2, err
    assert "inv.ini:3: fleetscan_known_hosts: " in err and "--trust-inventory-known-hosts" in err
    assert len(host.log.usernames) == before
    assert TOKEN not in host.log.passwords


def test_trusting_inventory_known_hosts_is_the_operators_choice_and_every_report_says_so(
    tmp_path: Path, attacker: tuple[Servers, Host]
) -> None:
    _, host = attacker
    kh = _setup(tmp_path, host, f"fleetscan_known_hosts={tmp_path}/keys/known_hosts")
    code, out, err = _scan(
        tmp_path, kh, "--trust-inventory-known-hosts", "--format", "html,csv,json,junit"
    )
    assert code == 3, err  # the logging server runs no collector
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["run"]["inventory_known_hosts_trusted"] is True
    assert report["hosts"][0]["status"] not in ("hostkey_unknown", "hostkey_mismatch")
    phrase = "--trust-inventory-known-hosts"
    assert any(phrase in n for n in report["run"]["hostkey_trust_notes"])
    for name in ("report.html", "hosts.csv", "junit.xml"):
        assert phrase in (tmp_path / "out" / name).read_text(), name
    assert phrase in out  # the terminal summary


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "0"])
@pytest.mark.parametrize("option", ["--connect-timeout", "--host-timeout"])
def test_timeouts_must_be_finite_and_positive(tmp_path: Path, option: str, value: str) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "inv.ini").write_text("web ansible_host=127.0.0.1 ansible_port=1\n")
    result = run_cli(
        ["scan", "-i", "inv.ini", "-p", "policy.yaml", "-o", "out", option, value],
        cwd=tmp_path,
        env=cli_env(tmp_path),
    )
    assert result.returncode == 2, result.stderr
    assert f"{option}: must be a finite, positive number of seconds" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "report.json").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--accept-new"], "--accept-new: needs --known-hosts FILE"),
        (["--accept-new", "--no-host-key-check", "--known-hosts", "kh"], "--accept-new: needs"),
        (["--allow-secret-env", "NOT A NAME"], "--allow-secret-env: not an environment variable"),
    ],
    ids=["accept-new-without-file", "accept-new-without-checking", "bad-variable-name"],
)
def test_trust_options_are_checked_before_any_connection(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "kh").write_text("")
    (tmp_path / "inv.ini").write_text("web ansible_host=127.0.0.1 ansible_port=1\n")
    result = run_cli(
        ["scan", "-i", "inv.ini", "-p", "policy.yaml", "-o", "out", *flags],
        cwd=tmp_path,
        env=cli_env(tmp_path),
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
