"""Built-in policies by name (issue 8, section 4): ``-p baseline`` is the
shipped policy, ``fleetscan policy list`` shows them, and a site policy whose
waiver names a baseline rule says which policy to add."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetscan.cli import app
from fleetscan.errors import ConfigError
from fleetscan.policy import builtin_policies, builtin_policy_path, load_policies

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

#: every policy file the repository ships in policies/ is a built-in policy
SHIPPED = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "policies").glob("*.yaml"))


def test_a_bare_name_loads_the_shipped_policy() -> None:
    by_name = load_policies(["baseline", "demo"])
    by_path = load_policies([builtin_policy_path("baseline"), builtin_policy_path("demo")])
    assert by_name.digest == by_path.digest
    assert by_name.files == by_path.files


def test_a_file_is_still_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A value naming an existing file is that file, even when it is also a
    built-in name; ``./name`` forces a file."""
    monkeypatch.chdir(tmp_path)
    Path("baseline").write_text("version: 1\nforbidden: [{id: mine, ports: [1]}]\n")
    assert [r.id for r in load_policies(["baseline"]).forbidden] == ["mine"]
    assert [r.id for r in load_policies(["./baseline"]).forbidden] == ["mine"]


def test_unknown_name_lists_the_built_in_policies() -> None:
    with pytest.raises(ConfigError) as info:
        load_policies(["baselin"])
    assert f"built-in: {', '.join(SHIPPED)}" in str(info.value)
    assert info.value.file == "baselin"


def test_a_missing_yaml_file_points_at_the_built_in_of_that_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"file not found \(the built-in policy .* -p baseline\)"):
        load_policies(["baseline.yaml"])


def test_example_alone_says_which_policy_to_add(monkeypatch: pytest.MonkeyPatch) -> None:
    """example-infra's waiver names baseline's db-loopback-only: checked alone,
    the error names file, line, field and the policy to add."""
    monkeypatch.chdir(REPO)
    got = runner.invoke(app, ["policy", "check", "-p", "policies/example-infra.yaml"])
    assert got.exit_code == 2
    err = got.stderr
    assert "policies/example-infra.yaml:" in err and "waivers[0].rule" in err
    assert "built-in policy 'baseline'" in err and "add -p baseline" in err
    ok = runner.invoke(app, ["policy", "check", "-p", "baseline", "-p", "example-infra"])
    assert ok.exit_code == 0, ok.stderr
    assert ok.stdout.startswith("ok: ")


def test_a_truly_unknown_waiver_rule_is_still_an_unknown_rule(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        "version: 1\nwaivers:\n  - {id: W1, rule: no-such-rule, hosts: [a], justification: j,"
        " owner: o, expires: 2030-01-01}\n"
    )
    with pytest.raises(ConfigError, match="unknown rule 'no-such-rule'"):
        load_policies([site])


def test_policy_list_shows_every_built_in_policy() -> None:
    got = runner.invoke(app, ["policy", "list"])
    assert got.exit_code == 0, got.output
    for item in builtin_policies():
        assert item.name in got.stdout and str(item.path) in got.stdout
        assert f"{len(item.rule_ids)} rules" in got.stdout
    assert {p.name for p in builtin_policies()} == set(SHIPPED)
    assert {"baseline", "demo", "example-infra", "example-exposure"} <= set(SHIPPED)
    baseline = next(p for p in builtin_policies() if p.name == "baseline")
    assert "ssh-is-sshd" in baseline.rule_ids and baseline.description
