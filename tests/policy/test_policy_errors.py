"""Every policy mistake stops the run with file, line, field and rule named."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from fleetscan.errors import ConfigError
from fleetscan.policy import load_policies


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, "p.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_policies([path])
    return info.value


@pytest.mark.parametrize(
    ("text", "line", "field", "needle"),
    [
        pytest.param(
            """
            version: 1
            bind:
              - id: db-loopback
                ports: [5432]
                prot: tcp
                allow: [loopback]
            """,
            5,
            "bind[0].prot",
            "rule 'db-loopback': unknown field 'prot' (did you mean 'proto'?)",
            id="unknown-rule-key-suggests-nearest",
        ),
        pytest.param(
            """
            version: 1
            forbiden:
              - {id: x, ports: [1]}
            """,
            2,
            "forbiden",
            "unknown field 'forbiden' (did you mean 'forbidden'?)",
            id="unknown-top-level-key-suggests-nearest",
        ),
        pytest.param(
            """
            version: 1
            expected:
              - id: web
                groups: [web]
                listeners:
                  - {proto: tcp, port: 443, proccess: nginx}
            """,
            6,
            "expected[0].listeners[0].proccess",
            "expected entry 'web': unknown field 'proccess' (did you mean 'process'?)",
            id="unknown-key-in-nested-listener",
        ),
        pytest.param(
            """
            version: 1
            forbidden:
              - id: bad-port
                ports: [4444, 70000]
            """,
            4,
            "forbidden[0].ports[1]",
            "port 70000 is out of range 0..65535",
            id="port-out-of-range-points-at-element",
        ),
        pytest.param(
            """
            version: 1
            forbidden:
              - id: irc
                ports: ["6669-6667"]
            """,
            4,
            "forbidden[0].ports[0]",
            "low end 6669 is above high end 6667",
            id="reversed-range",
        ),
        pytest.param(
            """
            version: 1
            forbidden:
              - id: irc
                ports: [true]
            """,
            4,
            "forbidden[0].ports[0]",
            "True is not a port",
            id="boolean-is-not-a-port",
        ),
        pytest.param(
            """
            version: 1
            forbidden:
              - id: x
                ports: [1]
                severity: hgh
            """,
            5,
            "forbidden[0].severity",
            "unknown severity 'hgh' (one of: info, low, medium, high, critical) (did you mean",
            id="unknown-severity",
        ),
        pytest.param(
            """
            version: 1
            forbidden:
              - id: x
                ports: [1]
                proto: tpc
            """,
            5,
            "forbidden[0].proto",
            "got 'tpc' (did you mean 'tcp'?)",
            id="unknown-proto",
        ),
        pytest.param(
            """
            version: 1
            bind:
              - id: x
                ports: [5432]
                allow: [loopbak]
            """,
            5,
            "bind[0].allow[0]",
            "(did you mean 'loopback'?)",
            id="unknown-bind-class",
        ),
        pytest.param(
            """
            version: 1
            bind:
              - id: x
                ports: [5432]
            """,
            3,
            "bind[0]",
            "rule 'x': a bind rule needs exactly one of 'allow' or 'deny'",
            id="bind-without-allow-or-deny",
        ),
        pytest.param(
            """
            version: 1
            bind:
              - id: public
                on: [public]
            """,
            4,
            "bind[0].on",
            "key 'on' is read by YAML as True",
            id="yaml-on-is-a-boolean",
        ),
        pytest.param(
            """
            version: 1
            forbidden:
              - ports: [1]
            """,
            3,
            "forbidden[0].id",
            "missing required field 'id'",
            id="missing-id",
        ),
        pytest.param(
            """
            version: 1
            forbidden:
              - id: "has space"
                ports: [1]
            """,
            3,
            "forbidden[0].id",
            "is not a valid id",
            id="invalid-id",
        ),
        pytest.param(
            """
            version: 1
            forbidden:
              - id: nothing
                proto: tcp
            """,
            3,
            "forbidden[0]",
            "needs 'ports' and/or 'process'",
            id="forbidden-matches-nothing",
        ),
        pytest.param(
            """
            version: 1
            expected:
              - id: web
                listeners: [{port: 80}]
            """,
            3,
            "expected[0]",
            "needs 'hosts' and/or 'groups'",
            id="expected-entry-without-scope",
        ),
        pytest.param(
            """
            version: 1
            owner:
              - id: ssh
                ports: [22]
            """,
            3,
            "owner[0]",
            "needs 'process' and/or 'user'",
            id="owner-rule-without-owner",
        ),
        pytest.param(
            """
            version: 1
            forbidden: [{id: x, ports: [1]}]
            waivers:
              - id: W-1
                rule: x
                hosts: [h]
                justification: because
                owner: me
                expires: 2026-13-01
            """,
            9,
            None,
            "invalid value: month must be in 1..12",
            id="impossible-date",
        ),
        pytest.param(
            """
            version: 1
            forbidden: [{id: x, ports: [1]}]
            waivers:
              - id: W-1
                rule: x
                hosts: [h]
                justification: because
                owner: me
                expires: 2026-12-31T10:00:00
            """,
            9,
            "waivers[0].expires",
            "waiver 'W-1': must be a date like 2026-12-31, without a time",
            id="expiry-with-time",
        ),
        pytest.param(
            """
            version: 1
            forbidden: [{id: x, ports: [1]}]
            waivers:
              - id: W-1
                rule: x
                hosts: [h]
                justification: "  "
                owner: me
                expires: 2026-12-31
            """,
            7,
            "waivers[0].justification",
            "must not be empty",
            id="blank-justification",
        ),
        pytest.param(
            """
            version: 1
            waivers:
              - id: W-1
                rule: scan-incomplete
                groups: [web]
                justification: flaky
                owner: me
                expires: 2026-12-31
            """,
            3,
            "waivers[0]",
            "must name its hosts literally",
            id="scan-incomplete-waiver-by-group",
        ),
        pytest.param(
            """
            version: 1
            waivers:
              - id: W-1
                rule: scan-incomplete
                hosts: ["web-*"]
                justification: flaky
                owner: me
                expires: 2026-12-31
            """,
            3,
            "waivers[0]",
            "must name its hosts literally",
            id="scan-incomplete-waiver-by-glob",
        ),
        pytest.param(
            """
            version: 1
            forbidden: [{id: x, ports: [1]}]
            waivers:
              - id: W-1
                rule: x
                justification: j
                owner: me
                expires: 2026-12-31
            """,
            4,
            "waivers[0]",
            "a waiver needs 'hosts' and/or 'groups'",
            id="unscoped-waiver",
        ),
        pytest.param(
            """
            version: 1
            undocumented: {enabled: "yes"}
            """,
            2,
            "undocumented.enabled",
            "valid boolean",
            id="strict-boolean",
        ),
    ],
)
def test_invalid_policy_names_file_line_field(
    tmp_path: Path, text: str, line: int, field: str | None, needle: str
) -> None:
    err = load_error(tmp_path, text)
    assert err.file == str(tmp_path / "p.yaml")
    assert (err.line, err.field) == (line, field)
    assert needle in err.detail


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("", None, "empty policy file"),
        ("- a\n- b\n", 1, "must be a mapping"),
        ("forbidden: []\n", 1, "missing 'version: 1'"),
        ("version: 2\n", 1, "unsupported policy version 2"),
        ("version: 1\nversion: 1\n", 2, "duplicate key 'version'"),
        ("version: 1\nforbidden: [\n", 3, "invalid YAML"),
    ],
    ids=["empty", "not-a-mapping", "no-version", "future-version", "duplicate-key", "syntax"],
)
def test_malformed_policy_file_is_rejected(
    tmp_path: Path, text: str, line: int | None, needle: str
) -> None:
    err = load_error(tmp_path, text)
    assert err.line == line
    assert needle in err.detail


def test_several_problems_are_listed_in_file_order(tmp_path: Path) -> None:
    err = load_error(
        tmp_path,
        """
        version: 1
        forbidden:
          - id: a
            ports: [99999]
          - id: b
            ports: [1]
            severty: low
        """,
    )
    assert err.line == 4
    assert len(err.lines()) == 2
    assert ":7: forbidden[1].severty: rule 'b': unknown field 'severty'" in err.lines()[1]
    assert "\n" not in "".join(err.lines())


WAIVED_RULE = """
version: 1
forbidden:
  - {id: backdoor, ports: [4444]}
expected:
  - {id: web-map, groups: [web], listeners: [{port: 80}]}
waivers:
  - id: W-1
    rule: {rule}
    hosts: [h]
    justification: j
    owner: me
    expires: 2026-12-31
"""


@pytest.mark.parametrize(
    ("rule", "needle"),
    [
        ("backdor", "unknown rule 'backdor' (did you mean 'backdoor'?)"),
        ("web-map", "'web-map' is an expected entry, which produces no findings"),
        ("waiver-expired", "'waiver-expired' cannot be waived"),
    ],
)
def test_waiver_must_name_a_waivable_rule(tmp_path: Path, rule: str, needle: str) -> None:
    err = load_error(tmp_path, WAIVED_RULE.replace("{rule}", rule))
    assert (err.line, err.field) == (8, "waivers[0].rule")
    assert "waiver 'W-1'" in err.detail and needle in err.detail


@pytest.mark.parametrize("rule", ["undocumented", "scan-incomplete", "backdoor"])
def test_waiver_may_name_builtin_and_defined_rules(tmp_path: Path, rule: str) -> None:
    path = write(tmp_path, "p.yaml", WAIVED_RULE.replace("{rule}", rule))
    assert load_policies([path]).waivers[0].rule == rule


def test_duplicate_rule_id_across_files_names_both_places(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "version: 1\nforbidden:\n  - {id: telnet, ports: [23]}\n")
    b = write(
        tmp_path,
        "b.yaml",
        "version: 1\nbind:\n  - id: other\n    ports: [1]\n    allow: [loopback]\n"
        "  - id: telnet\n    ports: [23]\n    deny: [public]\n",
    )
    with pytest.raises(ConfigError) as info:
        load_policies([a, b])
    err = info.value
    assert (err.file, err.line, err.field) == (str(b), 6, "bind[1].id")
    assert f"first defined at {a}:3" in err.detail


def test_waiver_may_name_a_rule_from_another_file(tmp_path: Path) -> None:
    base = write(tmp_path, "a.yaml", "version: 1\nforbidden:\n  - {id: telnet, ports: [23]}\n")
    site = write(
        tmp_path,
        "b.yaml",
        "version: 1\nwaivers:\n  - {id: W-1, rule: telnet, hosts: [old-01], "
        "justification: j, owner: me, expires: 2026-12-31}\n",
    )
    assert load_policies([base, site]).waivers[0].rule == "telnet"


def test_rule_may_not_reuse_a_builtin_id(tmp_path: Path) -> None:
    err = load_error(tmp_path, "version: 1\nforbidden:\n  - {id: undocumented, ports: [1]}\n")
    assert (err.line, err.field) == (3, "forbidden[0].id")
    assert "built-in rule id" in err.detail


def test_conflicting_settings_across_files_are_rejected(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "version: 1\nscan_incomplete: {severity: high}\n")
    b = write(tmp_path, "b.yaml", "version: 1\n\nscan_incomplete: {severity: low}\n")
    with pytest.raises(ConfigError) as info:
        load_policies([a, b])
    assert (info.value.file, info.value.line) == (str(b), 3)
    assert f"{a}:2" in info.value.detail


def test_repeating_identical_settings_across_files_is_fine(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "version: 1\nundocumented: {severity: low}\n")
    b = write(tmp_path, "b.yaml", "version: 1\nundocumented: {severity: low, enabled: true}\n")
    assert str(load_policies([a, b]).undocumented.severity) == "low"


def test_missing_policy_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_policies([tmp_path / "nope.yaml"])
    assert "file not found" in str(info.value)
