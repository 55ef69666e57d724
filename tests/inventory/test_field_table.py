"""Issue 14 item 3: one field table drives the Ansible and Nornir readers;
Target.source is a structured origin; transports are checked against the
registry; the key-file check lives in the inventory."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fleetscan.errors import ConfigError
from fleetscan.inventory import load_inventory
from fleetscan.inventory.fields import FIELDS
from fleetscan.model import Origin
from fleetscan.transports import REGISTRY

#: a valid value for each table row, written as fleetscan_<attr> in both formats
VALUES = {
    "transport": ("paramiko", "paramiko"),
    "platform": ("FreeBSD", "freebsd"),
    "become": ("yes", True),
    "key_files": ("~/.ssh/id_scan", ("~/.ssh/id_scan",)),
    "jump_host": ("ops@bastion:2222", "ops@bastion:2222"),
    "known_hosts": ("~/.ssh/kh", "~/.ssh/kh"),
    "password_env": ("FLEETSCAN_PW", "FLEETSCAN_PW"),
    "passphrase_env": ("FLEETSCAN_KEY_PW", "FLEETSCAN_KEY_PW"),
}


def _data_key(attr: str) -> str:
    spec = next(f for f in FIELDS if f.attr == attr)
    return next(s for s in spec.nornir if isinstance(s, str) and s.startswith("data:"))[5:]


@pytest.mark.parametrize("attr", sorted(VALUES))
def test_each_fleetscan_field_reads_the_same_in_ansible_and_nornir(
    tmp_path: Path, attr: str
) -> None:
    written, expected = VALUES[attr]
    key = _data_key(attr)
    ans = tmp_path / "a" / "inv.yml"
    ans.parent.mkdir()
    ans.write_text(yaml.safe_dump({"all": {"hosts": {"h1": {key: written}}}}))
    nor = tmp_path / "n" / "hosts.yaml"
    nor.parent.mkdir()
    nor.write_text(yaml.safe_dump({"h1": {"data": {key: written}}}))
    a = load_inventory([ans]).targets[0]
    n = load_inventory([nor]).targets[0]
    assert getattr(a, attr) == getattr(n, attr) == expected


def test_every_field_has_sources_in_both_formats() -> None:
    for spec in FIELDS:
        assert spec.ansible and spec.nornir, spec.attr


@pytest.mark.parametrize("name", ["simulated", "ssh2", "telnet"])
def test_unknown_transport_is_a_config_error_naming_file_line_field(
    tmp_path: Path, name: str
) -> None:
    ini = tmp_path / "inv.ini"
    ini.write_text(f"\n[g]\nh1 fleetscan_transport={name}\n")
    with pytest.raises(ConfigError) as info:
        load_inventory([ini])
    assert (info.value.file, info.value.line, info.value.field) == (
        str(ini),
        3,
        "fleetscan_transport",
    )
    assert f"unknown transport {name!r}" in info.value.detail
    nor = tmp_path / "hosts.yaml"
    nor.write_text(f"h1:\n  data:\n    fleetscan_transport: {name}\n")
    with pytest.raises(ConfigError) as info:
        load_inventory([nor])
    assert (info.value.line, info.value.field) == (3, "data.fleetscan_transport")


def test_registered_transports_are_accepted(tmp_path: Path) -> None:
    for name in REGISTRY:
        ini = tmp_path / f"{name}.ini"
        ini.write_text(f"localhost fleetscan_transport={name}\n")
        assert load_inventory([ini]).targets[0].transport == name


def test_source_is_a_structured_origin(tmp_path: Path) -> None:
    ini = tmp_path / "inv:with:colons.ini"  # a ':' in the file name no longer confuses readers
    ini.write_text("# comment\n\n[g]\nh1\nh2\n")
    targets = load_inventory([ini]).targets
    assert [t.source for t in targets] == [Origin(str(ini), 4), Origin(str(ini), 5)]


def test_missing_key_file_is_a_config_error_from_the_inventory(tmp_path: Path) -> None:
    ini = tmp_path / "x:y.ini"
    ini.write_text("[g]\nh1\nh2 ansible_ssh_private_key_file=nope/id_ed25519\n")
    inv = load_inventory([ini])
    with pytest.raises(ConfigError) as info:
        inv.select(None)
    assert (info.value.file, info.value.line, info.value.field) == (str(ini), 3, "key file")
    assert inv.select("h1") == (inv.targets[0],)  # only selected hosts are checked
    assert len(inv.select(None, check_files=False)) == 2


def test_key_file_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "key.fifo")
    ini = tmp_path / "inv.ini"
    ini.write_text(f"h1 ansible_ssh_private_key_file={tmp_path / 'key.fifo'}\n")
    with pytest.raises(ConfigError, match=r"FIFO .*expected a regular file"):
        load_inventory([ini]).select(None)


def test_known_hosts_named_by_the_inventory_must_not_be_a_device(tmp_path: Path) -> None:
    ini = tmp_path / "inv.ini"
    ini.write_text(
        "h1 fleetscan_known_hosts=/dev/zero\nh2 fleetscan_known_hosts=missing/kh\n"
        "h3 fleetscan_known_hosts=/dev/null\n"
    )
    inv = load_inventory([ini])
    with pytest.raises(ConfigError) as info:
        inv.select("h1")
    assert (info.value.line, info.value.field) == (1, "known_hosts")
    assert "character device, expected a regular file" in info.value.detail
    assert inv.select("h2") == (inv.targets[1],)  # a missing file only means: no keys
    assert inv.select("h3") == (inv.targets[2],)  # /dev/null: the idiomatic empty file


def test_duplicate_host_error_names_both_origins(tmp_path: Path) -> None:
    a, b = tmp_path / "a.ini", tmp_path / "b.ini"
    a.write_text("h1\n")
    b.write_text("\nh1\n")
    with pytest.raises(ConfigError) as info:
        load_inventory([a, b])
    assert (info.value.file, info.value.line) == (str(b), 2)
    assert f"{a}:1" in info.value.detail
