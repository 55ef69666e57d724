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
    named: dict[tuple[Process, str], Process] = {}  # processes repeat across sockets
    for lst in listeners:
        procs = []
        for p in lst.processes:
            uid = p.user if p.user is not None and p.user.isdigit() else None
            if uid is None:
                procs.append(p)
                continue
            made = named.get((p, uid))
            if made is None:
                made = named[(p, uid)] = replace(p, user=passwd.get(uid, uid))
            procs.append(made)
        new = tuple(procs)
        out.append(replace(lst, processes=new) if new != lst.processes else lst)
    return tuple(out)
