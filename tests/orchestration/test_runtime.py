"""The CLI's process settings (:mod:`fleetscan.runtime`): with glibc, a
large block is mapped on its own (and given back when freed) even after an
earlier large block was freed; the operator's MALLOC_* settings win. The
effect on a whole scan is measured by ``python -m bench.memory`` (a host of
100,000 listeners: 132 -> 121 MiB), not here."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleetscan import runtime
from fleetscan.errors import ConfigError
from fleetscan.options import RunOptions

#: in a fresh interpreter: free one 8 MiB block (glibc's default then raises
#: its mmap threshold to 8 MiB), allocate 3 MiB and print whether that block
#: got a mapping of its own (given back to the system when freed) or went
#: into the heap (kept there after it is freed)
PROBE = """
import sys
from pathlib import Path
from fleetscan import runtime
if sys.argv[1] == "tuned":
    assert runtime.tune_malloc()
def maps():
    out = set()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 5:  # anonymous
                a, b = (int(x, 16) for x in parts[0].split("-"))
                out.add((a, b))
    return out
big = b"x" * (8 << 20)
del big  # glibc's default now places blocks below 8 MiB in the heap
before = maps()
block = b"x" * (3 << 20)
new = [m for m in maps() - before if m[1] - m[0] >= 3 << 20]
print(len(new))
"""


def own_mappings(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True, check=True
    )
    return int(out.stdout)


@pytest.mark.skipif(
    sys.platform != "linux" or not os.confstr("CS_GNU_LIBC_VERSION"), reason="glibc only"
)
def test_large_blocks_are_mapped_on_their_own_after_a_large_free() -> None:
    assert own_mappings("default") == 0  # glibc's moving threshold: into the heap
    assert own_mappings("tuned") == 1


def test_an_operators_malloc_settings_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    assert runtime.tune_malloc() is False


def test_the_cli_applies_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from fleetscan import cli

    calls: list[str] = []
    monkeypatch.setattr(cli, "tune_process", lambda: calls.append("tuned"))
    monkeypatch.setattr(cli, "app", lambda **kw: calls.append("app"))
    cli.main()
    assert calls == ["tuned", "app"]


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


def test_runs_on_uvloop_where_it_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runtime.LOOP_ENV, raising=False)
    assert runtime.run(_loop_module()).startswith("uvloop")
    monkeypatch.setenv(runtime.LOOP_ENV, "uvloop")
    assert runtime.run(_loop_module()).startswith("uvloop")


def test_the_operator_may_choose_the_standard_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runtime.LOOP_ENV, " AsyncIO ")
    assert runtime.run(_loop_module()).startswith("asyncio")


def test_without_uvloop_the_standard_loop_unless_uvloop_is_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop -> ImportError
    monkeypatch.delenv(runtime.LOOP_ENV, raising=False)
    assert runtime.run(_loop_module()).startswith("asyncio")
    monkeypatch.setenv(runtime.LOOP_ENV, "uvloop")
    with pytest.raises(ConfigError) as err:
        runtime.run(_loop_module())
    assert str(err.value) == "FLEETSCAN_EVENT_LOOP: uvloop is not installed"


@pytest.mark.filterwarnings("error")  # a coroutine left un-awaited would warn
def test_a_bad_choice_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(runtime.LOOP_ENV, "trio")
    with pytest.raises(ConfigError) as err:
        runtime.run(_loop_module())
    assert err.value.field == "FLEETSCAN_EVENT_LOOP"
    assert "expected one of uvloop, asyncio, got 'trio'" in str(err.value)
    # a scan checks it with its options, before any host is contacted
    with pytest.raises(ConfigError) as err:
        RunOptions(inventory=(Path("inv.ini"),), policies=()).validate()
    assert err.value.field == "FLEETSCAN_EVENT_LOOP"
