"""Defaults for ``fleetscan scan`` from a config file and the environment.

Where a value comes from, highest first::

    command line  >  FLEETSCAN_<KEY> environment variable
                  >  ./fleetscan.toml  >  ~/.config/fleetscan/config.toml  >  built-in

The files are TOML (read with the standard library's :mod:`tomllib`); scan
defaults live in a ``[scan]`` table whose keys are the long option names with
``_`` (``fail_on = "critical"``, ``host_timeout = 60``, ``policy =
["policies/baseline.yaml"]``). Relative paths in a file are relative to that
file. A bad value — unknown key, wrong type, out of range — is a
:class:`~fleetscan.errors.ConfigError` (exit 2) naming the file (or the
variable) and the key. ``fleetscan config show`` prints every effective value
and where it came from.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fleetscan.errors import ConfigError
from fleetscan.model import Severity
from fleetscan.options import CHECKS, RunOptions, parse_formats, parse_severity
from fleetscan.reports import FORMATS
from fleetscan.reports.files import parse_mode

PROJECT_FILE = "fleetscan.toml"
ENV_PREFIX = "FLEETSCAN_"
SECTION = "scan"


@dataclass(frozen=True)
class Setting:
    """One configurable scan option: its key, the RunOptions field it sets, its kind."""

    key: str
    field: str
    kind: str  # int | float | str | strs | path | paths | formats | severity | mode
    default: Any

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.key.upper()

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting("inventory", "inventory", "paths", ()),
    Setting("policy", "policies", "paths", ()),
    Setting("output", "output", "path", None),
    Setting("limit", "limit", "str", None),
    Setting("format", "formats", "formats", FORMATS),
    Setting("fail_on", "fail_on", "severity", Severity.HIGH),
    Setting("concurrency", "concurrency", "int", 50),
    Setting("connect_timeout", "connect_timeout", "float", 10.0),
    Setting("host_timeout", "host_timeout", "float", 120.0),
    Setting("max_output_mb", "max_output_mb", "int", 16),
    Setting("transport", "transport", "str", None),
    Setting("known_hosts", "known_hosts", "path", None),
    Setting("ssh_config", "ssh_config", "paths", None),
    Setting("report_mode", "report_mode", "mode", 0o600),
    # alerts and metrics (secrets only as names of environment variables)
    Setting("alert_on", "alert_on", "severity", Severity.HIGH),
    Setting("webhook", "webhooks", "strs", ()),
    Setting("webhook_format", "webhook_format", "str", "json"),
    Setting("webhook_token_env", "webhook_token_env", "str", None),
    Setting("smtp", "smtp", "str", None),
    Setting("smtp_security", "smtp_security", "str", "starttls"),
    Setting("smtp_user", "smtp_user", "str", None),
    Setting("smtp_password_env", "smtp_password_env", "str", None),
    Setting("mail_from", "mail_from", "str", None),
    Setting("mail_to", "mail_to", "strs", ()),
    Setting("report_url", "report_url", "str", None),
    Setting("metrics_file", "metrics_file", "path", None),
)
# not configurable on purpose: --no-host-key-check must be typed for each run
BY_KEY = {s.key: s for s in SETTINGS}


@dataclass(frozen=True)
class Value:
    """An effective value and where it came from (``default``, ``command line``,
    ``environment FLEETSCAN_X`` or a file path)."""

    value: Any
    source: str


def user_config_file(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")) / ".config")
    return Path(base).expanduser() / "fleetscan" / "config.toml"


def config_files(cwd: Path, environ: Mapping[str, str]) -> list[Path]:
    """The config files that exist, lowest precedence first."""
    return [p for p in (user_config_file(environ), cwd / PROJECT_FILE) if p.is_file()]


def _convert(setting: Setting, raw: Any, base: Path | None, where: str, name: str) -> Any:
    """``raw`` (TOML value or environment text) as the setting's type; ConfigError
    naming ``where`` (file or "environment") and ``name`` (key or variable)."""

    def bad(message: str) -> ConfigError:
        return ConfigError(message, file=where, field=name)

    def path(text: Any) -> Path:
        if not isinstance(text, str) or not text:
            raise bad(f"must be a path (a non-empty string), got {text!r}")
        p = Path(text).expanduser()
        return base / p if base is not None and not p.is_absolute() else p

    kind = setting.kind
    text = isinstance(raw, str)
    if kind == "int":
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise bad(f"must be an integer, got {raw!r}")
        try:
            value: Any = int(raw)
        except ValueError:
            raise bad(f"must be an integer, got {raw!r}") from None
    elif kind == "float":
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise bad(f"must be a number of seconds, got {raw!r}")
        try:
            value = float(raw)
        except ValueError:
            raise bad(f"must be a number of seconds, got {raw!r}") from None
    elif kind == "str":
        if not text:
            raise bad(f"must be a string, got {raw!r}")
        value = raw
    elif kind == "mode":
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise bad(f'must be an octal file mode such as "0600", got {raw!r}')
        value = _rename(lambda: parse_mode(str(raw)), where, name) if text else raw
    elif kind == "strs":
        # a TOML list, or one environment value with ',' or whitespace between items
        items = raw.replace(",", " ").split() if text else raw
        if not isinstance(items, list | tuple) or not all(isinstance(i, str) and i for i in items):
            raise bad(f"must be a list of strings, got {raw!r}")
        value = tuple(items)
    elif kind == "path":
        value = path(raw)
    elif kind == "paths":
        items = raw.split(os.pathsep) if text else raw
        if not isinstance(items, list):
            raise bad(f"must be a list of paths, got {raw!r}")
        value = tuple(path(item) for item in items if item != "")
    elif kind == "formats":
        items = raw if isinstance(raw, list) else raw if text else None
        if items is None or (
            isinstance(items, list) and not all(isinstance(i, str) for i in items)
        ):
            raise bad(f"must be a list of report formats, got {raw!r}")
        joined = ",".join(items) if isinstance(items, list) else items
        value = _rename(lambda: parse_formats(joined), where, name)
    else:  # severity
        if not text:
            raise bad(f"must be a severity name, got {raw!r}")
        value = _rename(lambda: parse_severity(raw), where, name)
    check = CHECKS.get(setting.field)
    problem = check(value) if check else None
    if problem:
        raise bad(problem)
    return value


def _rename(parse: Callable[[], Any], where: str, name: str) -> Any:
    try:
        return parse()
    except ConfigError as exc:
        raise ConfigError(exc.detail, file=where, field=name) from None


def _from_file(path: Path) -> dict[str, Value]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from None
    unknown_tables = [k for k in data if k != SECTION]
    if unknown_tables:
        raise ConfigError(
            f"unknown table or key {unknown_tables[0]!r} (scan defaults go in [{SECTION}])",
            file=str(path),
        )
    table = data.get(SECTION, {})
    if not isinstance(table, dict):
        raise ConfigError(f"[{SECTION}] must be a table", file=str(path))
    out: dict[str, Value] = {}
    for key, raw in table.items():
        setting = BY_KEY.get(key)
        name = f"{SECTION}.{key}"
        if setting is None:
            close = difflib.get_close_matches(key, BY_KEY, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown key{hint}", file=str(path), field=name)
        value = _convert(setting, raw, path.parent, str(path), name)
        out[key] = Value(value, str(path))
    return out


def load(cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> dict[str, Value]:
    """Every setting's effective default: environment over files over built-in."""
    env = os.environ if environ is None else environ
    here = Path.cwd() if cwd is None else cwd
    values = {s.key: Value(s.default, "default") for s in SETTINGS}
    for path in config_files(here, env):
        values.update(_from_file(path))
    for s in SETTINGS:
        if s.env in env:
            value = _convert(s, env[s.env], None, "environment", s.env)
            values[s.key] = Value(value, f"environment {s.env}")
    return values


def resolve(
    given: Mapping[str, Any],
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[RunOptions, dict[str, Value]]:
    """RunOptions from the values given on the command line (``key`` → value,
    only those the user typed; text for format and fail_on) over :func:`load`."""
    values = load(cwd, environ)
    for key, raw in given.items():
        kind = BY_KEY[key].kind
        if kind == "formats" and isinstance(raw, str):
            raw = parse_formats(raw)
        elif kind == "severity" and isinstance(raw, str):
            raw = parse_severity(raw)
        elif kind == "mode" and isinstance(raw, str):
            raw = parse_mode(raw)
        values[key] = Value(raw, "command line")
    fields = {BY_KEY[k].field: v.value for k, v in values.items()}
    options = RunOptions(inventory=(), policies=())
    return replace(options, **fields), values
