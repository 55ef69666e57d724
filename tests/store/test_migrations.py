"""Alembic: a database made by the first schema version, with data in it, is
upgraded on open and its runs are still there and usable; the migrations
build exactly the schema the code uses. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import URL

from fleetscan.store import History, Store
from fleetscan.store.codec import canonical, digest, listeners_doc, target_doc
from fleetscan.store.engine import current_revision, head_revision, make_engine, migrate
from fleetscan.store.schema import metadata

from .factory import fleet, lst, scan

SSH = lst("tcp", "0.0.0.0", 22, "sshd")
OLD_RUN = "20261001T020000Z-00000001"


def _blob(conn, doc) -> str:  # type: ignore[no-untyped-def]
    body = canonical(doc)
    key = digest(body)
    conn.execute(text("INSERT INTO blobs (digest, body) VALUES (:d, :b)"), {"d": key, "b": body})
    return key


def _fill_version_0001(url: URL) -> None:
    """A run recorded by fleetscan at schema 0001, written with that schema's SQL."""
    engine = make_engine(url)
    migrate(engine, "0001")
    assert current_revision(engine) == "0001"
    s = scan("db-01", [SSH])
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO runs (run_id, started, finished, tool_version, inventory_digest,"
                " policy_digest, inventory_files, policy_files, hostkey_checking, interrupted,"
                " fail_on, exit_code, hosts, listeners, by_status, active_by_severity) VALUES"
                " (:id, '2026-10-01T02:00:00.000000+00:00', '2026-10-01T02:00:30.000000+00:00',"
                " '0.1.0', '', '', '[]', '[]', :t, :f, 'high', 0, 1, 1, :bs, '{}')"
            ),
            {"id": OLD_RUN, "t": True, "f": False, "bs": '{"ok":1}'},
        )
        conn.execute(text("INSERT INTO hosts (name) VALUES (:n)"), {"n": json.dumps("db-01")})
        detail = {
            "message": "",
            "platform": "linux",
            "collector": "ss",
            "unparsed": [],
            "evidence": [],
            "findings": [],
        }
        conn.execute(
            text(
                "INSERT INTO host_scans (run_pk, host_pk, position, status, target, listeners,"
                " detail, timings) VALUES ((SELECT pk FROM runs), (SELECT pk FROM hosts), 0,"
                " 'ok', :t, :l, :d, '[0, 1, []]')"
            ),
            {
                "t": _blob(conn, target_doc(s.target)),
                "l": _blob(conn, listeners_doc(s.listeners)),
                "d": _blob(conn, detail),
            },
        )
    engine.dispose()


def test_database_of_the_first_schema_version_is_upgraded_with_its_data(db_url: URL) -> None:
    _fill_version_0001(db_url)
    store = Store.open(db_url)  # upgrades to head
    try:
        assert current_revision(store.engine) == head_revision() != "0001"
        (row,) = store.list_runs()
        assert (row.id, row.hosts, row.changes) == (OLD_RUN, 1, 0)
        assert store.load(OLD_RUN).scans[0].listeners == (SSH,)
        # the old run is the reference of the next scan: only the new port is a change
        history = History(store)
        changes, compared = history.compare(fleet({"db-01": [SSH, lst("tcp", "0.0.0.0", 80)]}))
        assert [(c.kind, c.port, c.since_run) for c in changes] == [("new", 80, OLD_RUN)]
        assert compared.run == OLD_RUN
    finally:
        store.close()


def _upgrade_with_alembic(engine: Engine) -> None:
    """``alembic upgrade head`` on an empty database (migrate() would create it directly)."""
    from alembic import command

    from fleetscan.store.engine import _config

    with engine.begin() as conn:
        command.upgrade(_config(conn), "head")


def _reflected(engine: Engine) -> dict[str, object]:
    """Every table's columns, keys, indexes and constraints, as the database has them."""
    with engine.connect() as conn:
        db = inspect(conn)
        out: dict[str, object] = {}
        for name in sorted(db.get_table_names()):
            out[name] = (
                [
                    (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                    for c in db.get_columns(name)
                ],
                db.get_pk_constraint(name),
                sorted(db.get_foreign_keys(name), key=str),
                sorted(db.get_indexes(name), key=str),
                sorted(db.get_unique_constraints(name), key=str),
            )
        if engine.dialect.name == "sqlite":
            out["sqlite_master"] = sorted(
                " ".join(str(sql).split())
                for (sql,) in conn.execute(
                    text("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")
                )
            )
        out["version"] = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    return out


def test_migrations_build_the_schema_the_code_uses(db_url: URL) -> None:
    engine = make_engine(db_url)
    try:
        _upgrade_with_alembic(engine)
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": False})
            diffs = compare_metadata(ctx, metadata)
        assert diffs == []
    finally:
        engine.dispose()


def test_a_database_from_a_newer_fleetscan_is_a_clear_error(tmp_path: Path) -> None:
    """A schema revision this version does not know (a newer fleetscan wrote the
    file) is a StoreError saying so — exit 2 from the CLI — not an alembic traceback."""
    from sqlalchemy import text

    from fleetscan.store import Store, StoreError, resolve

    url = resolve(f"sqlite:///{tmp_path / 'h.sqlite'}")
    Store.open(url).close()
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError, match=r"newer fleetscan .*schema 9999"):
        Store.open(url)


def test_head_is_the_newest_migration() -> None:
    """engine.HEAD (what an open compares with, without Alembic) is Alembic's head:
    a new migration in versions/ must move it."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from fleetscan.store.engine import HEAD, MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_heads() == [HEAD]


def test_opening_a_database_at_head_does_not_import_alembic(tmp_path: Path) -> None:
    """The common case (the schema is current) is one SELECT with SQLAlchemy,
    and a new database is created directly: Alembic and Mako are imported
    only when an older schema needs an upgrade."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from fleetscan.store import History, resolve\n"
        f"url = resolve({str('sqlite:///' + str(tmp_path / 'h.sqlite'))!r})\n"
        "History.open(url).close()\n"
        "print('first', 'alembic' in sys.modules)\n"
        "for m in [m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')]:\n"
        "    del sys.modules[m]\n"
        "History.open(url).close()\n"
        "print('again', 'alembic' in sys.modules, 'mako' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    # a new file gets the current schema directly; the second open finds it at head
    assert out.stdout.split("\n")[:2] == ["first False", "again False False"], out


def test_a_new_database_gets_exactly_the_schema_the_migrations_build(
    db_url: URL, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A new, empty database is created from the current schema and stamped at
    head without Alembic: the same tables, columns, keys, indexes (and, on
    SQLite, the same DDL) as ``alembic upgrade head`` builds, so later
    migrations find what they expect."""
    by_alembic = make_engine(db_url)
    if db_url.get_backend_name() == "sqlite":
        direct = make_engine(URL.create("sqlite", database=str(tmp_path / "direct.sqlite")))
    else:
        direct = make_engine(request.getfixturevalue("pg_cluster").create_database("direct"))
    try:
        _upgrade_with_alembic(by_alembic)
        migrate(direct)
        assert current_revision(direct) == head_revision()
        assert _reflected(direct) == _reflected(by_alembic)
    finally:
        by_alembic.dispose()
        direct.dispose()
