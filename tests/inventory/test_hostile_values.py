"""Issue 7 item 1: host names, addresses, users and jump hosts from an
inventory are validated as OpenSSH 9.6+ does (no shell metacharacters, no
'%', no whitespace or control characters, no leading '-', a valid host name /
IPv4 / IPv6 literal), in every inventory format, before any connection."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetscan.errors import ConfigError
from fleetscan.inventory import load_inventory
from fleetscan.inventory.values import address_problem, jump_hop_problem, user_problem
from tests.cli import cli_env, run_cli

HOSTILE = [
    "127.0.0.1;touch${IFS}pwned;true",
    "h;id",
    "$(touch pwned)",
    "`touch pwned`",
    "h|nc",
    "h&&id",
    "h${IFS}x",
    "a\nb",
    "a\x00b",
    "%h",
    "host%d",
    "-oProxyCommand=touch pwned",
    "-J",
    "two words",
    "tab\there",
    "h'q",
    'h"q',
    "h<x",
    "h>x",
    "h\\x",
    "{a,b}",
    "web\u202e01",  # right-to-left override
    "web\u200b01",  # zero-width space
    "web\uff1bid",  # fullwidth semicolon
    "wеb01",  # Cyrillic 'е'
    "web\u2028x",  # line separator
    "web\u00a0x",  # no-break space
    "web..example",
    "-web",
    "300.1.1.1",
    "127.1",
    "0x7f.0.0.1",
    "fe80::1%eth0",
    "[::1",
    "::g",
]

GOOD_ADDRESSES = ["127.0.0.1", "::1", "[::1]", "web-01.example.com", "db_1", "localhost", "WEB01."]


def _ini(tmp: Path, field: str, value: str) -> Path:
    path = tmp / "inv.ini"
    path.write_text(f"[g]\nh1\n\n[g:vars]\n{field}={json.dumps(value)}\n")
    return path


def _ansible_yaml(tmp: Path, field: str, value: str) -> Path:
    path = tmp / "inv.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {"h1": {field: value}}}}))
    return path


def _ansible_json(tmp: Path, field: str, value: str) -> Path:
    path = tmp / "inv.json"
    doc = {"_meta": {"hostvars": {"h1": {field: value}}}, "all": {"children": ["g"]}}
    doc["g"] = {"hosts": ["h1"]}
    path.write_text(json.dumps(doc, indent=2))
    return path


_NORNIR_KEYS = {
    "ansible_host": ("hostname", None),
    "ansible_user": ("username", None),
    "fleetscan_jump_host": ("data", "fleetscan_jump_host"),
}


def _nornir(tmp: Path, field: str, value: str) -> Path:
    key, sub = _NORNIR_KEYS[field]
    body: dict[str, object] = {key: {sub: value} if sub else value}
    path = tmp / "hosts.yaml"
    path.write_text(yaml.safe_dump({"h1": body}))
    return path


FORMATS: dict[str, Callable[[Path, str, str], Path]] = {
    "ini": _ini,
    "yaml": _ansible_yaml,
    "json": _ansible_json,
    "nornir": _nornir,
}


def _error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_inventory([path])
    return info.value


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v)[1:-1][:30])
def test_hostile_address_is_a_config_error_in_every_format(
    tmp_path: Path, fmt: str, value: str
) -> None:
    path = FORMATS[fmt](tmp_path, "ansible_host", value)
    err = _error(path)
    assert err.file == str(path)
    assert err.line is not None
    assert err.field is not None and "host" in err.field
    assert "invalid address" in err.detail


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize(
    "value",
    [
        "root;id",
        "$(id)",
        "`id`",
        "u|x",
        "u&x",
        "u${IFS}x",
        "a b",
        "a\nb",
        "%r",
        "-oX=y",
        "u\u202ex",
        "u'",
        "u\\",
    ],
    ids=repr,
)
def test_hostile_user_is_a_config_error_in_every_format(
    tmp_path: Path, fmt: str, value: str
) -> None:
    path = FORMATS[fmt](tmp_path, "ansible_user", value)
    err = _error(path)
    assert (err.file, err.field is not None) == (str(path), True)
    assert "invalid user name" in err.detail


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize(
    "value",
    [
        "bastion;id",
        "ops@$(id)",
        "-oProxyCommand=x",
        "b:99999",
        "ssh://u@[::1",
        "a,b c",
        "%h",
        "u;x@bastion",
        "ok@bastion,evil|x",
    ],
    ids=repr,
)
def test_hostile_jump_host_is_a_config_error(tmp_path: Path, fmt: str, value: str) -> None:
    path = FORMATS[fmt](tmp_path, "fleetscan_jump_host", value)
    err = _error(path)
    assert err.file == str(path) and err.field is not None and "jump" in err.field
    assert "jump host" in err.detail


@pytest.mark.parametrize(
    "args",
    [
        "-o ProxyJump=ops@bastion;id",
        "-J '$(id)'",
        "-o ProxyCommand='ssh -W %h:%p b`id`'",
    ],
)
def test_hostile_jump_in_ssh_args_is_a_config_error(tmp_path: Path, args: str) -> None:
    path = tmp_path / "inv.ini"
    path.write_text(f'h1 ansible_ssh_common_args="{args}"\n')
    err = _error(path)
    assert (err.file, err.line, err.field) == (str(path), 1, "ansible_ssh_common_args")


@pytest.mark.parametrize(
    "jump", ["bastion", "ops@bastion:2222", "ssh://ops@[::1]:22", "a@b,c@d:2", "DOM\\u@b"]
)
def test_good_jump_hosts_are_kept(tmp_path: Path, jump: str) -> None:
    path = _ansible_yaml(tmp_path, "fleetscan_jump_host", jump)
    assert load_inventory([path]).targets[0].jump_host == jump


@pytest.mark.parametrize("value", GOOD_ADDRESSES)
def test_good_addresses_are_kept(tmp_path: Path, value: str) -> None:
    path = _ansible_yaml(tmp_path, "ansible_host", value)
    assert load_inventory([path]).targets[0].address == value


@pytest.mark.parametrize("user", ["root", "svc-scan", "a.b", "CORP\\audit", "audit@corp.example"])
def test_good_users_are_kept(tmp_path: Path, user: str) -> None:
    path = _ansible_yaml(tmp_path, "ansible_user", user)
    assert load_inventory([path]).targets[0].user == user


@pytest.mark.parametrize("name", ["h;id", "$(id)", "-oProxyCommand=x", "h%h", "h`id`"])
def test_hostile_host_names_are_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {name: {"ansible_host": "127.0.0.1"}}}}))
    err = _error(path)
    assert err.file == str(path) and err.line == 3
    assert "invalid host name" in err.detail


def test_unicode_address_suggests_its_ascii_form(tmp_path: Path) -> None:
    path = _ansible_yaml(tmp_path, "ansible_host", "bücher.example")
    assert "xn--bcher-kva.example" in _error(path).detail


def test_paramiko_match_exec_attack_stops_before_any_connection(tmp_path: Path) -> None:
    """The issue's attack: an ansible_host with a shell payload, paramiko chosen
    by the inventory, an ssh_config with ``Match exec``. Exit 2, one line,
    and the payload never ran."""
    (tmp_path / "ssh_config").write_text('Match exec "test %h = x"\n  User nobody\n')
    (tmp_path / "policy.yaml").write_text("version: 1\n")
    (tmp_path / "inv.ini").write_text(
        "[web]\nw1 ansible_host=127.0.0.1;touch${IFS}pwned;true fleetscan_transport=paramiko\n"
    )
    result = run_cli(
        [
            "scan",
            "-i",
            "inv.ini",
            "-p",
            "policy.yaml",
            "--ssh-config",
            "ssh_config",
            "-o",
            "out",
            "--connect-timeout",
            "2",
        ],
        cwd=tmp_path,
        env=cli_env(tmp_path, {"COLUMNS": "100000"}),
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("fleetscan: error: inv.ini:2: ansible_host: invalid address")
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "out").exists()


_FORBIDDEN = "'`\"$;&<>|(){}*?!#~^%\\ \t\n\r\x00\x1b\x7f\u2028\u202e\u200b"


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
    st.sampled_from(_FORBIDDEN),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
)
def test_no_forbidden_character_ever_passes(before: str, bad: str, after: str) -> None:
    """Whatever surrounds it, a shell metacharacter, '%', whitespace or an
    invisible/control character makes the value unusable as address, user or
    jump host."""
    text = before + bad + after
    assert address_problem(text) is not None
    if bad != "\\":  # DOMAIN\user is a Windows login (also as a jump host's user)
        assert user_problem(text) is not None
        assert jump_hop_problem(text) is not None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_accepted_addresses_are_plain_names_or_ip_literals(text: str) -> None:
    if address_problem(text) is None:
        assert text.isascii() and text.isprintable() and not text.startswith("-")
        assert not set(text) & set(_FORBIDDEN)
