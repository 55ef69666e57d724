"""Secrets never leave the process: not on the terminal, not in a report, not in a log.

A fleet inventory may hold passwords three ways: the *name* of an
environment variable (``fleetscan_password_env`` and, for encrypted keys,
``fleetscan_key_passphrase_env``: the supported way), inline
Ansible variables (``ansible_password``, ``ansible_become_password``,
``ansible_ssh_private_key_passphrase`` — read, never used, masked), and
secrets nested in ordinary variables. Each test below runs the real CLI
(``scan`` with every report format, with debug logging on; ``inventory
show`` as table and JSON; config errors) with distinctive secret values, and
searches every byte it produced — stdout, stderr, every report file — for
them.

The scan is real: ``pw-01`` logs in with the password from the environment
(proving the secret was used), ``pw-02`` has the wrong one (``auth_failed``,
whose message must not quote it), ``key-01`` logs in with a key and carries
the inline secrets.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from tests.cli import cli_env, linux_host, run_cli
from tests.cli.simserver import SimProcess, sim_process

#: distinctive values: none of them can appear by chance in any output
ENV_PASSWORD = "S3cr3t-Hunter2-Zx9"
WRONG_PASSWORD = "S3cr3t-Wr0ngPw-Qy7"
INLINE_PASSWORD = "S3cr3t-Inl1nePw-Kf4"
BECOME_PASSWORD = "S3cr3t-B3comePw-Lm2"
KEY_PASSPHRASE = "S3cr3t-Phr4seKey-Tn8"
NESTED_SECRET = "S3cr3t-N3stedTok-Vb5"
SECRETS = (
    ENV_PASSWORD,
    WRONG_PASSWORD,
    INLINE_PASSWORD,
    BECOME_PASSWORD,
    KEY_PASSPHRASE,
    NESTED_SECRET,
)
#: the distinctive middle of each secret: found even if a table cell cut the rest
CORES = tuple(s.split("-")[1] for s in SECRETS)

POLICY = "version: 1\nforbidden:\n  - id: irc\n    ports: 6667\n"

#: the CLI's own entry point, with every logger (asyncssh included) at DEBUG on stderr
DEBUG_CLI = (
    sys.executable,
    "-c",
    "import logging, sys, asyncssh\n"
    "logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)\n"
    "asyncssh.set_debug_level(2)\n"
    "from fleetscan.cli import main\n"
    "sys.argv[0] = 'fleetscan'\n"
    "main()\n",
)


def leaks(text: str) -> list[str]:
    """The secrets (or their distinctive cores) that ``text`` contains."""
    return [s for s, core in zip(SECRETS, CORES, strict=True) if s in text or core in text]


def output_leaks(
    result: subprocess.CompletedProcess[str], outdir: Path | None = None
) -> dict[str, list[str]]:
    """Where each leaked secret was found: stdout, stderr or a file under ``outdir``."""
    found = {}
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        if hits := leaks(text):
            found[name] = hits
    if outdir is not None:
        for path in sorted(outdir.rglob("*")):
            if path.is_file() and (hits := leaks(path.read_bytes().decode("utf-8", "replace"))):
                found[str(path)] = hits
    return found


def env_with_passwords(cwd: Path) -> dict[str, str]:
    return cli_env(
        cwd,
        {
            "FLEETSCAN_TEST_PW": ENV_PASSWORD,
            "FLEETSCAN_TEST_PWX": WRONG_PASSWORD,
            "FS_TEST_KEY_PASS": KEY_PASSPHRASE,
            "COLUMNS": "10000",
        },
    )


def write_inventory(sim: SimProcess, cwd: Path) -> Path:
    """An Ansible INI inventory with every kind of secret a real one may carry."""
    p = {name: sim.port(name) for name in ("pw-01", "pw-02", "key-01", "enc-01")}
    # the client key, encrypted with the passphrase the environment holds
    locked = cwd / "id_locked"
    asyncssh.read_private_key(str(sim.client_key)).write_private_key(
        str(locked), passphrase=KEY_PASSPHRASE
    )
    locked.chmod(0o600)
    text = f"""\
[web]
pw-01 ansible_host=127.0.0.1 ansible_port={p["pw-01"]} fleetscan_password_env=FLEETSCAN_TEST_PW
pw-02 ansible_host=127.0.0.1 ansible_port={p["pw-02"]} fleetscan_password_env=FLEETSCAN_TEST_PWX
key-01 ansible_host=127.0.0.1 ansible_port={p["key-01"]} ansible_password={INLINE_PASSWORD} \
ansible_ssh_private_key_file={sim.client_key}
enc-01 ansible_host=127.0.0.1 ansible_port={p["enc-01"]} ansible_ssh_private_key_file={locked} \
fleetscan_key_passphrase_env=FS_TEST_KEY_PASS

[web:vars]
ansible_user=tester
ansible_become_password={BECOME_PASSWORD}
ansible_ssh_private_key_passphrase="{KEY_PASSPHRASE}"
app_settings={{"db": {{"user": "app", "password": "{NESTED_SECRET}"}}, "token": "{NESTED_SECRET}"}}
"""
    path = cwd / "inventory.ini"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    hosts = [
        linux_host("pw-01", password=ENV_PASSWORD),
        linux_host("pw-02", password="the-right-one-is-not-in-the-env"),
        linux_host("key-01"),
        linux_host("enc-01"),
    ]
    with sim_process(tmp_path_factory.mktemp("sim"), hosts) as sim:
        yield sim


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug-logging"])
def test_scan_with_passwords_leaks_no_secret(
    tmp_path: Path, fleet: SimProcess, debug: bool
) -> None:
    write_inventory(fleet, tmp_path)
    (tmp_path / "policy.yaml").write_text(POLICY)
    result = run_cli(
        [
            *("scan", "-i", "inventory.ini", "-p", "policy.yaml", "-o", "out"),
            *("--known-hosts", str(fleet.known_hosts), "--format", "html,csv,json,junit"),
            # FLEETSCAN_* names are allowed anyway; this one the operator allows by name
            *("--allow-secret-env", "FS_TEST_KEY_PASS"),
        ],
        cwd=tmp_path,
        env=env_with_passwords(tmp_path),
        argv0=DEBUG_CLI if debug else (sys.executable, "-m", "fleetscan"),
    )
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 3, result.stderr  # pw-02 could not log in
    if debug:
        assert "asyncssh" in result.stderr  # the debug log really was written
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    status = {h["name"]: h for h in report["hosts"]}
    assert status["pw-01"]["status"] == "ok"  # the password from the environment worked
    assert status["key-01"]["status"] == "ok"
    assert status["enc-01"]["status"] == "ok"  # the passphrase from the environment worked
    assert status["pw-02"]["status"] == "auth_failed"
    assert not leaks(status["pw-02"]["message"])
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {
        "report.html",
        "report.json",
        "junit.xml",
        "hosts.csv",
    }
    assert output_leaks(result, tmp_path / "out") == {}


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_inventory_show_masks_every_secret(tmp_path: Path, fleet: SimProcess, fmt: str) -> None:
    write_inventory(fleet, tmp_path)
    result = run_cli(
        ["inventory", "show", "-i", "inventory.ini", "--format", fmt],
        cwd=tmp_path,
        env=env_with_passwords(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "key-01" in result.stdout and "***" in result.stdout
    if fmt == "json":
        rows = {r["name"]: r for r in json.loads(result.stdout)}
        assert rows["pw-01"]["password_env"] == "FLEETSCAN_TEST_PW"  # the name, never the value
        assert rows["key-01"]["vars"]["ansible_password"] == "***"
        assert rows["key-01"]["vars"]["app_settings"]["db"]["password"] == "***"
    assert output_leaks(result) == {}


def test_nornir_inline_password_is_masked(tmp_path: Path) -> None:
    (tmp_path / "hosts.yaml").write_text(
        f"w1:\n  hostname: 127.0.0.1\n  password: {INLINE_PASSWORD}\n"
        f"  data:\n    api_token: {NESTED_SECRET}\n    nested: {{db_password: {NESTED_SECRET}}}\n"
    )
    for fmt in ("table", "json"):
        result = run_cli(
            ["inventory", "show", "-i", "hosts.yaml", "--format", fmt],
            cwd=tmp_path,
            env=env_with_passwords(tmp_path),
        )
        assert result.returncode == 0, result.stderr
        assert output_leaks(result) == {}


LEAKY_ERRORS = [
    pytest.param(
        f"[web]\nw1\n[web:vars]\nansible_password: {INLINE_PASSWORD}\n",
        "inventory.ini:4: [web:vars]: ",
        id="ini-vars-colon-instead-of-equals",
    ),
    pytest.param(
        f"[web]\nw1 ansible_password:{INLINE_PASSWORD}\n",
        "inventory.ini:2: host: ",
        id="ini-host-colon-instead-of-equals",
    ),
    pytest.param(
        f"[web]\nw1 ansible_password={INLINE_PASSWORD} ansible_port=x\n",
        "inventory.ini:2: ansible_port: ",
        id="error-on-another-variable-of-the-line",
    ),
    pytest.param(
        f'[web]\nw1 ansible_password="{INLINE_PASSWORD}\n',
        "inventory.ini:2: host: ",
        id="unclosed-quote",
    ),
    pytest.param(
        f"all:\n  hosts:\n    w1:\n      fleetscan_password_env: [{INLINE_PASSWORD}]\n",
        "inventory.yaml:4: fleetscan_password_env: ",
        id="yaml-password-env-of-wrong-type",
    ),
    pytest.param(
        f"all:\n  hosts:\n    w1:\n      ansible_password: {INLINE_PASSWORD}\n"
        "      ansible_password: again\n",
        "inventory.yaml:5: all.hosts.w1.ansible_password: duplicate key",
        id="yaml-duplicate-password-key",
    ),
]


@pytest.mark.parametrize(("inventory", "error"), LEAKY_ERRORS)
def test_config_error_on_a_secret_line_does_not_quote_it(
    tmp_path: Path, inventory: str, error: str
) -> None:
    name = error.split(":", 1)[0]
    (tmp_path / name).write_text(inventory)
    result = run_cli(
        ["inventory", "show", "-i", name],
        cwd=tmp_path,
        env=env_with_passwords(tmp_path),
    )
    assert result.returncode == 2
    assert result.stderr.startswith("fleetscan: error: " + error)
    assert output_leaks(result) == {}
