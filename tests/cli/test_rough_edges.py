"""Issue 8 section 5, small items: multi-error messages, ansible_connection=local
on another host, and the example inventory's comment."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetscan.errors import ConfigError
from fleetscan.inventory import load_inventory
from tests.cli import cli_env, run_cli

REPO = Path(__file__).resolve().parents[2]


def test_several_policy_errors_print_one_line_each(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "version: 1\nforbidden:\n  - id: a\n    ports: x\n  - id: b\n    ports: y\n"
        "  - id: c\n    ports: z\n"
    )
    result = run_cli(
        ["policy", "check", "-p", "p.yaml"],
        cwd=tmp_path,
        env=cli_env(tmp_path, {"COLUMNS": "100000"}),
    )
    assert result.returncode == 2
    assert "\\n" not in result.stderr  # no literal backslash-n
    lines = result.stderr.splitlines()
    assert len(lines) == 3, result.stderr
    for line, lineno in zip(lines, (4, 6, 8), strict=True):
        assert line.startswith(f"fleetscan: error: p.yaml:{lineno}: "), line
    assert all("also" not in line for line in lines)


def test_config_error_lines_never_hold_a_newline() -> None:
    err = ConfigError(
        "first", file="f", line=1, more=(ConfigError("x\ny", file="f", line=2),), omitted=3
    )
    assert err.lines()[:1] == ["f:1: first"]
    assert err.lines()[-1] == "... and 3 more"
    assert "(and 4 more)" in str(err)


@pytest.mark.parametrize(
    "line",
    [
        "web01 ansible_connection=local",
        "db ansible_host=db.internal ansible_connection=local",
        "h1 fleetscan_transport=local",
    ],
)
def test_local_connection_on_another_host_is_a_config_error(tmp_path: Path, line: str) -> None:
    ini = tmp_path / "inv.ini"
    ini.write_text(f"[g]\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_inventory([ini])
    assert (info.value.file, info.value.line) == (str(ini), 2)
    assert info.value.field in ("ansible_connection", "fleetscan_transport")
    assert "scans only this machine" in info.value.detail


@pytest.mark.parametrize(
    "line",
    ["localhost ansible_connection=local", "me ansible_host=127.0.0.1 ansible_connection=local"],
)
def test_local_connection_on_this_machine_is_fine(tmp_path: Path, line: str) -> None:
    ini = tmp_path / "inv.ini"
    ini.write_text(f"{line}\n")
    assert load_inventory([ini]).targets[0].transport == "local"


def test_local_connection_error_exits_2_before_scanning(tmp_path: Path) -> None:
    (tmp_path / "inv.ini").write_text("[g]\nweb01 ansible_connection=local\n")
    (tmp_path / "p.yaml").write_text("version: 1\n")
    result = run_cli(
        ["scan", "-i", "inv.ini", "-p", "p.yaml", "-o", "out"],
        cwd=tmp_path,
        env=cli_env(tmp_path, {"COLUMNS": "100000"}),
    )
    assert result.returncode == 2
    assert result.stderr.startswith("fleetscan: error: inv.ini:2: ansible_connection: host ")
    assert not (tmp_path / "out").exists()


def test_example_inventory_does_not_call_the_login_password_a_sudo_password() -> None:
    for name in ("ansible-example.ini", "ansible-example.yaml", "nornir/groups.yaml"):
        text = (REPO / "inventories" / name).read_text()
        assert "password_env" in text
        assert "password for sudo" not in text.lower()
        assert "SUDO_PASSWORD" not in text
