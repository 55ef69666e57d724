"""The history store: record runs, find what to compare with, read runs back.

Each :meth:`Store.save` is one write transaction: the run, its host rows, its
changes and any new blobs land together or not at all. Only finished runs are
written; a run stopped by Ctrl-C/SIGTERM is stored whole with
``interrupted = true`` and its unfinished hosts as ``interrupted``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, select, union
from sqlalchemy.engine import URL

from fleetscan import drift
from fleetscan.model import Finding, HostScan, ScanRun
from fleetscan.store import codec
from fleetscan.store.engine import (
    UnknownRevision,
    head_revision,
    make_engine,
    migrate,
    write_transaction,
)
from fleetscan.store.reading import Reading
from fleetscan.store.rows import StoreError, blob_docs, chunks, insert_ignore, iso
from fleetscan.store.schema import baselines, blobs, changes, host_scans, hosts, runs


class Store(Reading):
    """A history database, migrated to the current schema on open."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sets = codec.ListenerSets()  # this run's listener-set digests

    @classmethod
    def open(cls, url: URL) -> Store:
        from sqlalchemy.exc import SQLAlchemyError

        from fleetscan.store.url import shown

        engine = make_engine(url)
        try:
            migrate(engine)
        except UnknownRevision as exc:
            # a revision this fleetscan does not know: written by a newer version
            engine.dispose()
            raise StoreError(
                f"the history database {shown(url)} was written by a newer fleetscan "
                f"(schema {exc.revision}, this version knows up to "
                f"{head_revision()}): upgrade fleetscan or use another --db"
            ) from None
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
        try:
            self._save(run)
        finally:
            self.sets.clear()  # the digests were for this run only

    def _save(self, run: ScanRun) -> None:
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
            key, body = self.sets.get(s.listeners)
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
                    "started": iso(run.started),
                    "finished": iso(run.finished),
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
                    "compared_to": run.compared_to.to_dict() if run.compared_to else None,
                    "changes": len(run.changes),
                    "trust": codec.trust_doc(run),
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
        for part in chunks(wanted):
            query = select(hosts.c.pk, hosts.c.name).where(hosts.c.name.in_(part))
            out.update((name, pk) for pk, name in conn.execute(query))
        missing = [n for n in wanted if n not in out]
        if create and missing:
            insert_ignore(conn, hosts, [{"name": n} for n in missing])
            out.update(self._host_pks(conn, missing, create=False))
        return out

    def _put_blobs(self, conn: Connection, docs: dict[str, str]) -> None:
        keys = list(docs)
        have: set[str] = set()
        for part in chunks(keys):
            have.update(conn.scalars(select(blobs.c.digest).where(blobs.c.digest.in_(part))))
        insert_ignore(conn, blobs, [{"digest": k, "body": docs[k]} for k in keys if k not in have])

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
                if key == self.sets.get(current[name])[0]:
                    out[name] = drift.Reference(run_id, current[name])
                else:
                    changed.setdefault(key, []).append((host_pk, run_id))
            for key, doc in blob_docs(conn, list(changed)):
                listeners = codec.listeners_from(doc)
                for host_pk, run_id in changed[key]:
                    out[by_pk[host_pk]] = drift.Reference(run_id, listeners)
        return out

    def _reference_rows(
        self, conn: Connection, host_pks: Sequence[int], mode: str, before_run: int | None
    ) -> Iterator[tuple[int, str, str]]:
        """(host pk, run id, listener-set digest) of each host's reference scan."""
        chosen: dict[int, int] = {}
        pick = func.min if mode == "baseline" else func.max
        if mode == "previous":
            # the common case: most hosts were scanned ok in the newest run that
            # scanned anything ok; only the others need a search of their history
            newest = select(func.max(host_scans.c.run_pk)).where(host_scans.c.status == "ok")
            if before_run is not None:
                newest = newest.where(host_scans.c.run_pk < before_run)
            last = conn.scalar(newest)
            for part in chunks(host_pks):
                query = select(host_scans.c.host_pk).where(
                    host_scans.c.run_pk == last,
                    host_scans.c.status == "ok",
                    host_scans.c.host_pk.in_(part),
                )
                chosen.update((h, last) for h in conn.scalars(query))
            host_pks = [h for h in host_pks if h not in chosen]
        for part in chunks(host_pks):
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
            for part in chunks(host_group):
                query = (
                    select(host_scans.c.host_pk, runs.c.run_id, host_scans.c.listeners)
                    .join(runs, runs.c.pk == host_scans.c.run_pk)
                    .where(host_scans.c.run_pk == run_pk, host_scans.c.host_pk.in_(part))
                )
                for row in conn.execute(query):
                    yield int(row[0]), str(row[1]), str(row[2])

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
        now = iso(datetime.now(UTC))
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
                        runs.c.started < iso(older_than), runs.c.pk.not_in(keep)
                    )
                )
            )
            for part in chunks(doomed):
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
