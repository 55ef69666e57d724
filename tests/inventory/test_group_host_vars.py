"""group_vars/ and host_vars/ beside an Ansible inventory are read as Ansible reads them.

Precedence (lowest first): inline group vars < group_vars/all < group_vars/<group>
(parents before children) < inline host vars < host_vars/<host>.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from fleetscan.errors import ConfigError
from fleetscan.inventory import format_inventory
from fleetscan.model import Target
from tests.cli import run_cli

from .helpers import FIXTURES, Writer, load

LAYERED = FIXTURES / "vars_layered"

INI = """
[web]
web01 ansible_user=inline_host layer=inline_host
web02

[db]
db01 ansible_port=2202
db02

[prod:children]
web
db

[prod:vars]
ansible_user=inline_prod
ansible_port=2200
layer=inline_prod
only_inline=p
"""

YAML = """
all:
  children:
    prod:
      vars:
        ansible_user: inline_prod
        ansible_port: 2200
        layer: inline_prod
        only_inline: p
      children:
        web:
          hosts:
            web01:
              ansible_user: inline_host
              layer: inline_host
            web02:
        db:
          hosts:
            db01:
              ansible_port: 2202
            db02:
"""

INVENTORIES = [("hosts.ini", INI), ("hosts.yaml", YAML), ("hosts", INI)]


def layered(tmp_path: Path, name: str, text: str) -> Path:
    """The fixture's group_vars/ and host_vars/ with an inventory written beside them."""
    folder = tmp_path / "inv"
    shutil.copytree(LAYERED, folder)
    path = folder / name
    path.write_text(text.lstrip("\n"))
    return path


def targets(*paths: Path) -> dict[str, Target]:
    return {t.name: t for t in load(*paths).targets}


# host, attribute or variable, expected: each row pins one level of precedence
EFFECTIVE: list[tuple[str, str, Any]] = [
    ("web01", "user", "from_host_vars"),  # host_vars beats the inline host variable
    ("web01", "layer", "host_vars"),
    ("web02", "user", "from_prod"),  # group_vars/prod beats group_vars/all and [prod:vars]
    ("web02", "layer", "web-10"),  # child group_vars/web beats parent group_vars/prod
    ("web02", "port", 2201),
    ("web02", "order", "twenty"),  # directory form: files merged in name order
    ("web02", "deep", "found"),  # sub-directories are read
    ("web02", "become", True),
    ("db01", "port", 2299),  # host_vars/db01.json beats the inline ansible_port
    ("db01", "layer", "host_vars_json"),
    ("db02", "port", 2210),  # group_vars/prod beats [prod:vars]
    ("db02", "layer", "db-bare"),  # group_vars/db (no extension) wins over db.yml
    ("db02", "become", False),  # from group_vars/all
    ("db02", "only_all", "a"),
    ("db02", "only_inline", "p"),  # inline variables nobody overrides stay
]


@pytest.mark.parametrize(("name", "text"), INVENTORIES)
@pytest.mark.parametrize(("host", "key", "expected"), EFFECTIVE)
def test_group_and_host_vars_follow_ansible_precedence(
    tmp_path: Path, name: str, text: str, host: str, key: str, expected: Any
) -> None:
    t = targets(layered(tmp_path, name, text))[host]
    value = getattr(t, key) if key in ("user", "port", "become") else t.vars[key]
    assert value == expected


@pytest.mark.parametrize(
    "ignored",
    [".hidden.yml", "notes.txt", "40-backup.yml~", "db.yml", "nosuchgroup.yml"],
)
def test_hidden_backup_other_extensions_and_unknown_names_are_not_read(
    tmp_path: Path, ignored: str
) -> None:
    inv = load(layered(tmp_path, "hosts.ini", INI))
    assert not [f for f in inv.files if Path(f).name == ignored]
    assert all(t.vars["layer"] not in ("hidden", "txt", "backup", "db-yml") for t in inv.targets)


def test_inventory_directory_reads_its_own_group_vars(tmp_path: Path) -> None:
    folder = layered(tmp_path, "10-hosts.ini", INI).parent
    assert targets(folder)["web01"].user == "from_host_vars"


@pytest.mark.parametrize(
    ("inventory", "files", "expected"),
    [
        # same depth: ansible_group_priority from the inventory orders group_vars too
        (
            "[a]\nh\n[b]\nh\n[a:vars]\nansible_group_priority=10\n",
            {"group_vars/a.yml": "x: a\n", "group_vars/b.yml": "x: b\n"},
            "a",
        ),
        ("[a]\nh\n[b]\nh\n", {"group_vars/a.yml": "x: a\n", "group_vars/b.yml": "x: b\n"}, "b"),
        # a child is one deeper than its deepest parent
        (
            "[zz:children]\naa\n[aa]\nh\n",
            {"group_vars/aa.yml": "x: child\n", "group_vars/zz.yml": "x: parent\n"},
            "child",
        ),
        # group_vars/all applies although the inventory never names 'all'
        ("h\n", {"group_vars/all.yml": "x: all\n"}, "all"),
        ("h\n[all:vars]\nx=inline\n", {"group_vars/all.yml": "x: all\n"}, "all"),
        ("h x=inline\n", {"group_vars/all.yml": "x: all\n"}, "inline"),
        ("h\n", {"group_vars/ungrouped.yaml": "x: ungrouped\n"}, "ungrouped"),
        ("h\n", {"host_vars/h": "x: bare\n", "host_vars/h.yml": "x: yml\n"}, "bare"),
        ("h\n", {"group_vars/all.yml": "# only a comment\n"}, None),
    ],
)
def test_group_order(
    write: Writer, inventory: str, files: dict[str, str], expected: str | None
) -> None:
    path = write("hosts.ini", inventory)
    for name, text in files.items():
        write(name, text)
    assert targets(path)["h"].vars.get("x") == expected


def test_passwords_from_host_vars_are_masked(tmp_path: Path) -> None:
    t = targets(layered(tmp_path, "hosts.ini", INI))["web01"]
    assert t.vars["ansible_password"] == "s3cret-from-host-vars"
    shown = json.dumps(format_inventory([t]))
    assert "s3cret" not in shown and '"ansible_password": "***"' in shown


def test_digest_and_files_include_the_vars_files(tmp_path: Path) -> None:
    path = layered(tmp_path, "hosts.ini", INI)
    before = load(path)
    folder = path.parent
    assert [Path(f).relative_to(folder).as_posix() for f in before.files] == [
        "hosts.ini",
        "group_vars/web/10-base.yml",
        "group_vars/web/20-override.yaml",
        "group_vars/web/nested/30-deep.yml",
        "group_vars/db",
        "group_vars/prod.yml",
        "group_vars/all.yml",
        "host_vars/web01.yml",
        "host_vars/db01.json",
    ]
    (folder / "group_vars" / "nosuchgroup.yml").write_text("changed: but never read\n")
    assert load(path).digest == before.digest
    (folder / "group_vars" / "web" / "20-override.yaml").write_text("order: changed\n")
    assert load(path).digest != before.digest


def error_of(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        load(path)
    return err.value


VAULT_FILE = "$ANSIBLE_VAULT;1.1;AES256\n6162636465666768\n"
VAULT_VALUE = (
    "ansible_user: deploy\n"
    "ansible_become_password: !vault |\n"
    "  $ANSIBLE_VAULT;1.1;AES256\n"
    "  6162636465666768\n"
)


@pytest.mark.parametrize(
    ("file", "text", "line", "field", "fragment"),
    [
        ("group_vars/web.yml", "a: 1\n  b: 2\n", 2, None, "invalid YAML"),
        ("group_vars/web.yml", "- a\n- b\n", 1, None, "must be a mapping of name: value"),
        ("group_vars/all.yml", "just text\n", 1, None, "got str 'just text'"),
        ("group_vars/web.yml", VAULT_FILE, 1, None, "cannot decrypt Ansible Vault"),
        ("group_vars/web.yml", VAULT_VALUE, 2, "ansible_become_password", "(!vault)"),
        ("group_vars/web.yml", "x: 1\nansible_port: abc\n", 2, "ansible_port", "got 'abc'"),
        ("group_vars/web/20-b.yml", "# one\n# two\nansible_port: 0\n", 3, "ansible_port", "got 0"),
        ("host_vars/w1.yml", "x: 1\nansible_become: maybe\n", 2, "ansible_become", "boolean"),
        ("host_vars/w1.json", '{\n  "ansible_user": "a b"\n}\n', 2, "ansible_user", "invalid"),
        ("group_vars/web.yml", "a: 1\na: 2\n", 2, "a", "duplicate key"),
    ],
)
def test_vars_file_errors_name_file_line_and_field(
    write: Writer, file: str, text: str, line: int, field: str | None, fragment: str
) -> None:
    inventory = write("inv.ini", "[web]\nw1\n")
    bad = write(file, text)
    err = error_of(inventory)
    assert err.file == str(bad), err
    assert err.line == line, err
    assert err.field == field, err
    assert fragment in str(err)
    assert "6162636465666768" not in str(err)


def test_group_vars_that_is_a_file_is_refused(write: Writer) -> None:
    inventory = write("inv.ini", "[web]\nw1\n")
    bad = write("group_vars", "ansible_user: x\n")
    err = error_of(inventory)
    assert err.file == str(bad) and "must be a directory" in str(err)


def test_cli_shows_the_user_from_group_vars(write: Writer, tmp_path: Path) -> None:
    write("inv.ini", "[web]\nw1 ansible_port=2222\n[web:vars]\nansible_user=inline\n")
    write("group_vars/web.yml", "ansible_user: from_group_vars\nansible_become: true\n")
    proc = run_cli(["inventory", "show", "-i", "inv.ini", "--format", "json"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert (row["user"], row["port"], row["become"]) == ("from_group_vars", 2222, True)


def test_cli_names_the_vars_file_of_a_bad_value(write: Writer, tmp_path: Path) -> None:
    write("inv.ini", "[web]\nw1\n")
    write("group_vars/web.yml", "ansible_user: ok\nansible_port: abc\n")
    proc = run_cli(["inventory", "show", "-i", "inv.ini"], cwd=tmp_path)
    assert proc.returncode == 2
    assert "group_vars/web.yml:2: ansible_port:" in proc.stderr
