"""The simulated hosts' probe programs (:mod:`fleetscan.testing.probehost`)
end with their host: a probe cancelled mid-run (its server stopped, the
client gave up) is killed with its process group inside the event loop (the
local transport's session runs it), and no subprocess transport is left for
the garbage collector to close after the loop is gone. The full suite
printed "Event loop is closed" from such a transport."""

from __future__ import annotations

import asyncio
import contextlib
import os

from fleetscan.testing.probehost import run_posix
from tests.unraisable import unraisable


def test_a_cancelled_probe_program_is_killed_and_leaves_no_transport() -> None:
    pids: list[int] = []

    async def main() -> None:
        task = asyncio.ensure_future(run_posix("echo $$; exec sleep 300\n", "/bin:/usr/bin"))
        await asyncio.sleep(0.5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # the shell printed its pid before it became `sleep`: it must be gone
        for line in os.popen("ps -eo pid=,args=").read().splitlines():
            if "sleep 300" in line and line.split()[0].isdigit():
                pids.append(int(line.split()[0]))

    with unraisable() as leaked:
        asyncio.run(main())
    assert leaked == []
    children = [p for p in pids if _is_child(p)]
    assert children == []


def _is_child(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1]) == os.getpid()
    except (OSError, ValueError, IndexError):
        return False


def test_a_probe_program_that_ends_returns_its_output() -> None:
    out, err, code = asyncio.run(run_posix("echo hi; echo oops >&2; exit 3\n", "/bin:/usr/bin"))
    assert (out, err, code) == ("hi\n", "oops\n", 3)
