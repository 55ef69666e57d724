"""Ansible INI inventories are read the way Ansible reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetscan.inventory import load_inventory
from fleetscan.inventory.ansible_ini import parse_value
from fleetscan.inventory.ranges import RangeError, expand_host_pattern

from .helpers import EXAMPLES, Writer, load


@pytest.mark.parametrize(
    ("pattern", "names", "port"),
    [
        (
            "web[01:03].example.com",
            ["web01.example.com", "web02.example.com", "web03.example.com"],
            None,
        ),
        ("db-[a:c].x", ["db-a.x", "db-b.x", "db-c.x"], None),
        ("h[0:10:5]", ["h0", "h5", "h10"], None),
        ("h[:2]", ["h0", "h1", "h2"], None),
        ("h[08:10]", ["h08", "h09", "h10"], None),
        ("r[1:2]n[a:b]", ["r1na", "r1nb", "r2na", "r2nb"], None),
        ("web04.example.com:2222", ["web04.example.com"], 2222),
        ("web[1:2].x:2200", ["web1.x", "web2.x"], 2200),
        ("[2001:db8::1]:2022", ["2001:db8::1"], 2022),
        ("2001:db8::1", ["2001:db8::1"], None),
        ("127.0.0.1:22", ["127.0.0.1"], 22),
    ],
)
def test_host_patterns_expand_like_ansible(
    pattern: str, names: list[str], port: int | None
) -> None:
    assert expand_host_pattern(pattern) == (names, port)


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("h[1:99999999]", "limit"),
        ("h[01:100]", "same width"),
        ("h[a]", "begin:end"),
        ("h[5:1]", "begin <= end"),
        ("h[1:3:0]", "positive"),
        ("h[1:2", "unclosed"),
        ("h:", "ending in ':'"),
        ("h:70000", "1..65535"),
    ],
)
def test_bad_host_patterns_are_refused_with_the_reason(pattern: str, reason: str) -> None:
    with pytest.raises(RangeError, match=reason):
        expand_host_pattern(pattern)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2222", 2222),
        ("'2222'", "2222"),
        ("True", True),
        ("yes", "yes"),
        ('"a b"', "a b"),
        ("[1, 'x']", [1, "x"]),
        ("b'x'", "x"),
        ("1j", "1j"),
        ("(" * 500, "(" * 500),
    ],
)
def test_inline_values_are_python_literals_as_in_ansible(text: str, value: object) -> None:
    assert parse_value(text) == value


def test_example_inventory_resolves_groups_vars_and_children() -> None:
    inv = load(EXAMPLES / "ansible-example.ini")
    t = {x.name: x for x in inv.targets}
    assert list(t)[:5] == [
        "bastion.example.com",
        "web01.example.com",
        "web02.example.com",
        "web03.example.com",
        "web04.example.com",
    ]
    assert t["bastion.example.com"].groups == ("ungrouped",)
    assert t["bastion.example.com"].user == "ops"
    assert t["bastion.example.com"].jump_host is None
    web4 = t["web04.example.com"]
    assert (web4.port, web4.user, web4.groups) == (2222, "deploy", ("prod", "web"))
    assert web4.jump_host == "ops@bastion.example.com"
    assert web4.known_hosts == "~/.ssh/known_hosts_prod"
    assert web4.platform == "linux"  # ansible_os_family=Debian
    dbc = t["db-c.example.com"]
    assert (dbc.address, dbc.port, dbc.become, dbc.become_method) == (
        "127.0.0.1",
        2201,
        True,
        "sudo",
    )
    assert dbc.password_env == "FLEETSCAN_DB_SSH_PASSWORD"
    assert t["app01.example.com"].key_files == ("~/.ssh/app_ed25519",)
    assert inv.groups["prod"] == tuple(n for n in t if n != "bastion.example.com")
    assert web4.source is not None
    assert (Path(web4.source.file).name, web4.source.line) == ("ansible-example.ini", 10)


def test_group_vars_precedence_child_over_parent_host_over_group(write: Writer) -> None:
    path = write(
        "hosts",
        """
        [all:vars]
        level=all
        only_all=1

        [parent:children]
        child

        [parent:vars]
        level=parent

        [child]
        h1
        h2 level=host

        [child:vars]
        level=child
        """,
    )
    t = {x.name: x for x in load(path).targets}
    assert t["h1"].vars["level"] == "child"
    assert t["h2"].vars["level"] == "host"
    assert t["h1"].vars["only_all"] == 1
    assert t["h1"].groups == ("child", "parent")


def test_same_depth_groups_merge_alphabetically_unless_priority_says_otherwise(
    write: Writer,
) -> None:
    path = write(
        "hosts",
        """
        [b]
        h1
        [a]
        h1
        [a:vars]
        x=from_a
        [b:vars]
        x=from_b
        """,
    )
    assert load(path).targets[0].vars["x"] == "from_b"
    prioritised = write(
        "hosts2",
        """
        [b]
        h1
        [a]
        h1
        [a:vars]
        x=from_a
        ansible_group_priority=10
        [b:vars]
        x=from_b
        """,
    )
    assert load(prioritised).targets[0].vars["x"] == "from_a"


def test_host_in_two_groups_is_one_target_with_both_groups(write: Writer) -> None:
    path = write(
        "inv.ini",
        """
        loose.example.com
        [g1]
        h.example.com a=1
        [g2]
        h.example.com b=2
        """,
    )
    inv = load(path)
    h = {t.name: t for t in inv.targets}["h.example.com"]
    assert h.groups == ("g1", "g2")
    assert (h.vars["a"], h.vars["b"]) == (1, 2)
    assert h.source is not None
    assert (Path(h.source.file).name, h.source.line) == ("inv.ini", 3)
    assert inv.groups["ungrouped"] == ("loose.example.com",)


def test_quoted_values_with_spaces_and_comments(write: Writer) -> None:
    path = write(
        "hosts",
        """
        ; a semicolon comment
        # a hash comment
        h1 ansible_ssh_common_args="-o ProxyJump=jump.example.com" note='two words' # trailing
        [g:vars]
        motd = hello world   # inline comment dropped
        quoted = "keep # this"
        [g]
        h1
        """,
    )
    h = load(path).targets[0]
    assert h.jump_host == "jump.example.com"
    assert h.vars["note"] == "two words"
    assert h.vars["motd"] == "hello world"
    assert h.vars["quoted"] == "keep # this"


@pytest.mark.parametrize(
    ("args", "jump"),
    [
        ("-J ops@bastion.example.com", "ops@bastion.example.com"),
        ("-o ProxyJump=bastion.example.com:2222", "bastion.example.com:2222"),
        ("-o 'ProxyJump bastion.example.com'", "bastion.example.com"),
        ("-o StrictHostKeyChecking=yes", None),
        ("-o ProxyCommand='ssh -W %h:%p -q ops@bastion.example.com'", "ops@bastion.example.com"),
        ("-o ProxyCommand='nc -x proxy 1080 %h %p'", None),
    ],
)
def test_jump_host_comes_from_ssh_common_args(write: Writer, args: str, jump: str | None) -> None:
    path = write("hosts", f'h1 ansible_ssh_common_args="{args}"\n')
    assert load(path).targets[0].jump_host == jump


@pytest.mark.parametrize(
    ("variables", "platform"),
    [
        ("ansible_connection=winrm", "windows"),
        ("ansible_connection=psrp", "windows"),
        ("ansible_shell_type=powershell", "windows"),
        ("ansible_os_family=RedHat", "linux"),
        ("ansible_system=Darwin", "darwin"),
        ("ansible_os_family=FreeBSD", "freebsd"),
        ("ansible_network_os=cisco.ios.ios", "cisco.ios.ios"),
        ("fleetscan_platform=MacOS ansible_os_family=Debian", "darwin"),
        ("", None),
    ],
)
def test_platform_hint_is_normalised(write: Writer, variables: str, platform: str | None) -> None:
    assert load(write("hosts", f"h1 {variables}\n")).targets[0].platform == platform


@pytest.mark.parametrize(
    ("variables", "transport"),
    [
        ("", "asyncssh"),
        ("ansible_connection=local", "local"),
        ("ansible_connection=paramiko", "paramiko"),
        ("fleetscan_transport=Paramiko", "paramiko"),
        ("ansible_connection=ssh", "asyncssh"),
    ],
)
def test_transport_choice(write: Writer, variables: str, transport: str) -> None:
    # localhost: the local transport only scans this machine
    assert load(write("hosts", f"localhost {variables}\n")).targets[0].transport == transport


@pytest.mark.parametrize("value", ["yes", "YES", "True", "true", "1", "on"])
def test_ansible_booleans_enable_become(write: Writer, value: str) -> None:
    path = write("hosts", f"[g]\nh1\n[g:vars]\nansible_become={value}\n")
    assert load(path).targets[0].become is True


def test_default_user_fills_only_hosts_without_a_user(write: Writer) -> None:
    path = write("hosts", "h1\nh2 ansible_user=bob\n")
    t = {x.name: x for x in load(path, default_user="audit").targets}
    assert (t["h1"].user, t["h2"].user) == ("audit", "bob")


def test_inline_password_is_only_in_masked_vars(write: Writer) -> None:
    path = write("hosts", "h1 ansible_password=s3cr3t-value ansible_ssh_pass=other-s3cr3t\n")
    t = load_inventory([path]).targets[0]
    assert t.vars["ansible_password"] == "s3cr3t-value"
    assert t.public_vars()["ansible_password"] == "***"
    printable = [t.name, t.address, t.user, t.source, t.jump_host, t.known_hosts, t.password_env]
    assert not any("s3cr3t" in str(v) for v in printable)


def test_key_passphrase_comes_from_a_named_environment_variable(write: Writer) -> None:
    path = write("hosts", "[g]\nh1\n[g:vars]\nfleetscan_key_passphrase_env=FS_KEY_PASS\n")
    target = load(path).targets[0]
    assert target.passphrase_env == "FS_KEY_PASS"
    assert target.password_env is None
