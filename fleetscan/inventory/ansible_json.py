"""The JSON of ``ansible-inventory -i SRC --list`` (and of inventory scripts).

This is the bridge to every dynamic inventory (cloud plugins, NetBox,
scripts): let Ansible resolve the source, and hand fleetscan the result::

    ansible-inventory -i aws_ec2.yml --list > fleet.json
    ansible-inventory -i aws_ec2.yml --list | fleetscan scan -i - -p policy.yaml

The document is the one Ansible's script inventory protocol defines:

* ``_meta.hostvars``: host → its variables (``--list`` already merges
  group variables and ``group_vars/`` into them);
* every other key is a group: a mapping with ``hosts`` (a list of names),
  ``vars`` (present with ``--export``) and ``children`` (a list of group
  names), or, in old scripts, just the list of its hosts;
* ``all.children`` lists the top-level groups.

A host named only in ``_meta.hostvars`` is kept (in ``ungrouped``) rather
than silently dropped from an audit. Unknown group keys are errors, as in the
YAML reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleetscan.inventory.ansible_graph import AnsibleGraph
from fleetscan.inventory.ansible_yaml import group_name, kind_of
from fleetscan.inventory.values import Var, check_host_name
from fleetscan.model import Origin
from fleetscan.yamlsrc import PathKey, YamlDoc, suggest

GROUP_KEYS = ("hosts", "vars", "children")


def looks_like_ansible_json(data: Any) -> bool:
    """``_meta`` at the top, or ``all`` whose children are a list (``--list`` output)."""
    if not isinstance(data, Mapping):
        return False
    if "_meta" in data:
        return True
    top = data.get("all")
    return isinstance(top, Mapping) and isinstance(top.get("children"), list)


def parse_ansible_json(doc: YamlDoc, graph: AnsibleGraph) -> None:
    """Add the groups and hosts of one ``--list`` document to ``graph``."""
    data = doc.data
    if not isinstance(data, Mapping):
        raise doc.error((), f"expected a mapping of groups, got {kind_of(data)}")
    for key, body in data.items():
        if key != "_meta":
            _group(doc, graph, group_name(doc, key, (key,)), body, (key,))
    meta = data.get("_meta")
    if meta is None:
        return
    if not isinstance(meta, Mapping):
        raise doc.error(("_meta",), f"_meta must be a mapping, got {kind_of(meta)}")
    hostvars = meta.get("hostvars") or {}
    if not isinstance(hostvars, Mapping):
        raise doc.error(("_meta", "hostvars"), f"must be a mapping, got {kind_of(hostvars)}")
    for host, variables in hostvars.items():
        path: PathKey = ("_meta", "hostvars", host)
        origin = Origin(doc.file, doc.line_of(path))
        name = check_host_name(host, origin, "_meta.hostvars")
        if variables is not None and not isinstance(variables, Mapping):
            raise doc.error(path, f"variables of host {name!r} must be a mapping")
        found = {
            str(k): Var(v, Origin(doc.file, doc.line_of((*path, k))))
            for k, v in (variables or {}).items()
        }
        if name in graph.hosts:
            graph.hosts[name].vars.update(found)
        else:
            graph.add_host(name, "ungrouped", origin, found)


def _group(doc: YamlDoc, graph: AnsibleGraph, name: str, body: Any, path: PathKey) -> None:
    origin = Origin(doc.file, doc.line_of(path))
    group = graph.group(name, origin)
    if body is None:
        return
    if isinstance(body, list):  # old scripts: "group": ["host1", "host2"]
        body = {"hosts": body}
    if not isinstance(body, Mapping):
        raise doc.error(path, f"group {name!r} must be a mapping or a list, got {kind_of(body)}")
    for key in body:
        if key not in GROUP_KEYS:
            raise doc.error(
                (*path, key),
                f"unknown key {key!r} in group {name!r}{suggest(str(key), GROUP_KEYS)}",
            )
    variables = body.get("vars") or {}
    if not isinstance(variables, Mapping):
        raise doc.error((*path, "vars"), f"vars of group {name!r} must be a mapping")
    for k, v in variables.items():
        group.vars[str(k)] = Var(v, Origin(doc.file, doc.line_of((*path, "vars", k))))
    for section in ("hosts", "children"):
        items = body.get(section) or []
        if not isinstance(items, list):
            raise doc.error(
                (*path, section), f"{section} of group {name!r} must be a list of names"
            )
        for i, item in enumerate(items):
            ipath = (*path, section, i)
            iorigin = Origin(doc.file, doc.line_of(ipath))
            if section == "children":
                graph.add_child(name, group_name(doc, item, ipath), iorigin)
            else:
                host = check_host_name(item, iorigin, f"{name}.hosts[{i}]")
                graph.add_host(host, name, iorigin, {})
