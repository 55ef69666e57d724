"""Socket activation: an init system holding a listening socket for a service.

systemd (``.socket`` units, e.g. Ubuntu 22.10+'s ``ssh.socket``) and macOS
launchd open a service's listening socket themselves and hand it to the
service when it starts. The socket listing then shows the init process (pid
1) beside the service — ``users:(("sshd",pid=812,fd=3),("systemd",pid=1,fd=48))``
— or, before the first connection started the service, pid 1 alone.

How the policy engine reads that (see :mod:`fleetscan.policy.engine`):

* pid 1 with another process on the socket: pid 1 is the socket's *holder*,
  the other processes are the service; owner rules and the infrastructure map
  judge the service only (a correct ``ssh.socket`` setup is compliant with
  ``ssh-is-sshd``);
* pid 1 alone: the service behind the socket is not running, so which program
  will serve it cannot be seen. Owner rules that do not allow the activator
  itself report it as an unverifiable owner at their ``unknown_severity``
  (never a silent pass); forbidden ports, bind rules and the map's ports are
  judged as for any socket.

Only pid 1 counts: any process can call itself ``systemd``, but only the init
process of the scanned host's pid namespace has pid 1 there. ``init`` is how
``netstat`` names systemd when it reads ``/sbin/init`` from argv0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fleetscan.model import Process

#: names under which pid 1 activates sockets (Linux systemd, macOS launchd)
ACTIVATORS = frozenset({"systemd", "init", "launchd"})


def is_activator(process: Process) -> bool:
    """True for the init process of the host (pid 1) under a known name."""
    return process.pid == 1 and process.name in ACTIVATORS


@dataclass(frozen=True, slots=True)
class Holders:
    """Who holds a socket, as the policy judges it.

    ``service``: the processes judged as the socket's owner (the activator is
    left out when a service holds the socket with it); ``activator_only``: the
    socket is held by the activator alone (its service has not started).
    """

    service: tuple[Process, ...]
    activator_only: bool


def holders(processes: Sequence[Process]) -> Holders:
    """Split a socket's processes into the service and its activator."""
    services = tuple(p for p in processes if not is_activator(p))
    if len(services) == len(processes):
        return Holders(tuple(processes), False)
    if services:
        return Holders(services, False)
    return Holders(tuple(processes), True)
