"""One entry for every run: ``app.prepare`` checks everything before any
connection, ``app.execute``/``app.run`` scan, judge and write the reports —
the same path for the CLI, the demo, a worker or a Python user."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from fleetscan import app
from fleetscan.errors import ConfigError
from fleetscan.model import Status
from fleetscan.options import RunOptions, parse_formats
from fleetscan.testing.mock import MockCall, MockReply, MockTransport
from fleetscan.testing.simhost import SimHost, frame_posix

POLICY = "version: 1\nforbidden:\n  - id: irc\n    ports: 6667\n    severity: high\n"
SS = (
    "Netid State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
    'tcp   LISTEN 0      128    0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=733,fd=3))\n'
    'tcp   LISTEN 0      128    0.0.0.0:6667 0.0.0.0:* users:(("ircd",pid=900,fd=3))\n'
)


def write(tmp: Path, inventory: str, policy: str = POLICY) -> RunOptions:
    (tmp / "inv.ini").write_text(inventory)
    (tmp / "policy.yaml").write_text(policy)
    # reports (and the check of their folder in prepare) under tmp, not ./fleetscan-reports
    return RunOptions(
        inventory=(tmp / "inv.ini",),
        policies=(tmp / "policy.yaml",),
        output_root=tmp / "fleetscan-reports",
    )


def test_run_options_are_frozen(tmp_path: Path) -> None:
    options = write(tmp_path, "h1 ansible_host=127.0.0.1\n")
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.concurrency = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("line", "forced", "where", "words"),
    [
        # the inventory names the field it was written in
        (
            "h1 ansible_host=127.0.0.1 fleetscan_transport=simulated",
            None,
            ":1",
            "fleetscan_transport",
        ),
        ("h1 ansible_host=127.0.0.1", "telnet", "", "--transport"),
    ],
    ids=["from-the-inventory", "forced-on-the-command-line"],
)
def test_an_unknown_transport_is_a_config_error_before_any_connection(
    tmp_path: Path, line: str, forced: str | None, where: str, words: str
) -> None:
    options = dataclasses.replace(
        write(tmp_path, line + "\n"), transport=forced, output=tmp_path / "out"
    )
    with pytest.raises(ConfigError, match="unknown transport") as err:
        app.prepare(options)
    assert words in str(err.value)
    if where:
        assert str(err.value).startswith(f"{tmp_path / 'inv.ini'}{where}:")
    assert not (tmp_path / "out").exists(), "a config error writes nothing"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"concurrency": 0}, "--concurrency"),
        ({"host_timeout": 0.0}, "--host-timeout"),
        ({"connect_timeout": -1.0}, "--connect-timeout"),
        ({"max_output_mb": 0}, "--max-output-mb"),
        ({"formats": ("html", "pdf")}, "--format"),
    ],
)
def test_every_bad_option_names_itself(
    tmp_path: Path, change: dict[str, object], field: str
) -> None:
    options = dataclasses.replace(write(tmp_path, "h1 ansible_host=127.0.0.1\n"), **change)
    with pytest.raises(ConfigError) as err:
        app.prepare(options)
    assert err.value.field == field


def test_formats_are_parsed_and_checked() -> None:
    assert parse_formats(" HTML, json,html") == ("html", "json")
    with pytest.raises(ConfigError, match="'pdf'"):
        parse_formats("pdf")


def test_a_python_user_runs_the_whole_pipeline_with_one_call(tmp_path: Path) -> None:
    host = SimHost("h1", outputs={"ss": SS}, ps="733 root\n900 irc\n")

    def answer(call: MockCall) -> MockReply:
        # one exec channel: the script finds the platform out itself
        assert call.command == "sh -s"
        out, err = frame_posix(host, call.stdin or "")
        return MockReply(out, err)

    transport = MockTransport(answer)
    options = dataclasses.replace(
        write(tmp_path, "h1 ansible_host=127.0.0.1\n"),
        output=tmp_path / "out",
        formats=("json", "junit"),
    )
    result = app.run(options, transports={"asyncssh": transport})
    assert [s.status for s in result.run.scans] == [Status.OK]
    assert [f.rule_id for f in result.run.active_findings()] == ["irc"]
    assert result.exit_code == 1  # a high finding, --fail-on high
    assert sorted(p.name for paths in result.reports.values() for p in paths) == [
        "junit.xml",
        "report.json",
    ]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["hosts"][0]["status"] == "ok"


@pytest.mark.parametrize(
    "name", ["ansible_become_password", "ansible_become_pass", "ansible_sudo_pass"]
)
def test_a_sudo_password_is_refused_clearly_never_ignored_or_shown(
    tmp_path: Path, name: str
) -> None:
    options = write(
        tmp_path,
        "[db]\nh1 ansible_host=127.0.0.1\nh2 ansible_host=127.0.0.1 ansible_become=true "
        f"{name}=Sup3rSecret\n",
    )
    with pytest.raises(ConfigError) as err:
        app.prepare(options)
    text = str(err.value)
    assert text.startswith(f"{tmp_path / 'inv.ini'}:3: {name}: host h2:")
    assert "sudo -n" in text and "examples/sudoers.d/fleetscan" in text
    assert "Sup3rSecret" not in text


def test_a_sudo_password_on_a_host_without_become_is_never_used_nor_an_error(
    tmp_path: Path,
) -> None:
    options = write(tmp_path, "h1 ansible_host=127.0.0.1 ansible_become_password=x\n")
    assert [t.name for t in app.prepare(options).targets] == ["h1"]


def test_a_scan_without_a_policy_is_a_config_error(tmp_path: Path) -> None:
    options = dataclasses.replace(write(tmp_path, "h1 ansible_host=127.0.0.1\n"), policies=())
    with pytest.raises(ConfigError, match="no policy given") as err:
        app.prepare(options)
    assert err.value.field == "--policy"
