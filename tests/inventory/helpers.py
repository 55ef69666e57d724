"""Helpers for inventory tests: write an inventory file and load it.

The ``write`` fixture is re-exported by conftest.py."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from fleetscan.inventory import Inventory, load_inventory

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "inventory"
EXAMPLES = REPO / "inventories"

Writer = Callable[[str, str], Path]


@pytest.fixture
def write(tmp_path: Path) -> Writer:
    """write(name, text) → path of a file under tmp_path (text is dedented)."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return _write


def load(*paths: Path | str, default_user: str | None = None) -> Inventory:
    return load_inventory(list(paths), default_user=default_user)


def by_name(inv: Inventory) -> dict[str, object]:
    return {t.name: t for t in inv.targets}
