"""``fleetscan worker``: a Celery worker that scans the shards of one site.

The worker stands inside its network zone and owns the zone's trust
material: its known_hosts, private keys, ssh_config and environment. A shard
names key files and environment variables; the worker resolves them on its
own machine. It never accepts trust decisions from the broker: host-key
checking is the worker operator's choice, a known_hosts file a shard names
is used only with ``--trust-inventory-known-hosts``, and a password variable
is read only when the operator listed that variable (``--allow-secret-env``),
because a shard (which anyone who can write to the broker can forge) could
otherwise send the password to an address of its choosing.

Each shard's hosts are scanned by the ordinary runner
(:func:`fleetscan.runner.scan_all`), with the same statuses as a local scan.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fleetscan import __version__, runtime
from fleetscan.distributed import codec
from fleetscan.distributed.engine import INFO_COMMAND, TASK_NAME, make_app, redact
from fleetscan.distributed.plan import queue_name
from fleetscan.errors import ConfigError
from fleetscan.inventory import check_key_files
from fleetscan.model import HostScan, Status, Target
from fleetscan.runner import ScanSettings, scan_all
from fleetscan.transports.base import ConnectSettings

log = logging.getLogger("fleetscan.worker")


@dataclass(frozen=True)
class WorkerConfig:
    """What the worker's operator decides (never the coordinator)."""

    site: str
    concurrency: int = 2  # shards at once (Celery processes)
    host_concurrency: int = 50  # hosts at once within a shard
    known_hosts: str | None = None
    ssh_config: tuple[str, ...] | None = None
    client_keys: tuple[str, ...] = ()
    hostkey_checking: bool = True
    #: secret variables a shard may name; a password variable must be listed
    #: here (even a FLEETSCAN_* one: the broker password lives in this environment)
    allow_secret_env: tuple[str, ...] = ()
    trust_inventory_known_hosts: bool = False
    visibility_timeout: float = 300.0
    name: str = ""

    def info(self) -> dict[str, Any]:
        """What the coordinator learns about this worker (remote control reply)."""
        return {
            "site": self.site,
            "version": __version__,
            "protocol": codec.PROTOCOL,
            "slots": self.concurrency,
            "host_concurrency": self.host_concurrency,
            "visibility_timeout": self.visibility_timeout,
            "hostkey_checking": self.hostkey_checking,
        }


def scan_shard(config: WorkerConfig, payload: object) -> str:
    """Decode a shard, scan its hosts, return the encoded result. Never raises
    for a bad shard: the error goes back in the result (when the shard said
    who it was), so the coordinator can mark its hosts."""
    try:
        shard = codec.decode_shard(payload)
        if shard.site != config.site:
            raise codec.WireError(f"shard for site {shard.site!r} reached a {config.site} worker")
    except codec.WireError as exc:
        shard_id, site = _best_effort_ids(payload)
        log.warning("refused a shard: %s", exc)
        return codec.encode_result(
            shard_id,
            site,
            config.name,
            [],
            hostkey_checking=config.hostkey_checking,
            error=str(exc),
        )
    log.info("shard %s: scanning %s", shard.id, ", ".join(t.name for t in shard.targets))
    refused = {t.name: _refusal(config, t) for t in shard.targets}
    allowed = [t for t in shard.targets if refused[t.name] is None]
    settings = ScanSettings(
        connect=ConnectSettings(
            known_hosts=config.known_hosts,
            hostkey_checking=config.hostkey_checking,
            connect_timeout=shard.settings.connect_timeout,
            ssh_config=config.ssh_config,
            client_keys=config.client_keys,
            allowed_secret_env=frozenset(config.allow_secret_env),
            trust_inventory_known_hosts=config.trust_inventory_known_hosts,
        ),
        concurrency=config.host_concurrency,
        host_timeout=shard.settings.host_timeout,
        max_output=shard.settings.max_output,
        transport=shard.settings.transport,
    )
    scans = runtime.run(scan_all(allowed, settings)) if allowed else []
    scans += [_refused_scan(t, why) for t in shard.targets if (why := refused[t.name])]
    log.info("shard %s: done", shard.id)
    return codec.encode_result(
        shard.id, shard.site, config.name, scans, hostkey_checking=config.hostkey_checking
    )


def _refusal(config: WorkerConfig, target: Target) -> tuple[Status, str] | None:
    """Why this worker will not scan ``target`` (checked before connecting)."""
    if target.password_env and target.password_env not in config.allow_secret_env:
        return Status.AUTH_FAILED, (
            f"this worker does not read password variable {target.password_env!r} "
            "(allow it with fleetscan worker --allow-secret-env)"
        )
    try:  # the files a shard names are this worker's: same checks as a local run's
        check_key_files([target])
    except ConfigError as exc:
        status = Status.AUTH_FAILED if exc.field == "key file" else Status.INTERNAL_ERROR
        return status, f"on worker {config.name}: {exc.detail}"
    return None


def _refused_scan(target: Target, why: tuple[Status, str]) -> HostScan:
    now = time.time()
    return HostScan(target, why[0], why[1], started=now, finished=now)


def _best_effort_ids(payload: object) -> tuple[str, str]:
    try:
        doc = json.loads(payload) if isinstance(payload, str) else None
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        shard, site = doc.get("shard"), doc.get("site")
        if isinstance(shard, str) and isinstance(site, str):
            return shard[:256], site[:256]
    return "?", "?"


def build_app(broker: str, config: WorkerConfig) -> Any:
    """The worker's Celery app with the scan task and the info command."""
    from celery.worker.control import inspect_command

    app = make_app(broker, visibility_timeout=config.visibility_timeout)

    @app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def _scan_shard(payload: object) -> str:
        return scan_shard(config, payload)

    @inspect_command(name=INFO_COMMAND)  # type: ignore[untyped-decorator]
    def _info(state: Any, **kwargs: Any) -> dict[str, Any]:
        return config.info()

    return app


def run_worker(
    broker: str, config: WorkerConfig, *, loglevel: str = "INFO", extra: Sequence[str] = ()
) -> None:
    """Run a Celery worker (prefork pool) consuming the site's queue; blocks."""
    name = config.name or f"fleetscan-{config.site}-{os.getpid()}@{socket.gethostname()}"
    config = dataclasses.replace(config, name=name)
    app = build_app(broker, config)
    print(
        f"fleetscan worker {name}: site {config.site}, queue {queue_name(config.site)}, "
        f"broker {redact(broker)}, fleetscan {__version__} (wire protocol {codec.PROTOCOL})",
        flush=True,
    )
    app.worker_main(
        [
            "worker",
            f"--hostname={name}",
            f"--queues={queue_name(config.site)}",
            f"--concurrency={config.concurrency}",
            f"--loglevel={loglevel}",
            "--pool=prefork",
            "--without-gossip",
            "--without-mingle",
            *extra,
        ]
    )
