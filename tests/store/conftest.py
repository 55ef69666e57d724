"""Every store and drift test runs against SQLite *and* a real PostgreSQL.

The PostgreSQL cluster is started once per session (:mod:`.pg`); each test
gets a database of its own. A cluster that cannot start skips the PostgreSQL
half locally and FAILS it with ``CI=true``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tests.real.harness import require

from .pg import PgCluster, start_cluster

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
