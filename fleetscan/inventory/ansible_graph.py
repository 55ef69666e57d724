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

from collections.abc import Iterable
from dataclasses import dataclass, field

from fleetscan.inventory.ansible_vars import AdjacentVars
from fleetscan.inventory.fields import Found, make_target, resolve_fields
from fleetscan.inventory.values import MAX_HOSTS, Var, fail, find_cycle
from fleetscan.model import Origin, Target


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


def build_target(
    host: HostDef, merged: dict[str, Var], groups: tuple[str, ...], default_user: str | None
) -> Target:
    """Map Ansible's variables onto a Target through the field table."""

    def lookup(key: str) -> Found | None:
        var = merged.get(key)
        if var is None or var.value is None:
            return None
        return var.value, var.origin, key

    return make_target(
        name=host.name,
        fields=resolve_fields("ansible", lookup),
        groups=groups,
        variables={k: v.value for k, v in merged.items()},
        source=host.origin,
        default_user=default_user,
    )
