"""What the inventory may ask of the scanner's secrets and trust — and what it may not.

The inventory is data, often editable by many people through a merge
request; the operator's command line and config decide trust:

* A password or key passphrase is read only from an environment variable
  whose name starts with ``FLEETSCAN_`` or that the operator allowed
  (``--allow-secret-env NAME``). An inventory naming any other variable
  (``CI_DEPLOY_TOKEN``...) is a config error before any connection: it could
  otherwise send any secret of the scanner's environment to any host.
* A known_hosts file named in the inventory (``fleetscan_known_hosts``) is
  used only when the operator opts in (``--trust-inventory-known-hosts``,
  printed in every report); otherwise it is a config error, so an inventory
  can never widen host-key trust beyond the operator's files.

:func:`check_targets` runs before the first connection; the transports read
secrets through :func:`secret_from_env`, which enforces the same rule again for
callers of the Python API.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable

from fleetscan.errors import ConfigError
from fleetscan.model import Target

SECRET_ENV_PREFIX = "FLEETSCAN_"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def secret_env_allowed(name: str, allowed: Iterable[str]) -> bool:
    return name.startswith(SECRET_ENV_PREFIX) or name in set(allowed)


def check_env_names(names: Iterable[str], field: str) -> frozenset[str]:
    """Validate operator-given variable names (``--allow-secret-env``)."""
    out = set()
    for name in names:
        if not _ENV_NAME.match(name):
            raise ConfigError(f"not an environment variable name: {name!r}", field=field)
        out.add(name)
    return frozenset(out)


def secret_from_env(name: str | None, allowed: Iterable[str]) -> str | None:
    """The value of the secret variable ``name`` (None when unset); refuses a
    name the operator did not allow."""
    if not name:
        return None
    if not secret_env_allowed(name, allowed):
        raise ConfigError(_not_allowed(name))
    return os.environ.get(name)


def _not_allowed(name: str) -> str:
    return (
        f"secrets are read only from variables named {SECRET_ENV_PREFIX}* or allowed by the "
        f"operator (--allow-secret-env {name}); the inventory may not choose {name!r}"
    )


def _origin(target: Target) -> tuple[str | None, int | None]:
    file = getattr(target.source, "file", None)
    line = getattr(target.source, "line", None)
    if file is None:
        text = str(target.source)
        head, _, tail = text.rpartition(":")
        file, line = (head, int(tail)) if tail.isdigit() else (text or None, None)
    return file, line


def check_targets(
    targets: Iterable[Target], *, allowed_env: Iterable[str], trust_known_hosts: bool
) -> None:
    """The inventory's secret and trust choices, checked before any connection."""
    allowed = frozenset(allowed_env)
    for target in targets:
        file, line = _origin(target)
        for field, name in (
            ("fleetscan_password_env", target.password_env),
            ("fleetscan_key_passphrase_env", target.passphrase_env),
        ):
            if name and not secret_env_allowed(name, allowed):
                raise ConfigError(
                    f"host {target.name}: {_not_allowed(name)}", file=file, line=line, field=field
                )
        if target.known_hosts and not trust_known_hosts:
            raise ConfigError(
                f"host {target.name}: the inventory names a known_hosts file; host keys are "
                "trusted only from the operator's files unless the operator passes "
                "--trust-inventory-known-hosts",
                file=file,
                line=line,
                field="fleetscan_known_hosts",
            )


def check_seconds(value: float, field: str) -> float:
    """A timeout: a finite, positive number of seconds (``inf``/``nan`` refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"must be a number of seconds, got {value!r}", field=field)
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"must be a finite, positive number of seconds, got {value}", field=field)
    return float(value)
