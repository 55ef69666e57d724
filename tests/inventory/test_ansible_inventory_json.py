"""Issue 8 section 2: the JSON of ``ansible-inventory --list`` (file or stdin)
and executable inventory scripts (only with --allow-exec-inventory).

The JSON is produced by the real ``ansible-inventory`` (ansible-core is in the
dev extra) from an inventory with ranges, children, group_vars and host_vars,
and the hosts fleetscan resolves from it must equal those it resolves from
the same inventory read directly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fleetscan.errors import ConfigError
from fleetscan.inventory import load_inventory
from fleetscan.model import Target
from tests.cli import cli_env, run_cli

COMPARED = (
    "address",
    "port",
    "user",
    "platform",
    "groups",
    "transport",
    "become",
    "become_method",
    "key_files",
    "jump_host",
    "known_hosts",
    "password_env",
    "passphrase_env",
)


def _ansible_inventory() -> str:
    found = shutil.which("ansible-inventory") or shutil.which(
        "ansible-inventory", path=str(Path(sys.executable).parent)
    )
    if found is None:
        message = "ansible-inventory is not installed (pip install -e '.[dev]')"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def _write_fleet(root: Path) -> Path:
    files = {
        "inv.ini": """
            bastion ansible_host=127.0.0.1 ansible_user=ops

            [web]
            web[01:03].example.com
            web04.example.com:2222 ansible_user=deploy

            [db]
            db-[a:c].example.com fleetscan_become=yes

            [win]
            win01 ansible_connection=winrm ansible_host=10.1.2.3

            [prod:children]
            web
            db

            [prod:vars]
            ansible_ssh_common_args='-o ProxyJump=ops@bastion.example.com'
            ansible_os_family=Debian
            """,
        "group_vars/prod.yml": "ansible_user: audit\nfleetscan_known_hosts: ~/.ssh/kh\n",
        "group_vars/db/main.yml": "fleetscan_password_env: FLEETSCAN_DB_PASSWORD\n",
        "group_vars/all.yml": "fleetscan_key_passphrase_env: FLEETSCAN_KEY_PW\n",
        "host_vars/web01.example.com.yml": "ansible_port: 2200\n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root / "inv.ini"


def _run_ansible(root: Path, inv: Path, *extra: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "ANSIBLE_LOCAL_TEMP": str(root / ".ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "LC_ALL": "C.UTF-8",
    }
    out = subprocess.run(
        [_ansible_inventory(), "-i", str(inv), "--list", *extra],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout


def _view(targets: tuple[Target, ...]) -> dict[str, tuple[object, ...]]:
    return {t.name: tuple(getattr(t, a) for a in COMPARED) for t in targets}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fleet")
    return root, _write_fleet(root)


@pytest.mark.parametrize("export", [False, True], ids=["list", "list-export"])
def test_ansible_inventory_json_resolves_like_the_inventory_itself(
    fleet: tuple[Path, Path], tmp_path: Path, export: bool
) -> None:
    root, inv = fleet
    text = _run_ansible(root, inv, *(["--export"] if export else []))
    out = tmp_path / "fleet.json"  # elsewhere: group_vars must come from the JSON, not a folder
    out.write_text(text)
    direct = load_inventory([inv])
    via_json = load_inventory([out])
    assert len(direct.targets) == 9
    assert _view(via_json.targets) == _view(direct.targets)
    assert {g: sorted(m) for g, m in via_json.groups.items()} == {
        g: sorted(m) for g, m in direct.groups.items()
    }
    assert {t.name: t.vars for t in via_json.targets}["web01.example.com"]["ansible_port"] == 2200


def test_ansible_inventory_json_from_stdin(fleet: tuple[Path, Path], tmp_path: Path) -> None:
    root, inv = fleet
    text = _run_ansible(root, inv)
    result = subprocess.run(
        [sys.executable, "-m", "fleetscan", "inventory", "show", "-i", "-", "--format", "json"],
        input=text,
        cwd=tmp_path,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    direct = _view(load_inventory([inv]).targets)
    assert set(rows) == set(direct)
    assert rows["web04.example.com"]["port"] == 2222
    assert rows["web01.example.com"]["user"] == "audit"
    assert rows["db-c.example.com"]["become"] is True
    assert rows["win01"]["platform"] == "windows"
    assert rows["bastion"]["source"].startswith("<stdin>:")


def test_json_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "fleet.json"
    path.write_text(
        json.dumps(
            {
                "_meta": {"hostvars": {"h1": {"ansible_port": "http"}}},
                "all": {"children": ["web"]},
                "web": {"hosts": ["h1"]},
            },
            indent=2,
        )
    )
    with pytest.raises(ConfigError) as info:
        load_inventory([path])
    assert (info.value.file, info.value.line, info.value.field) == (str(path), 5, "ansible_port")


def test_host_only_in_hostvars_is_kept_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps({"_meta": {"hostvars": {"lonely": {}}}, "all": {"children": []}}))
    assert [t.name for t in load_inventory([path]).targets] == ["lonely"]


SCRIPT = """#!{python}
import json, pathlib, sys
pathlib.Path({marker!r}).write_text(" ".join(sys.argv[1:]))
if sys.argv[1:] == ["--list"]:
    print(json.dumps({{"web": {{"hosts": ["w1", "w2"], "vars": {{"ansible_user": "audit"}}}}}}))
else:
    print(json.dumps({{"ansible_port": 2200}} if sys.argv[2] == "w1" else {{}}))
"""


def _script(tmp: Path, body: str | None = None) -> tuple[Path, Path]:
    marker = tmp / "ran"
    path = tmp / "inventory.py"
    path.write_text(body or SCRIPT.format(python=sys.executable, marker=str(marker)))
    path.chmod(0o755)
    return path, marker


def test_inventory_script_is_never_run_by_default(tmp_path: Path) -> None:
    path, marker = _script(tmp_path)
    for args in (["inventory", "show", "-i", str(path)], ["scan", "-i", str(path), "-p", "x"]):
        result = run_cli(args, cwd=tmp_path, env=cli_env(tmp_path, {"COLUMNS": "100000"}))
        assert result.returncode == 2
        assert "--allow-exec-inventory" in result.stderr
        assert len(result.stderr.splitlines()) == 1
    assert not marker.exists()


def test_inventory_script_runs_with_explicit_flag(tmp_path: Path) -> None:
    path, marker = _script(tmp_path)
    result = run_cli(
        ["inventory", "show", "-i", str(path), "--allow-exec-inventory", "--format", "json"],
        cwd=tmp_path,
        env=cli_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert (rows["w1"]["port"], rows["w1"]["user"], rows["w2"]["port"]) == (2200, "audit", None)
    assert marker.read_text() == "--host w2"  # --list, then --host for each host


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("#!/bin/sh\nexec sleep 600\n", "did not finish within"),
        ("#!/bin/sh\nexec cat /dev/zero\n", "printed more than"),
        ("#!/bin/sh\necho boom >&2\nexit 3\n", "exited with status 3: boom"),
        ("#!/bin/sh\necho '{not json'\n", "invalid JSON"),
    ],
    ids=["hangs", "floods", "fails", "garbage"],
)
def test_inventory_script_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, fragment: str
) -> None:
    from fleetscan import configfile
    from fleetscan.inventory import script

    monkeypatch.setattr(script, "TIMEOUT", 2.0)
    monkeypatch.setattr(configfile, "MAX_CONFIG_BYTES", 1 << 20)
    path, _ = _script(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_inventory([path], allow_exec=True)
    assert info.value.file == str(path)
    assert fragment in info.value.detail


def test_inventory_script_runs_without_a_shell(tmp_path: Path) -> None:
    """A script path with shell metacharacters is executed as a path, not parsed."""
    folder = tmp_path / "a;touch pwned;b"
    folder.mkdir()
    path, marker = _script(folder)
    targets = load_inventory([path], allow_exec=True).targets
    assert [t.name for t in targets] == ["w1", "w2"]
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    assert marker.exists()


def test_stdin_that_is_a_terminal_is_refused_not_waited_on(tmp_path: Path) -> None:
    import pty

    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "fleetscan", "inventory", "show", "-i", "-"],
            stdin=follower,
            cwd=tmp_path,
            env=cli_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(leader)
        os.close(follower)
    assert result.returncode == 2
    assert "standard input is a terminal" in result.stderr
