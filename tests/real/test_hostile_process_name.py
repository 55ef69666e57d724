"""A real process whose name holds a newline cannot hide its listener (issue 7, item 7).

Inside a network namespace of its own (only loopback, so nothing else listens
and no other test can collide on the port), a real process sets its comm to
``bd`` + newline + ``x`` and its argv0 to the same, then listens on the
baseline's forbidden port 4444. The real CLI then scans the namespace through
the local transport, with each Linux collector in turn (``ss``; ``netstat``
with ss hidden; ``/proc`` with both hidden, in a private mount namespace): the
critical finding is there and the exit code is 1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import BASELINE, cli_env, describe, require, run

pytestmark = [pytest.mark.netns, pytest.mark.timeout(180)]

PORT = 4444
NAME = "bd\nx"
# what sshd's argv0 looks like: netstat cuts it to "sshd: /usr/sbi"
SSHD_ARGV0 = "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"
SOCKET_TOOLS = {
    "ss": ("/usr/bin/ss", "/usr/sbin/ss", "/bin/ss", "/sbin/ss"),
    "netstat": ("/usr/bin/netstat", "/bin/netstat", "/usr/sbin/netstat", "/sbin/netstat"),
}
FAKE_TOOL = '#!/bin/sh\necho "not here" >&2\nexit 127\n'

# Sets argv[0] and comm (netstat shows argv0, ss, ps and /proc show comm): the
# script re-executes itself with the given argv0, then sets its comm
LISTENER = r"""
import os, socket, sys
argv0, comm, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if sys.orig_argv[0] != argv0:
    os.execv(sys.executable, [argv0, *sys.orig_argv[1:]])
open("/proc/self/comm", "w").write(comm)
s = socket.socket()
s.bind(("127.0.0.1", port))
s.listen(8)
print(os.getpid(), flush=True)
sys.stdin.read()
"""

# in a private mount namespace: hide the given tools, then run the CLI
HIDE_THEN_RUN = (
    'fake=$1; n=$2; shift 2; i=0; for t in "$@"; do i=$((i+1)); '
    '[ $i -le $n ] || break; mount --bind "$fake" "$t" || exit 1; done; shift $n; exec "$@"'
)


@pytest.fixture(scope="module")
def namespace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require(os.geteuid() == 0, "network namespaces need root")
    for tool in ("ip", "unshare", "mount"):
        require(shutil.which(tool) is not None, f"{tool} is not installed")
    ns = f"fshn{os.getpid()}"
    run(["ip", "netns", "add", ns])
    procs: list[subprocess.Popen[str]] = []
    try:
        run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"])
        for argv0, comm, port in ((NAME, NAME, PORT), (SSHD_ARGV0, "sshd", 22)):
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-c", LISTENER, argv0, comm, str(port)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            procs.append(proc)
            assert proc.stdout is not None
            pid = int(proc.stdout.readline())
            assert Path(f"/proc/{pid}/comm").read_text() == comm + "\n"
            assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] == argv0.encode()
        yield ns
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False, timeout=20)


@pytest.mark.parametrize("collector", ["ss", "netstat", "proc"])
def test_a_newline_in_a_process_name_does_not_hide_a_forbidden_listener(
    namespace: str, collector: str, tmp_path: Path
) -> None:
    hide: list[str] = []
    if collector in ("netstat", "proc"):
        hide += [t for t in SOCKET_TOOLS["ss"] if os.path.exists(t)]
    if collector == "proc":
        hide += [t for t in SOCKET_TOOLS["netstat"] if os.path.exists(t)]
    if collector == "netstat":
        require(
            any(os.path.exists(t) for t in SOCKET_TOOLS["netstat"]),
            "netstat is not installed (net-tools: scripts/test-deps.sh)",
        )
    fake = tmp_path / "fake-tool"
    fake.write_text(FAKE_TOOL)
    fake.chmod(0o755)
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("localhost fleetscan_transport=local\n")
    out = tmp_path / "out"
    cli = [sys.executable, "-m", "fleetscan", "scan", "-i", str(inventory), "-p", str(BASELINE)]
    cli += ["-o", str(out), "--format", "json", "--host-timeout", "60"]
    argv = ["ip", "netns", "exec", namespace, "unshare", "--mount", "--propagation", "private"]
    argv += ["--", "sh", "-c", HIDE_THEN_RUN, "sh", str(fake), str(len(hide)), *hide, *cli]
    proc = subprocess.run(
        argv,
        cwd=Path(__file__).resolve().parents[2],
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    (host,) = report["hosts"]
    assert host["status"] in ("ok", "partial"), describe(proc)
    wanted = {"proc": "/proc/net", "ss": "ss -tulnpe", "netstat": "netstat -tulnpeW"}[collector]
    assert host["collector"] == wanted, describe(proc)
    found = [x for x in host["listeners"] if x["port"] == PORT and x["proto"] == "tcp"]
    assert len(found) == 1, host["listeners"]
    assert found[0]["address"] == "127.0.0.1"
    findings = [f for f in report["findings"] if (f.get("listener") or {}).get("port") == PORT]
    assert any(f["severity"] == "critical" for f in findings), report["findings"]
    assert proc.returncode == 1, describe(proc)
    # the owner is kept (escaped in the /proc form) or marked unknown, never another name
    names = {p["name"] for p in found[0]["processes"]}
    assert names <= {NAME, "bd\\nx", None}, names
    # issue 8: netstat's cut argv0 ("sshd: /usr/sbi") is replaced by ps's comm, so
    # the shipped ssh-is-sshd rule sees sshd whatever the collector
    (ssh,) = [x for x in host["listeners"] if x["port"] == 22]
    assert [p["name"] for p in ssh["processes"]] == ["sshd"], ssh
    assert not [f for f in report["findings"] if f["rule_id"] == "ssh-is-sshd"], report["findings"]
