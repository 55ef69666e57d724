"""Nornir SimpleInventory: inheritance and connection options as nornir 3 resolves them."""

from __future__ import annotations

import pytest

from fleetscan.errors import ConfigError

from .helpers import EXAMPLES, FIXTURES, Writer, load


def test_data_resolves_host_then_groups_depth_first_then_defaults() -> None:
    t = {x.name: x for x in load(FIXTURES / "nornir_inherit").targets}
    h1 = t["h1"]
    # host -> g1 -> g11 -> g12 -> g2 -> defaults
    assert h1.groups == ("g1", "g11", "g12", "g2")
    assert h1.vars == {
        "own": "host",
        "from_g1": "g1",
        "site": "g11",
        "rack": "g12",
        "tier": "g2",
        "owner": "defaults",
    }
    assert h1.port == 2212  # g12 comes before g2
    assert h1.user == "g2user"  # first group that sets it, before defaults
    assert h1.platform == "freebsd"  # "FreeBSD" from g2, normalised


def test_host_attributes_win_and_password_stays_in_masked_vars() -> None:
    h2 = {x.name: x for x in load(FIXTURES / "nornir_inherit").targets}["h2"]
    assert (h2.address, h2.user, h2.port) == ("127.0.0.2", "alice", 2200)
    assert h2.vars["password"] == "hunter2-inline"
    assert h2.public_vars()["password"] == "***"


def test_connection_options_of_the_transport_plugin_are_read() -> None:
    h3 = {x.name: x for x in load(FIXTURES / "nornir_inherit").targets}["h3"]
    assert (h3.address, h3.port, h3.user, h3.platform, h3.groups) == (
        "h3",
        2022,
        "defaultuser",
        "linux",
        (),
    )
    assert h3.key_files == ("/keys/h3",)


def test_example_nornir_inventory() -> None:
    inv = load(EXAMPLES / "nornir")
    t = {x.name: x for x in inv.targets}
    assert [f.rsplit("/", 1)[1] for f in inv.files] == [
        "hosts.yaml",
        "groups.yaml",
        "defaults.yaml",
    ]
    db1 = t["db01.example.com"]
    assert (db1.address, db1.port, db1.user, db1.become) == ("127.0.0.1", 2201, "audit", True)
    assert db1.vars["environment"] == "production"
    assert db1.jump_host == "ops@bastion.example.com"
    assert db1.password_env == "FLEETSCAN_DB_SSH_PASSWORD"
    assert t["app01.example.com"].key_files == ("~/.ssh/app_ed25519",)
    assert inv.groups["prod"] == tuple(t)


def test_hosts_file_given_directly_finds_its_groups_and_defaults() -> None:
    direct = load(EXAMPLES / "nornir" / "hosts.yaml")
    assert direct.targets == load(EXAMPLES / "nornir").targets


def test_groups_and_defaults_can_be_given_explicitly(write: Writer) -> None:
    hosts = write("a/hosts.yaml", "h1:\n  groups: [g]\n")
    groups = write("b/groups.yaml", "g:\n  username: fromgroup\n")
    defaults = write("c/defaults.yaml", "port: 2222\n")
    (t,) = load(hosts, groups, defaults).targets
    assert (t.user, t.port) == ("fromgroup", 2222)


@pytest.mark.parametrize(
    ("extras", "check"),
    [
        ("become: true", lambda t: t.become),
        ("jump_host: j.example.com", lambda t: t.jump_host == "j.example.com"),
        ("tunnel: j.example.com", lambda t: t.jump_host == "j.example.com"),
        ("known_hosts: /etc/kh", lambda t: t.known_hosts == "/etc/kh"),
        ("key_file: /k", lambda t: t.key_files == ("/k",)),
        ("client_keys: [/a, /b]", lambda t: t.key_files == ("/a", "/b")),
        ("password_env: PW", lambda t: t.password_env == "PW"),
        ("transport: paramiko", lambda t: t.transport == "paramiko"),
    ],
)
def test_fleetscan_extras(write: Writer, extras: str, check: object) -> None:
    path = write(
        "hosts.yaml",
        f"""
        h1:
          connection_options:
            fleetscan:
              extras:
                {extras}
        """,
    )
    (t,) = load(path).targets
    assert callable(check) and check(t)


def test_unknown_host_key_suggests_the_nearest(write: Writer) -> None:
    path = write("hosts.yaml", "h1:\n  hostname: x.example.com\nh2:\n  hostnme: y\n")
    with pytest.raises(ConfigError) as err:
        load(path)
    msg = str(err.value)
    assert "hosts.yaml:4" in msg and "h2.hostnme" in msg and "did you mean 'hostname'" in msg


def test_key_passphrase_env_from_connection_options_extras(write: Writer) -> None:
    hosts = write(
        "hosts.yaml",
        "h1:\n  hostname: 127.0.0.1\n  connection_options:\n    fleetscan:\n"
        "      extras:\n        key_passphrase_env: FS_KEY_PASS\n",
    )
    (target,) = load(hosts).targets
    assert target.passphrase_env == "FS_KEY_PASS"
