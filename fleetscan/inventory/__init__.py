"""Inventory loading: the files users already have, read unchanged, as Targets.

Three formats are read (see each module for the exact semantics):

* Ansible INI (:mod:`.ansible_ini`) — ``.ini`` or no extension;
* Ansible YAML (:mod:`.ansible_yaml`) — ``all:`` / groups with hosts, vars, children;
* Nornir SimpleInventory (:mod:`.nornir`) — ``hosts.yaml`` (+ ``groups.yaml``,
  ``defaults.yaml`` beside it).

The format is decided by content (the file name only breaks ties), so a
``hosts`` file without extension may be INI or YAML. A directory is a Nornir
inventory when it holds a Nornir ``hosts.yaml``; otherwise every inventory file
in it is read as one Ansible inventory (a host may appear in several of its
files, as Ansible allows). Separate paths are separate inventories: the same
host defined in two of them is an error naming both places.

Ansible's ``group_vars/`` and ``host_vars/`` (:mod:`.ansible_vars`) are read
next to an Ansible inventory file, or inside an Ansible inventory directory,
and take precedence over the inventory's inline variables as in Ansible. The
files read count in :attr:`Inventory.files` and :attr:`Inventory.digest`.
Each path's folders apply to that path's hosts only (Ansible applies every
source's folders to all hosts; fleetscan keeps separate paths separate).

Every problem is a :class:`~fleetscan.errors.ConfigError` naming file, line
and field — never a traceback. Inline passwords (``ansible_password``,
``ansible_ssh_pass``, nornir ``password``) are discouraged: they are kept only
in ``Target.vars`` under their own key, which ``Target.public_vars`` masks;
use ``fleetscan_password_env`` (the *name* of an environment variable) instead.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetscan.errors import ConfigError
from fleetscan.inventory import limit as _limit
from fleetscan.inventory.ansible_graph import AnsibleGraph
from fleetscan.inventory.ansible_ini import parse_ini
from fleetscan.inventory.ansible_vars import load_adjacent_vars
from fleetscan.inventory.ansible_yaml import looks_like_ansible_yaml, parse_yaml_inventory
from fleetscan.inventory.fields import json_safe
from fleetscan.inventory.nornir import looks_like_nornir_hosts, parse_nornir
from fleetscan.model import Target
from fleetscan.yamlsrc import YamlDoc, load_yaml, read_text

__all__ = ["Inventory", "format_inventory", "load_inventory"]

_YAML_EXTS = (".yaml", ".yml", ".json")
# files an Ansible inventory directory may hold that are not inventories
# (Ansible's INVENTORY_IGNORE_EXTS, plus documentation)
_IGNORED_EXTS = (
    ".md",
    ".txt",
    ".rst",
    ".cfg",
    ".retry",
    ".orig",
    ".bak",
    ".swp",
    ".pyc",
    ".pyo",
    ".rpm",
    ".j2",
    ".example",
)


@dataclass(frozen=True)
class Inventory:
    """Every target of the given inventories, and where they came from."""

    targets: tuple[Target, ...]
    files: tuple[str, ...]
    digest: str  # sha256 of the files' bytes, in order
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def select(self, limit: str | None) -> tuple[Target, ...]:
        """Targets matching an Ansible-style ``--limit`` (None: all)."""
        return _limit.select(self.targets, self.groups, limit)


@dataclass
class _Unit:
    """One inventory (file or directory) as loaded."""

    targets: list[Target]
    groups: dict[str, tuple[str, ...]]
    files: list[str]


def load_inventory(paths: Sequence[str | Path], *, default_user: str | None = None) -> Inventory:
    """Load and merge inventories; ``default_user`` fills in hosts with no user."""
    if not paths:
        raise ConfigError("no inventory given", field="--inventory")
    seen: set[Path] = set()
    explicit: list[Path] = []
    for p in paths:
        path = Path(p)
        key = _key(path)
        if key not in seen:
            seen.add(key)
            explicit.append(path)
    companions = _explicit_companions(explicit)
    units: list[_Unit] = []
    for path in explicit:
        if path in companions.values():
            continue
        try:
            units.append(_load_path(path, companions, default_user))
        except RecursionError:
            raise ConfigError("inventory nested too deeply", file=str(path)) from None
    used = {f for unit in units for f in unit.files}
    for stem, path in companions.items():
        if str(path) not in used:
            raise ConfigError(
                f"Nornir {stem} file given without its hosts.yaml (pass hosts.yaml too, "
                "or the folder holding all three)",
                file=str(path),
            )
    return _merge(units)


def _key(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


def _explicit_companions(paths: list[Path]) -> dict[str, Path]:
    """``groups.yaml`` / ``defaults.yaml`` given next to a Nornir hosts file."""
    out: dict[str, Path] = {}
    for p in paths:
        nornir_name = p.suffix.lower() in (".yaml", ".yml") and p.stem in ("groups", "defaults")
        if nornir_name and p.is_file() and not _is_ansible_yaml_file(p):
            out[p.stem] = p
    return out


def _is_ansible_yaml_file(path: Path) -> bool:
    try:
        doc = load_yaml(path, read_text(path))
    except ConfigError:
        return False
    return looks_like_ansible_yaml(doc.data)


def _load_path(path: Path, companions: dict[str, Path], default_user: str | None) -> _Unit:
    if not path.exists():
        raise ConfigError("inventory not found", file=str(path))
    if path.is_dir():
        return _load_dir(path, default_user)
    text = read_text(path)
    kind, doc = _detect(path, text)
    if kind == "nornir":
        assert doc is not None
        return _load_nornir(doc, path.parent, companions, default_user)
    graph = AnsibleGraph()
    if kind == "ansible-yaml":
        assert doc is not None
        parse_yaml_inventory(doc, graph)
    else:
        parse_ini(str(path), text, graph)
    return _ansible_unit(graph, [str(path)], default_user, path.parent)


def _detect(path: Path, text: str) -> tuple[str, YamlDoc | None]:
    """``nornir``, ``ansible-yaml`` or ``ansible-ini``, by content first."""
    name = str(path)
    if not _has_content(text):
        raise ConfigError("no hosts: the inventory file is empty", file=name)
    ext = path.suffix.lower()
    if ext == ".ini":
        return "ansible-ini", None
    if ext in _YAML_EXTS:
        doc = load_yaml(path, text)
        if looks_like_ansible_yaml(doc.data):
            return "ansible-yaml", doc
        if isinstance(doc.data, Mapping):
            return "nornir", doc
        raise doc.error(
            (),
            "not an inventory: expected a mapping (Ansible 'all:' or Nornir host entries), "
            f"got {type(doc.data).__name__}",
        )
    first = next(
        (s.strip() for s in text.splitlines() if s.strip() and s.strip()[0] not in "#;"), ""
    )
    if first.startswith("[") and first.endswith("]"):
        return "ansible-ini", None
    try:
        doc = load_yaml(path, text)
    except ConfigError:
        return "ansible-ini", None
    if looks_like_ansible_yaml(doc.data):
        return "ansible-yaml", doc
    if looks_like_nornir_hosts(doc.data):
        return "nornir", doc
    return "ansible-ini", None


def _has_content(text: str) -> bool:
    """False for a file of blank lines, comments and YAML document markers only."""
    for raw in text.splitlines():
        s = raw.strip()
        if s and s not in ("---", "...") and s[0] not in "#;":
            return True
    return False


def _sibling(folder: Path, stem: str) -> Path | None:
    for ext in (".yaml", ".yml"):
        p = folder / f"{stem}{ext}"
        if p.is_file():
            return p
    return None


def _load_nornir(
    hosts: YamlDoc, folder: Path, companions: dict[str, Path], default_user: str | None
) -> _Unit:
    files = [hosts.file]
    docs: dict[str, YamlDoc | None] = {}
    for stem in ("groups", "defaults"):
        p = companions.get(stem) or _sibling(folder, stem)
        if p is None:
            docs[stem] = None
            continue
        docs[stem] = load_yaml(p, read_text(p))
        files.append(str(p))
    targets, groups = parse_nornir(
        hosts, docs["groups"], docs["defaults"], default_user=default_user
    )
    return _Unit(targets, dict(groups), files)


def _load_dir(folder: Path, default_user: str | None) -> _Unit:
    hosts = _sibling(folder, "hosts")
    if hosts is not None:
        text = read_text(hosts)
        kind, doc = _detect(hosts, text)
        if kind == "nornir":
            assert doc is not None
            return _load_nornir(doc, folder, {}, default_user)
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise ConfigError(f"cannot list directory: {exc.strerror}", file=str(folder)) from None
    graph = AnsibleGraph()
    files: list[str] = []
    for p in entries:
        if p.name.startswith(".") or p.name.endswith("~") or p.is_dir():
            continue  # group_vars/, host_vars/ and hidden files are not inventories
        if p.suffix.lower() in _IGNORED_EXTS:
            continue
        if os.access(p, os.X_OK) and p.suffix.lower() not in (".ini", *_YAML_EXTS, ""):
            raise ConfigError(
                "executable (dynamic) inventory scripts are not supported; export the "
                "inventory with: ansible-inventory -i SCRIPT --list -y > hosts.yaml",
                file=str(p),
            )
        text = read_text(p)
        kind, doc = _detect(p, text)
        if kind == "nornir":
            raise ConfigError(
                "a Nornir hosts file must be named hosts.yaml (with groups.yaml and "
                "defaults.yaml beside it), or given directly",
                file=str(p),
            )
        if kind == "ansible-yaml":
            assert doc is not None
            parse_yaml_inventory(doc, graph)
        else:
            parse_ini(str(p), text, graph)
        files.append(str(p))
    if not files:
        raise ConfigError("no hosts: no inventory file in directory", file=str(folder))
    return _ansible_unit(graph, files, default_user, folder)


def _ansible_unit(
    graph: AnsibleGraph, files: list[str], default_user: str | None, basedir: Path
) -> _Unit:
    adjacent = load_adjacent_vars(basedir, [*graph.groups, "all", "ungrouped"], graph.hosts)
    targets = graph.targets(default_user=default_user, adjacent=adjacent)  # checks cycles first
    if not targets:
        raise ConfigError("no hosts: the inventory defines no host", file=files[0])
    return _Unit(targets, dict(graph.members()), [*files, *adjacent.files])


def _merge(units: list[_Unit]) -> Inventory:
    by_name: dict[str, Target] = {}
    groups: dict[str, dict[str, None]] = {}
    files: list[str] = []
    for unit in units:
        for t in unit.targets:
            if t.name in by_name:
                raise ConfigError(
                    f"host {t.name!r} is defined twice: {by_name[t.name].source} and {t.source}",
                    file=t.source.rsplit(":", 1)[0],
                    line=_line(t.source),
                    field="host",
                )
            by_name[t.name] = t
        for g, members in unit.groups.items():
            groups.setdefault(g, {}).update(dict.fromkeys(members))
        files.extend(f for f in unit.files if f not in files)
    if not by_name:
        raise ConfigError("no hosts in the inventory", file=files[0] if files else None)
    digest = hashlib.sha256()
    for f in files:
        try:
            digest.update(Path(f).read_bytes())
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", file=f) from None
    return Inventory(
        targets=tuple(by_name.values()),
        files=tuple(files),
        digest=digest.hexdigest(),
        groups={g: tuple(m) for g, m in groups.items()},
    )


def _line(source: str) -> int | None:
    tail = source.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def format_inventory(targets: Sequence[Target]) -> list[dict[str, object]]:
    """Rows for ``fleetscan inventory show``: JSON-safe, secrets masked."""
    rows: list[dict[str, object]] = []
    for t in targets:
        public: Any = json_safe(t.public_vars(), mask=True)
        rows.append(
            {
                "name": t.name,
                "address": t.address,
                "port": t.port,
                "user": t.user,
                "platform": t.platform,
                "groups": list(t.groups),
                "transport": t.transport,
                "site": t.site,
                "become": t.become,
                "key_files": list(t.key_files),
                "jump_host": t.jump_host,
                "known_hosts": t.known_hosts,
                "password_env": t.password_env,
                "key_passphrase_env": t.passphrase_env,
                "source": t.source,
                "vars": public,
            }
        )
    return rows
