"""Reading the history back: run lists, whole runs with their trend, diffs."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, select

from fleetscan import drift
from fleetscan.model import Change, ComparedTo, Finding, HostScan, ScanRun, Severity, TrendPoint
from fleetscan.store import codec
from fleetscan.store.rows import TREND_RUNS, RunRow, StoreError, blob_docs, iso, run_row
from fleetscan.store.schema import changes, host_scans, hosts, runs


class Reading:
    """The read side of :class:`~fleetscan.store.repo.Store`."""

    engine: Engine

    def resolve(self, ref: str) -> str:
        """A run id from an id, a unique prefix of one, or ``latest``."""
        with self.engine.connect() as conn:
            if ref == "latest":
                found = conn.scalar(select(runs.c.run_id).order_by(runs.c.pk.desc()).limit(1))
                if found is None:
                    raise StoreError("the history is empty: no run recorded yet")
                return str(found)
            ids = list(
                conn.scalars(
                    select(runs.c.run_id)
                    .where(runs.c.run_id.startswith(ref, autoescape=True))
                    .limit(2)
                )
            )
        if len(ids) == 1:
            return str(ids[0])
        if not ids:
            raise StoreError(f"no run {ref!r} in the history (see: fleetscan history)")
        raise StoreError(f"{ref!r} matches several runs; give more of the id")

    def list_runs(self, limit: int = 20, host: str | None = None) -> list[RunRow]:
        """Recorded runs, newest first (only those that scanned ``host``, if given)."""
        query: Select[Any] = select(runs).order_by(runs.c.pk.desc()).limit(limit)
        if host is not None:
            query = query.where(
                runs.c.pk.in_(
                    select(host_scans.c.run_pk)
                    .join(hosts, hosts.c.pk == host_scans.c.host_pk)
                    .where(hosts.c.name == host)
                )
            )
        with self.engine.connect() as conn:
            return [run_row(r) for r in conn.execute(query)]

    def run_before(self, when: datetime) -> str:
        """The newest run that started at or before ``when``."""
        with self.engine.connect() as conn:
            found = conn.scalar(
                select(runs.c.run_id)
                .where(runs.c.started <= iso(when))
                .order_by(runs.c.started.desc(), runs.c.pk.desc())
                .limit(1)
            )
        if found is None:
            raise StoreError(f"no run started before {iso(when)[:19].replace('T', ' ')} UTC")
        return str(found)

    def last_two(self) -> tuple[str, str]:
        with self.engine.connect() as conn:
            ids = list(conn.scalars(select(runs.c.run_id).order_by(runs.c.pk.desc()).limit(2)))
        if len(ids) < 2:
            raise StoreError(f"diff needs two recorded runs; the history has {len(ids)}")
        return str(ids[1]), str(ids[0])

    def load(self, run_id: str) -> ScanRun:
        """A stored run as the model, as it was when recorded (with its trend)."""

        with self.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.run_id == run_id)).one_or_none()
            if row is None:
                raise StoreError(f"no run {run_id!r} in the history")
            scan_rows = conn.execute(
                select(host_scans, hosts.c.name)
                .join(hosts, hosts.c.pk == host_scans.c.host_pk)
                .where(host_scans.c.run_pk == row.pk)
                .order_by(host_scans.c.position)
            ).all()
            keys = list({k for r in scan_rows for k in (r.target, r.listeners, r.detail)})
            docs = dict(blob_docs(conn, keys))
            change_rows = conn.execute(
                select(changes, hosts.c.name)
                .join(hosts, hosts.c.pk == changes.c.host_pk)
                .where(changes.c.run_pk == row.pk)
                .order_by(changes.c.pk)
            ).all()
            trend = self._trend(conn, row.pk)
        scans: list[HostScan] = []
        findings: list[Finding] = []
        for r in scan_rows:
            scan, found = codec.host_scan_from(
                r.status, docs[r.target], docs[r.listeners], docs[r.detail], r.timings
            )
            scans.append(scan)
            findings.extend(found)
        from fleetscan.policy.engine import _sort_key

        return ScanRun(
            id=row.run_id,
            started=datetime.fromisoformat(row.started),
            finished=datetime.fromisoformat(row.finished),
            scans=tuple(scans),
            findings=tuple(sorted(findings, key=_sort_key)),
            inventory_digest=row.inventory_digest,
            policy_digest=row.policy_digest,
            policy_files=tuple(row.policy_files),
            inventory_files=tuple(row.inventory_files),
            hostkey_checking=row.hostkey_checking,
            interrupted=row.interrupted,
            fail_on=Severity.parse(row.fail_on),
            tool_version=row.tool_version,
            changes=tuple(codec.change_from(r.name, r) for r in change_rows),
            compared_to=ComparedTo.from_dict(row.compared_to) if row.compared_to else None,
            trend=trend,
            **codec.trust_fields(row.trust),
        )

    def with_trend(self, run: ScanRun) -> ScanRun:
        """``run`` (just saved) with the trend of the runs up to it."""
        with self.engine.connect() as conn:
            pk = conn.scalar(select(runs.c.pk).where(runs.c.run_id == run.id))
            return replace(run, trend=self._trend(conn, pk) if pk is not None else ())

    def _trend(self, conn: Connection, upto_pk: int) -> tuple[TrendPoint, ...]:
        rows = conn.execute(
            select(runs).where(runs.c.pk <= upto_pk).order_by(runs.c.pk.desc()).limit(TREND_RUNS)
        ).all()
        return tuple(
            TrendPoint(
                run=r.run_id,
                started=datetime.fromisoformat(r.started),
                by_status=r.by_status,
                active_by_severity=r.active_by_severity,
                listeners=r.listeners,
                changes=r.changes,
            )
            for r in reversed(rows)
        )

    def diff(self, run_a: str, run_b: str, host: str | None = None) -> tuple[Change, ...]:
        """Changes from ``run_a`` to ``run_b`` for hosts complete in both (a host
        not fully scanned in either has unknown changes and is left out)."""
        a, b = self.load(run_a), self.load(run_b)
        refs = {
            s.host: drift.Reference(a.id, s.listeners)
            for s in a.scans
            if s.status.complete and (host is None or s.host == host)
        }
        found, _ = drift.compare([s for s in b.scans if s.host in refs], refs)
        return found
