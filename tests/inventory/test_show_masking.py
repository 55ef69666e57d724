"""Issue 7 item 15: ``inventory show`` masks secrets broadly, and never
prints a value read from a secret environment variable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetscan.inventory import format_inventory, load_inventory
from fleetscan.masking import looks_secret, mask_text
from tests.cli import cli_env, run_cli

SECRET = "Hunter2-s3cr3t"

SECRET_VARS = [
    "api_key",
    "private_key",
    "pwd",
    "db_passwd",
    "ansible_become_pass",
    "vault_token",
    "aws_secret_access_key",
    "service_credentials",
    "basic_auth",
    "session_cookie",
    "TLS_CERT_PEM",
    "x_apikey",
]

EMBEDDED = [
    ("ansible_ssh_common_args", f"-o ProxyCommand='sshpass -p {SECRET} ssh -W %h:%p b'"),
    ("ansible_ssh_common_args", f"-o ProxyCommand=\"sshpass -p'{SECRET}' ssh -W %h:%p b\""),
    ("ansible_ssh_extra_args", f"--password={SECRET}"),
    ("notes", f"run with --token {SECRET} please"),
    ("repo_url", f"https://deploy:{SECRET}@git.example.com/x.git"),
    ("db_url", f"postgresql://app:{SECRET}@db:5432/app"),
    ("env_line", f"PGPASSWORD={SECRET} psql"),
    ("header", f"Authorization: Bearer {SECRET}"),
    ("nested", {"deep": [{"client_secret": SECRET}]}),
]


def _inventory(tmp: Path, variables: dict[str, object]) -> Path:
    import yaml

    path = tmp / "inv.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"h1": variables}}}))
    return path


@pytest.mark.parametrize("name", SECRET_VARS)
def test_secret_looking_names_are_masked(tmp_path: Path, name: str) -> None:
    rows = format_inventory(load_inventory([_inventory(tmp_path, {name: SECRET})]).targets)
    assert SECRET not in json.dumps(rows)
    assert rows[0]["vars"] == {name: "***"}  # type: ignore[comparison-overlap]


@pytest.mark.parametrize(
    ("name", "value"), EMBEDDED, ids=[f"{n}-{i}" for i, (n, _) in enumerate(EMBEDDED)]
)
def test_secrets_inside_values_are_masked(tmp_path: Path, name: str, value: object) -> None:
    rows = format_inventory(load_inventory([_inventory(tmp_path, {name: value})]).targets)
    assert SECRET not in json.dumps(rows)
    assert "***" in json.dumps(rows)


def test_ordinary_settings_stay_readable() -> None:
    assert mask_text("-o StrictHostKeyChecking=no -o PasswordAuthentication=no") == (
        "-o StrictHostKeyChecking=no -o PasswordAuthentication=no"
    )
    assert not looks_secret("ansible_host")
    assert not looks_secret("ansible_port")


def test_values_of_secret_environment_variables_are_never_printed(tmp_path: Path) -> None:
    """The operator's secret sits in the environment; the inventory (data) copies
    it into an innocent variable and into the address field: show prints neither."""
    env_secret = "0p3rat0r-only-value"
    other = "ci-deploy-token-value"
    path = _inventory(
        tmp_path,
        {
            "fleetscan_password_env": "FLEETSCAN_H1_PASSWORD",
            "note": f"copied {env_secret} here",
            "owner": other,
        },
    )
    for fmt in ("json", "table"):
        result = run_cli(
            ["inventory", "show", "-i", str(path), "--format", fmt],
            cwd=tmp_path,
            env=cli_env(
                tmp_path,
                {
                    "COLUMNS": "100000",
                    "FLEETSCAN_H1_PASSWORD": env_secret,
                    "CI_DEPLOY_TOKEN": other,
                },
            ),
        )
        assert result.returncode == 0, result.stderr
        assert env_secret not in result.stdout + result.stderr
        assert other not in result.stdout + result.stderr
        if fmt == "json":  # the *name* of the variable is shown
            assert json.loads(result.stdout)[0]["password_env"] == "FLEETSCAN_H1_PASSWORD"


def test_table_and_json_both_mask(tmp_path: Path) -> None:
    path = _inventory(
        tmp_path,
        {"api_key": SECRET, "ansible_ssh_common_args": f"sshpass -p {SECRET} ssh"},
    )
    for fmt in ("json", "table"):
        result = run_cli(
            ["inventory", "show", "-i", str(path), "--format", fmt],
            cwd=tmp_path,
            env=cli_env(tmp_path, {"COLUMNS": "100000"}),
        )
        assert result.returncode == 0, result.stderr
        assert SECRET not in result.stdout
