"""Prometheus metrics of a run, through the official ``prometheus_client``.

Two ways out: :func:`write_textfile` writes node_exporter's textfile-collector
format atomically (temporary file + rename, done by ``prometheus_client``),
and :class:`MetricsServer` serves ``/metrics`` for ``watch`` on a loopback
address by default. Label values that come from hosts are untrusted:
``prometheus_client`` escapes backslash, quote and newline as the exposition
format requires, and :func:`_label` additionally makes every other control
character visible and bounds the length, so a hostile name cannot forge a
series or break a dashboard.

Metrics (all gauges describe the latest run, except the ``_total`` counter):

* ``fleetscan_host_up{host,status}`` — 1 when the host was fully scanned, else 0;
* ``fleetscan_host_listeners{host}`` — listeners found on the host;
* ``fleetscan_hosts{status}`` — hosts by status;
* ``fleetscan_findings_active{severity}`` — active (unwaived) findings;
* ``fleetscan_drift_changes{kind}`` — changes since the compared run;
* ``fleetscan_run_duration_seconds``, ``fleetscan_run_timestamp_seconds``;
* ``fleetscan_last_complete_run_timestamp_seconds`` — end of the last run that
  was not interrupted;
* ``fleetscan_alert_delivery_failures_total`` — failed alert deliveries.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, write_to_textfile
from prometheus_client.exposition import make_wsgi_app

from fleetscan.model import ScanRun, Severity, Status
from fleetscan.reports.sanitize import clip, visible_controls


def _label(text: str) -> str:
    return visible_controls(clip(text, 200))


class RunMetrics:
    """One registry whose values follow the latest run (``watch`` keeps it)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.host_up = Gauge(
            "fleetscan_host_up", "1 if the host was fully scanned", ["host", "status"], registry=r
        )
        self.host_listeners = Gauge(
            "fleetscan_host_listeners", "Listeners found on the host", ["host"], registry=r
        )
        self.hosts = Gauge("fleetscan_hosts", "Hosts by scan status", ["status"], registry=r)
        self.findings = Gauge(
            "fleetscan_findings_active", "Active findings by severity", ["severity"], registry=r
        )
        self.changes = Gauge(
            "fleetscan_drift_changes", "Changes since the compared run", ["kind"], registry=r
        )
        self.duration = Gauge(
            "fleetscan_run_duration_seconds", "Duration of the latest run", registry=r
        )
        self.timestamp = Gauge(
            "fleetscan_run_timestamp_seconds", "End of the latest run", registry=r
        )
        self.last_complete = Gauge(
            "fleetscan_last_complete_run_timestamp_seconds",
            "End of the latest run that was not interrupted",
            registry=r,
        )
        self.delivery_failures = Counter(
            "fleetscan_alert_delivery_failures",
            "Alert deliveries that failed after their retries",
            registry=r,
        )

    def observe(
        self,
        run: ScanRun,
        *,
        change_kinds: Iterable[str] = (),
        delivery_failures: int = 0,
    ) -> None:
        """Set every gauge from ``run`` (series of hosts no longer in the run go)."""
        self.host_up.clear()
        self.host_listeners.clear()
        for scan in run.scans:
            host = _label(scan.host)
            self.host_up.labels(host=host, status=scan.status.value).set(
                1 if scan.status.complete else 0
            )
            if scan.status.scanned:
                self.host_listeners.labels(host=host).set(len(scan.listeners))
        by_status: Mapping[Status, int] = {
            s: sum(1 for x in run.scans if x.status is s) for s in Status
        }
        for status, n in by_status.items():
            self.hosts.labels(status=status.value).set(n)
        for sev in Severity:
            self.findings.labels(severity=str(sev)).set(
                sum(1 for f in run.active_findings() if f.severity is sev)
            )
        self.changes.clear()
        for kind in change_kinds:
            self.changes.labels(kind=_label(kind)).inc()
        self.duration.set((run.finished - run.started).total_seconds())
        self.timestamp.set(run.finished.timestamp())
        if not run.interrupted:
            self.last_complete.set(run.finished.timestamp())
        if delivery_failures:
            self.delivery_failures.inc(delivery_failures)

    def write_textfile(self, path: Path) -> None:
        """node_exporter textfile format, written atomically."""
        write_to_textfile(str(path), self.registry)


class MetricsServer:
    """``/metrics`` over HTTP in a daemon thread (loopback unless told otherwise)."""

    def __init__(self, metrics: RunMetrics, port: int, address: str = "127.0.0.1") -> None:
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        class _Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

        app = make_wsgi_app(metrics.registry)
        self._server: WSGIServer = make_server(address, port, app, handler_class=_Quiet)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
