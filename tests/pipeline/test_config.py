"""Scan defaults from fleetscan.toml, ~/.config/fleetscan/config.toml and
FLEETSCAN_* variables: command line > environment > project file > user file
> built-in; bad values are exit 2 naming the file (or variable) and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetscan import config
from fleetscan.errors import ConfigError
from fleetscan.model import Severity
from tests.cli import cli_env, run_cli


def setup(tmp: Path, project: str | None = None, user: str | None = None) -> dict[str, str]:
    home = tmp / "home"
    (home / ".config" / "fleetscan").mkdir(parents=True, exist_ok=True)
    if project is not None:
        (tmp / "fleetscan.toml").write_text(project)
    if user is not None:
        (home / ".config" / "fleetscan" / "config.toml").write_text(user)
    return {"HOME": str(home)}


def test_precedence_is_command_line_then_environment_then_project_then_user(
    tmp_path: Path,
) -> None:
    env = setup(
        tmp_path,
        project='[scan]\nconcurrency = 20\nfail_on = "medium"\n',
        user='[scan]\nconcurrency = 10\nhost_timeout = 30\nfail_on = "low"\n'
        'transport = "paramiko"\n',
    )
    env["FLEETSCAN_FAIL_ON"] = "critical"
    options, values = config.resolve({"transport": "local"}, cwd=tmp_path, environ=env)
    assert (options.concurrency, values["concurrency"].source) == (
        20,
        str(tmp_path / "fleetscan.toml"),
    )
    assert options.host_timeout == 30.0
    assert values["host_timeout"].source.endswith(".config/fleetscan/config.toml")
    assert (options.fail_on, values["fail_on"].source) == (
        Severity.CRITICAL,
        "environment FLEETSCAN_FAIL_ON",
    )
    assert (options.transport, values["transport"].source) == ("local", "command line")
    assert (options.max_output_mb, values["max_output_mb"].source) == (16, "default")


def test_paths_in_a_file_are_relative_to_that_file_and_lists_come_from_the_environment(
    tmp_path: Path,
) -> None:
    env = setup(tmp_path, user='[scan]\ninventory = ["hosts.ini"]\n')
    env["FLEETSCAN_POLICY"] = "a.yaml:/abs/b.yaml"
    env["FLEETSCAN_FORMAT"] = "json,junit"
    options, _ = config.resolve({}, cwd=tmp_path, environ=env)
    assert options.inventory == (tmp_path / "home/.config/fleetscan/hosts.ini",)
    assert options.policies == (Path("a.yaml"), Path("/abs/b.yaml"))
    assert options.formats == ("json", "junit")


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("[scan]\nconcurrency = 0\n", "scan.concurrency", "must be at least 1"),
        ('[scan]\nconcurrency = "many"\n', "scan.concurrency", "must be an integer"),
        ("[scan]\nhost_timeout = -5\n", "scan.host_timeout", "positive"),
        ('[scan]\nformat = ["html", "pdf"]\n', "scan.format", "unknown report format 'pdf'"),
        ('[scan]\nfail_on = "urgent"\n', "scan.fail_on", "unknown severity"),
        ("[scan]\nconcurency = 3\n", "scan.concurency", "did you mean 'concurrency'"),
        ("[scan]\nhost_key_check = false\n", "scan.host_key_check", "unknown key"),
        ("[scan]\ninventory = [1]\n", "scan.inventory", "must be a path"),
    ],
)
def test_a_bad_value_in_a_file_names_the_file_and_key(
    tmp_path: Path, text: str, key: str, words: str
) -> None:
    env = setup(tmp_path, project=text)
    with pytest.raises(ConfigError) as err:
        config.load(cwd=tmp_path, environ=env)
    assert str(err.value).startswith(f"{tmp_path / 'fleetscan.toml'}: {key}: ")
    assert words in str(err.value)


def test_a_file_that_is_not_toml_or_has_other_tables_is_refused(tmp_path: Path) -> None:
    env = setup(tmp_path, project="[scan\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(cwd=tmp_path, environ=env)
    env = setup(tmp_path, project="concurrency = 3\n")
    with pytest.raises(ConfigError, match=r"scan defaults go in \[scan\]"):
        config.load(cwd=tmp_path, environ=env)


def test_a_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    env = setup(tmp_path)
    env["FLEETSCAN_HOST_TIMEOUT"] = "soon"
    with pytest.raises(ConfigError) as err:
        config.load(cwd=tmp_path, environ=env)
    assert str(err.value).startswith("environment: FLEETSCAN_HOST_TIMEOUT: must be a number")


# --- through the real command line ----------------------------------------------------


def test_config_show_prints_every_value_with_its_source(tmp_path: Path) -> None:
    extra = setup(tmp_path, project='[scan]\nfail_on = "critical"\n')
    env = cli_env(tmp_path, {**extra, "FLEETSCAN_CONCURRENCY": "7"})
    text = run_cli(["config", "show"], cwd=tmp_path, env=env)
    assert text.returncode == 0, text.stderr
    lines = {line.split(" ", 1)[0]: line for line in text.stdout.splitlines()}
    assert lines["fail_on"].endswith(f'"critical"  # {tmp_path / "fleetscan.toml"}')
    assert lines["concurrency"].endswith("7  # environment FLEETSCAN_CONCURRENCY")
    assert lines["host_timeout"].endswith("120.0  # default")
    as_json = json.loads(run_cli(["config", "show", "--json"], cwd=tmp_path, env=env).stdout)
    assert as_json["settings"]["concurrency"] == {
        "value": 7,
        "source": "environment FLEETSCAN_CONCURRENCY",
        "env": "FLEETSCAN_CONCURRENCY",
    }


def test_scan_takes_its_defaults_from_the_config_and_the_command_line_wins(
    tmp_path: Path,
) -> None:
    (tmp_path / "inv.ini").write_text("web1 ansible_host=127.0.0.1 ansible_port=1\n")
    (tmp_path / "pol.yaml").write_text("version: 1\nforbidden:\n  - id: irc\n    ports: 6667\n")
    extra = setup(
        tmp_path,
        project='[scan]\ninventory = ["inv.ini"]\npolicy = ["pol.yaml"]\nformat = ["json"]\n'
        "connect_timeout = 2\nconcurrency = 0\n",
    )
    env = cli_env(tmp_path, extra)
    bad = run_cli(["scan", "-o", "out"], cwd=tmp_path, env=env)
    assert bad.returncode == 2
    assert bad.stderr.startswith(
        f"fleetscan: error: {tmp_path / 'fleetscan.toml'}: scan.concurrency:"
    )
    # a broken file is an error even for keys the command line sets
    again = run_cli(["scan", "-o", "out", "--concurrency", "3"], cwd=tmp_path, env=env)
    assert again.returncode == 2
    (tmp_path / "fleetscan.toml").write_text(
        '[scan]\ninventory = ["inv.ini"]\npolicy = ["pol.yaml"]\nformat = ["json"]\n'
        "connect_timeout = 2\n"
    )
    ok = run_cli(["scan", "-o", "out", "-q"], cwd=tmp_path, env=env)
    assert ok.returncode == 3, ok.stderr  # port 1 refuses: not fully scanned
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        ".fleetscan-manifest.json",  # what fleetscan wrote, so the next run cleans only that
        "report.json",
    ]
    # the command line wins over the file
    ok = run_cli(["scan", "-o", "out2", "-q", "--format", "junit"], cwd=tmp_path, env=env)
    assert ok.returncode == 3, ok.stderr
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == [
        ".fleetscan-manifest.json",
        "junit.xml",
    ]


def test_alert_and_report_settings_come_from_the_config_and_the_environment(
    tmp_path: Path,
) -> None:
    env = setup(
        tmp_path,
        project='[scan]\nwebhook = ["https://hooks.example.invalid/a"]\nwebhook_format = "slack"\n'
        'alert_on = "critical"\nmail_to = ["sec@example.invalid"]\nreport_mode = "0640"\n'
        'metrics_file = "out/fleetscan.prom"\n',
    )
    env["FLEETSCAN_MAIL_TO"] = "a@example.invalid, b@example.invalid"
    options, values = config.resolve({"report_mode": "0644"}, cwd=tmp_path, environ=env)
    assert options.webhooks == ("https://hooks.example.invalid/a",)
    assert (options.webhook_format, options.alert_on) == ("slack", Severity.CRITICAL)
    assert options.mail_to == ("a@example.invalid", "b@example.invalid")
    assert values["mail_to"].source == "environment FLEETSCAN_MAIL_TO"
    assert options.metrics_file == tmp_path / "out/fleetscan.prom"
    assert (options.report_mode, values["report_mode"].source) == (0o644, "command line")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[scan]\nreport_mode = "0777"\n', "report_mode"),
        ("[scan]\nwebhook = 3\n", "list of strings"),
        ("[scan]\nalert_on = 3\n", "severity"),
    ],
)
def test_bad_alert_or_report_setting_names_file_and_key(
    tmp_path: Path, text: str, fragment: str
) -> None:
    env = setup(tmp_path, project=text)
    with pytest.raises(ConfigError) as info:
        config.resolve({}, cwd=tmp_path, environ=env)
    assert str(tmp_path / "fleetscan.toml") in str(info.value)
    assert fragment in str(info.value)
