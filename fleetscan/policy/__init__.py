"""Security policy: the YAML policy language, its loader, and the pure engine.

The CLI uses exactly this API::

    policy = load_policies(["policies/baseline.yaml", "site.yaml"])  # ConfigError on any problem
    findings = evaluate(policy, scans, now=datetime.now(UTC))
    builtin_policy_path("baseline")  # the shipped policies/baseline.yaml
"""

from __future__ import annotations

import re
from pathlib import Path

import fleetscan
from fleetscan.errors import ConfigError
from fleetscan.policy.engine import evaluate
from fleetscan.policy.loader import load_policies, parse_policy_text
from fleetscan.policy.schema import (
    SCAN_INCOMPLETE,
    UNDOCUMENTED,
    WAIVER_EXPIRED,
    Policy,
    PolicyFile,
)

__all__ = [
    "SCAN_INCOMPLETE",
    "UNDOCUMENTED",
    "WAIVER_EXPIRED",
    "Policy",
    "PolicyFile",
    "builtin_policy_names",
    "builtin_policy_path",
    "evaluate",
    "load_policies",
    "parse_policy_text",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def _policy_dirs() -> tuple[Path, ...]:
    pkg = Path(fleetscan.__file__).resolve().parent
    # installed wheel: pyproject force-includes policies/ as fleetscan/_policies;
    # source checkout: <repo>/policies next to the package
    return (pkg / "_policies", pkg.parent / "policies")


def builtin_policy_names() -> tuple[str, ...]:
    """Names of the shipped policies (``baseline``, ``demo``, …)."""
    names: set[str] = set()
    for d in _policy_dirs():
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.yaml"))
    return tuple(sorted(names))


def builtin_policy_path(name: str) -> Path:
    """Path of the shipped ``policies/<name>.yaml`` (``name`` with or without
    ``.yaml``). Raises ConfigError naming the available policies."""
    stem = name.removesuffix(".yaml")
    if not _NAME_RE.match(stem):
        raise ConfigError(f"invalid built-in policy name {name!r}", field="policy")
    for d in _policy_dirs():
        path = d / f"{stem}.yaml"
        if path.is_file():
            return path
    available = ", ".join(builtin_policy_names()) or "none found"
    raise ConfigError(f"no built-in policy {stem!r} (available: {available})", field="policy")
