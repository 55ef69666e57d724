"""Suite-wide isolation: the run history goes to a per-session temporary folder.

Every ``fleetscan scan``/``demo`` records its run in the default history
database (``$XDG_DATA_HOME/fleetscan/history.sqlite``); tests must never write
into the developer's own history, nor share one between parallel sessions.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_history() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("XDG_DATA_HOME", "FLEETSCAN_DB")}
    with tempfile.TemporaryDirectory(prefix="fleetscan-test-data-") as tmp:
        os.environ["XDG_DATA_HOME"] = tmp
        os.environ.pop("FLEETSCAN_DB", None)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
