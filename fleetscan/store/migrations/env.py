"""Alembic environment for fleetscan's history database.

Only used programmatically (:func:`fleetscan.store.engine.migrate`), which
passes an open connection already inside the transaction that holds the
migration lock; offline (``--sql``) mode is not supported.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached from the alembic CLI
    raise RuntimeError("fleetscan migrations run through fleetscan.store (no alembic.ini)")
context.configure(connection=connection, render_as_batch=True, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
