"""Every inventory problem is a ConfigError naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetscan import configfile
from fleetscan.errors import ConfigError

from .helpers import Writer, load


def error_of(*paths: Path) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        load(*paths)
    return err.value


def assert_names(
    err: ConfigError, path: Path, line: int | None, field: str | None, fragment: str
) -> None:
    text = str(err)
    assert path.name in text, text
    assert err.file is not None and err.file.endswith(path.name), text
    if line is not None:
        assert f"{path.name}:{line}:" in text, text
        assert err.line == line
    if field is not None:
        assert field in text, text
    assert fragment in text, text


INI_CASES = [
    ("h1\nh2 ansible_port=abc\n", 2, "ansible_port", "port must be an integer 1..65535"),
    ("h1 ansible_port=0\n", 1, "ansible_port", "got 0"),
    ("[g]\nh1\n\n[g:vars]\nansible_port=http\n", 5, "ansible_port", "got 'http'"),
    ("[g:weird]\nh1\n", 1, "[g:weird]", "unknown type 'weird'"),
    ("[g bad]\n", 1, "section", "invalid section header"),
    ("[p:children]\nmissing\n", 2, "[p:children]", "group 'missing' is used but never declared"),
    ("[v:vars]\nx=1\n", 1, "[v:vars]", "never declared"),
    (
        "[a:children]\nb\n[b:children]\nc\n[c:children]\na\n",
        6,
        "children",
        "cyclic group children: a -> b -> c -> a",
    ),
    ("[a:children]\na\n", 2, "children", "its own child"),
    ("h1 no_equals_here\n", 1, "host", "expected key=value"),
    ("h[01:100]\n", 1, "host", "same width"),
    ("h1 'unclosed\n", 1, "host", "cannot read host line"),
    ("-oProxyCommand=evil\n", 1, "host", "must not start with '-'"),
    ("h1 ansible_host=-oProxyCommand=x\n", 1, "ansible_host", "must not start with '-'"),
    ("h1 ansible_become=maybe\n", 1, "ansible_become", "expected a boolean"),
    (
        "h1 ansible_become=yes ansible_become_method=su\n",
        1,
        "ansible_become_method",
        "become method 'su' is not supported",
    ),
    ("h1 fleetscan_transport=telnet\n", 1, "fleetscan_transport", "unknown transport"),
    ('h1 ansible_user="bad user"\n', 1, "ansible_user", "invalid user name"),
    ("[g]\nh1\n[g:vars]\nno equals\n", 4, "[g:vars]", "expected key=value"),
    ("---\n", None, None, "no hosts"),
    ("h1\n---\n", 2, "host", "YAML document"),
]


@pytest.mark.parametrize(("text", "line", "field", "fragment"), INI_CASES)
def test_ini_errors(
    write: Writer, text: str, line: int | None, field: str | None, fragment: str
) -> None:
    path = write("inventory.ini", text)
    assert_names(error_of(path), path, line, field, fragment)


YAML_CASES = [
    ("all:\n  hosts:\n    h1:\n      ansible_port: abc\n", 4, "ansible_port", "port must be"),
    (
        "all:\n  children:\n    web:\n      host:\n        h1:\n",
        4,
        "all.children.web.host",
        "did you mean 'hosts'",
    ),
    ("all:\n  hosts:\n    - h1\n    - h2\n", 2, "all.hosts", "must be a mapping"),
    ("all:\n  hosts:\n    h1: just-a-string\n", 3, "all.hosts.h1", "must be a mapping"),
    (
        "all:\n  children:\n    a:\n      children:\n        b:\n          children:\n"
        "            a:\n",
        7,
        "children",
        "cyclic group children: a -> b -> a",
    ),
    ("all:\n  hosts:\n    h1:\n  hosts:\n    h2:\n", 4, "all.hosts", "duplicate key"),
    ("all:\n  hosts:\n    h1: {\n", 4, None, "invalid YAML"),
    ("plugin: amazon.aws.aws_ec2\nregions: [x]\n", 1, "plugin", "not supported"),
    ("all:\n  vars: [1]\n  hosts: {h1: }\n", 2, "all.vars", "must be a mapping"),
    ("all:\n  hosts:\n    web[1:x]:\n", 3, "all.hosts.web[1:x]", "bounds must be numbers"),
]


@pytest.mark.parametrize(("text", "line", "field", "fragment"), YAML_CASES)
def test_ansible_yaml_errors(
    write: Writer, text: str, line: int, field: str | None, fragment: str
) -> None:
    path = write("inventory.yaml", text)
    assert_names(error_of(path), path, line, field, fragment)


NORNIR_CASES = [
    ("h1:\n  hostname: a\n  port: abc\n", None, 3, "port", "port must be an integer"),
    (
        "h1:\n  groups: [web, dbb]\n",
        "db: {}\nweb: {}\n",
        2,
        "h1.groups",
        "group 'dbb' is not defined: it is not in groups.yaml (did you mean 'db'?)",
    ),
    ("h1:\n  groups: web\n", "web: {}\n", 2, "h1.groups", "must be a list"),
    ("h1:\n  hostname: a\n  usrname: bob\n", None, 3, "h1.usrname", "did you mean 'username'"),
    (
        "h1:\n  connection_options:\n    netmiko:\n      extra: {}\n",
        None,
        4,
        "h1.connection_options.netmiko.extra",
        "did you mean 'extras'",
    ),
    ("h1:\n  hostname: a\nh1:\n  hostname: b\n", None, 3, "h1", "duplicate key"),
    ("h1:\n  data: [1, 2]\n", None, 2, "h1.data", "data must be a mapping"),
    ("h1:\n  hostname: '-oProxyCommand=x'\n", None, 2, "hostname", "must not start with '-'"),
    (
        "h1:\n  connection_options:\n    fleetscan:\n      extras:\n        become: sometimes\n",
        None,
        4,
        "connection_options.fleetscan.extras.become",
        "expected a boolean",
    ),
]


@pytest.mark.parametrize(("hosts", "groups", "line", "field", "fragment"), NORNIR_CASES)
def test_nornir_host_errors(
    write: Writer, hosts: str, groups: str | None, line: int, field: str, fragment: str
) -> None:
    path = write("hosts.yaml", hosts)
    if groups is not None:
        write("groups.yaml", groups)
    assert_names(error_of(path), path, line, field, fragment)


def test_nornir_group_cycle_is_named(write: Writer) -> None:
    hosts = write("hosts.yaml", "h1:\n  groups: [a]\n")
    groups = write("groups.yaml", "a:\n  groups: [b]\nb:\n  groups: [a]\n")
    assert_names(error_of(hosts), groups, 4, "b.groups", "cyclic group inheritance: a -> b -> a")


def test_nornir_defaults_cannot_have_groups(write: Writer) -> None:
    hosts = write("hosts.yaml", "h1:\n  hostname: a\n")
    defaults = write("defaults.yaml", "username: x\ngroups: [a]\n")
    assert_names(error_of(hosts), defaults, 2, "groups", "unknown key 'groups'")


def test_nornir_group_file_with_bad_port_names_the_group_file(write: Writer) -> None:
    hosts = write("hosts.yaml", "h1:\n  groups: [g]\n")
    groups = write("groups.yaml", "g:\n  port: 99999\n")
    assert_names(error_of(hosts), groups, 2, "port", "got 99999")


def test_nornir_groups_file_alone_is_refused(write: Writer) -> None:
    groups = write("groups.yaml", "g:\n  port: 22\n")
    write("other/hosts", "h1\n")
    assert_names(
        error_of(groups, groups.parent / "other" / "hosts"),
        groups,
        None,
        None,
        "without its hosts.yaml",
    )


def test_same_host_in_two_inventories_names_both_places(write: Writer) -> None:
    a = write("a.ini", "[web]\nh1.example.com\n")
    b = write("b.yaml", "all:\n  hosts:\n    other:\n    h1.example.com:\n")
    err = error_of(a, b)
    assert_names(err, b, 4, "host", "defined twice")
    assert "a.ini:2" in str(err) and "b.yaml:4" in str(err)


@pytest.mark.parametrize(
    ("name", "content", "line", "fragment"),
    [
        ("empty.ini", b"", None, "no hosts"),
        ("comments", b"# only\n; comments\n\n", None, "no hosts"),
        ("empty.yaml", b"---\n", None, "no hosts"),
        ("nohosts.yaml", b"all:\n  vars:\n    x: 1\n", None, "no hosts"),
        ("nohosts.ini", b"[web]\n[web:vars]\nx=1\n", None, "no hosts"),
        ("binary", b"\x7fELF\x02\x01\x01\x00\x00\x00", None, "binary file"),
        ("latin1.ini", b"h1\nh\xe9\n", 2, "not valid UTF-8"),
        ("scalar.yaml", b"just text\n", 1, "not an inventory"),
    ],
)
def test_unusable_files(
    tmp_path: Path, name: str, content: bytes, line: int | None, fragment: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert_names(error_of(path), path, line, None, fragment)


def test_huge_file_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(configfile, "MAX_CONFIG_BYTES", 1000)
    path = tmp_path / "huge.ini"
    path.write_text("h1\n" * 1000)
    assert_names(error_of(path), path, None, None, "larger than the 1000 byte limit")


def test_yaml_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("all:\n  vars:\n" + "".join(f"    {x}\n" for x in lines))
    assert_names(error_of(path), path, None, None, "YAML aliases expand to more than")


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    assert_names(error_of(tmp_path / "nope.ini"), tmp_path / "nope.ini", None, None, "not found")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no inventory file in directory" in str(error_of(empty))


def test_secret_values_are_never_echoed_in_errors(write: Writer) -> None:
    path = write("hosts.yaml", "h1:\n  password: [not, text, s3cr3t]\n  port: x\n")
    err = error_of(path)
    assert "s3cr3t" not in str(err)


def test_small_yaml_alias_bomb_is_refused_by_expanded_size(tmp_path: Path) -> None:
    """Issue 7 item 16: ~1 KB, 40 hosts sharing a 4-level alias tree: under any
    alias *count* limit, but it expands to ~450,000 values (main: 11 s, 160 MB)."""
    lines = ["all:", "  vars:", "    a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"    a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 4)]
    lines += ["  hosts:"] + [f"    h{n}: {{v: *a3}}" for n in range(40)]
    path = tmp_path / "bomb.yml"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size < 2048
    err = error_of(path)
    assert err.file == str(path)
    assert "YAML aliases expand" in err.detail and "alias bomb" in err.detail


def test_anchors_shared_by_many_hosts_are_fine(tmp_path: Path) -> None:
    """The legitimate use: one anchored block of variables merged into every host."""
    lines = ["all:", "  hosts:"]
    lines += [
        f"    h{n}:\n      <<: *common"
        if n
        else "    h0: &common\n      ansible_user: audit\n"
        "      ansible_port: 2222\n      fleetscan_become: true"
        for n in range(2000)
    ]
    path = tmp_path / "shared.yml"
    path.write_text("\n".join(lines) + "\n")
    targets = load(path).targets
    assert len(targets) == 2000
    assert {(t.user, t.port, t.become) for t in targets} == {("audit", 2222, True)}
