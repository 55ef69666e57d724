"""The shipped schedule and CI recipes (examples/) work as written.

* systemd units pass ``systemd-analyze verify`` (with the install path
  pointed at this checkout's fleetscan);
* the GitHub Actions and GitLab CI files parse, and every ``fleetscan``
  command in them — and in the systemd units and the cron line — runs
  against the real sshd, with the operator's paths mapped to a workspace and
  the example URLs to local receivers. Each must produce its reports and
  exit with a verdict (0 or 1), never a usage error.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.alerts.receivers import free_port, http_receiver, smtp_receiver

from .harness import SshdServer, cli_env, in_ci, require

pytestmark = [pytest.mark.sshd, pytest.mark.timeout(300)]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
INSTALLED = "/opt/fleetscan/bin/fleetscan"
FLEETSCAN = str(Path(sys.executable).with_name("fleetscan"))


def _units() -> list[Path]:
    return sorted(p for p in (EXAMPLES / "systemd").iterdir() if p.suffix in (".service", ".timer"))


def test_systemd_units_verify(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        require(not in_ci(), "systemd-analyze is not installed")
        pytest.skip("systemd-analyze is not installed")
    for unit in _units():
        (tmp_path / unit.name).write_text(unit.read_text().replace(INSTALLED, FLEETSCAN))
    for unit in _units():
        proc = subprocess.run(
            [tool, "verify", "--man=no", str(tmp_path / unit.name)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, f"{unit.name}: {proc.stdout}{proc.stderr}"
        assert "Unknown key" not in proc.stderr, f"{unit.name}: {proc.stderr}"


def _ci_commands() -> dict[str, str]:
    gh = yaml.safe_load((EXAMPLES / "ci" / "github-actions.yml").read_text())
    gl = yaml.safe_load((EXAMPLES / "ci" / "gitlab-ci.yml").read_text())
    found: dict[str, str] = {}
    for job in gh["jobs"].values():
        for step in job["steps"]:
            if "fleetscan scan" in step.get("run", ""):
                found[f"github: {step['name']}"] = step["run"]
    assert {"on", "jobs"} <= set(gh) or {True, "jobs"} <= set(gh)  # YAML 1.1 reads 'on' as True
    for line in gl["fleetscan"]["script"]:
        if line.startswith("fleetscan "):
            found["gitlab: script"] = line
    assert gl["fleetscan"]["artifacts"]["reports"]["junit"] == "fleetscan-report/junit.xml"
    return found


def _unit_commands() -> dict[str, str]:
    found = {}
    for unit in _units():
        text = unit.read_text().replace("\\\n", " ")
        for line in text.splitlines():
            command = line.removeprefix("ExecStart=")
            runs_fleetscan = command.startswith((INSTALLED + " scan", INSTALLED + " watch"))
            # the distributed coordinator (fleetscan-scan.service) has its own tests
            if runs_fleetscan and "--distributed" not in command:
                found[f"systemd: {unit.name}"] = command
    cron = (EXAMPLES / "cron" / "fleetscan").read_text().splitlines()
    [entry] = [x for x in cron if x and not x.startswith("#") and "=" not in x.split()[0]]
    fields = entry.split(None, 6)
    assert len(fields) == 7 and fields[5] == "fleetscan"  # 5 time fields, user, command
    found["cron"] = fields[6]
    return found


def test_ci_files_parse_and_name_the_scan_steps() -> None:
    commands = _ci_commands()
    assert {"github: Scan (scheduled)", "github: Scan (pull request)", "gitlab: script"} <= set(
        commands
    )


def _workspace(tmp: Path, sshd: SshdServer) -> dict[str, str]:
    """The files the recipes name, and how the operator's paths map into ``tmp``."""
    (tmp / "inventories").mkdir()
    sshd.write_inventory(tmp / "inventories" / "production.yaml.ini", user="root")
    (tmp / "inventories" / "production.yaml.ini").rename(tmp / "inventories" / "production.ini")
    inv = tmp / "inventories" / "production.ini"
    (tmp / "policies").mkdir()
    (tmp / "policies" / "site.yaml").write_text("version: 1\n")
    (tmp / ".fleetscan").mkdir()
    shutil.copy(sshd.known_hosts, tmp / ".fleetscan" / "known_hosts")
    textfile = tmp / "textfile"
    textfile.mkdir()
    return {
        "inventories/production.yaml": str(inv),
        "/etc/fleetscan/inventory": str(inv),
        "/etc/fleetscan/policy.yaml": str(tmp / "policies" / "site.yaml"),
        "/etc/fleetscan/known_hosts": str(sshd.known_hosts),
        "/var/lib/fleetscan/reports": str(tmp / "var-reports"),
        "/var/lib/node_exporter/textfile_collector": str(textfile),
        ">>/var/log/fleetscan.log": f">>{tmp / 'fleetscan.log'}",
    }


def _run(command: str, mapping: dict[str, str], cwd: Path, env: dict[str, str]) -> Any:
    for old, new in mapping.items():
        command = command.replace(old, new)
    command = command.replace(INSTALLED, FLEETSCAN)
    command = re.sub(r"\Afleetscan(?= )", FLEETSCAN, command.strip())
    # the scanner's own ssh_config must not leak in; the watch runs one cycle here
    extra = ["--ssh-config", "/dev/null"]
    if " watch " in command:
        extra += ["--cycles", "1"]
    argv = shlex.split(command) + extra
    return subprocess.run(
        ["bash", "-c", shlex.join(argv[:1]) + " " + " ".join(argv[1:])]
        if ">>" in command
        else argv,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


def test_every_recipe_command_runs_against_a_real_sshd(
    sshd_server: SshdServer, tmp_path: Path
) -> None:
    commands = {**_ci_commands(), **_unit_commands()}
    assert {"systemd: fleetscan.service", "systemd: fleetscan-watch.service", "cron"} <= set(
        commands
    )
    with (
        http_receiver() as hook,
        smtp_receiver(tmp_path, implicit_tls=False, user="fleetscan", password="pw") as mail,
    ):
        env = cli_env() | {
            "FLEETSCAN_WEBHOOK_TOKEN": "t0ken",
            "FLEETSCAN_SMTP_PASSWORD": "pw",
            "SSL_CERT_FILE": str(mail.cert),
        }
        for label, command in commands.items():
            work = tmp_path / re.sub(r"\W+", "-", label)
            work.mkdir()
            mapping = _workspace(work, sshd_server)
            mapping["https://chat.example.com/hooks/fleetscan"] = hook.url
            mapping["mail.example.com:587"] = f"127.0.0.1:{mail.port}"
            mapping["--metrics-port 9814"] = f"--metrics-port {free_port()}"
            env["XDG_DATA_HOME"] = str(work / "data")
            proc = _run(command, mapping, work, env)
            assert proc.returncode in (0, 1), f"{label}: exit {proc.returncode}\n{proc.stderr}"
            reports = list(work.rglob("report.json"))
            assert reports, f"{label}: no report.json\n{proc.stderr}"
            if "fleetscan-report" in command:
                assert (work / "fleetscan-report" / "junit.xml").is_file(), label
    # the scheduled recipes alerted (Slack form): the first run of each fleet is one summary
    assert hook.bodies and all(b["text"].startswith("fleetscan run ") for b in hook.bodies)
    assert all("1 summary" in b["text"].splitlines()[0] for b in hook.bodies)
    with_token = sum("--webhook-token-env" in c for c in commands.values())
    assert (
        with_token
        and [h.get("Authorization") for h, _ in hook.posts].count("Bearer t0ken") == with_token
    )
    assert mail.messages
