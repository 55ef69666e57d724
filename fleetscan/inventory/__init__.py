"""Inventory loading: the files users already have, read unchanged, as Targets.

Four formats are read (see each module for the exact semantics):

* Ansible INI (:mod:`.ansible_ini`) — ``.ini`` or no extension;
* Ansible YAML (:mod:`.ansible_yaml`) — ``all:`` / groups with hosts, vars, children;
* the JSON of ``ansible-inventory --list`` (:mod:`.ansible_json`), from a file
  or from standard input (``-i -``): the bridge to every dynamic inventory;
* Nornir SimpleInventory (:mod:`.nornir`) — ``hosts.yaml`` (+ ``groups.yaml``,
  ``defaults.yaml`` beside it).

Every file is read through :func:`fleetscan.configfile.read_config_bytes`
(regular files only, size-bounded). An executable inventory script is run
only with ``allow_exec`` (``--allow-exec-inventory``), see :mod:`.script`.
Host names, addresses, users and jump hosts are validated as OpenSSH does
(:mod:`.values`) before any connection; :mod:`.fields` maps variables onto
:class:`~fleetscan.model.Target` attributes for every format.

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
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetscan.configfile import (
    check_config_file,
    decode_config,
    read_config_bytes,
    read_stream_bytes,
)
from fleetscan.errors import ConfigError
from fleetscan.inventory import limit as _limit
from fleetscan.inventory import script as _script
from fleetscan.inventory.ansible_graph import AnsibleGraph
from fleetscan.inventory.ansible_vars import load_adjacent_vars
from fleetscan.inventory.ansible_yaml import looks_like_ansible_yaml
from fleetscan.inventory.detect import IGNORED_EXTS, YAML_EXTS, detect, parse_ansible
from fleetscan.inventory.nornir import parse_nornir
from fleetscan.masking import env_secret_values, mask_value, redact
from fleetscan.model import Target
from fleetscan.yamlsrc import YamlDoc, load_yaml

STDIN = "-"

__all__ = ["Inventory", "format_inventory", "load_inventory"]


@dataclass(frozen=True)
class Inventory:
    """Every target of the given inventories, and where they came from."""

    targets: tuple[Target, ...]
    files: tuple[str, ...]
    digest: str  # sha256 of the files' bytes, in order
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def select(self, limit: str | None, *, check_files: bool = True) -> tuple[Target, ...]:
        """Targets matching an Ansible-style ``--limit`` (None: all). With
        ``check_files``, the private key files of the selected hosts must exist."""
        targets = _limit.select(self.targets, self.groups, limit)
        if check_files:
            check_key_files(targets)
        return targets


def check_key_files(targets: Sequence[Target]) -> None:
    """A private key named in the inventory must be a regular file: a typo is a
    config error for the whole run, not an 'unreachable' host found after
    connecting (and a FIFO would hang the SSH library). A known_hosts file the
    inventory names may be missing (no keys), but never a FIFO or a device."""
    checked: set[str] = set()  # a fleet names one key file for thousands of hosts
    for target in targets:
        for key in target.key_files:
            if key not in checked:
                _check_file(target, Path(key).expanduser(), "private key file", "key file")
                checked.add(key)
        if target.known_hosts and target.known_hosts not in checked:
            path = Path(target.known_hosts).expanduser()
            if path.exists():
                _check_file(target, path, "known_hosts file", "known_hosts")
            checked.add(target.known_hosts)


def _check_file(target: Target, path: Path, what: str, field_name: str) -> None:
    try:
        check_config_file(path)
    except ConfigError as exc:
        raise target_error(target, f"{what} {str(path)!r}: {exc.detail}", field_name) from None


def target_error(target: Target, message: str, field_name: str) -> ConfigError:
    """A config error about one host, pointing at where the inventory defined it."""
    src = target.source
    return ConfigError(
        f"host {target.name}: {message}",
        file=src.file if src else None,
        line=src.line if src else None,
        field=field_name,
    )


@dataclass
class _Unit:
    """One inventory (file or directory) as loaded."""

    targets: list[Target]
    groups: dict[str, tuple[str, ...]]
    files: list[str]
    blobs: dict[str, bytes] = field(default_factory=dict)  # content that cannot be re-read


@dataclass(frozen=True)
class _Options:
    default_user: str | None
    allow_exec: bool


def load_inventory(
    paths: Sequence[str | Path],
    *,
    default_user: str | None = None,
    allow_exec: bool = False,
) -> Inventory:
    """Load and merge inventories; ``default_user`` fills in hosts with no user.
    ``-`` reads standard input; ``allow_exec`` lets executable scripts run."""
    if not paths:
        raise ConfigError("no inventory given", field="--inventory")
    seen: set[Path] = set()
    explicit: list[Path] = []
    opts = _Options(default_user, allow_exec)
    for p in paths:
        path = Path(p)
        key = path if str(p) == STDIN else _key(path)
        if key not in seen:
            seen.add(key)
            explicit.append(path)
    companions = _explicit_companions(explicit)
    units: list[_Unit] = []
    for path in explicit:
        if path in companions.values():
            continue
        try:
            units.append(_load_path(path, companions, opts))
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
        doc = load_yaml(path)
    except ConfigError:
        return False
    return looks_like_ansible_yaml(doc.data)


def _read(path: Path) -> bytes:
    return read_config_bytes(path)


def _load_path(path: Path, companions: dict[str, Path], opts: _Options) -> _Unit:
    if str(path) == STDIN:
        if sys.stdin is None or sys.stdin.isatty():
            raise ConfigError(
                "standard input is a terminal: pipe the inventory in "
                "(ansible-inventory -i SRC --list | fleetscan ... -i -)",
                field="--inventory",
            )
        raw = read_stream_bytes(sys.stdin.buffer, "<stdin>")
        return _load_data(Path("<stdin>"), raw, None, companions, opts)
    if not path.exists():
        raise ConfigError("inventory not found", file=str(path))
    if path.is_dir():
        return _load_dir(path, opts)
    raw = _read(path)
    if _script.is_script(path, raw[:2]):
        if not opts.allow_exec:
            raise _script.refuse(path)
        output = _script.run_script(path)
        unit = _load_data(path, output, path.parent, companions, opts, kind="ansible-json")
        unit.blobs[str(path)] = raw + b"\0" + output  # the digest covers script and output
        return unit
    return _load_data(path, raw, path.parent, companions, opts)


def _load_data(
    path: Path,
    raw: bytes,
    basedir: Path | None,
    companions: dict[str, Path],
    opts: _Options,
    kind: str | None = None,
) -> _Unit:
    """One inventory's content; ``basedir`` holds its group_vars/host_vars (None: none)."""
    name = str(path)
    text = decode_config(raw, name)
    doc: YamlDoc | None
    if kind is None:
        kind, doc = detect(path, text)
    else:
        doc = load_yaml(name, text)
    if kind == "nornir":
        assert doc is not None
        if basedir is None:
            raise ConfigError("a Nornir inventory must be given as a file or folder", file=name)
        return _load_nornir(doc, basedir, companions, opts.default_user)
    graph = AnsibleGraph()
    parse_ansible(kind, name, text, doc, graph)
    unit = _ansible_unit(graph, [name], opts.default_user, basedir)
    if basedir is None:
        unit.blobs[name] = raw
    return unit


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
        docs[stem] = load_yaml(p)
        files.append(str(p))
    targets, groups = parse_nornir(
        hosts, docs["groups"], docs["defaults"], default_user=default_user
    )
    return _Unit(targets, dict(groups), files)


def _load_dir(folder: Path, opts: _Options) -> _Unit:
    hosts = _sibling(folder, "hosts")
    if hosts is not None:
        text = decode_config(_read(hosts), str(hosts))
        kind, doc = detect(hosts, text)
        if kind == "nornir":
            assert doc is not None
            return _load_nornir(doc, folder, {}, opts.default_user)
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise ConfigError(f"cannot list directory: {exc.strerror}", file=str(folder)) from None
    graph = AnsibleGraph()
    files: list[str] = []
    for p in entries:
        if p.name.startswith(".") or p.name.endswith("~") or p.is_dir():
            continue  # group_vars/, host_vars/ and hidden files are not inventories
        if p.suffix.lower() in IGNORED_EXTS:
            continue
        raw = _read(p)
        if _script.is_script(p, raw[:2]) or (
            os.access(p, os.X_OK) and p.suffix.lower() not in (".ini", *YAML_EXTS, "")
        ):
            raise ConfigError(
                "executable inventory script in an inventory folder: fleetscan runs a "
                "script only when it is given directly with --allow-exec-inventory, or "
                "export it: ansible-inventory -i SCRIPT --list > inventory.json",
                file=str(p),
            )
        text = decode_config(raw, str(p))
        kind, doc = detect(p, text)
        if kind == "nornir":
            raise ConfigError(
                "a Nornir hosts file must be named hosts.yaml (with groups.yaml and "
                "defaults.yaml beside it), or given directly",
                file=str(p),
            )
        parse_ansible(kind, str(p), text, doc, graph)
        files.append(str(p))
    if not files:
        raise ConfigError("no hosts: no inventory file in directory", file=str(folder))
    return _ansible_unit(graph, files, opts.default_user, folder)


def _ansible_unit(
    graph: AnsibleGraph, files: list[str], default_user: str | None, basedir: Path | None
) -> _Unit:
    adjacent = (
        load_adjacent_vars(basedir, [*graph.groups, "all", "ungrouped"], graph.hosts)
        if basedir is not None
        else None
    )
    targets = graph.targets(default_user=default_user, adjacent=adjacent)  # checks cycles first
    if not targets:
        raise ConfigError("no hosts: the inventory defines no host", file=files[0])
    more = adjacent.files if adjacent is not None else ()
    return _Unit(targets, dict(graph.members()), [*files, *more])


def _merge(units: list[_Unit]) -> Inventory:
    by_name: dict[str, Target] = {}
    groups: dict[str, dict[str, None]] = {}
    files: list[str] = []
    blobs: dict[str, bytes] = {}
    for unit in units:
        blobs.update(unit.blobs)
        for t in unit.targets:
            if t.name in by_name:
                raise ConfigError(
                    f"host {t.name!r} is defined twice: {by_name[t.name].source} and {t.source}",
                    file=t.source.file if t.source else None,
                    line=t.source.line if t.source else None,
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
        digest.update(blobs[f] if f in blobs else read_config_bytes(f))
    return Inventory(
        targets=tuple(by_name.values()),
        files=tuple(files),
        digest=digest.hexdigest(),
        groups={g: tuple(m) for g, m in groups.items()},
    )


def format_inventory(
    targets: Sequence[Target], environ: Mapping[str, str] | None = None
) -> list[dict[str, object]]:
    """Rows for ``fleetscan inventory show``: JSON-safe, secrets masked by name and
    inside values, and no value of a secret environment variable anywhere."""
    names = [n for t in targets for n in (t.password_env, t.passphrase_env) if n]
    secrets = env_secret_values(names, environ)
    rows: list[dict[str, object]] = []
    for t in targets:
        row: dict[str, Any] = {
            **t.identity(),
            "site": t.site,
            "become": t.become,
            "key_files": list(t.key_files),
            "jump_host": mask_value(t.jump_host),
            "known_hosts": t.known_hosts,
            "password_env": t.password_env,
            "key_passphrase_env": t.passphrase_env,
            "source": str(t.source) if t.source else None,
            "vars": t.public_vars(),
        }
        rows.append(redact(row, secrets))
    return rows
