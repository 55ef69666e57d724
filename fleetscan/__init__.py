"""fleetscan: agentless fleet scanner for listening network services."""

from fleetscan._bytecode import cache_own_bytecode

__version__ = "0.1.0"

cache_own_bytecode()
