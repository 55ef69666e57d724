"""The /proc fallback: PROC_SCRIPT run for real on this machine, a captured
output of it, and the /proc/net encodings (byte order, states)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from listener_view import FIXTURES, read_bytes_as_text, views

from fleetscan.model import Process
from fleetscan.parsers import detect as registry_detect
from fleetscan.parsers.linux_proc import PROC_SCRIPT, parse
from fleetscan.parsers.linux_proc import detect as own_detect

SH = shutil.which("sh") or "/bin/sh"
CAPTURE = FIXTURES / "linux" / "proc-script-capture.out"
TCP_HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
    "   uid  timeout inode"
)


def _row(local: str, state: str, inode: int, sl: int = 0) -> str:
    remote = "0" * (len(local) - 5) + ":0000"
    return (
        f"{sl:4d}: {local} {remote} {state} 00000000:00000000 00:00000000 00000000"
        f"     0        0 {inode} 1 0000000000000000 100 0 0 10 0"
    )


def _output(*body: str, uid: str = "0 0", end: bool = True) -> str:
    lines = ["@@fleetscan-proc 1", f"@@uid {uid}", "@@byteorder little", *body]
    if end:
        lines.append("@@end")
    return "\n".join(lines) + "\n"


def test_captured_output_gives_the_checked_listeners() -> None:
    """Captured on the development machine while a Python process (pid 27369)
    held 127.0.0.1:47001, [::1]:47002, 0.0.0.0:47003/udp, [::]:47004/udp and
    [::]:47005 (v6only); 43907 and 2024 belong to processes of another pid
    namespace, so no fd points at them."""
    result = parse(read_bytes_as_text(CAPTURE))
    assert views(result) == [
        "tcp4 127.0.0.1 43907 LISTEN @6",
        "tcp4 0.0.0.0 2024 LISTEN @7",
        "tcp4 127.0.0.1 47001 LISTEN @8 27369/python/0",
        "tcp4 127.0.0.1 33541 LISTEN @9 26687/sshd/0",
        "tcp6 :: 47005 LISTEN @153 27369/python/0",
        "tcp6 ::1 47002 LISTEN @154 27369/python/0",
        "udp4 0.0.0.0 47003 UNCONN @157 27369/python/0",
        "udp6 :: 47004 UNCONN @160 27369/python/0",
    ]
    assert result.unparsed == ()
    assert result.owners_known  # run as root: unowned sockets are the kernel's or hidden


@pytest.mark.parametrize(
    ("order", "file", "local", "expected"),
    [
        ("little", "tcp", "0100007F:0019", "tcp4 127.0.0.1 25"),
        ("big", "tcp", "7F000001:0019", "tcp4 127.0.0.1 25"),
        ("little", "tcp", "0102A8C0:1F90", "tcp4 192.168.2.1 8080"),
        ("little", "tcp6", "00000000000000000000000001000000:0016", "tcp6 ::1 22"),
        ("big", "tcp6", "00000000000000000000000000000001:0016", "tcp6 ::1 22"),
        (
            "little",
            "tcp6",
            "0000000000000000FFFF00000100007F:0050",
            "tcp6 ::ffff:127.0.0.1 80",
        ),
        (
            "little",
            "tcp6",
            "000080FE00000000FF565002BD69B1FE:0050",
            "tcp6 fe80::250:56ff:feb1:69bd 80",
        ),
    ],
)
def test_hex_addresses_are_read_in_the_hosts_byte_order(
    order: str, file: str, local: str, expected: str
) -> None:
    text = _output(f"@@file {file}", TCP_HEADER, _row(local, "0A", 1234)).replace(
        "@@byteorder little", f"@@byteorder {order}"
    )
    result = parse(text)
    assert result.unparsed == ()
    assert [v.rsplit(" LISTEN", 1)[0] for v in views(result)] == [expected]


@pytest.mark.parametrize(("arch", "expected"), [("s390x", "127.0.0.1"), ("x86_64", "1.0.0.127")])
def test_arch_decides_byte_order_on_old_kernels(arch: str, expected: str) -> None:
    text = _output("@@file tcp", _row("7F000001:0019", "0A", 1)).replace(
        "@@byteorder little", f"@@arch {arch}"
    )
    assert [x.address for x in parse(text).listeners] == [expected]


@pytest.mark.parametrize(
    ("file", "state", "local", "listening"),
    [
        ("tcp", "0A", "0100007F:0019", True),
        ("tcp", "01", "0100007F:0019", False),  # ESTABLISHED
        ("tcp", "06", "0100007F:0019", False),  # TIME_WAIT
        ("udp", "07", "00000000:0044", True),  # bound, unconnected
        ("udp", "01", "00000000:0044", False),  # connected UDP
        ("udp", "07", "00000000:0000", False),  # not bound to a port
    ],
)
def test_only_listening_states_become_listeners(
    file: str, state: str, local: str, listening: bool
) -> None:
    result = parse(_output(f"@@file {file}", _row(local, state, 99)))
    assert result.unparsed == ()
    assert bool(result.listeners) is listening


def test_sockets_map_gives_every_owner_once_and_keeps_odd_names() -> None:
    text = _output(
        "@@file tcp",
        _row("00000000:0050", "0A", 500),
        "@@sockets",
        "500 10 0 nginx",
        "500 11 33 nginx",
        "500 11 33 nginx",
        '500 12 1000 my (odd) "name" ',
    )
    (listener,) = parse(text).listeners
    assert listener.processes == (
        Process("nginx", 10, "0"),
        Process("nginx", 11, "33"),
        Process('my (odd) "name" ', 12, "1000"),
    )


@pytest.mark.parametrize(
    ("uid", "end", "owners_known"),
    [
        ("0 0", True, True),  # root: an unowned socket is the kernel's
        ("1000 1000", True, False),  # not root: other users' fds were unreadable
        ("0 0", False, False),  # output cut before @@end: the map is incomplete
    ],
)
def test_owners_known_needs_root_and_a_complete_map(
    uid: str, end: bool, owners_known: bool
) -> None:
    text = _output("@@file tcp", _row("00000000:0050", "0A", 500), uid=uid, end=end)
    assert parse(text).owners_known is owners_known


def test_missing_files_are_recognised_and_garbage_is_unparsed() -> None:
    text = _output(
        "@@missing tcp6",
        "@@error udp6",
        "@@file tcp",
        "   0: ZZZZZZZZ:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1",
        "   1: 0100007F 00000000:0000 0A",
        "@@bogus marker",
        "@@sockets",
        "not-a-number 1 0 x",
    )
    result = parse(text)
    assert result.listeners == ()
    assert [u.line for u in result.unparsed] == [7, 8, 9, 11]


def test_detect_recognises_the_script_output() -> None:
    assert own_detect(read_bytes_as_text(CAPTURE)) == 1.0
    assert registry_detect(read_bytes_as_text(CAPTURE)).name == "linux-proc"
    assert own_detect("Netid State Recv-Q Send-Q Local Address:Port\n") == 0.0


# --------------------------------------------------------- the script, run


def _run_script(**kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SH, "-c", PROC_SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,  # type: ignore[call-overload]
    )


def _by_key(text: str) -> dict[tuple[str, int, str, int], tuple[Process, ...]]:
    result = parse(text)
    assert result.unparsed == ()
    return {(x.proto, x.family, x.address, x.port): x.processes for x in result.listeners}


def test_script_finds_our_sockets_with_our_pid_and_comm(
    own_sockets: list[tuple[str, int, str, int]],
) -> None:
    run = _run_script()
    assert (run.returncode, run.stderr) == (0, "")
    found = _by_key(run.stdout)
    comm = Path("/proc/self/comm").read_text(encoding="utf-8").rstrip("\n")
    uid = str(os.getuid())
    for key in own_sockets:
        assert Process(comm, os.getpid(), uid) in found[key]


def test_script_needs_only_cat_ls_and_uname(
    own_sockets: list[tuple[str, int, str, int]], tmp_path: Path
) -> None:
    """BusyBox-compatible: with a PATH holding nothing but cat, ls and uname
    the script still reads everything."""
    for tool in ("cat", "ls", "uname"):
        found = shutil.which(tool)
        assert found is not None
        (tmp_path / tool).symlink_to(found)
    run = _run_script(env={"PATH": str(tmp_path)})
    assert (run.returncode, run.stderr) == (0, "")
    found_keys = _by_key(run.stdout)
    assert all(found_keys[key] for key in own_sockets)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the script as nobody")
def test_script_as_unprivileged_user_fails_quietly_and_owners_stay_unknown(
    own_sockets: list[tuple[str, int, str, int]],
) -> None:
    run = _run_script(user="nobody")
    assert (run.returncode, run.stderr) == (0, "")
    result = parse(run.stdout)
    found = {(x.proto, x.family, x.address, x.port): x.processes for x in result.listeners}
    for key in own_sockets:
        assert found[key] == ()  # root's fds cannot be read by nobody
    assert result.owners_known is False


def test_script_survives_processes_vanishing_during_the_walk() -> None:
    churn = subprocess.Popen(
        ["sh", "-c", "while :; do sleep 0 & sleep 0 & wait; done"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        runs = [_run_script() for _ in range(3)]
    finally:
        churn.kill()
        churn.wait()
    for run in runs:
        assert (run.returncode, run.stderr) == (0, "")
        assert run.stdout.rstrip("\n").endswith("@@end")
        assert parse(run.stdout).unparsed == ()


def test_script_is_posix_sh() -> None:
    dash = shutil.which("dash") or shutil.which("sh")
    assert dash is not None
    check = subprocess.run([dash, "-n", "-c", PROC_SCRIPT], capture_output=True, text=True)
    assert (check.returncode, check.stderr) == (0, "")
