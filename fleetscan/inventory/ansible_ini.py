"""Ansible INI inventories, read as Ansible reads them.

Follows ``lib/ansible/plugins/inventory/ini.py``:

* lines before any section are hosts of ``ungrouped``;
* ``[group]`` lists hosts (``name [key=value …]``, values may be quoted and
  are read like Python literals: ``ansible_port=2222`` is a number,
  ``x="a b"`` a string with a space); ``[group:vars]`` one ``key=value`` per
  line; ``[group:children]`` one group name per line;
* a group named in ``:children`` or ``:vars`` must be declared somewhere as
  ``[name]`` or ``[name:children]`` (Ansible refuses the file otherwise);
* ``#`` and ``;`` start comment lines; ``#`` also ends a host line;
* host ranges and the ``host:port`` shorthand (see :mod:`.ranges`).

Line numbers are tracked for every host, group and variable so that errors
(and :attr:`Target.source`) point at the line that defined them.
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from typing import Any

from fleetscan.inventory.ansible_graph import AnsibleGraph
from fleetscan.inventory.ranges import RangeError, expand_host_pattern
from fleetscan.inventory.values import Var, check_host_name, fail
from fleetscan.model import Origin

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:[#;].*)?$")
_VAR_NAME = re.compile(r"^[^\s=]+$")
_INLINE_COMMENT = re.compile(r"\s+[#;].*$")
#: what makes shlex.split (POSIX, comments) differ from splitting on its whitespace
_SHLEX_SPECIAL = re.compile(r"[\"'\\#]")
_SHLEX_SPACE = re.compile(r"[ \t\r\n]+")


def parse_value(text: str) -> Any:
    """Ansible's reading of an INI value: a Python literal if it is one, else the text."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    return _plain(value)


def _plain(value: Any) -> Any:
    """Keep only YAML-like types: literal_eval can also give bytes, complex, sets, ``...``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def parse_ini(file: str, text: str, graph: AnsibleGraph) -> None:
    """Add the groups and hosts of one INI inventory file to ``graph``."""
    groupname = "ungrouped"
    state = "hosts"
    # groups used in [x:children] / [x:vars] before (or without) being declared
    pending: dict[str, tuple[Origin, str]] = {}
    declared: set[str] = {"all", "ungrouped"}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        origin = Origin(file, lineno)
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        m = _SECTION.match(line)
        if m:
            groupname, kind = m.group(1), m.group(2) or "hosts"
            if kind not in ("hosts", "children", "vars"):
                raise fail(
                    origin,
                    f"[{groupname}:{kind}]",
                    f"section has unknown type {kind!r} (one of: children, vars)",
                )
            state = kind
            graph.group(groupname, origin)
            if kind == "vars":
                if groupname not in declared:
                    pending.setdefault(groupname, (origin, f"[{groupname}:vars]"))
            else:
                declared.add(groupname)
                pending.pop(groupname, None)
            continue
        if line.startswith("[") and line.endswith("]"):
            raise fail(
                origin,
                "section",
                f"invalid section header {line[:60]!r}: no spaces allowed, "
                "form is [group], [group:vars] or [group:children]",
            )
        if state == "hosts":
            _host_line(line, origin, groupname, graph)
        elif state == "vars":
            key, value = _var_line(line, origin, groupname)
            graph.group(groupname, origin).vars[key] = Var(value, origin)
        else:
            gm = _GROUP_NAME.match(line)
            if not gm:
                raise fail(
                    origin, f"[{groupname}:children]", f"expected a group name, got {line[:60]!r}"
                )
            child = gm.group(1)
            graph.add_child(groupname, child, origin)
            if child not in declared:
                pending.setdefault(child, (origin, f"[{groupname}:children]"))
    for name, (origin, where) in pending.items():
        raise fail(origin, where, f"group {name!r} is used but never declared as [{name}]")


def _split(line: str) -> list[str]:
    """``shlex.split(line, comments=True)``; a line with no quote, backslash or
    ``#`` (nearly every one) is split on shlex's whitespace directly."""
    if _SHLEX_SPECIAL.search(line) is None:
        return [t for t in _SHLEX_SPACE.split(line) if t]
    return shlex.split(line, comments=True)


def _host_line(line: str, origin: Origin, group: str, graph: AnsibleGraph) -> None:
    try:
        tokens = _split(line)
    except ValueError as exc:
        raise fail(origin, "host", f"cannot read host line: {exc}") from None
    if not tokens:
        return
    pattern = tokens[0]
    if pattern.strip() == "---":
        raise fail(origin, "host", "'---' starts a YAML document: is this a YAML inventory?")
    try:
        names, port = expand_host_pattern(pattern)
    except RangeError as exc:
        raise fail(origin, "host", str(exc)) from None
    variables: dict[str, Var] = {}
    if port is not None:
        variables["ansible_port"] = Var(port, origin)
    for token in tokens[1:]:
        key, eq, value = token.partition("=")
        if not eq or not key:
            # never quote the token: it may hold a password typed as key:value
            raise fail(
                origin,
                "host",
                f"expected key=value host variable after {pattern!r}, got {_describe_bad(token)}",
            )
        variables[key] = Var(parse_value(value), origin)
    for name in names:
        check_host_name(name, origin)
        graph.add_host(name, group, origin, variables)


def _describe_bad(text: str) -> str:
    """Name a malformed ``key=value`` without echoing a value (it may be a secret)."""
    head = re.split(r"[:\s]", text.strip(), maxsplit=1)[0][:40]
    if ":" in text and _VAR_NAME.match(head):
        return f"{head!r} followed by ':' (write {head}=...)"
    return "text that is not key=value"


def _var_line(line: str, origin: Origin, group: str) -> tuple[str, Any]:
    key, eq, value = line.partition("=")
    key, value = key.strip(), value.strip()
    if not eq or not key or not _VAR_NAME.match(key):
        raise fail(origin, f"[{group}:vars]", f"expected key=value, got {_describe_bad(line)}")
    if value[:1] not in ("'", '"'):
        # Ansible keeps '# comment' inside a :vars value; nobody means that
        value = _INLINE_COMMENT.sub("", value)
    return key, parse_value(value)
