"""Ansible YAML inventories: all → hosts / vars / children, nested."""

from __future__ import annotations

from pathlib import Path

from fleetscan.inventory import format_inventory

from .helpers import EXAMPLES, FIXTURES, Writer, load


def test_example_yaml_inventory_matches_the_ini_example() -> None:
    """The two example files describe the same fleet (the YAML adds a Windows host)."""
    ini = {t.name: t for t in load(EXAMPLES / "ansible-example.ini").targets}
    yml = {t.name: t for t in load(EXAMPLES / "ansible-example.yaml").targets}
    assert set(yml) - set(ini) == {"win01.example.com"}
    for name, t in ini.items():
        y = yml[name]
        assert (
            y.address,
            y.port,
            y.user,
            y.groups,
            y.become,
            y.jump_host,
            y.key_files,
            y.password_env,
            y.platform,
        ) == (
            t.address,
            t.port,
            t.user,
            t.groups,
            t.become,
            t.jump_host,
            t.key_files,
            t.password_env,
            t.platform,
        ), name
    assert yml["win01.example.com"].platform == "windows"


def test_nested_children_vars_and_ranges_in_keys(write: Writer) -> None:
    path = write(
        "inv.yml",
        """
        all:
          vars:
            ansible_user: audit
          children:
            dc1:
              vars:
                ansible_port: 2200
              children:
                web:
                  hosts:
                    web[01:02].example.com:
                    web03.example.com:2201:
                      http_port: 8080
        """,
    )
    inv = load(path)
    t = {x.name: x for x in inv.targets}
    assert list(t) == ["web01.example.com", "web02.example.com", "web03.example.com"]
    assert t["web01.example.com"].port == 2200
    assert t["web03.example.com"].port == 2201
    assert t["web03.example.com"].vars["http_port"] == 8080
    assert t["web01.example.com"].groups == ("dc1", "web")
    assert inv.groups["dc1"] == tuple(t)
    src = t["web03.example.com"].source
    assert src is not None and (Path(src.file).name, src.line) == ("inv.yml", 12)


def test_group_listed_under_two_parents_is_one_group(write: Writer) -> None:
    path = write(
        "inv.yaml",
        """
        all:
          children:
            prod:
              children:
                db:
                  hosts:
                    db1.example.com:
            backed_up:
              children:
                db:
                  hosts:
                    db2.example.com:
        """,
    )
    inv = load(path)
    assert inv.groups["db"] == ("db1.example.com", "db2.example.com")
    assert inv.groups["prod"] == inv.groups["backed_up"] == inv.groups["db"]


def test_top_level_groups_without_all(write: Writer) -> None:
    path = write(
        "inv.yaml",
        """
        web:
          hosts:
            web1.example.com:
        db:
          hosts:
            db1.example.com:
              ansible_become: "yes"
        """,
    )
    t = {x.name: x for x in load(path).targets}
    assert t["web1.example.com"].groups == ("web",)
    assert t["db1.example.com"].become is True


def test_yaml_without_extension_is_detected_by_content(write: Writer) -> None:
    path = write("hosts", "all:\n  hosts:\n    h1.example.com:\n")
    assert [t.groups for t in load(path).targets] == [("ungrouped",)]


def test_directory_is_one_ansible_inventory_merging_its_files() -> None:
    inv = load(FIXTURES / "ansible_dir")
    t = {x.name: x for x in inv.targets}
    assert t["web01.example.com"].groups == ("monitoring", "web")
    assert t["web01.example.com"].port == 2201
    assert [f.rsplit("/", 1)[1] for f in inv.files] == ["10-hosts.ini", "20-more.yaml"]


def test_inventory_show_rows_are_json_and_mask_secrets(write: Writer) -> None:
    path = write(
        "inv.yaml",
        """
        all:
          hosts:
            h1.example.com:
              ansible_password: do-not-print
              nested: {api_token: also-hidden, ok: [1, 2]}
              when: 2024-01-02
        """,
    )
    (row,) = format_inventory(load(path).targets)
    assert row["vars"] == {
        "ansible_password": "***",
        "when": "2024-01-02",
        "nested": {"api_token": "***", "ok": [1, 2]},
    }
    assert "do-not-print" not in repr(row) and "also-hidden" not in repr(row)
    assert set(row) >= {
        "name",
        "address",
        "port",
        "user",
        "platform",
        "groups",
        "transport",
        "become",
        "key_files",
        "jump_host",
        "known_hosts",
        "source",
        "vars",
    }
