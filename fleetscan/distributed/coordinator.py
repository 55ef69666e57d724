"""The coordinator's side of a distributed run: send shards, gather one run.

:meth:`Coordinator.stream` takes the place of the local runner's
``scan_stream``: the app gets every target's :class:`HostScan` exactly once
and does everything else (policy, history, reports, alerts) as for a local
scan. In between:

1. the shards are planned by site (:mod:`~fleetscan.distributed.plan`);
2. a bounded remote-control broadcast asks which workers are alive, for
   which site, at which version; a site with no compatible worker gets its
   hosts ``not_scanned`` at once ("no worker for site dc1");
3. every other shard goes to its site's queue, expiring at the run's
   deadline so a late worker never scans for a run that has ended;
4. results are polled from the result store and decoded strictly; each host
   is taken once (a redelivered, duplicated or forged second answer for a
   host is ignored);
5. every few seconds the sites still owing shards are checked again: a site
   whose workers are all gone ends its hosts as ``not_scanned`` ("worker
   lost") without waiting for the deadline; at the deadline, whatever is
   still missing ends so too; if the broker goes away, every host still
   missing ends so ("lost the connection to the broker") and the run ends
   with what it has.

Nothing is left silent: every target ends with a status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fleetscan.distributed import codec
from fleetscan.distributed.engine import INFO_COMMAND, TASK_NAME, broker_url, make_app, redact
from fleetscan.distributed.plan import DEFAULT_SHARD_SIZE, plan_shards, queue_name
from fleetscan.errors import ConfigError
from fleetscan.model import HostScan, Status, Target, new_run_id
from fleetscan.runner import ScanSettings

if TYPE_CHECKING:
    from fleetscan.options import RunOptions

log = logging.getLogger("fleetscan.distributed")

Emit = Callable[[HostScan], None]
#: stands for the shard's site in a message given to ``_RunState.fail_all``
SITE = "\x00site\x00"


@dataclass(frozen=True)
class DistributedOptions:
    """How a run is distributed (``fleetscan scan --distributed``)."""

    broker: str
    shard_size: int = DEFAULT_SHARD_SIZE
    deadline: float | None = None  # seconds for the whole run; None: derived (see docs)
    inspect_timeout: float = 1.5  # one bounded wait for workers to answer
    recheck_every: float = 4.0  # how often sites owing shards are checked for workers
    lost_after: int = 3  # checks in a row without a worker before a site is lost
    poll_every: float = 0.25


def distributed_options(options: RunOptions) -> DistributedOptions:
    """``--distributed`` and friends, checked before any connection. Trust
    material is the workers' own: a coordinator-side known_hosts, ssh_config
    or host-key switch would silently not apply, so it is refused."""
    for given, flag in (
        (not options.hostkey_checking, "--no-host-key-check"),
        (options.known_hosts is not None, "--known-hosts"),
        (options.ssh_config is not None, "--ssh-config"),
        (options.accept_new, "--accept-new"),
    ):
        if given:
            raise ConfigError(
                "workers use their own known_hosts, ssh_config and keys: give this option "
                "to `fleetscan worker`",
                field=f"{flag} with --distributed",
            )
    return DistributedOptions(
        broker=broker_url(options.distributed, field="--distributed"),
        shard_size=options.shard_size,
        deadline=options.run_deadline,
    )


@dataclass
class SiteWorkers:
    """What the live, compatible workers of one site told us."""

    names: list[str] = field(default_factory=list)
    slots: int = 0
    host_concurrency: int = 0
    visibility_timeout: float = 0.0
    hostkey_checking: bool = True
    incompatible: list[str] = field(default_factory=list)


class BrokerLost(Exception):
    """The broker (or result store) stopped answering."""


def _connection_errors() -> tuple[type[BaseException], ...]:
    from kombu.exceptions import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (OperationalError, RedisConnectionError, RedisTimeoutError, OSError)


class Coordinator:
    """Runs one distributed scan; see the module docstring for the flow."""

    def __init__(self, options: DistributedOptions, app: Any = None) -> None:
        self.options = options
        self.app = app if app is not None else make_app(options.broker)
        #: False as soon as one worker that scanned for this run does not check host keys
        self.hostkey_checking = True
        #: set when the run ended because the broker went away
        self.broker_lost: str | None = None
        self._errors = _connection_errors()

    async def stream(
        self, targets: Sequence[Target], settings: ScanSettings
    ) -> AsyncIterator[HostScan]:
        """Every target's scan, as results arrive. The Celery calls block, so
        the coordination runs in a thread; cancelling the iteration stops it."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[HostScan | None] = asyncio.Queue()
        stop = threading.Event()

        def emit(scan: HostScan) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, scan)

        def work() -> None:
            try:
                self.run(targets, settings, emit, stop)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        thread = asyncio.ensure_future(asyncio.to_thread(work))
        try:
            while (scan := await queue.get()) is not None:
                yield scan
        finally:
            stop.set()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(thread)

    # --- the blocking part ---------------------------------------------------------------

    def run(
        self,
        targets: Sequence[Target],
        settings: ScanSettings,
        emit: Emit,
        stop: threading.Event,
    ) -> None:
        run_id = new_run_id(datetime.now(UTC))
        shard_settings = codec.ShardSettings(
            connect_timeout=settings.connect.connect_timeout,
            host_timeout=settings.host_timeout,
            max_output=settings.max_output,
            transport=settings.transport,
        )
        shards = plan_shards(
            targets, shard_settings, run_id=run_id, shard_size=self.options.shard_size
        )
        state = _RunState(shards, emit)
        try:
            self._run(state, settings, stop)
        except self._errors as exc:
            self.broker_lost = f"no answer from the broker {redact(self.options.broker)}"
            state.fail_all(f"{self.broker_lost} ({type(exc).__name__}: {exc})")
        except Exception as exc:  # a bug here must not drop hosts from the run
            log.exception("distributed run failed")
            state.fail_all(f"coordinator error: {type(exc).__name__}: {exc}")
        finally:
            abandoned = state.task_ids() + state.abandoned
            if not stop.is_set():  # when stopped, the app marks these hosts interrupted
                state.fail_all("no result (the run ended)")
            if self.broker_lost is None:
                self._revoke(abandoned)

    def _run(self, state: _RunState, settings: ScanSettings, stop: threading.Event) -> None:
        self._check_broker()
        workers = self.site_workers()
        for site in state.sites():
            if not workers.get(site, SiteWorkers()).names:
                state.fail_site(site, no_worker_message(site, workers.get(site)))
        deadline_s = self.options.deadline or derive_deadline(state, workers, settings)
        deadline = time.monotonic() + deadline_s
        expires = time.time() + deadline_s
        for shard in state.pending_shards():
            task_id = str(uuid.uuid4())
            self.app.send_task(
                TASK_NAME,
                args=[codec.encode_shard(shard)],
                queue=queue_name(shard.site),
                task_id=task_id,
                expires=expires,
                retry=True,
                retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
            )
            state.sent(shard, task_id)
        next_check = time.monotonic() + self.options.recheck_every
        misses: dict[str, int] = {}  # site → checks in a row without a live worker
        while state.pending() and not stop.is_set():
            self._collect(state)
            now = time.monotonic()
            if now >= deadline:
                state.fail_all(
                    f"no result from a worker of site {SITE} within the run's "
                    f"{deadline_s:.0f}s deadline (worker lost or overloaded)"
                )
                break
            if now >= next_check and state.pending():
                workers = self.site_workers()
                for site in state.pending_sites():
                    seen = bool(workers.get(site, SiteWorkers()).names)
                    misses[site] = 0 if seen else misses.get(site, 0) + 1
                    # one missed answer can be a busy machine; three in a row is loss
                    if misses[site] >= self.options.lost_after:
                        state.fail_site(site, f"worker lost: no worker left for site {site}")
                next_check = time.monotonic() + self.options.recheck_every
            stop.wait(self.options.poll_every)

    def _collect(self, state: _RunState) -> None:
        ids = state.task_ids()
        if not ids:
            return
        backend = self.app.backend
        values = backend.client.mget([backend.get_key_for_task(i) for i in ids])
        for task_id, raw in zip(ids, values, strict=True):
            if raw is None:
                continue
            meta = backend.decode_result(raw)
            status = meta.get("status")
            if status == "SUCCESS":
                state.take(task_id, meta.get("result"))
                self.hostkey_checking = self.hostkey_checking and state.last_hostkey_checking
            elif status in ("FAILURE", "REVOKED"):
                state.take_failure(task_id, meta.get("result"))
            else:
                continue
            backend.forget(task_id)  # host data does not wait in Redis once it is ours

    def _check_broker(self) -> None:
        """Fail fast (about a second, not kombu's retry schedule) when the
        broker or the result store does not answer at all."""
        with self.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0.2, interval_step=0.2)
        self.app.backend.client.ping()

    def site_workers(self) -> dict[str, SiteWorkers]:
        """Live workers by site, from one bounded remote-control broadcast."""
        replies = self.app.control.broadcast(
            INFO_COMMAND, reply=True, timeout=self.options.inspect_timeout
        )
        return summarise_workers(replies or [])

    def _revoke(self, task_ids: Iterable[str]) -> None:
        ids = list(task_ids)
        if not ids:
            return
        with contextlib.suppress(Exception):  # best effort: the run is over either way
            self.app.control.revoke(ids)


def summarise_workers(replies: Iterable[Any]) -> dict[str, SiteWorkers]:
    """Fold remote-control replies (``[{worker: info}, …]``) into sites;
    replies that do not look like a fleetscan worker's are ignored."""
    sites: dict[str, SiteWorkers] = {}
    for reply in replies:
        if not isinstance(reply, dict):
            continue
        for name, info in reply.items():
            if not isinstance(info, dict) or not isinstance(info.get("site"), str):
                continue
            site = sites.setdefault(info["site"], SiteWorkers())
            protocol = info.get("protocol")
            why = codec.compatible(
                protocol if isinstance(protocol, int) else -1, str(info.get("version", "?"))
            )
            if why:
                site.incompatible.append(f"{name}: {why}")
                continue
            site.names.append(str(name))
            site.slots += _positive(info.get("slots"), 1)
            hc = _positive(info.get("host_concurrency"), 1)
            site.host_concurrency = min(site.host_concurrency or hc, hc)
            site.visibility_timeout = max(
                site.visibility_timeout, float(_positive(info.get("visibility_timeout"), 300))
            )
            site.hostkey_checking = site.hostkey_checking and info.get("hostkey_checking") is True
    return sites


def _positive(value: object, default: int) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 1:
        return int(min(value, 1e9))
    return default


def no_worker_message(site: str, workers: SiteWorkers | None) -> str:
    text = f"no worker for site {site}"
    if workers and workers.incompatible:
        text += " (incompatible: " + "; ".join(workers.incompatible[:3]) + ")"
    return text


def derive_deadline(
    state: _RunState, workers: dict[str, SiteWorkers], settings: ScanSettings
) -> float:
    """The whole run's deadline when none is given: per site, the shards in
    waves over the site's worker slots, each wave as long as a shard's hosts
    take in waves of the worker's host concurrency; plus one redelivery
    (visibility timeout and one more shard) and 30 s of slack."""
    longest = 0.0
    shard_size = max((len(s.targets) for s in state.shards), default=1)
    for site, count in state.shards_per_site().items():
        w = workers.get(site)
        if not w or not w.names:
            continue
        host_waves = math.ceil(shard_size / max(1, w.host_concurrency))
        shard_time = host_waves * settings.host_timeout
        waves = math.ceil(count / max(1, w.slots))
        longest = max(longest, waves * shard_time + w.visibility_timeout + shard_time)
    return longest + 30.0


class _RunState:
    """Which shard is where, which host is done; every host is emitted once."""

    def __init__(self, shards: list[codec.Shard], emit: Emit) -> None:
        self.shards = shards
        self._emit = emit
        self._done: set[str] = set()
        self._unsent: list[codec.Shard] = list(shards)
        self._by_task: dict[str, codec.Shard] = {}
        self.abandoned: list[str] = []  # sent, then given up: revoked at the end
        self.last_hostkey_checking = True

    def sites(self) -> list[str]:
        return list(dict.fromkeys(s.site for s in self.shards))

    def shards_per_site(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self._unsent:
            out[s.site] = out.get(s.site, 0) + 1
        return out

    def pending_shards(self) -> list[codec.Shard]:
        return list(self._unsent)

    def pending_sites(self) -> list[str]:
        return list(dict.fromkeys(s.site for s in self._by_task.values()))

    def pending(self) -> bool:
        return bool(self._by_task or self._unsent)

    def task_ids(self) -> list[str]:
        return list(self._by_task)

    def sent(self, shard: codec.Shard, task_id: str) -> None:
        self._unsent.remove(shard)
        self._by_task[task_id] = shard

    def _finish(self, scan: HostScan) -> None:
        if scan.target.name in self._done:
            return  # a duplicate answer: the first one counts
        self._done.add(scan.target.name)
        self._emit(scan)

    def _fail_shard(self, shard: codec.Shard, message: str) -> None:
        now = time.time()
        for t in shard.targets:
            self._finish(HostScan(t, Status.NOT_SCANNED, message, started=now, finished=now))

    def take(self, task_id: str, text: object) -> None:
        shard = self._by_task.pop(task_id)
        try:
            result = codec.decode_result(text, shard)
        except codec.WireError as exc:
            log.warning("refused a result: %s", exc)
            self._fail_shard(shard, f"unusable result from site {shard.site}: {exc}")
            return
        self.last_hostkey_checking = result.hostkey_checking
        if result.error:
            self._fail_shard(shard, f"worker {result.worker}: {result.error}")
            return
        for t in shard.targets:
            if t.name in result.scans:
                self._finish(result.scans[t.name])
        missing = f"worker {result.worker} returned no result for this host"
        self._fail_shard(shard, missing)  # only hosts not finished above

    def take_failure(self, task_id: str, info: object) -> None:
        shard = self._by_task.pop(task_id)
        what = "the task failed"
        if isinstance(info, dict):
            what = f"{info.get('exc_type', 'error')}: {info.get('exc_message', '')}"
        self._fail_shard(shard, f"worker error on site {shard.site}: {what}"[:1000])

    def fail_site(self, site: str, message: str) -> None:
        for shard in [s for s in self._unsent if s.site == site]:
            self._unsent.remove(shard)
            self._fail_shard(shard, message)
        for task_id, shard in list(self._by_task.items()):
            if shard.site == site:
                del self._by_task[task_id]
                self.abandoned.append(task_id)
                self._fail_shard(shard, message)

    def fail_all(self, message: str) -> None:
        for shard in self._unsent:
            self._fail_shard(shard, message.replace(SITE, shard.site))
        self._unsent.clear()
        for task_id, shard in self._by_task.items():
            self.abandoned.append(task_id)
            self._fail_shard(shard, message.replace(SITE, shard.site))
        self._by_task.clear()
