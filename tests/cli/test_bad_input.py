"""Bad input through the real command line: exit 2, one line, never a traceback.

Every case runs ``python -m fleetscan`` as a subprocess with stdin closed and
relative file names (as a user types them), and pins the whole CI contract of
a configuration error: exit code 2, nothing on stdout, exactly one line on
stderr reading ``fleetscan: error: <file>:<line>: <field>: <message>`` with the
file, line and field that apply, and no Python traceback anywhere.

A bad policy or inventory must stop the run before any host is contacted:
the ``*_connects_nowhere`` tests point the inventory at a listening socket and
check that nothing connected to it.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from _pytest.mark.structures import ParameterSet

from tests.cli import cli_env, run_cli, run_cli_many

GOOD_POLICY = "version: 1\nforbidden:\n  - id: irc\n    ports: 6667\n"
# port 1: nothing listens there, in case a case scans after all
GOOD_INI = "[web]\nweb1 ansible_host=127.0.0.1 ansible_port=1\n"
HUGE = 32 * 1024 * 1024 + 1  # one byte over fleetscan.yamlsrc.MAX_CONFIG_BYTES


@dataclass(frozen=True)
class Case:
    """One bad input: the files to write, the CLI arguments, and the error expected."""

    id: str
    args: tuple[str, ...]
    files: dict[str, str | bytes | int] = field(default_factory=dict)
    file: str | None = None
    line: int | None = None
    field: str | None = None
    message: str = ""

    def prefix(self) -> str:
        """``fleetscan: error: file:line: field: `` — exactly what must start the line."""
        parts = []
        if self.file:
            parts.append(self.file + (f":{self.line}" if self.line else ""))
        if self.field:
            parts.append(self.field)
        return "fleetscan: error: " + "".join(p + ": " for p in parts)


def scan(inventory: str, policy: str = "good.yaml", *extra: str) -> tuple[str, ...]:
    return ("scan", "-i", inventory, "-p", policy, "-o", "out", *extra)


def inv_case(id: str, name: str, content: str | bytes | int, **kw: object) -> Case:
    """A bad inventory, given to ``fleetscan scan`` with a good policy."""
    files: dict[str, str | bytes | int] = {name: content, "good.yaml": GOOD_POLICY}
    return Case(f"inventory-{id}", scan(name), files, file=name, **kw)  # type: ignore[arg-type]


def pol_case(id: str, name: str, content: str | bytes | int, **kw: object) -> Case:
    """A bad policy, given to ``fleetscan policy check``."""
    return Case(f"policy-{id}", ("policy", "check", "-p", name), {name: content}, file=name, **kw)  # type: ignore[arg-type]


INVENTORY_CASES = [
    inv_case(
        "yaml-syntax",
        "inv.yaml",
        "all:\n  hosts:\n    web1:\n  - x\n",
        line=4,
        message="invalid YAML",
    ),
    inv_case(
        "ini-unclosed-section",
        "inv.ini",
        "[web\nweb1\n",
        line=1,
        field="host",
        message="unclosed '['",
    ),
    inv_case(
        "ini-vars-line-without-equals",
        "inv.ini",
        "[web:vars]\nnot a var line\n[web]\nw1\n",
        line=2,
        field="[web:vars]",
        message="expected key=value",
    ),
    inv_case(
        "ini-port-not-a-number",
        "inv.ini",
        "[web]\nweb1 ansible_port=abc\n",
        line=2,
        field="ansible_port",
        message="port must be an integer 1..65535, got 'abc'",
    ),
    inv_case(
        "yaml-port-is-a-list",
        "inv.yaml",
        "all:\n  hosts:\n    web1:\n      ansible_port: [1]\n",
        line=4,
        field="ansible_port",
        message="port must be an integer 1..65535, got [1]",
    ),
    inv_case(
        "yaml-unknown-group-key",
        "inv.yaml",
        "all:\n  hots:\n    web1:\n",
        line=2,
        field="all.hots",
        message="unknown key 'hots' in group 'all' (did you mean 'hosts'?)",
    ),
    inv_case(
        "nornir-unknown-host-key",
        "hosts.yaml",
        "web1:\n  hostname: 127.0.0.1\n  prot: 22\n",
        line=3,
        field="web1.prot",
        message="unknown key 'prot' (did you mean 'port'?)",
    ),
    inv_case(
        "yaml-duplicate-host-key",
        "inv.yaml",
        "all:\n  hosts:\n    web1:\n    web1:\n",
        line=4,
        field="all.hosts.web1",
        message="duplicate key 'web1' (first defined on line 3)",
    ),
    inv_case(
        "ini-cyclic-children",
        "inv.ini",
        "[a:children]\nb\n[b:children]\na\n[a]\n[b]\n",
        line=4,
        field="children",
        message="cyclic group children: a -> b -> a",
    ),
    inv_case(
        "yaml-cyclic-children",
        "inv.yaml",
        "all:\n  children:\n    a:\n      hosts:\n        web1:\n      children:\n        b:\n"
        "    b:\n      children:\n        a:\n",
        line=10,
        field="children",
        message="cyclic group children: a -> b -> a",
    ),
    inv_case("empty", "inv.ini", "", message="the inventory file is empty"),
    inv_case("comments-only", "inv.ini", "# nothing\n; here\n", message="file is empty"),
    inv_case("huge", "inv.ini", HUGE, message="larger than the 33554432 byte limit"),
    inv_case("binary", "inv.ini", b"\x7fELF\x02\x01\x01\x00\x00\x00", message="binary file"),
    inv_case(
        "invalid-utf8",
        "inv.ini",
        b"[web]\nweb1\nw\xe9b2\n",
        line=3,
        message="not valid UTF-8",
    ),
    Case(
        "inventory-missing",
        scan("nope.ini"),
        {"good.yaml": GOOD_POLICY},
        file="nope.ini",
        message="inventory not found",
    ),
    Case(
        "inventory-folder-without-inventory-file",
        scan("empty-dir"),
        {"empty-dir/README.md": "not an inventory\n", "good.yaml": GOOD_POLICY},
        file="empty-dir",
        message="no inventory file in directory",
    ),
    Case(
        "inventory-same-host-in-two-files",
        ("scan", "-i", "a.ini", "-i", "b.ini", "-p", "good.yaml"),
        {"a.ini": GOOD_INI, "b.ini": "[db]\nweb1\n", "good.yaml": GOOD_POLICY},
        file="b.ini",
        line=2,
        field="host",
        message="host 'web1' is defined twice: a.ini:2 and b.ini:2",
    ),
]

POLICY_CASES = [
    pol_case(
        "yaml-syntax",
        "pol.yaml",
        "version: 1\nforbidden: [\n",
        line=3,
        message="invalid YAML",
    ),
    pol_case(
        "unknown-field",
        "pol.yaml",
        "version: 1\nforbidden:\n  - id: irc\n    portz: 6667\n",
        line=4,
        field="forbidden[0].portz",
        message="rule 'irc': unknown field 'portz' (did you mean 'ports'?)",
    ),
    pol_case(
        "port-is-a-nested-list",
        "pol.yaml",
        "version: 1\nforbidden:\n  - id: irc\n    ports: [[1]]\n",
        line=4,
        field="forbidden[0].ports[0]",
        message="[1] is not a port",
    ),
    pol_case(
        "severity-is-a-list",
        "pol.yaml",
        "version: 1\nforbidden:\n  - id: irc\n    ports: 6667\n    severity: [1]\n",
        line=5,
        field="forbidden[0].severity",
        message="[1] is not a severity",
    ),
    pol_case(
        "proto-misspelt",
        "pol.yaml",
        "version: 1\nforbidden:\n  - id: irc\n    ports: 6667\n    proto: tpc\n",
        line=5,
        field="forbidden[0].proto",
        message="(did you mean 'tcp'?)",
    ),
    pol_case(
        "duplicate-key",
        "pol.yaml",
        "version: 1\nversion: 1\n",
        line=2,
        field="version",
        message="duplicate key 'version'",
    ),
    pol_case("empty", "pol.yaml", "", message="empty policy file"),
    pol_case(
        "invalid-utf8",
        "pol.yaml",
        b"version: 1\ndescription: caf\xe9\n",
        line=2,
        message="not valid UTF-8",
    ),
    Case(
        "policy-missing",
        ("policy", "check", "-p", "nope.yaml"),
        file="nope.yaml",
        message="file not found",
    ),
    Case(
        "policy-is-a-directory",
        ("policy", "check", "-p", "policies"),
        {"policies/a.yaml": GOOD_POLICY},
        file="policies",
        message="is a directory, expected a file",
    ),
]


def opt_case(id: str, args: tuple[str, ...], **kw: object) -> Case:
    """A bad command-line option, with a good inventory and policy."""
    files: dict[str, str | bytes | int] = {"good.ini": GOOD_INI, "good.yaml": GOOD_POLICY}
    return Case(f"option-{id}", args, files, **kw)  # type: ignore[arg-type]


OPTION_CASES = [
    opt_case(
        "bad-format",
        scan("good.ini", "good.yaml", "--format", "html,pdf"),
        field="--format",
        message="unknown report format 'pdf'",
    ),
    opt_case(
        "bad-fail-on",
        scan("good.ini", "good.yaml", "--fail-on", "urgent"),
        field="--fail-on",
        message="unknown severity 'urgent'",
    ),
    opt_case(
        "unknown-transport",
        scan("good.ini", "good.yaml", "--transport", "telnet"),
        field="--transport",
        message="unknown transport 'telnet' (one of: asyncssh, local, paramiko)",
    ),
    Case(
        "inventory-transport-no-transport-provides",
        scan("sim.ini"),
        {
            "sim.ini": "[web]\nweb1 ansible_host=127.0.0.1 ansible_port=1\n"
            "web2 ansible_host=127.0.0.1 ansible_port=1 fleetscan_transport=simulated\n",
            "good.yaml": GOOD_POLICY,
        },
        file="sim.ini",
        line=3,
        field="fleetscan_transport",  # the inventory names the field it was written in
        message="unknown transport 'simulated' (one of: asyncssh, local, paramiko)",
    ),
    opt_case(
        "zero-concurrency",
        scan("good.ini", "good.yaml", "--concurrency", "0"),
        field="--concurrency",
        message="must be at least 1",
    ),
    opt_case(
        "limit-matches-nothing",
        scan("good.ini", "good.yaml", "--limit", "nomatch"),
        field="--limit",
        message="'nomatch' matches no host or group",
    ),
]


def write_files(cwd: Path, case: Case) -> None:
    for name, content in case.files.items():
        path = cwd / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, int):  # that many bytes of real text (comments)
            line = "# padding " + "x" * 1013 + "\n"
            path.write_text(line * (content // len(line) + 1))
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def wide_env(cwd: Path) -> dict[str, str]:
    # rich wraps at 80 columns when stderr is not a terminal (see
    # test_long_error_is_one_line_on_a_pipe); the tables pin the content
    return cli_env(cwd, {"COLUMNS": "100000"})


@dataclass(frozen=True)
class Outcome:
    result: subprocess.CompletedProcess[str]
    cwd: Path


def assert_config_error(outcome: Outcome, case: Case) -> None:
    """Exit 2, stdout empty, one stderr line starting with the case's prefix, no report."""
    result = outcome.result
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(case.prefix()), (lines[0], case.prefix())
    assert case.message in lines[0][len(case.prefix()) :]
    assert not (outcome.cwd / "out").exists(), "a config error must not write reports"


GOOD_CASES = [pytest.param(c, id=c.id) for c in [*INVENTORY_CASES, *POLICY_CASES, *OPTION_CASES]]


def _option_case(opt: str, value: str) -> ParameterSet:
    case = opt_case(f"scan{opt}={value}", scan("good.ini", "good.yaml", opt, value), field=opt)
    return pytest.param(case, id=case.id)


BUGGY_CASES = [
    pytest.param(
        inv_case(
            "ini-bad-host-range",
            "inv.ini",
            "[web]\nweb[a]\n",
            line=2,
            field="host",
            message="must be [begin:end] or [begin:end:step]",
        ),
        id="inventory-ini-bad-host-range",
    ),
    pytest.param(
        Case(
            "inventory-show-bad-format",
            ("inventory", "show", "-i", "good.ini", "--format", "yaml"),
            {"good.ini": GOOD_INI},
            field="--format",
        ),
        id="inventory-show-bad-format",
    ),
    _option_case("--host-timeout", "-1"),
    _option_case("--connect-timeout", "0"),
    _option_case("--max-output-mb", "0"),
]

LONG_NAME = "a-long-but-ordinary-inventory-name-for-the-production-fleet.yaml"
LONG_LINE = inv_case("long-line", LONG_NAME, "all:\n  hots:\n    web1:\n", line=2, field="all.hots")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every case of the tables above, run once (concurrently: they are independent)."""
    table = [p.values[0] for p in [*GOOD_CASES, *BUGGY_CASES]]
    jobs = {}
    for case in [*table, LONG_LINE]:
        assert isinstance(case, Case)
        cwd = tmp_path_factory.mktemp(case.id)
        write_files(cwd, case)
        env = cli_env(cwd) if case is LONG_LINE else wide_env(cwd)
        jobs[case.id] = (case.args, cwd, env)
    done = run_cli_many(jobs)
    return {name: Outcome(done[name], cwd) for name, (_, cwd, _) in jobs.items()}


@pytest.mark.parametrize("case", GOOD_CASES)
def test_bad_input_exits_2_with_one_line_naming_file_line_field(
    results: dict[str, Outcome], case: Case
) -> None:
    assert_config_error(results[case.id], case)


@pytest.mark.parametrize("case", BUGGY_CASES)
def test_nonsense_option_values_are_config_errors(results: dict[str, Outcome], case: Case) -> None:
    assert_config_error(results[case.id], case)


def test_long_error_is_one_line_on_a_pipe(results: dict[str, Outcome]) -> None:
    """CI logs and scripts read stderr through a pipe, with no COLUMNS set."""
    assert_config_error(results[LONG_LINE.id], LONG_LINE)


# --- no connection before validation ---------------------------------------------


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP socket on loopback that never accepts: connections queue in its backlog."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s


def connections_to(sock: socket.socket) -> int:
    """How many connections reached ``sock`` (drains its backlog)."""
    sock.setblocking(False)
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def inventory_for(sock: socket.socket) -> str:
    return f"[web]\nweb1 ansible_host=127.0.0.1 ansible_port={sock.getsockname()[1]}\n"


BAD_BEFORE_CONNECT = [
    pytest.param(
        {"pol.yaml": "version: 1\nforbidden:\n  - id: irc\n    prots: 6667\n"},
        ("-p", "pol.yaml"),
        "pol.yaml:4: forbidden[0].prots: ",
        id="unknown-policy-field",
    ),
    pytest.param(
        {"pol.yaml": GOOD_POLICY, "second.yaml": GOOD_POLICY},
        ("-p", "pol.yaml", "-p", "second.yaml"),
        "second.yaml:3: forbidden[0].id: duplicate id 'irc'",
        id="duplicate-rule-id-in-second-file",
    ),
    pytest.param({}, ("-p", "missing.yaml"), "missing.yaml: file not found", id="missing-policy"),
    pytest.param(
        {"pol.yaml": "version: 1\nzones:\n  office: {probe_hosts: [jump-1]}\n"},
        ("-p", "pol.yaml", "--probe-zones", "scanner,office"),
        "pol.yaml:3: zones.office.probe_hosts: zone 'office': probe host 'jump-1' is not in",
        id="probe-host-not-in-inventory",
    ),
    pytest.param(
        {"pol.yaml": GOOD_POLICY},
        ("-p", "pol.yaml", "--probe-zones", "scanner,ofice"),
        "--probe-zones: unknown zone 'ofice' (the policy declares: scanner)",
        id="probe-zone-not-declared",
    ),
    pytest.param(
        {"pol.yaml": GOOD_POLICY},
        ("-p", "pol.yaml", "--probe", "--probe-timeout", "0"),
        "--probe-timeout: must be a finite, positive number of seconds, got 0.0",
        id="probe-timeout-zero",
    ),
    pytest.param(
        {"pol.yaml": "version: 1\nexposure:\n  - id: x\n    reachable_from: [dmz]\n"},
        ("-p", "pol.yaml", "--probe"),
        "pol.yaml:4: exposure[0].reachable_from[0]: exposure rule 'x': unknown zone 'dmz'",
        id="exposure-rule-unknown-zone",
    ),
]


@pytest.mark.parametrize(("files", "args", "error"), BAD_BEFORE_CONNECT)
def test_bad_policy_connects_nowhere(
    tmp_path: Path,
    listener: socket.socket,
    files: dict[str, str],
    args: tuple[str, ...],
    error: str,
) -> None:
    (tmp_path / "inv.ini").write_text(inventory_for(listener))
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = run_cli(
        ("scan", "-i", "inv.ini", *args, "-o", "out", "--connect-timeout", "2"),
        cwd=tmp_path,
        env=wide_env(tmp_path),
    )
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == 2
    assert result.stderr.startswith("fleetscan: error: " + error)
    assert connections_to(listener) == 0


def test_good_policy_does_connect(tmp_path: Path, listener: socket.socket) -> None:
    """The control for the test above: the same setup with a good policy reaches the socket."""
    (tmp_path / "inv.ini").write_text(inventory_for(listener))
    (tmp_path / "pol.yaml").write_text(GOOD_POLICY)
    (tmp_path / "known_hosts").write_text("")
    result = run_cli(
        [
            *("scan", "-i", "inv.ini", "-p", "pol.yaml", "-o", "out", "--format", "json"),
            *("--connect-timeout", "1", "--known-hosts", "known_hosts"),
        ],
        cwd=tmp_path,
        env=wide_env(tmp_path),
    )
    assert result.returncode == 3, result.stderr  # the socket never speaks SSH
    assert connections_to(listener) == 1


def test_output_that_is_a_file_fails_before_connecting(
    tmp_path: Path, listener: socket.socket
) -> None:
    (tmp_path / "inv.ini").write_text(inventory_for(listener))
    (tmp_path / "pol.yaml").write_text(GOOD_POLICY)
    (tmp_path / "out").write_text("an existing file\n")
    result = run_cli(
        ("scan", "-i", "inv.ini", "-p", "pol.yaml", "-o", "out", "--connect-timeout", "1"),
        cwd=tmp_path,
        env=wide_env(tmp_path),
    )
    assert "Traceback" not in result.stderr
    assert result.returncode == 2
    assert result.stderr.startswith("fleetscan: error: out: --output: ")
    assert connections_to(listener) == 0


def test_missing_ssh_config_fails_before_connecting(
    tmp_path: Path, listener: socket.socket
) -> None:
    (tmp_path / "inv.ini").write_text(inventory_for(listener))
    (tmp_path / "pol.yaml").write_text(GOOD_POLICY)
    result = run_cli(
        (
            "scan",
            "-i",
            "inv.ini",
            "-p",
            "pol.yaml",
            "-o",
            "out",
            "--connect-timeout",
            "1",
            "--ssh-config",
            "missing_config",
        ),
        cwd=tmp_path,
        env=wide_env(tmp_path),
    )
    assert result.returncode == 2, result.stdout
    assert result.stderr.startswith("fleetscan: error: missing_config: ")
    assert connections_to(listener) == 0
