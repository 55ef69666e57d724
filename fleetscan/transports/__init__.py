"""Transports: how fleetscan reaches a host and runs a command there.

Every transport implements :class:`~fleetscan.transports.base.Transport` and
maps its own exceptions onto :mod:`fleetscan.errors`. They are registered by
name and imported on first use, so an optional dependency (paramiko) is only
needed by whoever selects it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from fleetscan.errors import ConfigError
from fleetscan.transports.base import Transport

#: name → "module:attribute" of a zero-argument factory returning a Transport
REGISTRY: dict[str, str] = {
    "asyncssh": "fleetscan.transports.asyncssh_transport:AsyncSSHTransport",
    "paramiko": "fleetscan.transports.paramiko_transport:ParamikoTransport",
    "local": "fleetscan.transports.local:LocalTransport",
}


def _factory(name: str, field: str | None = None) -> Callable[[], Transport]:
    try:
        target = REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ConfigError(f"unknown transport {name!r} (one of: {known})", field=field) from None
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"transport {name!r} needs {exc.name!r}: pip install 'fleetscan[{name}]'",
            field=field,
        ) from None
    factory: Callable[[], Transport] = getattr(module, attr)
    return factory


def check_transport(name: str, *, field: str | None = None) -> None:
    """ConfigError unless ``name`` is a registered transport whose library is
    installed (checked before a run, so a typo is exit 2, not a failed fleet)."""
    _factory(name, field)


def get_transport(name: str) -> Transport:
    factory = _factory(name)
    transport: Transport = factory()
    return transport
