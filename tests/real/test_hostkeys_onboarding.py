"""Host-key onboarding against a real OpenSSH sshd (issue 8 section 1).

``fleetscan hostkeys scan`` fetches the keys through both transports, prints
them as ``ssh-keygen -lf`` does, writes a known_hosts that the real
``ssh -o StrictHostKeyChecking=yes`` accepts (plain and hashed), lists a
changed key without ever writing it, and ``--append`` prints exactly what it
added. ``fleetscan scan --accept-new`` records an unknown key, scans the host,
says so in the report, and still refuses a changed key.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from .harness import (
    NO_SUDO_USER,
    SshdServer,
    describe,
    keygen,
    public_key,
    require,
    run_cli,
    scan_args,
    write_ini_inventory,
)

pytestmark = [pytest.mark.sshd, pytest.mark.timeout(300)]


def _inventory(server: SshdServer, path: Path) -> Path:
    return write_ini_inventory(
        path,
        {
            "real-01": {
                "ansible_host": server.address,
                "ansible_port": server.port,
                "ansible_user": NO_SUDO_USER,
                "ansible_ssh_private_key_file": server.client_key,
            }
        },
    )


def _ssh_accepts(server: SshdServer, known_hosts: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *("ssh", "-F", "/dev/null", "-o", "BatchMode=yes"),
            *("-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}"),
            *("-o", "GlobalKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes"),
            *("-i", str(server.client_key), "-p", str(server.port)),
            f"{NO_SUDO_USER}@{server.address}",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("transport", ["asyncssh", "paramiko"])
@pytest.mark.parametrize("hashed", [False, True], ids=["plain", "hashed"])
def test_hostkeys_scan_writes_a_known_hosts_that_openssh_accepts(
    sshd_server: SshdServer, tmp_path: Path, transport: str, hashed: bool
) -> None:
    require(shutil.which("ssh") is not None, "no ssh client (openssh-client)")
    inv = _inventory(sshd_server, tmp_path / "inv.ini")
    trusted = tmp_path / "trusted_known_hosts"
    trusted.write_text("")
    review = tmp_path / "review_known_hosts"
    args = ["hostkeys", "scan", "-i", str(inv), "-o", str(review), "--known-hosts", str(trusted)]
    args += ["--ssh-config", "/dev/null", "--transport", transport] + (["--hash"] if hashed else [])
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, describe(proc)
    assert trusted.read_text() == ""  # the trusted file is never touched without --append
    # the printed line is exactly what ssh-keygen -lf says of the written file
    keygen = subprocess.run(
        ["ssh-keygen", "-lf", str(review)], capture_output=True, text=True, timeout=30
    )
    name = f"[{sshd_server.address}]:{sshd_server.port}"
    expected = [ln for ln in keygen.stdout.splitlines() if "ED25519" in ln]
    assert expected, keygen.stdout
    if hashed:
        assert name not in review.read_text()
        bits, fp = expected[0].split()[:2]
        assert f"{bits} {fp} {name} (ED25519) new" in proc.stdout, proc.stdout
    else:
        assert expected[0] + " new" in proc.stdout, (expected, proc.stdout)
    accepted = _ssh_accepts(sshd_server, review)
    assert accepted.returncode == 0, accepted.stderr


def test_a_changed_key_is_listed_never_written_and_append_prints_what_it_added(
    sshd_server: SshdServer, tmp_path: Path
) -> None:
    inv = _inventory(sshd_server, tmp_path / "inv.ini")
    other = keygen(tmp_path / "other")
    name = f"[{sshd_server.address}]:{sshd_server.port}"
    trusted = tmp_path / "trusted"
    trusted.write_text(f"{name} {public_key(other)}\n")
    base = ["hostkeys", "scan", "-i", str(inv), "--known-hosts", str(trusted)]
    base += ["--ssh-config", "/dev/null"]
    proc = run_cli([*base, "--append", str(trusted), "-o", str(tmp_path / "review")], cwd=tmp_path)
    assert proc.returncode == 3, describe(proc)
    assert "changed" in proc.stdout
    assert trusted.read_text() == f"{name} {public_key(other)}\n"  # never replaced
    assert "added 0 lines" in proc.stdout
    assert public_key(sshd_server.host_key) not in (tmp_path / "review").read_text()
    # a fresh trusted file: --append adds the key and prints exactly that line
    fresh = tmp_path / "fresh"
    fresh.write_text("")
    proc = run_cli(
        [
            *("hostkeys", "scan", "-i", str(inv), "--known-hosts", str(fresh)),
            *("--ssh-config", "/dev/null", "--append", str(fresh)),
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, describe(proc)
    written = fresh.read_text().splitlines()
    assert f"{name} {public_key(sshd_server.host_key)}" in written
    for line in written:
        assert "  " + line in proc.stdout
    assert _ssh_accepts(sshd_server, fresh).returncode == 0


def test_scan_accept_new_records_the_key_reports_it_and_still_refuses_a_changed_one(
    sshd_server: SshdServer, tmp_path: Path
) -> None:
    inv = _inventory(sshd_server, tmp_path / "inv.ini")
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    out = tmp_path / "out"
    proc = run_cli([*scan_args(inv, out, kh), "--accept-new"], cwd=tmp_path)
    report = json.loads((out / "report.json").read_text())
    host = report["hosts"][0]
    assert host["status"] in ("ok", "partial"), describe(proc)
    learned = report["run"]["accept_new"]["keys_learned"]
    fp = subprocess.run(
        ["ssh-keygen", "-lf", f"{sshd_server.host_key}.pub"], capture_output=True, text=True
    ).stdout.split()[1]
    assert [(k["name"], k["fingerprint"]) for k in learned] == [
        (f"[{sshd_server.address}]:{sshd_server.port}", fp)
    ]
    assert "--accept-new" in proc.stdout
    assert public_key(sshd_server.host_key) in kh.read_text()
    assert _ssh_accepts(sshd_server, kh).returncode == 0
    # a changed key is refused even with --accept-new, and not written
    other = keygen(tmp_path / "other")
    kh.write_text(f"[{sshd_server.address}]:{sshd_server.port} {public_key(other)}\n")
    out2 = tmp_path / "out2"
    proc = run_cli([*scan_args(inv, out2, kh), "--accept-new"], cwd=tmp_path)
    report = json.loads((out2 / "report.json").read_text())
    assert report["hosts"][0]["status"] == "hostkey_mismatch", describe(proc)
    assert report["run"]["accept_new"]["keys_learned"] == []
    assert public_key(sshd_server.host_key) not in kh.read_text()
