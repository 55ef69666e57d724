"""Help, parser listing and shell completion through the real command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetscan import parsers
from tests.cli import cli_env, run_cli, run_cli_many

HELP_PAGES = [
    ("--help",),
    ("scan", "--help"),
    ("demo", "--help"),
    ("parse", "--help"),
    ("inventory", "show", "--help"),
    ("policy", "check", "--help"),
]


def test_help_pages_show_no_type_placeholders_on_flags(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    results = run_cli_many({" ".join(a): (a, tmp_path, env) for a in HELP_PAGES})
    for name, proc in results.items():
        assert proc.returncode == 0, (name, proc.stderr)
        options = proc.stdout.partition("Options:")[2]
        for placeholder in ("<bool>", "<int>", "<str>", "<list", "<path>", "<float>"):
            assert placeholder not in options, (name, placeholder, proc.stdout)
    scan_help = results["scan --help"].stdout
    assert "--no-host-key-check " in scan_help and "-v, --verbose " in scan_help
    assert "--host-timeout SECONDS" in scan_help


def test_parse_list_exists_and_names_every_parser(tmp_path: Path) -> None:
    assert "--list" in run_cli(["parse", "--help"], cwd=tmp_path).stdout
    proc = run_cli(["parse", "--list"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    listed = [line.split("\t")[0] for line in proc.stdout.splitlines()]
    assert listed == [spec.name for spec in parsers.all_parsers()]
    assert "ss -tulnp" in proc.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_completion_prints_a_script_for_the_shell(tmp_path: Path, shell: str) -> None:
    proc = run_cli(["--show-completion", shell], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "_FLEETSCAN_COMPLETE" in proc.stdout


def test_completion_completes_commands_and_options(tmp_path: Path) -> None:
    def complete(words: str, cword: int) -> list[str]:
        env = cli_env(
            tmp_path,
            {"COMP_WORDS": words, "COMP_CWORD": str(cword), "_FLEETSCAN_COMPLETE": "complete_bash"},
        )
        proc = run_cli([], cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split()

    assert complete("fleetscan sc", 1) == ["scan"]
    assert complete("fleetscan scan --fail", 2) == ["--fail-on"]


def test_install_completion_writes_the_script_into_the_users_shell_setup(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = cli_env(home, {"SHELL": "/bin/bash"})
    proc = run_cli(["--install-completion", "bash"], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    script = home / ".bash_completions" / "fleetscan.sh"
    assert "_FLEETSCAN_COMPLETE" in script.read_text()
    assert str(script) in (home / ".bashrc").read_text()
