from .helpers import write

__all__ = ["write"]
