"""The policies shipped with fleetscan, and ``-p NAME`` for them.

They are the files of the top-level ``policies/`` folder, read as resources of
the installed package (see :mod:`fleetscan.resources`), so a checkout and a
wheel find the same files the same way.

``-p`` takes a file or a built-in name. A value that names an existing file,
or holds a path separator or a ``.yaml``/``.yml`` suffix, is a file; a bare
name (``baseline``) is a built-in policy (``./baseline`` forces a file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fleetscan.errors import ConfigError
from fleetscan.resources import POLICIES, resource, resource_path

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class BuiltinPolicy:
    """A shipped policy: its name (``-p NAME``), file, description and rule ids."""

    name: str
    path: Path
    description: str
    rule_ids: tuple[str, ...]


def builtin_policy_names() -> tuple[str, ...]:
    """Names of the shipped policies (``baseline``, ``demo``, …)."""
    folder = resource(POLICIES)
    return tuple(
        sorted(
            item.name.removesuffix(".yaml")
            for item in folder.iterdir()
            if item.is_file() and item.name.endswith(".yaml")
        )
    )


def builtin_policy_path(name: str) -> Path:
    """Path of the shipped ``policies/<name>.yaml`` (``name`` with or without
    ``.yaml``). Raises ConfigError naming the available policies."""
    stem = name.removesuffix(".yaml")
    if not _NAME_RE.match(stem):
        raise ConfigError(f"invalid built-in policy name {name!r}", field="policy")
    if stem not in builtin_policy_names():
        available = ", ".join(builtin_policy_names()) or "none found"
        raise ConfigError(f"no built-in policy {stem!r} (available: {available})", field="policy")
    return resource_path(POLICIES, f"{stem}.yaml")


def resolve_policy(value: str | Path) -> str | Path:
    """What ``-p value`` means: the file itself, or the built-in policy of that
    name (see the module docstring)."""
    text = str(value)
    if Path(text).exists() or "/" in text or "\\" in text or text.endswith(_SUFFIXES):
        if not Path(text).exists() and Path(text).stem in builtin_policy_names():
            stem = Path(text).stem
            raise ConfigError(
                f"file not found (the built-in policy of that name is -p {stem})",
                file=text,
                field="--policy",
            )
        return value
    if _NAME_RE.match(text) and text in builtin_policy_names():
        return builtin_policy_path(text)
    available = ", ".join(builtin_policy_names())
    raise ConfigError(
        f"neither a policy file nor a built-in policy (built-in: {available})",
        file=text,
        field="--policy",
    )


@cache
def builtin_policies() -> tuple[BuiltinPolicy, ...]:
    """Every shipped policy with its description and rule ids (``policy list``)."""
    from fleetscan.configfile import read_config_text
    from fleetscan.policy.loader import parse_policy_text

    found = []
    for name in builtin_policy_names():
        path = builtin_policy_path(name)
        parsed = parse_policy_text(read_config_text(path), str(path))
        rules = (*parsed.forbidden, *parsed.bind, *parsed.owner)
        found.append(
            BuiltinPolicy(
                name=name,
                path=path,
                description=" ".join((parsed.description or "").split()),
                rule_ids=tuple(r.id for r in rules),
            )
        )
    return tuple(found)


def builtin_defining(rule_id: str, loaded: tuple[str, ...]) -> str | None:
    """The built-in policy (not among the ``loaded`` files) that defines ``rule_id``."""
    loaded_paths = {Path(f).resolve() for f in loaded}
    for policy in builtin_policies():
        if rule_id in policy.rule_ids and policy.path.resolve() not in loaded_paths:
            return policy.name
    return None
