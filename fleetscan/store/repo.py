"""The history store: record runs, find what to compare with, read runs back.

Each :meth:`Store.save` is one write transaction: the run, its host rows, its
changes and any new blobs land together or not at all. Only finished runs are
written; a run stopped by Ctrl-C/SIGTERM is stored whole with
``interrupted = true`` and its unfinished hosts as ``interrupted``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, and_, delete, func, select, union
from sqlalchemy.engine import URL

from fleetscan import drift
from fleetscan.model import Change, ComparedTo, Finding, HostScan, ScanRun, Severity, TrendPoint
from fleetscan.store import codec
from fleetscan.store.engine import make_engine, migrate, write_transaction
from fleetscan.store.schema import baselines, blobs, changes, host_scans, hosts, runs

CHUNK = 500  # bound parameters per IN (...) list
TREND_RUNS = 30


class StoreError(Exception):
    """The history database cannot be used (unreachable, locked, corrupt, unknown run)."""


@dataclass(frozen=True)
class RunRow:
    """One line of ``fleetscan history``."""

    id: str
    started: str
    finished: str
    hosts: int
    by_status: dict[str, int]
    active_by_severity: dict[str, int]
    listeners: int
    changes: int
    interrupted: bool
    exit_code: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "started": self.started,
            "finished": self.finished,
            "hosts": self.hosts,
            "by_status": self.by_status,
            "active_findings_by_severity": self.active_by_severity,
            "listeners": self.listeners,
            "changes": self.changes,
            "interrupted": self.interrupted,
            "exit_code": self.exit_code,
        }


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def _insert_ignore(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows whose key may already exist (a concurrent run, an equal blob)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(table).on_conflict_do_nothing(), rows)
    else:
        from sqlalchemy.dialects.sqlite import insert as lite_insert

        conn.execute(lite_insert(table).on_conflict_do_nothing(), rows)


class Store:
    """A history database, migrated to the current schema on open."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: URL) -> Store:
        from sqlalchemy.exc import SQLAlchemyError

        from fleetscan.store.url import shown

        engine = make_engine(url)
        try:
            migrate(engine)
        except SQLAlchemyError as exc:
            engine.dispose()
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            raise StoreError(
                f"cannot open the history database {shown(url)}: {reason[0] if reason else exc}"
            ) from None
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    # --- writing -----------------------------------------------------------------

    def save(self, run: ScanRun) -> None:
        """Record ``run`` (scans, findings, changes) in one transaction."""
        from fleetscan.reports import summary

        counts = summary.counts(run)
        by_host: dict[str, list[Finding]] = {}
        for f in run.findings:
            by_host.setdefault(f.host, []).append(f)
        new_blobs: dict[str, str] = {}

        def keep(doc: Any) -> str:
            body = codec.canonical(doc)
            key = codec.digest(body)
            new_blobs[key] = body
            return key

        def keep_listeners(s: HostScan) -> str:
            key, body = codec.listener_set(s.listeners)
            new_blobs[key] = body
            return key

        rows: list[dict[str, Any]] = [
            {
                "position": i,
                "status": s.status.value,
                "target": keep(codec.target_doc(s.target)),
                "listeners": keep_listeners(s),
                "detail": keep(codec.detail_doc(s, by_host.get(s.host, []))),
                "timings": codec.timings_doc(s),
                "_host": s.host,
            }
            for i, s in enumerate(run.scans)
        ]
        with write_transaction(self.engine) as conn:
            host_pk = self._host_pks(conn, [s.host for s in run.scans], create=True)
            self._put_blobs(conn, new_blobs)
            run_pk = conn.execute(
                runs.insert().returning(runs.c.pk),
                {
                    "run_id": run.id,
                    "started": _iso(run.started),
                    "finished": _iso(run.finished),
                    "tool_version": run.tool_version,
                    "inventory_digest": run.inventory_digest,
                    "policy_digest": run.policy_digest,
                    "inventory_files": list(run.inventory_files),
                    "policy_files": list(run.policy_files),
                    "hostkey_checking": run.hostkey_checking,
                    "interrupted": run.interrupted,
                    "fail_on": str(run.fail_on),
                    "exit_code": summary.exit_code(run),
                    "hosts": counts.hosts,
                    "listeners": sum(len(s.listeners) for s in run.scans),
                    "by_status": {st.value: n for st, n in counts.by_status.items()},
                    "active_by_severity": {
                        str(sev): n for sev, n in counts.active_by_severity.items()
                    },
                    "compared_to": _compared_doc(run.compared_to),
                    "changes": len(run.changes),
                },
            ).scalar_one()
            for row in rows:
                row["run_pk"] = run_pk
                row["host_pk"] = host_pk[str(row.pop("_host"))]
            if rows:
                conn.execute(host_scans.insert(), rows)
            if run.changes:
                conn.execute(
                    changes.insert(),
                    [
                        {
                            "run_pk": run_pk,
                            "host_pk": host_pk[c.host],
                            "kind": c.kind,
                            "proto": c.proto,
                            "address": c.address,
                            "port": c.port,
                            "before": codec.listener_doc(c.before) if c.before else None,
                            "after": codec.listener_doc(c.after) if c.after else None,
                            "since_run": c.since_run,
                        }
                        for c in run.changes
                    ],
                )

    def mark_interrupted(self, run_id: str) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(interrupted=True))

    def _host_pks(self, conn: Connection, names: Sequence[str], create: bool) -> dict[str, int]:
        wanted = list(dict.fromkeys(names))
        out: dict[str, int] = {}
        for part in _chunks(wanted):
            query = select(hosts.c.pk, hosts.c.name).where(hosts.c.name.in_(part))
            out.update((name, pk) for pk, name in conn.execute(query))
        missing = [n for n in wanted if n not in out]
        if create and missing:
            _insert_ignore(conn, hosts, [{"name": n} for n in missing])
            out.update(self._host_pks(conn, missing, create=False))
        return out

    def _put_blobs(self, conn: Connection, docs: dict[str, str]) -> None:
        keys = list(docs)
        have: set[str] = set()
        for part in _chunks(keys):
            have.update(conn.scalars(select(blobs.c.digest).where(blobs.c.digest.in_(part))))
        _insert_ignore(conn, blobs, [{"digest": k, "body": docs[k]} for k in keys if k not in have])

    # --- what to compare with -------------------------------------------------------

    def references(
        self, scans: Iterable[HostScan], mode: str = "previous", before_run: int | None = None
    ) -> dict[str, drift.Reference]:
        """Per host of ``scans``: its previous complete scan (``previous``), or its
        pinned baseline, else its first complete scan (``baseline``). Hosts with
        no complete scan in the history are left out (they are at their baseline).

        A reference whose listener set has the digest of the host's current one
        is the current listeners themselves: nothing to decode or compare."""
        current = {s.host: s.listeners for s in scans}
        out: dict[str, drift.Reference] = {}
        with self.engine.connect() as conn:
            pks = self._host_pks(conn, list(current), create=False)
            by_pk = {pk: name for name, pk in pks.items()}
            found = list(self._reference_rows(conn, list(by_pk), mode, before_run))
            changed: dict[str, list[tuple[int, str]]] = {}
            for host_pk, run_id, key in found:
                name = by_pk[host_pk]
                if key == codec.listener_set(current[name])[0]:
                    out[name] = drift.Reference(run_id, current[name])
                else:
                    changed.setdefault(key, []).append((host_pk, run_id))
            for part in _chunks(list(changed)):
                query = select(blobs.c.digest, blobs.c.body).where(blobs.c.digest.in_(part))
                for key, body in conn.execute(query):
                    listeners = codec.listeners_from(json.loads(body))
                    for host_pk, run_id in changed[key]:
                        out[by_pk[host_pk]] = drift.Reference(run_id, listeners)
        return out

    def _reference_rows(
        self, conn: Connection, host_pks: Sequence[int], mode: str, before_run: int | None
    ) -> Iterator[tuple[int, str, str]]:
        """(host pk, run id, listener-set digest) of each host's reference scan."""
        chosen: dict[int, int] = {}
        pick = func.min if mode == "baseline" else func.max
        for part in _chunks(host_pks):
            ok = and_(host_scans.c.status == "ok", host_scans.c.host_pk.in_(part))
            if before_run is not None:
                ok = and_(ok, host_scans.c.run_pk < before_run)
            query = (
                select(host_scans.c.host_pk, pick(host_scans.c.run_pk))
                .where(ok)
                .group_by(host_scans.c.host_pk)
            )
            chosen.update(dict(conn.execute(query).all()))
            if mode == "baseline":
                pinned = select(baselines.c.host_pk, baselines.c.run_pk).where(
                    baselines.c.host_pk.in_(part)
                )
                chosen.update(dict(conn.execute(pinned).all()))
        by_run: dict[int, list[int]] = {}
        for host_pk, run_pk in chosen.items():
            by_run.setdefault(run_pk, []).append(host_pk)
        for run_pk, host_group in by_run.items():  # usually one run: the last one
            for part in _chunks(host_group):
                query = (
                    select(host_scans.c.host_pk, runs.c.run_id, host_scans.c.listeners)
                    .join(runs, runs.c.pk == host_scans.c.run_pk)
                    .where(host_scans.c.run_pk == run_pk, host_scans.c.host_pk.in_(part))
                )
                for row in conn.execute(query):
                    yield int(row[0]), str(row[1]), str(row[2])

    # --- reading runs back -------------------------------------------------------------

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
            return [_run_row(r) for r in conn.execute(query)]

    def run_before(self, when: datetime) -> str:
        """The newest run that started at or before ``when``."""
        with self.engine.connect() as conn:
            found = conn.scalar(
                select(runs.c.run_id)
                .where(runs.c.started <= _iso(when))
                .order_by(runs.c.started.desc(), runs.c.pk.desc())
                .limit(1)
            )
        if found is None:
            raise StoreError(f"no run started before {_iso(when)[:19].replace('T', ' ')} UTC")
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
            docs: dict[str, Any] = {}
            for part in _chunks(keys):
                for k, body in conn.execute(
                    select(blobs.c.digest, blobs.c.body).where(blobs.c.digest.in_(part))
                ):
                    docs[k] = json.loads(body)
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
            compared_to=_compared_from(row.compared_to),
            trend=trend,
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

    # --- baselines and retention ---------------------------------------------------

    def set_baseline(self, run_id: str, limit: str | None = None) -> list[str]:
        """Pin ``run_id`` as the baseline of its completely scanned hosts (those
        ``limit`` selects); returns the hosts pinned."""
        from fleetscan.inventory.limit import select as select_hosts

        run = self.load(run_id)
        complete = [s.target for s in run.scans if s.status.complete]
        if not complete:
            raise StoreError(f"run {run_id} has no completely scanned host to pin")
        groups: dict[str, list[str]] = {}
        for t in complete:
            for g in t.groups:
                groups.setdefault(g, []).append(t.name)
        chosen = [t.name for t in select_hosts(complete, groups, limit)]
        now = _iso(datetime.now(UTC))
        with write_transaction(self.engine) as conn:
            run_pk = conn.scalar(select(runs.c.pk).where(runs.c.run_id == run_id))
            pks = self._host_pks(conn, chosen, create=False)
            conn.execute(delete(baselines).where(baselines.c.host_pk.in_(list(pks.values()))))
            conn.execute(
                baselines.insert(),
                [{"host_pk": pk, "run_pk": run_pk, "pinned_at": now} for pk in pks.values()],
            )
        return chosen

    def list_baselines(self) -> list[tuple[str, str, str]]:
        """(host, run id, pinned at) for every pinned host, by host name."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(hosts.c.name, runs.c.run_id, baselines.c.pinned_at)
                .join(hosts, hosts.c.pk == baselines.c.host_pk)
                .join(runs, runs.c.pk == baselines.c.run_pk)
            ).all()
        return sorted((r[0], r[1], r[2]) for r in rows)

    def prune(self, older_than: datetime) -> int:
        """Delete runs started before ``older_than`` except pinned baselines and
        their now-unreferenced blobs; returns the number of runs deleted."""
        keep = select(baselines.c.run_pk)
        with write_transaction(self.engine) as conn:
            doomed = list(
                conn.scalars(
                    select(runs.c.pk).where(
                        runs.c.started < _iso(older_than), runs.c.pk.not_in(keep)
                    )
                )
            )
            for part in _chunks(doomed):
                conn.execute(delete(changes).where(changes.c.run_pk.in_(part)))
                conn.execute(delete(host_scans).where(host_scans.c.run_pk.in_(part)))
                conn.execute(delete(runs).where(runs.c.pk.in_(part)))
            if doomed:
                used = union(
                    select(host_scans.c.target),
                    select(host_scans.c.listeners),
                    select(host_scans.c.detail),
                )
                conn.execute(delete(blobs).where(blobs.c.digest.not_in(used)))
        return len(doomed)


def _run_row(r: Any) -> RunRow:
    return RunRow(
        id=r.run_id,
        started=r.started,
        finished=r.finished,
        hosts=r.hosts,
        by_status=r.by_status,
        active_by_severity=r.active_by_severity,
        listeners=r.listeners,
        changes=r.changes,
        interrupted=r.interrupted,
        exit_code=r.exit_code,
    )


def _compared_doc(c: ComparedTo | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        "mode": c.mode,
        "run": c.run,
        "runs": list(c.runs),
        "baseline_hosts": list(c.baseline_hosts),
        "unknown_hosts": list(c.unknown_hosts),
    }


def _compared_from(doc: dict[str, Any] | None) -> ComparedTo | None:
    if doc is None:
        return None
    return ComparedTo(
        mode=doc["mode"],
        run=doc["run"],
        runs=tuple(doc["runs"]),
        baseline_hosts=tuple(doc["baseline_hosts"]),
        unknown_hosts=tuple(doc["unknown_hosts"]),
    )
