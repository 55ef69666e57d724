"""Which database the history goes to: ``--db URL``, ``FLEETSCAN_DB``, or the
default SQLite file ``$XDG_DATA_HOME/fleetscan/history.sqlite``.

URLs are checked here, before anything connects: a bad one is a
:class:`~fleetscan.errors.ConfigError` (exit 2) naming the option. Passwords in
URLs are never shown (``***``).
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from fleetscan.errors import ConfigError

ENV_VAR = "FLEETSCAN_DB"
#: URL scheme → the SQLAlchemy driver fleetscan uses for it
DRIVERS = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}


def default_path() -> Path:
    """``$XDG_DATA_HOME/fleetscan/history.sqlite`` (``~/.local/share/...``)."""
    base = os.environ.get("XDG_DATA_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "fleetscan" / "history.sqlite"


def shown(url: URL) -> str:
    """The URL for messages: the password replaced by ``***``."""
    return url.render_as_string(hide_password=True)


def resolve(value: str | None, *, field: str = "--db") -> URL:
    """The database URL to use: ``value`` (the option), else ``FLEETSCAN_DB``,
    else the default SQLite file (its folder is created)."""
    if value is None or not value.strip():
        env = os.environ.get(ENV_VAR, "").strip()
        if env:
            return parse(env, field=ENV_VAR)
        path = default_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the history folder: {exc.strerror}", file=str(path.parent)
            ) from None
        return URL.create("sqlite", database=str(path))
    return parse(value, field=field)


def parse(text: str, *, field: str = "--db") -> URL:
    """A database URL as SQLAlchemy understands it, or ConfigError."""
    hint = "expected sqlite:///PATH or postgresql://USER@HOST/DBNAME"
    try:
        url = make_url(text.strip())
    except (ArgumentError, ValueError):
        raise ConfigError(f"not a database URL ({hint})", field=field) from None
    driver = DRIVERS.get(url.drivername)
    if driver is None:
        raise ConfigError(
            f"unsupported database {url.drivername!r} in {shown(url)!r} ({hint})", field=field
        )
    url = url.set(drivername=driver)
    if driver == "sqlite":
        db = url.database or ""
        if not db or db == ":memory:" or db.startswith("file:"):
            raise ConfigError(
                f"{shown(url)!r} names no file: history needs a file ({hint})", field=field
            )
        folder = Path(db).expanduser().resolve().parent
        if not folder.is_dir():
            raise ConfigError(f"folder {folder} does not exist", file=db, field=field)
        url = url.set(database=str(Path(db).expanduser()))
    elif not url.database:
        raise ConfigError(f"{shown(url)!r} names no database ({hint})", field=field)
    return url
