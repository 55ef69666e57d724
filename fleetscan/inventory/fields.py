"""The one table of inventory fields: which variable sets which Target attribute.

Every reader (Ansible INI/YAML/JSON through :mod:`.ansible_graph`, Nornir
through :mod:`.nornir`) resolves a host's variables into a Target with
:func:`resolve_fields` and :func:`make_target`, driven by :data:`FIELDS`.
Adding a field is one row here.

A row names, per format, the places a value may come from, first match wins:

* Ansible: variable names (``ansible_host``, ``fleetscan_key_files`` …);
* Nornir: ``attr:NAME`` (a host attribute, looked up through the plugin's
  connection options first), ``extras:KEY`` (``connection_options.*.extras``)
  and ``data:KEY`` (the host's ``data``).

A source may carry its own parser (``ansible_connection`` is read for the
transport, ``ansible_ssh_common_args`` for a ProxyJump); a parser returning
None means "not set here", and the next source is tried. Every value is
validated where it was written, so an error names that file, line and field.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fleetscan.inventory.values import (
    check_address,
    check_jump,
    check_text,
    check_user,
    fail,
    normalise_platform,
    parse_become_method,
    parse_bool,
    parse_key_files,
    parse_port,
    parse_site,
    parse_transport,
)
from fleetscan.model import Origin, Target
from fleetscan.transports.local import is_this_machine

Parse = Callable[[Any, Origin, str], Any]
#: a source: a key, or (key, parser) when the key is read differently
Source = str | tuple[str, Parse]
#: what a reader's lookup finds for a key: (value, origin, field name for errors)
Found = tuple[Any, Origin, str]
Lookup = Callable[[str], Found | None]


@dataclass(frozen=True)
class Field:
    """One Target attribute and where each format may set it."""

    attr: str
    parse: Parse
    ansible: tuple[Source, ...]
    nornir: tuple[Source, ...]
    only_if: str | None = None  # read only when this (boolean) attribute is true


@dataclass(frozen=True)
class Resolved:
    value: Any
    origin: Origin
    field: str


def _ansible_connection(value: Any, origin: Origin, field: str) -> str | None:
    """``ansible_connection``: ``local`` and ``paramiko`` choose a transport;
    ``ssh``, ``smart`` and others leave the default."""
    conn = check_text(value, origin, field).strip().lower()
    if conn == "paramiko_ssh":
        return "paramiko"
    return conn if conn in ("local", "paramiko") else None


def _windows_if(*values: str) -> Parse:
    def parse(value: Any, origin: Origin, field: str) -> str | None:
        return "windows" if str(value).strip().lower() in values else None

    return parse


@lru_cache(maxsize=256)
def jump_from_ssh_args(text: str) -> str | None:
    """The bastion in ``ansible_ssh_common_args``: ``-J x``, ``-o ProxyJump=x`` or
    ``-o ProxyCommand="ssh -W %h:%p [-q] x"`` (the classic pre-ProxyJump form).
    Cached: a group's args are usually the same text for each of its hosts."""
    try:
        words = shlex.split(text)
    except ValueError:
        return None
    i = 0
    while i < len(words):
        w = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else None
        if w == "-J" and nxt:
            return nxt
        if w.startswith("-J") and len(w) > 2:
            return w[2:]
        opt = None
        if w == "-o" and nxt:
            opt, i = nxt, i + 1
        elif w.startswith("-o") and len(w) > 2:
            opt = w[2:]
        if opt is not None:
            key, _, value = opt.replace("=", " ", 1).partition(" ")
            value = value.strip()
            if key.lower() == "proxyjump" and value and value.lower() != "none":
                return value
            if key.lower() == "proxycommand" and value:
                return _jump_from_proxycommand(value)
        i += 1
    return None


def _jump_from_proxycommand(command: str) -> str | None:
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if not words or words[0].rsplit("/", 1)[-1] != "ssh" or "-W" not in words:
        return None
    # the destination is the last word that is not an option or an option's value
    takes_value = set("BbcDEeFIiJLlmOopQRSWw")
    dest = None
    i = 1
    while i < len(words):
        w = words[i]
        if w.startswith("-") and len(w) > 1:
            if w[-1] in takes_value and len(w) == 2:
                i += 1
        else:
            dest = w
        i += 1
    return dest


def _jump_in_ssh_args(value: Any, origin: Origin, field: str) -> str | None:
    jump = jump_from_ssh_args(check_text(value, origin, field, allow_empty=True))
    return check_jump(jump, origin, field) if jump else None


def _text(value: Any, origin: Origin, field: str) -> str:
    return check_text(value, origin, field)


_KEY_EXTRAS = (
    "extras:key_files",
    "extras:key_file",
    "extras:key_filename",
    "extras:client_keys",
    "extras:ssh_private_key_file",
    "extras:private_key_file",
)

#: the table; order matters only for ``only_if`` (the condition is resolved first)
FIELDS: tuple[Field, ...] = (
    Field(
        "transport",
        parse_transport,
        ansible=("fleetscan_transport", ("ansible_connection", _ansible_connection)),
        nornir=("extras:transport", "data:fleetscan_transport"),
    ),
    Field(
        "address",
        check_address,
        ansible=("ansible_host", "ansible_ssh_host"),
        nornir=("attr:hostname",),
    ),
    Field(
        "port",
        parse_port,
        ansible=("ansible_port", "ansible_ssh_port"),
        nornir=("attr:port",),
    ),
    Field(
        "user",
        check_user,
        ansible=("ansible_user", "ansible_ssh_user", "ansible_ssh_user_name"),
        nornir=("attr:username",),
    ),
    Field(
        "platform",
        normalise_platform,
        ansible=(
            "fleetscan_platform",
            ("ansible_connection", _windows_if("winrm", "psrp")),
            ("ansible_shell_type", _windows_if("cmd", "powershell")),
            "ansible_system",
            "ansible_os_family",
            "ansible_network_os",
        ),
        nornir=("data:fleetscan_platform", "attr:platform"),
    ),
    Field(
        "become",
        parse_bool,
        ansible=("fleetscan_become", "ansible_become", "ansible_sudo"),
        nornir=("extras:become", "data:fleetscan_become"),
    ),
    Field(
        "become_method",
        parse_become_method,
        ansible=("ansible_become_method",),
        nornir=("extras:become_method",),
        only_if="become",
    ),
    Field(
        "key_files",
        parse_key_files,
        ansible=(
            "fleetscan_key_files",
            "ansible_ssh_private_key_file",
            "ansible_private_key_file",
        ),
        nornir=(*_KEY_EXTRAS, "data:fleetscan_key_files"),
    ),
    Field(
        "jump_host",
        check_jump,
        ansible=(
            "fleetscan_jump_host",
            ("ansible_ssh_common_args", _jump_in_ssh_args),
            ("ansible_ssh_extra_args", _jump_in_ssh_args),
        ),
        nornir=(
            "extras:jump_host",
            "extras:tunnel",
            "extras:proxy_jump",
            "data:fleetscan_jump_host",
        ),
    ),
    Field(
        "known_hosts",
        _text,
        ansible=("fleetscan_known_hosts",),
        nornir=("extras:known_hosts", "data:fleetscan_known_hosts"),
    ),
    Field(
        "password_env",
        _text,
        ansible=("fleetscan_password_env",),
        nornir=("extras:password_env", "data:fleetscan_password_env"),
    ),
    Field(
        "passphrase_env",
        _text,
        ansible=("fleetscan_key_passphrase_env",),
        nornir=("extras:key_passphrase_env", "data:fleetscan_key_passphrase_env"),
    ),
    Field("site", parse_site, ansible=("fleetscan_site",), nornir=("data:fleetscan_site",)),
)


def resolve_fields(fmt: str, lookup: Lookup) -> dict[str, Resolved]:
    """Every field of :data:`FIELDS` that ``lookup`` finds a value for (``fmt``:
    ``ansible`` or ``nornir``), parsed and validated."""
    out: dict[str, Resolved] = {}
    for spec in FIELDS:
        if spec.only_if and not (spec.only_if in out and out[spec.only_if].value):
            continue
        sources: tuple[Source, ...] = getattr(spec, fmt)
        for source in sources:
            key, parse = (source, spec.parse) if isinstance(source, str) else source
            found = lookup(key)
            if found is None:
                continue
            value, origin, field_name = found
            parsed = parse(value, origin, field_name)
            if parsed is not None:
                out[spec.attr] = Resolved(parsed, origin, field_name)
                break
    return out


def make_target(
    *,
    name: str,
    fields: Mapping[str, Resolved],
    groups: tuple[str, ...],
    variables: Mapping[str, Any],
    source: Origin,
    default_user: str | None,
) -> Target:
    """A Target from resolved fields; checks that need several fields at once."""
    values = {k: r.value for k, r in fields.items()}
    values.setdefault("address", name)
    if values.get("user") is None and default_user is not None:
        values["user"] = default_user
    if "address" not in fields:
        check_address(name, source, "host")  # the name is the address
    transport = fields.get("transport")
    if (
        transport is not None
        and transport.value == "local"
        and not is_this_machine(values["address"])
    ):
        raise fail(
            transport.origin,
            transport.field,
            f"host {name!r}: the local transport scans only this machine, and "
            f"{values['address']!r} is not this machine (localhost, a loopback address "
            "or this host's name)",
        )
    return Target(name=name, groups=groups, vars=dict(variables), source=source, **values)
