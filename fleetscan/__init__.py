"""fleetscan: agentless fleet scanner for listening network services."""

__version__ = "0.1.0"
