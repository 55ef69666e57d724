"""Data files shipped with fleetscan, read as resources of the installed package.

The repository keeps them at the top level, where the layout asks for them:
``policies/`` (the built-in policies) and ``reports/templates/`` (the HTML
report). Inside the package they are ``fleetscan/_policies`` and
``fleetscan/_templates``: in a checkout, symbolic links to those folders; in a
wheel, the files themselves (hatch follows the links when it builds). Either
way fleetscan reads them the one same way, through :mod:`importlib.resources`.
"""

from __future__ import annotations

import atexit
import contextlib
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from pathlib import Path

PACKAGE = "fleetscan"
POLICIES = "_policies"
TEMPLATES = "_templates"

# resources materialised as files (a no-op for a package on disk) live as long
# as the process
_files = contextlib.ExitStack()
atexit.register(_files.close)


def resource(*parts: str) -> Traversable:
    """A file or folder shipped inside the fleetscan package."""
    ref = files(PACKAGE)
    for part in parts:
        ref = ref / part
    return ref


def resource_path(*parts: str) -> Path:
    """A shipped file as a real path (for error messages naming the file)."""
    return Path(_files.enter_context(as_file(resource(*parts))))
