"""The history tables as SQLAlchemy Core objects — the *current* schema, which
the Alembic migrations in ``migrations/versions`` build step by step (a test
checks both agree).

Space: a run costs one ``runs`` row plus one small ``host_scans`` row per host.
Everything bulky — a host's listener set, its findings, evidence and target —
lives once in ``blobs``, keyed by the digest of its content, so an unchanged
host adds a row of digests (a few hundred bytes), not a copy of its table.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)


class HostText(TypeDecorator[str]):
    """Text that may come from a scanned host: stored as a JSON string literal,
    so NUL bytes and undecodable bytes (lone surrogates) survive every database."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else str(json.loads(value))


class JsonText(TypeDecorator[Any]):
    """A JSON document in a text column (ASCII-only, same on every database)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


DIGEST_LEN = 32  # hex characters of SHA-256 kept (128 bits)

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("run_id", String(64), nullable=False, unique=True),
    Column("started", String(40), nullable=False),  # ISO 8601, UTC: sorts as text
    Column("finished", String(40), nullable=False),
    Column("tool_version", String(40), nullable=False),
    Column("inventory_digest", String(80), nullable=False),
    Column("policy_digest", String(80), nullable=False),
    Column("inventory_files", JsonText, nullable=False),
    Column("policy_files", JsonText, nullable=False),
    Column("hostkey_checking", Boolean, nullable=False),
    Column("interrupted", Boolean, nullable=False),
    Column("fail_on", String(16), nullable=False),
    Column("exit_code", Integer, nullable=False),
    Column("hosts", Integer, nullable=False),
    Column("listeners", Integer, nullable=False),
    Column("by_status", JsonText, nullable=False),
    Column("active_by_severity", JsonText, nullable=False),
    # added by revision 0002 (drift)
    Column("compared_to", JsonText, nullable=True),
    Column("changes", Integer, nullable=False, server_default="0"),
    # added by revision 0003: host-key trust (inventory known_hosts, --accept-new)
    Column("trust", JsonText, nullable=True),
)
Index("ix_runs_started", runs.c.started)

hosts = Table(
    "hosts",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("name", HostText, nullable=False, unique=True),
)

blobs = Table(
    "blobs",
    metadata,
    Column("digest", String(DIGEST_LEN), primary_key=True),
    Column("body", Text, nullable=False),  # canonical JSON, ASCII
)

host_scans = Table(
    "host_scans",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True),
    Column("host_pk", Integer, ForeignKey("hosts.pk"), primary_key=True),
    Column("position", Integer, nullable=False),  # inventory order within the run
    Column("status", String(20), nullable=False),
    Column("target", String(DIGEST_LEN), nullable=False),  # blobs.digest
    Column("listeners", String(DIGEST_LEN), nullable=False),  # blobs.digest: the listener set
    Column("detail", String(DIGEST_LEN), nullable=False),  # blobs.digest: findings, evidence…
    Column("timings", JsonText, nullable=False),  # [started, finished, [evidence durations]]
)
Index(
    "ix_host_scans_host_status_run", host_scans.c.host_pk, host_scans.c.status, host_scans.c.run_pk
)

changes = Table(
    "changes",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("run_pk", Integer, ForeignKey("runs.pk", ondelete="CASCADE"), nullable=False),
    Column("host_pk", Integer, ForeignKey("hosts.pk"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("proto", String(4), nullable=False),
    Column("address", HostText, nullable=False),
    Column("port", Integer, nullable=False),
    Column("before", JsonText, nullable=True),
    Column("after", JsonText, nullable=True),
    Column("since_run", String(64), nullable=False),
)
Index("ix_changes_run", changes.c.run_pk)

baselines = Table(
    "baselines",
    metadata,
    Column("host_pk", Integer, ForeignKey("hosts.pk"), primary_key=True),
    Column("run_pk", Integer, ForeignKey("runs.pk"), nullable=False),
    Column("pinned_at", String(40), nullable=False),
)

# added by revision 0004 (alerts): the open alerts (dedup across runs) and the
# messages a destination has not taken yet
alert_state = Table(
    "alert_state",
    metadata,
    Column("key", HostText, primary_key=True),
    Column("host", HostText, nullable=True),
    Column("severity", String(16), nullable=False),
    Column("rule_id", HostText, nullable=True),
    Column("message", HostText, nullable=False),
    Column("listener", JsonText, nullable=True),
    Column("run_id", String(64), nullable=False),
)

alert_outbox = Table(
    "alert_outbox",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("destination", String(64), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("created", String(40), nullable=False),
    Column("body", JsonText, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", String(200), nullable=False),
)
Index("ix_alert_outbox_destination", alert_outbox.c.destination, alert_outbox.c.pk)
