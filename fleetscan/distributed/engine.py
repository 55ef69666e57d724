"""The Celery application both sides share, and the broker URL rules.

Why Celery (see docs/distributed.md): named queues route a site's shards to
that site's workers only; ``acks_late`` + ``reject_on_worker_lost`` put the
shard of a lost worker back on its queue; remote control tells the
coordinator, in a bounded time, which sites have a live worker; operations
teams already run it. Redis serves as broker *and* result store.

Only JSON crosses the broker: Celery's serializer is pinned to ``json`` for
tasks and results, and the task's argument and return value are themselves
JSON text made by :mod:`fleetscan.distributed.codec`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

from fleetscan.errors import ConfigError

if TYPE_CHECKING:
    from celery import Celery

TASK_NAME = "fleetscan.scan_shard"
INFO_COMMAND = "fleetscan_info"
URL_ENV = "FLEETSCAN_BROKER_URL"
PASSWORD_ENV = "FLEETSCAN_BROKER_PASSWORD"
SCHEMES = ("redis", "rediss")
#: seconds a delivered shard may stay unacknowledged before Redis hands it to
#: another worker of the site (the redelivery of a worker that died)
DEFAULT_VISIBILITY_TIMEOUT = 300.0
#: how long a finished shard's result stays in Redis
RESULT_EXPIRES = 24 * 3600
SOCKET_TIMEOUT = 10.0


def broker_url(given: str | None, *, field: str) -> str:
    """The broker URL from ``given`` or ``$FLEETSCAN_BROKER_URL``, with the
    password from ``$FLEETSCAN_BROKER_PASSWORD`` when the URL has none.

    A password written on the command line is refused: every local user can
    read it in the process list."""
    url = given or os.environ.get(URL_ENV, "")
    source = field if given else URL_ENV
    if not url:
        raise ConfigError(f"no broker URL: give one or set {URL_ENV}", field=field)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ConfigError(f"invalid broker URL: {exc}", field=source) from None
    if parts.scheme not in SCHEMES:
        raise ConfigError(
            f"broker URL must start with {' or '.join(s + '://' for s in SCHEMES)}, "
            f"got {parts.scheme + '://' if parts.scheme else redact(url)!r}",
            field=source,
        )
    if given and parts.password:
        raise ConfigError(
            f"the broker password must not be on the command line (the process list shows "
            f"it to every user): set {PASSWORD_ENV} or {URL_ENV} instead",
            field=field,
        )
    password = os.environ.get(PASSWORD_ENV)
    if password and not parts.password:
        user = quote(parts.username or "", safe="")
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{user}:{quote(password, safe='')}@{host}"
        url = urlunsplit(parts._replace(netloc=netloc))
    return url


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparsable URL)"
    if not parts.password:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def make_app(url: str, *, visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT) -> Celery:
    """A Celery app on ``url`` (broker and result store), JSON only.

    ``visibility_timeout`` matters on the consuming side: a shard delivered
    to a worker that dies unacknowledged goes back to the queue that long
    after delivery; workers look for such shards every few seconds."""
    try:
        from celery import Celery
    except ImportError:  # pragma: no cover - depends on the install
        raise ConfigError(
            "distributed scans need Celery and redis: pip install 'fleetscan[distributed]'",
            field="--distributed",
        ) from None
    app = Celery("fleetscan", broker=url, backend=url, set_as_current=False)
    restore_every = max(1, min(10, int(visibility_timeout // 4)))
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        result_expires=RESULT_EXPIRES,
        result_extended=False,
        worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=SOCKET_TIMEOUT,
        redis_socket_timeout=SOCKET_TIMEOUT,
        redis_socket_connect_timeout=SOCKET_TIMEOUT,
        broker_transport_options={
            "visibility_timeout": visibility_timeout,
            "unacked_restore_interval": restore_every,
            "unacked_restore_throttle": 1,
            "socket_timeout": SOCKET_TIMEOUT,
            "socket_connect_timeout": SOCKET_TIMEOUT,
        },
    )
    return app
