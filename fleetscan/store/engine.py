"""Connecting to the history database and bringing its schema up to date.

SQLite (the default) is opened in WAL mode with a busy timeout, so several
scans can write to one file at once: each run is one ``BEGIN IMMEDIATE``
transaction that waits for the write lock instead of failing. A process
killed mid-write leaves its transaction uncommitted; the next open rolls it
back from the WAL and every earlier run is there.

The schema is versioned with Alembic (``migrations/``). :func:`migrate` runs
on every open: the common case, a database already at :data:`HEAD`, is one
``SELECT`` on ``alembic_version`` with SQLAlchemy alone, and a new, empty
database gets the current schema (:mod:`.schema`) stamped at ``HEAD``;
Alembic and its Mako templates are imported only to upgrade an older
database (~0.2 s otherwise paid by every run or first run). Creating or
upgrading takes the migration lock (``BEGIN IMMEDIATE`` on SQLite, a
transaction-scoped advisory lock on PostgreSQL), so concurrent first runs
create the schema exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: the newest revision in ``migrations/versions`` (a test checks it is Alembic's head):
#: a database at this revision is opened without importing Alembic
HEAD = "0004"
VERSION_TABLE = "alembic_version"
BUSY_TIMEOUT_MS = 60_000
CONNECT_TIMEOUT_S = 10
#: execution option asking for a write transaction (BEGIN IMMEDIATE on SQLite)
WRITE = "fleetscan_write"
_PG_MIGRATION_LOCK = 0x666C656574  # "fleet"


def make_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(
        url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}
    )


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # let SQLAlchemy, not the sqlite3 module, decide when transactions begin
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")  # in WAL: durable against process kill
    cur.execute("PRAGMA foreign_keys = ON")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # a write transaction takes the lock up front (waiting up to the busy
    # timeout); a deferred one could fail when it later upgrades to writing
    immediate = conn.get_execution_options().get(WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction holding the write lock; committed at the end, rolled back on error."""
    with engine.connect() as conn:
        conn = conn.execution_options(**{WRITE: True})
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SET LOCAL lock_timeout = '60s'"))
            yield conn


class UnknownRevision(Exception):
    """The database is at a revision this fleetscan does not know (a newer one wrote it)."""

    def __init__(self, revision: str | None) -> None:
        super().__init__(revision)
        self.revision = revision


def _config(conn: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    """The schema revision this fleetscan writes (:data:`HEAD`)."""
    return HEAD


def _read_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    versions = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return versions[0] if len(versions) == 1 else ",".join(sorted(versions)) or None


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision (None: no schema yet), read with SQLAlchemy."""
    with engine.connect() as conn:
        return _read_revision(conn)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` (default: the newest) if it is behind;
    :class:`UnknownRevision` when the database is at a revision this version
    does not know."""
    target = HEAD if revision == "head" else revision
    if current_revision(engine) == target:
        return  # the common case: no Alembic import, no lock
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        # re-read under the lock: a concurrent process may have migrated meanwhile
        current = _read_revision(conn)
        if current == target:
            return
        if current is None and target == HEAD and not inspect(conn).get_table_names():
            _create_at_head(conn)
            return
        from alembic import command
        from alembic.util.exc import CommandError

        try:
            command.upgrade(_config(conn), target)
        except CommandError:
            raise UnknownRevision(current) from None


def _create_at_head(conn: Connection) -> None:
    """A new, empty database: the current schema (:mod:`.schema`, which the
    migrations build step by step; a test checks both give the same tables)
    created directly and stamped at :data:`HEAD`, as ``alembic upgrade head``
    would leave it, without importing Alembic."""
    from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table

    from fleetscan.store.schema import metadata

    metadata.create_all(conn)
    version = Table(
        VERSION_TABLE,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    )
    version.create(conn)
    conn.execute(version.insert(), {"version_num": HEAD})
