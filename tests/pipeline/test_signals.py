"""The exit-130 contract holds for the whole run, not only the scan: a SIGINT
or SIGTERM that arrives while the reports are being written still ends with
every report complete and marked interrupted, and exit code 130.

The signal is really delivered to this process (``os.kill``) at the moment
the HTML report has just been written, by wrapping the real HTML writer."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from fleetscan import app
from fleetscan.options import RunOptions
from fleetscan.reports import html
from fleetscan.testing.mock import MockCall, MockReply, MockTransport
from fleetscan.testing.simhost import SimHost, frame_posix

SS = (
    "Netid State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
    'tcp   LISTEN 0      128    0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=733,fd=3))\n'
)


def healthy(call: MockCall) -> MockReply:
    out, err = frame_posix(SimHost(call.target.name, outputs={"ss": SS}), call.stdin or "")
    return MockReply(out, err)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_reports_are_written_gives_complete_reports_marked_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sig: signal.Signals
) -> None:
    (tmp_path / "inv.ini").write_text("h1 ansible_host=127.0.0.1\nh2 ansible_host=127.0.0.1\n")
    (tmp_path / "policy.yaml").write_text("version: 1\nforbidden:\n  - id: irc\n    ports: 6667\n")
    out = tmp_path / "out"
    options = RunOptions(
        inventory=(tmp_path / "inv.ini",), policies=(tmp_path / "policy.yaml",), output=out
    )
    real_write_html = html.write_html
    sent: list[int] = []

    def write_html_then_signal(run: object, outdir: Path, *mode: int) -> list[Path]:
        written = real_write_html(run, outdir, *mode)  # type: ignore[arg-type]
        if not sent:
            sent.append(sig)
            os.kill(os.getpid(), sig)
        return written

    monkeypatch.setattr(html, "write_html", write_html_then_signal)
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    result = app.run(options, transports={"asyncssh": MockTransport(healthy)})

    assert sent == [sig]
    assert result.run.interrupted
    assert result.exit_code == 130
    # the hosts had finished: they keep their results, nothing is lost
    assert [s.status.value for s in result.run.scans] == ["ok", "ok"]
    names = {p.name for paths in result.reports.values() for p in paths}
    every_format = {"report.html", "hosts.csv", "listeners.csv", "findings.csv"}
    assert names >= every_format | {"report.json", "junit.xml"}
    assert all((out / name).stat().st_size > 0 for name in names)
    report = json.loads((out / "report.json").read_text())
    assert report["run"]["interrupted"] is True
    junit = (out / "junit.xml").read_text()
    assert '<property name="interrupted" value="true"' in junit
    assert '<property name="exit_code" value="130"' in junit
    assert "The run was stopped before every host finished" in (out / "report.html").read_text()
    # the operator's handlers are back once the run is over
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
