"""Nornir SimpleInventory: ``hosts.yaml`` + optional ``groups.yaml`` + ``defaults.yaml``.

Resolution follows nornir 3 (``nornir/core/inventory.py`` after PR #623):

* an attribute (hostname, port, username, password, platform) or a ``data``
  key is looked up on the host, then on its groups in order, depth-first with
  each group's own parents right after it (host → g1 → g1's parents → g2 …),
  and only then in ``defaults``;
* ``connection_options.<plugin>`` are resolved the same way field by field
  (``extras`` is taken whole from the first element that has it), and a field
  not set there falls back to the host's resolved attribute.

fleetscan reads the options of the first plugin that is set anywhere, in the
order ``fleetscan``, the target's transport, ``asyncssh``, ``paramiko``,
``netmiko``; their ``extras`` may carry ``key_files`` (or ``key_file``,
``key_filename``, ``client_keys``), ``known_hosts``, ``jump_host`` (or
``tunnel``, ``proxy_jump``), ``become``, ``password_env``, ``key_passphrase_env``
and ``transport``.

Unlike nornir, unknown keys are errors (with the nearest valid key), and
``groups`` naming a group that ``groups.yaml`` does not define is an error
instead of a KeyError at run time. An inline ``password`` is accepted but
discouraged: it is kept only in ``Target.vars['password']`` (masked by
``Target.public_vars``); prefer ``fleetscan_password_env`` in ``data``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fleetscan.errors import ConfigError
from fleetscan.inventory.fields import Found, make_target, resolve_fields
from fleetscan.inventory.values import Var, check_host_name, find_cycle, parse_transport
from fleetscan.model import Origin, Target
from fleetscan.yamlsrc import PathKey, YamlDoc, suggest

ATTRS = ("hostname", "port", "username", "password", "platform")
HOST_KEYS = (*ATTRS, "groups", "data", "connection_options")
DEFAULTS_KEYS = (*ATTRS, "data", "connection_options")
CONN_KEYS = (*ATTRS, "extras")
PLUGIN_ORDER = ("fleetscan", "asyncssh", "paramiko", "netmiko")


def looks_like_nornir_hosts(data: Any) -> bool:
    """A mapping of host names whose entries use nornir's host keys."""
    if not isinstance(data, Mapping) or not data:
        return False
    entries = [v for v in data.values() if isinstance(v, Mapping) and v]
    return any(any(k in HOST_KEYS for k in v) for v in entries)


@dataclass
class _Conn:
    attrs: dict[str, Var] = field(default_factory=dict)
    extras: Var | None = None


@dataclass
class _Element:
    """A host, a group or the defaults, as written."""

    name: str
    origin: Origin
    attrs: dict[str, Var] = field(default_factory=dict)
    groups: list[tuple[str, Origin]] = field(default_factory=list)
    data: dict[str, Var] = field(default_factory=dict)
    conn: dict[str, _Conn] = field(default_factory=dict)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _element(doc: YamlDoc, name: str, body: Any, path: PathKey, keys: tuple[str, ...]) -> _Element:
    el = _Element(name, Origin(doc.file, doc.line_of(path)))
    if body is None:
        return el
    if not isinstance(body, Mapping):
        raise doc.error(path, f"expected a mapping of {', '.join(keys)}, got {_kind(body)}")
    for key, value in body.items():
        kpath = (*path, key)
        origin = Origin(doc.file, doc.line_of(kpath))
        if key not in keys:
            hint = suggest(str(key), keys)
            if not hint and "groups" not in keys and key == "groups":
                hint = " (defaults cannot have groups)"
            extra = "" if hint else f"; valid keys: {', '.join(keys)}"
            raise doc.error(kpath, f"unknown key {key!r}{hint}{extra}")
        if value is None:
            continue
        if key in ATTRS:
            el.attrs[key] = Var(value, origin)
        elif key == "groups":
            if not isinstance(value, list):
                raise doc.error(kpath, f"groups must be a list of group names, got {_kind(value)}")
            for i, g in enumerate(value):
                gorigin = Origin(doc.file, doc.line_of((*kpath, i)))
                if isinstance(g, bool) or not isinstance(g, str | int) or not str(g):
                    raise doc.error((*kpath, i), f"group name must be text, got {_kind(g)}")
                el.groups.append((str(g), gorigin))
        elif key == "data":
            if not isinstance(value, Mapping):
                raise doc.error(kpath, f"data must be a mapping, got {_kind(value)}")
            for k, v in value.items():
                el.data[str(k)] = Var(v, Origin(doc.file, doc.line_of((*kpath, k))))
        else:
            el.conn = _connection_options(doc, value, kpath)
    return el


def _connection_options(doc: YamlDoc, value: Any, path: PathKey) -> dict[str, _Conn]:
    if not isinstance(value, Mapping):
        raise doc.error(
            path, f"connection_options must be a mapping of plugin names, got {_kind(value)}"
        )
    out: dict[str, _Conn] = {}
    for plugin, opts in value.items():
        ppath = (*path, plugin)
        conn = out[str(plugin)] = _Conn()
        if opts is None:
            continue
        if not isinstance(opts, Mapping):
            raise doc.error(
                ppath, f"options of plugin {plugin!r} must be a mapping, got {_kind(opts)}"
            )
        for key, v in opts.items():
            kpath = (*ppath, key)
            if key not in CONN_KEYS:
                raise doc.error(
                    kpath,
                    f"unknown key {key!r}{suggest(str(key), CONN_KEYS)}; "
                    f"valid keys: {', '.join(CONN_KEYS)}",
                )
            if v is None:
                continue
            origin = Origin(doc.file, doc.line_of(kpath))
            if key == "extras":
                if not isinstance(v, Mapping):
                    raise doc.error(kpath, f"extras must be a mapping, got {_kind(v)}")
                conn.extras = Var(v, origin)
            else:
                conn.attrs[key] = Var(v, origin)
    return out


@dataclass
class _Resolver:
    groups: dict[str, _Element]
    defaults: _Element

    def chain(self, el: _Element) -> list[_Element]:
        """el, then its groups depth-first (each group's parents after it), no repeats."""
        out: list[_Element] = [el]
        seen: set[str] = set()
        stack = [g for g, _ in reversed(el.groups)]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            grp = self.groups[name]
            out.append(grp)
            stack.extend(g for g, _ in reversed(grp.groups))
        out.append(self.defaults)
        return out

    def check_cycles(self) -> None:
        found = find_cycle(list(self.groups), lambda g: self.groups[g].groups)
        if found:
            path, origin = found
            raise ConfigError(
                f"cyclic group inheritance: {' -> '.join(path)}",
                file=origin.file,
                line=origin.line,
                field=f"{path[-2]}.groups",
            )


def _first_attr(chain: list[_Element], key: str) -> Var | None:
    for el in chain:
        if key in el.attrs:
            return el.attrs[key]
    return None


def _merged_data(chain: list[_Element]) -> dict[str, Var]:
    merged: dict[str, Var] = {}
    for el in chain:
        for k, v in el.data.items():
            merged.setdefault(k, v)
    return merged


def _conn_options(chain: list[_Element], plugin: str) -> _Conn | None:
    """nornir's _get_connection_options_recursively, flattened over the chain."""
    found = [el.conn[plugin] for el in chain if plugin in el.conn]
    if not found:
        return None
    out = _Conn()
    for c in found:
        for k, v in c.attrs.items():
            out.attrs.setdefault(k, v)
        if out.extras is None:
            out.extras = c.extras
    return out


def parse_nornir(
    hosts: YamlDoc,
    groups: YamlDoc | None,
    defaults: YamlDoc | None,
    *,
    default_user: str | None,
) -> tuple[list[Target], dict[str, tuple[str, ...]]]:
    """Targets and group membership of one SimpleInventory."""
    if hosts.data is None or (isinstance(hosts.data, Mapping) and not hosts.data):
        raise ConfigError("no hosts: the hosts file is empty", file=hosts.file)
    if not isinstance(hosts.data, Mapping):
        raise hosts.error((), f"expected a mapping of host names, got {_kind(hosts.data)}")
    group_els: dict[str, _Element] = {}
    if groups is not None and groups.data is not None:
        if not isinstance(groups.data, Mapping):
            raise groups.error((), f"expected a mapping of group names, got {_kind(groups.data)}")
        for name, body in groups.data.items():
            gname = check_host_name(name, Origin(groups.file, groups.line_of((name,))), "group")
            group_els[gname] = _element(groups, gname, body, (name,), HOST_KEYS)
    defaults_el = _Element("defaults", Origin(defaults.file if defaults else hosts.file, None))
    if defaults is not None and defaults.data is not None:
        defaults_el = _element(defaults, "defaults", defaults.data, (), DEFAULTS_KEYS)

    # every group named must exist: nornir itself dies with a bare KeyError
    for el in group_els.values():
        for g, origin in el.groups:
            if g not in group_els:
                raise _undefined_group(g, origin, f"{el.name}.groups", group_els)
    resolver = _Resolver(group_els, defaults_el)
    resolver.check_cycles()

    targets = []
    for name, body in hosts.data.items():
        origin = Origin(hosts.file, hosts.line_of((name,)))
        hname = check_host_name(name, origin)
        el = _element(hosts, hname, body, (name,), HOST_KEYS)
        for g, gorigin in el.groups:
            if g not in group_els:
                raise _undefined_group(g, gorigin, f"{hname}.groups", group_els)
        chain = resolver.chain(el)
        targets.append(_target(el, chain, default_user))
    members: dict[str, list[str]] = {g: [] for g in group_els}
    for t in targets:
        for g in t.groups:
            members[g].append(t.name)
    return targets, {g: tuple(hs) for g, hs in members.items()}


def _undefined_group(
    name: str, origin: Origin, field_name: str, groups: dict[str, _Element]
) -> ConfigError:
    where = "groups.yaml defines no groups" if not groups else "it is not in groups.yaml"
    return ConfigError(
        f"group {name!r} is not defined: {where}{suggest(name, groups)}",
        file=origin.file,
        line=origin.line,
        field=field_name,
    )


def _target(el: _Element, chain: list[_Element], default_user: str | None) -> Target:
    data = _merged_data(chain)
    transport = "asyncssh"
    if "fleetscan_transport" in data:
        v = data["fleetscan_transport"]
        transport = parse_transport(v.value, v.origin, "data.fleetscan_transport")

    # nornir resolves options per plugin; fleetscan then takes each field from
    # the first plugin (in priority order) that sets it
    plugins = [
        (name, c)
        for name in dict.fromkeys(("fleetscan", transport, *PLUGIN_ORDER))
        if (c := _conn_options(chain, name)) is not None
    ]

    def lookup(source: str) -> Found | None:
        kind, _, key = source.partition(":")
        if kind == "data":
            v = data.get(key)
            return (v.value, v.origin, f"data.{key}") if v is not None else None
        for name, c in plugins:
            if kind == "attr" and key in c.attrs:
                v = c.attrs[key]
                return v.value, v.origin, f"connection_options.{name}.{key}"
            if kind == "extras" and c.extras is not None and c.extras.value.get(key) is not None:
                return (
                    c.extras.value[key],
                    c.extras.origin,
                    f"connection_options.{name}.extras.{key}",
                )
        if kind == "attr" and (v := _first_attr(chain, key)) is not None:
            return v.value, v.origin, key
        return None

    variables = {k: v.value for k, v in data.items()}
    if found := lookup("attr:password"):
        # kept only where public_vars masks it; never in a printable field
        variables["password"] = found[0]
    return make_target(
        name=el.name,
        fields=resolve_fields("nornir", lookup),
        groups=tuple(c.name for c in chain[1:-1]),
        variables=variables,
        source=el.origin,
        default_user=default_user,
    )
