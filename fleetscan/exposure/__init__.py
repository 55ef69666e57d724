"""Exposure probes: prove from the network which listeners are reachable, and
from where (firewall validation).

After the listeners are collected, each requested *zone* connects to exactly
the TCP listeners the hosts reported — from the scanner itself (zone
``scanner``) or from probe hosts in other networks, over the same SSH
transports — and the matrix listener × zone is judged by the policy's
``exposure`` rules.

* :mod:`~fleetscan.exposure.plan` — what to probe (pure);
* :mod:`~fleetscan.exposure.scanner` — asyncio connects from this machine;
* :mod:`~fleetscan.exposure.remote` — the constant probe programs for probe
  hosts (POSIX sh: bash ``/dev/tcp`` → ``nc -z`` → ``python3``; PowerShell
  ``TcpClient``) and how their answers are read;
* :mod:`~fleetscan.exposure.phase` — the phase itself, with its deadline;
* :mod:`~fleetscan.exposure.firewall` — optional ruleset evidence per host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleetscan.exposure.phase import Connector, ProbeSettings, check_probe_config, probe_phase

__all__ = ["Connector", "ProbeSettings", "check_probe_config", "probe_phase"]


def __getattr__(name: str) -> Any:
    # the phase (and the policy schema, probe programs ...) is imported on first
    # use: the HTML report reads firewall.is_ruleset on every run, probing or not
    if name in __all__:
        from fleetscan.exposure import phase

        return getattr(phase, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
