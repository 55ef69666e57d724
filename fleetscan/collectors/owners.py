"""Owners' user names without running a process for them on the host.

The listing gives numeric uids — ``ss -e`` the socket owner's, net-tools
``netstat -e`` its User column, the /proc script each process's — and the
collector script adds ``/etc/passwd`` read with shell builtins as ``<uid>
<name>`` lines. Here the two meet: a numeric user becomes the name passwd
gives, or stays the number when passwd does not know it (a directory user:
LDAP, sssd). ``ps`` is only run for steps that need it (see
:mod:`fleetscan.collectors.posix_script`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from fleetscan.model import Listener, Process


def parse_passwd(text: str) -> dict[str, str]:
    """uid → user name from the script's ``<uid> <name>`` lines (first wins, as
    getpwuid does)."""
    names: dict[str, str] = {}
    for line in text.split("\n"):
        uid, _, name = line.partition(" ")
        name = name.strip()
        if uid.isdigit() and uid.isascii() and name and uid not in names:
            names[uid] = name
    return names


def with_uid_names(listeners: Sequence[Listener], passwd: dict[str, str]) -> tuple[Listener, ...]:
    """Process.user from a numeric uid (ss -e, netstat -e, /proc) to the name
    passwd gives."""
    out = []
    # a server's sockets share one owners tuple (the parsers hand out the same
    # object): work once per tuple, by identity (each is kept alive in ``done``)
    done: dict[int, tuple[tuple[Process, ...], tuple[Process, ...]]] = {}
    for lst in listeners:
        procs = lst.processes
        got = done.get(id(procs))
        if got is None:
            new = tuple(_named(p, passwd) for p in procs)
            got = done[id(procs)] = (procs, new if new != procs else procs)
        out.append(lst if got[1] is procs else replace(lst, processes=got[1]))
    return tuple(out)


def _named(p: Process, passwd: dict[str, str]) -> Process:
    if p.user is None or not p.user.isdigit():
        return p
    name = passwd.get(p.user)
    return p if name is None else replace(p, user=name)
