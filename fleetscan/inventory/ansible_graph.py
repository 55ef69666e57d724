"""The Ansible inventory model shared by the INI and YAML readers.

Both formats describe the same thing: groups with variables, child groups and
hosts, under an implicit ``all``. The readers fill an :class:`AnsibleGraph`
(remembering where each definition was written); :meth:`AnsibleGraph.targets`
then resolves it the way Ansible does:

* every group without a parent is a child of ``all``; a host in no group but
  ``all`` is in ``ungrouped``; a host in some real group is not in ``ungrouped``;
* variable precedence: groups ordered by depth (``all`` = 0, a child is one
  deeper than its deepest parent), then ``ansible_group_priority``, then name;
  later (deeper) groups win, host variables win over all groups;
* files beside the inventory (:mod:`.ansible_vars`) come on top of the
  inventory's own variables, as in Ansible's variable precedence: inline group
  vars < ``group_vars/all`` < ``group_vars/<group>`` (same group order) <
  inline host vars < ``host_vars/<host>``. ``ansible_group_priority`` is read
  from the inventory only (Ansible needs it before it reads ``group_vars``);
* ``children`` must not form a cycle (Ansible would recurse forever).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field

from fleetscan.inventory.ansible_vars import AdjacentVars
from fleetscan.inventory.fields import (
    MAX_HOSTS,
    Origin,
    Var,
    check_address,
    check_text,
    check_user,
    fail,
    find_cycle,
    normalise_platform,
    parse_become_method,
    parse_bool,
    parse_key_files,
    parse_port,
    parse_site,
    parse_transport,
)
from fleetscan.model import Target


@dataclass
class GroupDef:
    name: str
    origin: Origin
    vars: dict[str, Var] = field(default_factory=dict)
    children: dict[str, Origin] = field(default_factory=dict)  # child → where it was listed
    parents: list[str] = field(default_factory=list)


@dataclass
class HostDef:
    name: str
    origin: Origin  # first definition
    vars: dict[str, Var] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)  # direct groups, in order of appearance


@dataclass
class AnsibleGraph:
    """Groups and hosts of one Ansible inventory (one file, or one directory)."""

    groups: dict[str, GroupDef] = field(default_factory=dict)
    hosts: dict[str, HostDef] = field(default_factory=dict)

    def group(self, name: str, origin: Origin) -> GroupDef:
        g = self.groups.get(name)
        if g is None:
            g = self.groups[name] = GroupDef(name, origin)
        return g

    def add_host(
        self,
        name: str,
        group: str,
        origin: Origin,
        variables: dict[str, Var],
    ) -> None:
        """Declare ``name`` in ``group``; a host listed again merges (vars: later wins)."""
        h = self.hosts.get(name)
        if h is None:
            if len(self.hosts) >= MAX_HOSTS:
                raise fail(origin, "host", f"more than {MAX_HOSTS} hosts in one inventory")
            h = self.hosts[name] = HostDef(name, origin)
        if group not in h.groups:
            h.groups.append(group)
        self.group(group, origin)
        h.vars.update(variables)

    def add_child(self, parent: str, child: str, origin: Origin) -> None:
        if parent == child:
            raise fail(origin, "children", f"group {parent!r} cannot be its own child")
        p = self.group(parent, origin)
        c = self.group(child, origin)
        if child not in p.children:
            p.children[child] = origin
            c.parents.append(parent)

    # ----- resolution -------------------------------------------------------------

    def _check_cycles(self) -> None:
        found = find_cycle(sorted(self.groups), lambda g: self.groups[g].children.items())
        if found:
            cycle, origin = found
            raise fail(origin, "children", "cyclic group children: " + " -> ".join(cycle))

    def _depths(self) -> dict[str, int]:
        """Longest distance from ``all`` (groups without parents hang off ``all``).

        Iterative so that a hostile, very deep chain of groups cannot blow the
        stack; the graph is acyclic (checked first).
        """
        depth: dict[str, int] = {"all": 0}
        for start in self.groups:
            stack = [start]
            while stack:
                name = stack[-1]
                if name in depth:
                    stack.pop()
                    continue
                parents = [p for p in self.groups[name].parents if p in self.groups] or ["all"]
                pending = [p for p in parents if p not in depth]
                if pending:
                    stack.extend(pending)
                    continue
                depth[name] = 1 + max(depth[p] for p in parents)
                stack.pop()
        return depth

    def _ancestors(self, direct: Iterable[str]) -> set[str]:
        seen: set[str] = set()
        stack = list(direct)
        while stack:
            g = stack.pop()
            if g in seen:
                continue
            seen.add(g)
            grp = self.groups.get(g)
            if grp is not None:
                stack.extend(grp.parents)
        return seen

    def members(self) -> dict[str, tuple[str, ...]]:
        """group → hosts in it, directly or through children (``all`` excluded)."""
        out: dict[str, list[str]] = {g: [] for g in self.groups if g != "all"}
        for host in self.hosts.values():
            for g in sorted(self._host_groups(host)):
                out.setdefault(g, []).append(host.name)
        return {g: tuple(hs) for g, hs in out.items()}

    def _host_groups(self, host: HostDef) -> set[str]:
        direct = [g for g in host.groups if g != "all"]
        if [g for g in direct if g != "ungrouped"]:
            direct = [g for g in direct if g != "ungrouped"]
        elif not direct:
            direct = ["ungrouped"]
        return self._ancestors(direct) - {"all"}

    def targets(
        self, *, default_user: str | None, adjacent: AdjacentVars | None = None
    ) -> list[Target]:
        """Resolve every host into a Target (in order of first definition);
        ``adjacent`` holds the variables of ``group_vars/`` and ``host_vars/``."""
        adjacent = adjacent or AdjacentVars()
        self._check_cycles()
        depth = self._depths()
        priority = {name: _priority(g) for name, g in self.groups.items()}
        out = []
        for host in self.hosts.values():
            groups = self._host_groups(host)
            ordered = sorted(
                groups | {"all"} if "all" in self.groups else groups,
                key=lambda g: (depth.get(g, 0), priority.get(g, 1), g),
            )
            merged: dict[str, Var] = {}
            for g in ordered:
                if g in self.groups:
                    merged.update(self.groups[g].vars)
            # group_vars/all applies even when the inventory never names 'all'
            for g in ("all", *(g for g in ordered if g != "all")):
                merged.update(adjacent.groups.get(g, {}))
            merged.update(host.vars)
            merged.update(adjacent.hosts.get(host.name, {}))
            visible = tuple(sorted(groups))
            out.append(build_target(host, merged, visible, default_user))
        return out


def _priority(group: GroupDef) -> int:
    var = group.vars.get("ansible_group_priority")
    if var is None:
        return 1
    value = var.value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise fail(var.origin, "ansible_group_priority", "must be an integer")


def _first(merged: dict[str, Var], *keys: str) -> tuple[str, Var] | None:
    for key in keys:
        if key in merged and merged[key].value is not None:
            return key, merged[key]
    return None


def jump_from_ssh_args(text: str) -> str | None:
    """The bastion in ``ansible_ssh_common_args``: ``-J x``, ``-o ProxyJump=x`` or
    ``-o ProxyCommand="ssh -W %h:%p [-q] x"`` (the classic pre-ProxyJump form)."""
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


def build_target(
    host: HostDef, merged: dict[str, Var], groups: tuple[str, ...], default_user: str | None
) -> Target:
    """Map Ansible's variables onto a Target (each value validated where it was written)."""
    name = host.name
    address = name
    if found := _first(merged, "ansible_host", "ansible_ssh_host"):
        address = check_address(found[1].value, found[1].origin, found[0])
    port = None
    if found := _first(merged, "ansible_port", "ansible_ssh_port"):
        port = parse_port(found[1].value, found[1].origin, found[0])
    user = default_user
    if found := _first(merged, "ansible_user", "ansible_ssh_user", "ansible_ssh_user_name"):
        user = check_user(found[1].value, found[1].origin, found[0])

    transport = "asyncssh"
    if found := _first(merged, "ansible_connection"):
        conn = check_text(found[1].value, found[1].origin, found[0]).lower()
        if conn in ("local", "paramiko"):
            transport = conn
    if found := _first(merged, "fleetscan_transport"):
        transport = parse_transport(found[1].value, found[1].origin, found[0])

    platform = _platform(merged)

    become = False
    if found := _first(merged, "fleetscan_become", "ansible_become", "ansible_sudo"):
        become = parse_bool(found[1].value, found[1].origin, found[0])
    become_method = "sudo"
    if become and (found := _first(merged, "ansible_become_method")):
        become_method = parse_become_method(found[1].value, found[1].origin, found[0])

    key_files: tuple[str, ...] = ()
    if found := _first(
        merged, "fleetscan_key_files", "ansible_ssh_private_key_file", "ansible_private_key_file"
    ):
        key_files = parse_key_files(found[1].value, found[1].origin, found[0])

    jump_host = None
    if found := _first(merged, "fleetscan_jump_host"):
        jump_host = check_address(found[1].value, found[1].origin, found[0])
    else:
        for key in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
            if found := _first(merged, key):
                text = check_text(found[1].value, found[1].origin, key, allow_empty=True)
                jump = jump_from_ssh_args(text)
                if jump:
                    jump_host = check_address(jump, found[1].origin, key)
                    break

    known_hosts = None
    if found := _first(merged, "fleetscan_known_hosts"):
        known_hosts = check_text(found[1].value, found[1].origin, found[0])
    password_env = None
    if found := _first(merged, "fleetscan_password_env"):
        password_env = check_text(found[1].value, found[1].origin, found[0])
    passphrase_env = None
    if found := _first(merged, "fleetscan_key_passphrase_env"):
        passphrase_env = check_text(found[1].value, found[1].origin, found[0])
    site = "default"
    if found := _first(merged, "fleetscan_site"):
        site = parse_site(found[1].value, found[1].origin, found[0])

    return Target(
        name=name,
        address=address,
        port=port,
        user=user,
        platform=platform,
        groups=groups,
        vars={k: v.value for k, v in merged.items()},
        transport=transport,
        become=become,
        become_method=become_method,
        key_files=key_files,
        jump_host=jump_host,
        known_hosts=known_hosts,
        password_env=password_env,
        passphrase_env=passphrase_env,
        site=site,
        source=str(host.origin),
    )


def _platform(merged: dict[str, Var]) -> str | None:
    if found := _first(merged, "fleetscan_platform"):
        return normalise_platform(found[1].value, found[1].origin, found[0])
    for key, windows in (
        ("ansible_connection", ("winrm", "psrp")),
        ("ansible_shell_type", ("cmd", "powershell")),
    ):
        found = _first(merged, key)
        if found and str(found[1].value).strip().lower() in windows:
            return "windows"
    if found := _first(merged, "ansible_system", "ansible_os_family", "ansible_network_os"):
        return normalise_platform(found[1].value, found[1].origin, found[0])
    return None
