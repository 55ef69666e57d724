"""Ansible YAML inventories (``all:`` → ``hosts`` / ``vars`` / ``children``).

Follows ``lib/ansible/plugins/inventory/yaml.py``: every top-level key is a
group (usually just ``all``); a group maps to ``hosts`` (host pattern →
variables or nothing), ``vars`` and ``children`` (group → group, nested the
same way). A group named under several parents is one group. Host keys may
hold ranges and a ``:port`` like INI host lines.

Where Ansible only warns and skips (an unknown key in a group, a group that
is not a mapping), fleetscan refuses: a misspelt ``host:`` would otherwise
silently drop hosts from a compliance audit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleetscan.inventory.ansible_graph import AnsibleGraph
from fleetscan.inventory.ranges import RangeError, expand_host_pattern
from fleetscan.inventory.values import Var, check_host_name, show
from fleetscan.model import Origin
from fleetscan.yamlsrc import PathKey, YamlDoc, suggest

GROUP_KEYS = ("hosts", "vars", "children")


def looks_like_ansible_yaml(data: Any) -> bool:
    """True for ``all:`` or top-level groups made of hosts/vars/children."""
    if not isinstance(data, Mapping) or not data:
        return False
    if "all" in data or isinstance(data.get("plugin"), str):
        return True  # a dynamic-inventory config: detected so that it can be refused clearly
    votes = [
        bool(v) and all(k in GROUP_KEYS for k in v)
        for v in data.values()
        if isinstance(v, Mapping) and v
    ]
    return bool(votes) and all(votes)


def parse_yaml_inventory(doc: YamlDoc, graph: AnsibleGraph) -> None:
    """Add the groups and hosts of one Ansible YAML document to ``graph``."""
    data = doc.data
    if not isinstance(data, Mapping):
        raise doc.error((), f"expected a mapping of groups (e.g. 'all:'), got {kind_of(data)}")
    if "plugin" in data:
        raise doc.error(
            ("plugin",),
            "inventory plugin configurations (dynamic inventories) are not supported; "
            "export the inventory first: ansible-inventory -i SRC --list -y > hosts.yaml",
        )
    # each (group, data, path) is visited once per place it is written
    work: list[tuple[str, Any, PathKey]] = [
        (group_name(doc, k, (k,)), v, (k,)) for k, v in data.items()
    ]
    work.reverse()
    seen: set[tuple[str, int]] = set()  # YAML aliases can repeat (or loop) a body
    while work:
        name, body, path = work.pop()
        if (name, id(body)) in seen and body is not None:
            continue
        seen.add((name, id(body)))
        _origin = Origin(doc.file, doc.line_of(path))
        graph.group(name, _origin)
        if body is None:
            continue
        if not isinstance(body, Mapping):
            raise doc.error(
                path,
                f"group {name!r} must be a mapping of hosts/vars/children, got {kind_of(body)}",
            )
        for key in body:
            if key not in GROUP_KEYS:
                raise doc.error(
                    (*path, key),
                    f"unknown key {key!r} in group {name!r}{suggest(str(key), GROUP_KEYS)}; "
                    "a group has hosts, vars and children",
                )
        section_vars = body.get("vars")
        if section_vars is not None:
            vpath = (*path, "vars")
            if not isinstance(section_vars, Mapping):
                raise doc.error(vpath, f"vars of group {name!r} must be a mapping")
            group = graph.group(name, _origin)
            for k, v in section_vars.items():
                group.vars[str(k)] = Var(v, Origin(doc.file, doc.line_of((*vpath, k))))
        hosts = body.get("hosts")
        if hosts is not None:
            _hosts(doc, name, hosts, (*path, "hosts"), graph)
        children = body.get("children")
        if children is not None:
            cpath = (*path, "children")
            if not isinstance(children, Mapping):
                raise doc.error(
                    cpath,
                    f"children of group {name!r} must be a mapping of groups, got "
                    f"{kind_of(children)}",
                )
            for child_key, child_body in reversed(list(children.items())):
                child_path = (*cpath, child_key)
                child = group_name(doc, child_key, child_path)
                graph.add_child(name, child, Origin(doc.file, doc.line_of(child_path)))
                work.append((child, child_body, child_path))


def _hosts(doc: YamlDoc, group: str, hosts: Any, path: PathKey, graph: AnsibleGraph) -> None:
    if not isinstance(hosts, Mapping):
        raise doc.error(
            path,
            f"hosts of group {group!r} must be a mapping (host: vars), got {kind_of(hosts)}"
            + ("; write each host as 'name:' on its own line" if isinstance(hosts, list) else ""),
        )
    for pattern, host_vars in hosts.items():
        hpath = (*path, pattern)
        origin = Origin(doc.file, doc.line_of(hpath))
        if isinstance(pattern, bool) or not isinstance(pattern, str | int):
            raise doc.error(hpath, f"host name must be text, got {kind_of(pattern)}")
        try:
            names, port = expand_host_pattern(str(pattern))
        except RangeError as exc:
            raise doc.error(hpath, str(exc)) from None
        if host_vars is not None and not isinstance(host_vars, Mapping):
            raise doc.error(
                hpath,
                f"variables of host {pattern!r} must be a mapping, got {show('', host_vars)}",
            )
        variables: dict[str, Var] = {}
        if port is not None:
            variables["ansible_port"] = Var(port, origin)
        for k, v in (host_vars or {}).items():
            variables[str(k)] = Var(v, Origin(doc.file, doc.line_of((*hpath, k))))
        for name in names:
            check_host_name(name, origin, f"{'.'.join(map(str, path))}.{pattern}")
            graph.add_host(name, group, origin, variables)


def group_name(doc: YamlDoc, key: Any, path: PathKey) -> str:
    if isinstance(key, bool) or not isinstance(key, str | int) or not str(key).strip():
        raise doc.error(path, f"group name must be text, got {kind_of(key)}")
    name = str(key)
    if any(ch.isspace() or ord(ch) < 32 for ch in name) or ":" in name:
        raise doc.error(path, f"invalid group name {name!r} (no spaces, colons or control chars)")
    return name


def kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {show('', value)}"
