"""``--limit`` host patterns, with Ansible's semantics.

A limit is a list of terms separated by commas (or by colons when there is no
comma, as Ansible allows: ``web:db:!web03``). Each term is

* a host name or a group name (a group stands for all its hosts, including
  those of its child groups); ``all`` and ``*`` are every host;
* a glob over host and group names (``web*``, ``*.example.com``);
* ``~regex``, searched in host and group names;
* ``group[i]`` / ``group[i:j]`` (inclusive, as Ansible) to take members by
  position;

and may be prefixed with ``&`` (intersection) or ``!`` (exclusion). As in
Ansible the plain terms are united first, then every ``&`` term intersects,
then every ``!`` term removes; with only ``&``/``!`` terms the start is
``all``. The selection keeps inventory order.

Differences from Ansible, chosen for audits: a plain or ``&`` term that matches
nothing is an error (a typo must not silently shrink a compliance scan), and
so is a limit that selects no host. A ``!`` term that matches nothing is
allowed, so a cron job excluding a decommissioned host keeps working.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Mapping, Sequence

from fleetscan.errors import ConfigError
from fleetscan.model import Target
from fleetscan.yamlsrc import suggest

FIELD = "--limit"
_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?\d+)|(\d+)?:(\d+)?)\]$")


def split_terms(limit: str) -> list[str]:
    """Split a limit into its terms (commas; else colons outside brackets, keeping IPv6)."""
    if "," in limit:
        return [t.strip() for t in limit.split(",") if t.strip()]
    text = limit.strip()
    try:
        ipaddress.ip_address(text.lstrip("!&"))
        return [text] if text else []
    except ValueError:
        pass
    terms, depth, cur = [], 0, ""
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        if ch == ":" and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    terms.append(cur)
    return [t.strip() for t in terms if t.strip()]


def _match(
    term: str, names: Sequence[str], groups: Mapping[str, Sequence[str]]
) -> list[str] | None:
    """Host names a term stands for; None when it names nothing at all."""
    if term in ("all", "*"):
        return list(names)
    if term in groups:
        return list(groups[term])
    host_set = set(names)
    if term in host_set:
        return [term]
    if term.startswith("~"):
        try:
            rx = re.compile(term[1:])
        except re.error as exc:
            raise ConfigError(f"invalid regular expression {term!r}: {exc}", field=FIELD) from None
        return _union(
            [g for g in groups if rx.search(g)], [h for h in names if rx.search(h)], groups
        )
    m = _SUBSCRIPT.match(term)
    if m and m.group(1) in groups:
        members = list(groups[m.group(1)])
        if m.group(2) is not None:
            i = int(m.group(2))
            return [members[i]] if -len(members) <= i < len(members) else []
        start = int(m.group(3) or 0)
        end = int(m.group(4)) if m.group(4) is not None else len(members) - 1
        return members[start : end + 1]
    if any(ch in term for ch in "*?["):
        return _union(
            [g for g in groups if fnmatch.fnmatchcase(g, term)],
            [h for h in names if fnmatch.fnmatchcase(h, term)],
            groups,
        )
    return None


def _union(
    matched_groups: list[str], matched_hosts: list[str], groups: Mapping[str, Sequence[str]]
) -> list[str] | None:
    if not matched_groups and not matched_hosts:
        return None
    out = dict.fromkeys(matched_hosts)
    for g in matched_groups:
        out.update(dict.fromkeys(groups[g]))
    return list(out)


def select(
    targets: Sequence[Target], groups: Mapping[str, Sequence[str]], limit: str | None
) -> tuple[Target, ...]:
    """The targets a limit selects (all for None); ConfigError when it selects nothing."""
    if limit is None:
        return tuple(targets)
    terms = split_terms(limit)
    if not terms:
        raise ConfigError("empty limit: name hosts, groups or patterns", field=FIELD)
    names = [t.name for t in targets]
    plain = [t for t in terms if t[0] not in "&!"]
    inter = [t[1:] for t in terms if t[0] == "&"]
    exclude = [t[1:] for t in terms if t[0] == "!"]
    chosen: dict[str, None] = {}
    for term in plain or ["all"]:
        chosen.update(dict.fromkeys(_required(term, names, groups)))
    for term in inter:
        keep = set(_required("&" + term, names, groups, strip=1))
        chosen = {h: None for h in chosen if h in keep}
    for term in exclude:
        drop = set(_match(term, names, groups) or ())
        chosen = {h: None for h in chosen if h not in drop}
    out = tuple(t for t in targets if t.name in chosen)
    if not out:
        raise ConfigError(f"limit {limit!r} selects no host", field=FIELD)
    return out


def _required(
    term: str, names: Sequence[str], groups: Mapping[str, Sequence[str]], strip: int = 0
) -> list[str]:
    hosts = _match(term[strip:], names, groups)
    if hosts is None:
        hint = suggest(term[strip:], [*groups, *names])
        raise ConfigError(f"{term!r} matches no host or group{hint}", field=FIELD)
    return hosts
