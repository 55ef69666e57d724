"""Ansible's ``group_vars/`` and ``host_vars/`` beside an inventory.

Follows ``lib/ansible/plugins/vars/host_group_vars.py`` (the vars plugin that
reads them for every inventory source that is a path):

* the folders are looked up next to an inventory file, or inside an inventory
  directory;
* for a group or host ``NAME``: ``NAME`` itself if it exists (a file, or a
  directory whose files are all read, sorted by name, recursing into
  sub-directories without an extension), otherwise the first *file* of
  ``NAME.yml``, ``NAME.yaml``, ``NAME.json``;
* inside a directory only files without extension or with one of those three
  are read; hidden files (``.x``, so vim's ``.x.swp``) and backups (``x~``)
  are skipped;
* files for names the inventory does not define are ignored; an empty file
  contributes nothing; later files replace earlier keys (Ansible's default
  ``hash_behaviour=replace``).

Where Ansible warns and skips (``group_vars`` that is a file), fleetscan
refuses, like the inventory readers do. Vault-encrypted files and ``!vault``
values cannot be read without the vault password, which fleetscan never asks
for: they are errors that say what to do instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fleetscan.configfile import read_config_text
from fleetscan.errors import ConfigError
from fleetscan.inventory.values import Var, show
from fleetscan.model import Origin
from fleetscan.yamlsrc import PathKey, format_path, load_yaml

__all__ = ["AdjacentVars", "load_adjacent_vars", "load_vars_file"]

#: Ansible's default ``YAML_FILENAME_EXTENSIONS``
VARS_EXTS = (".yml", ".yaml", ".json")
#: sub-directories of a ``group_vars/NAME/`` folder deeper than this are refused
MAX_DIR_DEPTH = 32

_VAULT_HEADER = "$ANSIBLE_VAULT;"
_VAULT_ADVICE = (
    "fleetscan cannot decrypt Ansible Vault; export the inventory with its variables "
    "decrypted (ansible-inventory -i INVENTORY --list -y > hosts.yaml) or keep secrets "
    "out of the inventory (fleetscan_password_env names an environment variable)"
)


@dataclass(frozen=True)
class AdjacentVars:
    """Variables read from ``group_vars/`` and ``host_vars/``, per group / host name."""

    groups: Mapping[str, Mapping[str, Var]] = field(default_factory=dict)
    hosts: Mapping[str, Mapping[str, Var]] = field(default_factory=dict)
    files: tuple[str, ...] = ()  # every file read, in the order read


def load_adjacent_vars(basedir: Path, groups: Iterable[str], hosts: Iterable[str]) -> AdjacentVars:
    """Read ``basedir/group_vars`` for ``groups`` and ``basedir/host_vars`` for ``hosts``."""
    files: list[str] = []
    group_vars = _load_folder(basedir / "group_vars", groups, files)
    host_vars = _load_folder(basedir / "host_vars", hosts, files)
    return AdjacentVars(group_vars, host_vars, tuple(files))


def _load_folder(
    folder: Path, names: Iterable[str], files: list[str]
) -> dict[str, Mapping[str, Var]]:
    if not folder.exists():
        return {}
    if not folder.is_dir():
        raise ConfigError(
            f"{folder.name} must be a directory of variable files (NAME.yml per group/host)",
            file=str(folder),
        )
    try:
        # listed once: a 100k-host inventory must not cost 400k stat() calls
        entries = {e.name for e in os.scandir(folder)}
    except OSError as exc:
        raise ConfigError(f"cannot list directory: {exc.strerror}", file=str(folder)) from None
    out: dict[str, Mapping[str, Var]] = {}
    for name in dict.fromkeys(names):
        found = _find(folder, entries, name)
        if not found:
            continue
        merged: dict[str, Var] = {}
        for path in found:
            merged.update(load_vars_file(path))
            files.append(str(path))
        out[name] = merged
    return out


def _find(folder: Path, entries: set[str], name: str) -> list[Path]:
    """The files holding ``name``'s variables, in the order they are merged."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        # Ansible skips '/chroot/paths'; a name must never lead outside the folder
        return []
    if name in entries:
        path = folder / name
        if path.is_dir():
            return _dir_files(path, 0, set())
        return [path]  # a FIFO or device here is refused by the reader, not skipped
    for ext in VARS_EXTS:
        if name + ext in entries and not (folder / (name + ext)).is_dir():
            return [folder / (name + ext)]
    return []


def _dir_files(folder: Path, depth: int, seen: set[Path]) -> list[Path]:
    real = folder.resolve()
    if real in seen:  # a symlink back up the tree
        return []
    if depth > MAX_DIR_DEPTH:
        raise ConfigError(
            f"variables directory nested more than {MAX_DIR_DEPTH} levels", file=str(folder)
        )
    seen.add(real)
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise ConfigError(f"cannot list directory: {exc.strerror}", file=str(folder)) from None
    found: list[Path] = []
    for entry in names:
        if entry.startswith(".") or entry.endswith("~"):
            continue
        ext = os.path.splitext(entry)[1]
        path = folder / entry
        if path.is_dir() and not ext:
            found.extend(_dir_files(path, depth + 1, seen))
        elif not path.is_dir() and (not ext or ext in VARS_EXTS):
            found.append(path)
    return found


def load_vars_file(path: Path) -> dict[str, Var]:
    """One variables file as ``name → Var`` (empty file: nothing)."""
    name = str(path)
    text = read_config_text(path)
    if text.lstrip().startswith(_VAULT_HEADER):
        raise ConfigError(
            f"file is encrypted with Ansible Vault: {_VAULT_ADVICE}", file=name, line=1
        )
    try:
        doc = load_yaml(path, text)
    except ConfigError as exc:
        if "!vault" in exc.detail:
            raise _vault_value_error(name, text) or exc from None
        raise
    data = doc.data
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise doc.error((), f"a variables file must be a mapping of name: value, got {_kind(data)}")
    return {str(k): Var(v, Origin(name, doc.line_of((str(k),)))) for k, v in data.items()}


def _vault_value_error(file: str, text: str) -> ConfigError | None:
    """Name the field of the first ``!vault`` value (PyYAML only gives its line)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    stack: list[tuple[yaml.Node, PathKey]] = [(root, ())] if root is not None else []
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.tag == "!vault":
            return ConfigError(
                f"value is encrypted with Ansible Vault (!vault): {_VAULT_ADVICE}",
                file=file,
                line=node.start_mark.line + 1,
                field=format_path(path) or None,
            )
        if isinstance(node, yaml.MappingNode):
            for key, value in reversed(node.value):
                label = key.value if isinstance(key, yaml.ScalarNode) else str(key.tag)
                stack.append((value, (*path, label)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*path, i)) for i, item in reversed(list(enumerate(node.value))))
    return None


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {show('', value)}"
