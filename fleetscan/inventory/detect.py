"""Which inventory format a file holds: decided by content, the name only breaks ties.

``nornir``, ``ansible-json`` (``ansible-inventory --list``), ``ansible-yaml``
or ``ansible-ini``; :func:`parse_ansible` then fills an :class:`AnsibleGraph`
with any of the three Ansible formats.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fleetscan.errors import ConfigError
from fleetscan.inventory.ansible_graph import AnsibleGraph
from fleetscan.inventory.ansible_ini import parse_ini
from fleetscan.inventory.ansible_json import looks_like_ansible_json, parse_ansible_json
from fleetscan.inventory.ansible_yaml import looks_like_ansible_yaml, parse_yaml_inventory
from fleetscan.inventory.nornir import looks_like_nornir_hosts
from fleetscan.yamlsrc import YamlDoc, load_yaml

YAML_EXTS = (".yaml", ".yml", ".json")
# files an Ansible inventory directory may hold that are not inventories
# (Ansible's INVENTORY_IGNORE_EXTS, plus documentation)
IGNORED_EXTS = (
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


def parse_ansible(
    kind: str, name: str, text: str, doc: YamlDoc | None, graph: AnsibleGraph
) -> None:
    if kind == "ansible-ini":
        parse_ini(name, text, graph)
        return
    assert doc is not None
    if kind == "ansible-json":
        if not looks_like_ansible_json(doc.data):
            raise doc.error((), "not the JSON of 'ansible-inventory --list' (no _meta or all)")
        parse_ansible_json(doc, graph)
    else:
        parse_yaml_inventory(doc, graph)


def detect(path: Path, text: str) -> tuple[str, YamlDoc | None]:
    """``nornir``, ``ansible-json``, ``ansible-yaml`` or ``ansible-ini``, by content first."""
    name = str(path)
    if not has_content(text):
        raise ConfigError("no hosts: the inventory file is empty", file=name)
    ext = path.suffix.lower()
    if ext == ".ini":
        return "ansible-ini", None
    if ext in YAML_EXTS:
        doc = load_yaml(path, text)
        if looks_like_ansible_json(doc.data):
            return "ansible-json", doc
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
    if looks_like_ansible_json(doc.data):
        return "ansible-json", doc
    if looks_like_ansible_yaml(doc.data):
        return "ansible-yaml", doc
    if looks_like_nornir_hosts(doc.data):
        return "nornir", doc
    return "ansible-ini", None


def has_content(text: str) -> bool:
    """False for a file of blank lines, comments and YAML document markers only."""
    for raw in text.splitlines():
        s = raw.strip()
        if s and s not in ("---", "...") and s[0] not in "#;":
            return True
    return False
