"""Issue 7 item 11: config files are regular files read with a size bound.

A FIFO must not hang, /dev/zero must not grow memory: every loader
(inventory, group_vars/host_vars, policy) and every operator path checked up
front (--ssh-config, --known-hosts) answers exit 2 with one clear line."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest

from fleetscan import configfile
from fleetscan.errors import ConfigError
from tests.cli import cli_env, run_cli

POLICY = "version: 1\n"
INVENTORY = "[web]\nw1 ansible_host=127.0.0.1\n"


def _setup(tmp: Path) -> None:
    (tmp / "policy.yaml").write_text(POLICY)
    (tmp / "inv.ini").write_text(INVENTORY)
    (tmp / "known_hosts").write_text("")


def _special(tmp: Path, kind: str, name: str) -> str:
    """A path of the given kind; returned as the argument to pass."""
    if kind == "fifo":
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
        return name
    if kind == "socket":
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))  # left bound: the file stays a socket
        return name
    if kind == "zero":
        if name.startswith("group_vars") or name.startswith("host_vars"):
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to("/dev/zero")
            return name
        return "/dev/zero"
    raise AssertionError(kind)


CASES = [
    # (what, kind, name, args with {} for the path, expected message fragment)
    ("inventory", "fifo", "inv.fifo", ["scan", "-i", "{}", "-p", "policy.yaml"], "FIFO"),
    ("inventory", "zero", "", ["scan", "-i", "{}", "-p", "policy.yaml"], "character device"),
    ("inventory", "socket", "inv.sock", ["inventory", "show", "-i", "{}"], "socket"),
    ("policy", "fifo", "p.fifo", ["scan", "-i", "inv.ini", "-p", "{}"], "FIFO"),
    ("policy", "zero", "", ["policy", "check", "-p", "{}"], "character device"),
    ("group_vars", "fifo", "group_vars/web.yml", ["inventory", "show", "-i", "inv.ini"], "FIFO"),
    ("host_vars", "zero", "host_vars/w1", ["inventory", "show", "-i", "inv.ini"], "character"),
    (
        "ssh_config",
        "fifo",
        "ssh.fifo",
        ["scan", "-i", "inv.ini", "-p", "policy.yaml", "--ssh-config", "{}"],
        "FIFO",
    ),
    (
        "known_hosts",
        "zero",
        "",
        ["scan", "-i", "inv.ini", "-p", "policy.yaml", "--known-hosts", "{}"],
        "character device",
    ),
    (
        "known_hosts",
        "fifo",
        "kh.fifo",
        ["scan", "-i", "inv.ini", "-p", "policy.yaml", "--known-hosts", "{}"],
        "FIFO",
    ),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("what", "kind", "name", "args", "fragment"),
    CASES,
    ids=[f"{c[0]}-{c[1]}" for c in CASES],
)
def test_special_files_are_refused_not_read(
    tmp_path: Path, what: str, kind: str, name: str, args: list[str], fragment: str
) -> None:
    _setup(tmp_path)
    arg = _special(tmp_path, kind, name)
    argv = [a.replace("{}", arg) for a in args]
    if argv[0] == "scan":
        argv += ["-o", "out", "--connect-timeout", "1"]
    # a hang would hit run_cli's timeout; a memory blow-up the 200 MB cap
    result = run_cli(argv, cwd=tmp_path, env=cli_env(tmp_path, {"COLUMNS": "100000"}))
    assert "Traceback" not in result.stderr
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"fleetscan: error: {name or '/dev/zero'}")
    assert fragment in lines[0] and "regular file" in lines[0]
    assert not (tmp_path / "out").exists()


def test_every_loader_uses_the_one_safe_reader() -> None:
    """No loader opens config files by itself (the reason for the shared function)."""
    root = Path(__file__).resolve().parents[2] / "fleetscan"
    offenders = []
    for path in [*root.glob("inventory/*.py"), root / "yamlsrc.py", root / "policy/loader.py"]:
        text = path.read_text()
        for needle in (r"\.read_bytes\(", r"\.read_text\(", r"(?<![\w.])open\(", r"os\.open\("):
            if re.search(needle, text):
                offenders.append(f"{path.name}: {needle}")
    assert offenders == []


def test_a_file_that_grows_past_the_limit_while_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(configfile, "MAX_CONFIG_BYTES", 1000)
    path = tmp_path / "inv.ini"
    path.write_text("h\n" * 400)  # under the limit when stat() looks
    real_fstat = os.fstat

    def grown(fd: int) -> os.stat_result:  # the size fstat saw is stale by the time we read
        path.write_text("h\n" * 4000)
        return real_fstat(fd)

    monkeypatch.setattr(configfile.os, "fstat", grown)
    with pytest.raises(ConfigError, match="larger than the 1000 byte limit"):
        configfile.read_config_bytes(path)


@pytest.mark.parametrize("field", ["--ssh-config", "--known-hosts"])
def test_dev_null_reads_as_an_empty_file(field: str) -> None:
    """``-F /dev/null`` / ``UserKnownHostsFile /dev/null`` are how OpenSSH users
    say "no file": accepted (empty), unlike every other device."""
    configfile.check_config_file("/dev/null", field=field)
    assert configfile.read_config_bytes("/dev/null", field=field) == b""
    with pytest.raises(ConfigError, match="character device"):
        configfile.check_config_file("/dev/zero", field=field)
