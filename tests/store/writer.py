"""A separate process that records runs into a history database, for the
concurrency and kill -9 tests: ``python -m tests.store.writer URL RUNS HOSTS TAG``.

Prints ``writing <id>`` before and ``saved <id>`` after each run (flushed), so
the parent knows where it is. Waits for ``GO`` on stdin before the first run,
so two writers can be started at the same instant.
"""

from __future__ import annotations

import sys

from sqlalchemy.engine import make_url

from fleetscan.store import History

from .factory import fleet, lst, run


def main() -> None:
    url, runs, hosts, tag = make_url(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    history = History.open(url)
    sys.stdin.readline()  # GO
    for i in range(runs):
        run_id = f"{tag}-{i:04d}"
        # every host changes every run: a big, slow transaction full of new blobs
        scans = fleet(
            {
                f"{tag}-h{h}": [
                    lst("tcp", "0.0.0.0", 1024 + (i * 7 + h + k) % 60000, f"p{k}")
                    for k in range(20)
                ]
                for h in range(hosts)
            }
        )
        changes, compared = history.compare(scans)
        r = run(run_id, scans, day=i)
        from dataclasses import replace

        print(f"writing {run_id}", flush=True)
        history.record(replace(r, changes=changes, compared_to=compared))
        print(f"saved {run_id}", flush=True)
    history.close()


if __name__ == "__main__":
    main()
