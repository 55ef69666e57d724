"""CI honesty, a pytest plugin (imported by tests/conftest.py).

With ``CI=true`` (``.ci/run`` sets it) a test that skips — a real
sshd, network namespace, browser or tool it could not get — FAILS, with its
skip reason: in CI these tests are the proof, and a quiet skip would pass a
broken environment off as green. Locally a skip stays a skip. Either way the
run ends with one line counting the skips (``make test`` shows it last).
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[Any]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        report.outcome = "failed"
        report.longrepr = (
            f"CI=true: this test could not build its environment and must not skip: {reason}"
        )


_SKIPPED = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    config.stash[_SKIPPED] = len(terminalreporter.stats.get("skipped", []))


def pytest_unconfigure(config: pytest.Config) -> None:
    """The very last line of the run: how many tests skipped."""
    if _SKIPPED in config.stash:
        mode = "CI=true: a skip fails" if in_ci() else "set CI=true to make skips fail"
        print(f"fleetscan tests: {config.stash[_SKIPPED]} skipped ({mode})", flush=True)
