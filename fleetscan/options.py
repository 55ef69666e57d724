"""What a run needs, in one frozen object: :class:`RunOptions`.

The command line, the config file (:mod:`fleetscan.config`), ``fleetscan
demo``, a worker or a Python user build a ``RunOptions`` and hand it to
:func:`fleetscan.app.run`. Every value is checked here, before anything is
read or connected (:meth:`RunOptions.validate`); a bad value is a
:class:`~fleetscan.errors.ConfigError` (exit 2) naming the option. Where new
stages add their options: docs/architecture.md ("Where the next stages plug in").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleetscan import runtime
from fleetscan.configfile import check_config_file
from fleetscan.errors import ConfigError
from fleetscan.model import Severity
from fleetscan.reports import FORMATS
from fleetscan.reports.files import DEFAULT_MODE, mode_problem
from fleetscan.transports.base import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_HOST_TIMEOUT,
    DEFAULT_MAX_OUTPUT,
    ConnectSettings,
)
from fleetscan.transports.trust import check_env_names, check_seconds

if TYPE_CHECKING:
    from fleetscan.exposure import ProbeSettings

MIB = 1024 * 1024


@dataclass(frozen=True)
class RunOptions:
    """Everything a scan run needs (paths, not loaded files).

    Stages added later put their options here too (store URL, drift
    baseline, exposure probes, alert targets), each with a safe default.
    """

    inventory: tuple[Path, ...]
    policies: tuple[Path, ...]
    limit: str | None = None
    #: report folder; None: ``fleetscan-reports/<run id>``
    output: Path | None = None
    #: with no ``output``: reports go to ``<output_root>/<run id>`` (None: ./fleetscan-reports)
    output_root: Path | None = None
    formats: tuple[str, ...] = FORMATS
    #: permissions of report files (folders fleetscan creates get the x bits)
    report_mode: int = DEFAULT_MODE
    fail_on: Severity = Severity.HIGH
    concurrency: int = 50
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    #: seconds for a whole host: connect plus every command
    host_timeout: float = DEFAULT_HOST_TIMEOUT
    max_output_mb: int = DEFAULT_MAX_OUTPUT // MIB
    #: force one transport for every host (else each target's own)
    transport: str | None = None
    known_hosts: Path | None = None
    hostkey_checking: bool = True
    #: None: ~/.ssh/config when it exists; () reads no config
    ssh_config: tuple[Path, ...] | None = None
    use_agent: bool = True
    #: record the run in the history and compare it (False: --no-history)
    history: bool = True
    #: history database URL; None: $FLEETSCAN_DB, else the default SQLite file
    db: str | None = None
    #: each host's reference: its previous complete scan, or its baseline
    compare_to: str = "previous"
    #: exposure probes from the scanner (zone "scanner")
    probe: bool = False
    #: zones to probe from (implies probes); None: only "scanner" when ``probe``
    probe_zones: tuple[str, ...] | None = None
    probe_timeout: float = 2.0
    probe_deadline: float = 300.0
    #: also collect each host's firewall ruleset as evidence
    firewall_evidence: bool = False
    #: alerts (fleetscan.alerts): lowest severity that alerts; destinations; link
    alert_on: Severity = Severity.HIGH
    webhooks: tuple[str, ...] = ()
    webhook_format: str = "json"
    webhook_token_env: str | None = None
    smtp: str | None = None
    smtp_security: str = "starttls"
    smtp_user: str | None = None
    smtp_password_env: str | None = None
    mail_from: str | None = None
    mail_to: tuple[str, ...] = ()
    report_url: str | None = None
    #: node_exporter textfile written after the run (Prometheus metrics)
    metrics_file: Path | None = None
    #: broker URL (no password): hosts are scanned by workers of their site
    distributed: str | None = None
    shard_size: int = 50
    #: seconds for a distributed run; None: derived from shards and workers
    run_deadline: float | None = None
    #: run an executable inventory script given as inventory (it is code: off by default)
    allow_exec_inventory: bool = False
    #: environment variables the inventory may name as secrets (FLEETSCAN_* always)
    allowed_secret_env: tuple[str, ...] = ()
    #: let known_hosts files named in the inventory decide (printed in every report)
    trust_inventory_known_hosts: bool = False
    #: OpenSSH accept-new into ``known_hosts`` (printed in every report)
    accept_new: bool = False

    def validate(self) -> None:
        """Check every value; raise ConfigError naming the first bad option."""
        for f in fields(self):
            check = CHECKS.get(f.name)
            problem = check(getattr(self, f.name)) if check else None
            if problem:
                raise ConfigError(problem, field=option_flag(f.name))
        for path in self.ssh_config or ():  # regular files, size-bounded (no FIFO, no device)
            check_config_file(path, field="--ssh-config")
        if self.known_hosts is not None:
            check_config_file(self.known_hosts, field="--known-hosts")
        self.connect_settings()  # secret-variable names, --accept-new needs
        runtime.loop_factory()  # FLEETSCAN_EVENT_LOOP names a loop there is

    def connect_settings(self) -> ConnectSettings:
        return ConnectSettings(
            known_hosts=str(self.known_hosts) if self.known_hosts else None,
            hostkey_checking=self.hostkey_checking,
            connect_timeout=self.connect_timeout,
            ssh_config=(
                tuple(str(p) for p in self.ssh_config) if self.ssh_config is not None else None
            ),
            use_agent=self.use_agent,
            allowed_secret_env=check_env_names(self.allowed_secret_env, "--allow-secret-env"),
            trust_inventory_known_hosts=self.trust_inventory_known_hosts,
            accept_new=self.accept_new,
        )

    @property
    def max_output(self) -> int:
        return self.max_output_mb * MIB

    def probe_settings(self) -> ProbeSettings | None:
        """The exposure stage's settings; None when no probe and no evidence is asked."""
        if not self.probe and self.probe_zones is None and not self.firewall_evidence:
            return None
        from fleetscan.exposure import ProbeSettings

        zones = self.probe_zones if self.probe_zones is not None else ()
        if self.probe and not zones:
            zones = ("scanner",)
        return ProbeSettings(
            zones=tuple(dict.fromkeys(zones)),
            timeout=self.probe_timeout,
            deadline=self.probe_deadline,
            firewall_evidence=self.firewall_evidence,
        )


_FLAGS = {"formats": "--format", "policies": "--policy", "hostkey_checking": "--no-host-key-check"}


def option_flag(name: str) -> str:
    """The command-line spelling of a RunOptions field (``fail_on`` → ``--fail-on``)."""
    return _FLAGS.get(name, "--" + name.replace("_", "-"))


def _positive(value: float) -> str | None:
    try:
        check_seconds(value, "")
    except ConfigError as exc:
        return exc.detail  # finite and positive: inf and nan are refused
    return None


def _formats(value: tuple[str, ...]) -> str | None:
    bad = [f for f in value if f not in FORMATS]
    if bad or not value:
        shown = ", ".join(map(repr, bad)) or "(none)"
        return f"unknown report format {shown} (choose from {', '.join(FORMATS)})"
    return None


#: field → check returning a problem (or None); shared with the config file
CHECKS: dict[str, Callable[[Any], str | None]] = {
    "concurrency": lambda v: None if v >= 1 else "must be at least 1",
    "connect_timeout": _positive,
    "host_timeout": _positive,
    "max_output_mb": lambda v: None if v >= 1 else f"must be at least 1 (MiB), got {v}",
    "formats": _formats,
    "report_mode": mode_problem,
    "compare_to": lambda v: (
        None if v in ("previous", "baseline") else f"choose previous or baseline, got {v!r}"
    ),
    "probe_timeout": _positive,
    "probe_deadline": _positive,
    "probe_zones": lambda v: (
        "name at least one zone (e.g. scanner,office)" if v is not None and not v else None
    ),
    "shard_size": lambda v: None if v >= 1 else "must be at least 1",
    "run_deadline": lambda v: None if v is None else _positive(v),
}


def parse_formats(text: str, field: str = "--format") -> tuple[str, ...]:
    """``"html, CSV"`` → ``("html", "csv")``; ConfigError on an unknown one."""
    wanted = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    problem = _formats(wanted)
    if problem:
        raise ConfigError(problem if wanted else f"no report format in {text!r}", field=field)
    return wanted


def parse_severity(text: str, field: str = "--fail-on") -> Severity:
    try:
        return Severity.parse(text)
    except ValueError as exc:
        raise ConfigError(str(exc), field=field) from None


def parse_zones(text: str) -> tuple[str, ...]:
    """``"scanner, office"`` → ``("scanner", "office")`` (checked against the policy later)."""
    return tuple(dict.fromkeys(z.strip() for z in text.split(",") if z.strip()))
