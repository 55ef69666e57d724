"""Suite-wide rules and fixtures.

* CI honesty (:mod:`tests.ci_honesty`): with ``CI=true`` a skipped test fails
  with its reason; every run ends with a line counting the skips.

* Isolation: every ``fleetscan scan``/``demo`` records its run in the default
  history database (``$XDG_DATA_HOME/fleetscan/history.sqlite``); tests never
  write into the developer's own history, nor share one between sessions.
* ``db_url``: the store, drift and real-history tests run against SQLite *and*
  a real PostgreSQL (a throwaway cluster, :mod:`tests.store.pg`, started once
  per session; each test gets a database of its own). A cluster that cannot
  start skips the PostgreSQL half locally and FAILS it with ``CI=true``.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tests.ci_honesty import (  # noqa: F401 (pytest hooks, registered by import)
    pytest_runtest_makereport,
    pytest_terminal_summary,
    pytest_unconfigure,
)
from tests.real.harness import require
from tests.store.pg import PgCluster, start_cluster


@pytest.fixture(scope="session", autouse=True)
def _private_history() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("XDG_DATA_HOME", "FLEETSCAN_DB")}
    with tempfile.TemporaryDirectory(prefix="fleetscan-test-data-") as tmp:
        os.environ["XDG_DATA_HOME"] = tmp
        os.environ.pop("FLEETSCAN_DB", None)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    try:
        cluster = start_cluster()
    except (RuntimeError, OSError, TimeoutError) as exc:
        require(False, f"cannot start a throwaway PostgreSQL: {exc}")
        raise
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> URL:
    """A fresh, empty history database on each backend."""
    if request.param == "sqlite":
        return URL.create("sqlite", database=str(tmp_path / "history.sqlite"))
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return cluster.create_database("t_" + secrets.token_hex(6))
