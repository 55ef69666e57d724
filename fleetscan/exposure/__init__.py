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

from fleetscan.exposure.phase import Connector, ProbeSettings, check_probe_config, probe_phase

__all__ = ["Connector", "ProbeSettings", "check_probe_config", "probe_phase"]
