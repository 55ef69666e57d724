"""Hosts for tests, benchmarks and the demo — never used by a real scan.

* :mod:`fleetscan.testing.mock` — an in-memory :class:`MockTransport` for
  unit tests of the runner and collectors (httpx's MockTransport model).
* :mod:`fleetscan.testing.simhost` — simulated hosts: real asyncssh servers
  on loopback that answer like a Linux/macOS/FreeBSD/Windows machine and
  misbehave on demand (hang, flood, drop, garbage, refuse auth).
* :mod:`fleetscan.testing.fleet` — start a whole simulated fleet: servers,
  client key, known_hosts, targets and an inventory file, in one call.
"""
