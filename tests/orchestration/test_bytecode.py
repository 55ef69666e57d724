"""fleetscan keeps its own bytecode cached when Python would not write it
(``PYTHONDONTWRITEBYTECODE=1`` with an editable install): every run would
otherwise compile the whole package from source again (issue 12, start-up)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fleetscan

PACKAGE = Path(fleetscan.__file__).parent


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    shutil.copytree(PACKAGE, root / "fleetscan", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _import(root: Path, *, dont_write: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if dont_write:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONPATH"] = str(root)
    subprocess.run(
        [sys.executable, "-c", "import fleetscan, json; import fleetscan.addresses"],
        env=env,
        check=True,
        cwd=root,
        timeout=120,
    )


def _cached(root: Path) -> dict[str, Path]:
    return {
        str(src.relative_to(root)): Path(importlib.util.cache_from_source(str(src)))
        for src in (root / "fleetscan").rglob("*.py")
    }


def test_every_module_of_the_package_is_cached_and_only_rewritten_when_changed(
    tmp_path: Path,
) -> None:
    root = _copy(tmp_path)
    _import(root, dont_write=True)
    cached = _cached(root)
    assert len(cached) > 100 and all(p.is_file() for p in cached.values())
    # a second run writes nothing; an edited module gets a fresh cache
    stamps = {name: p.stat().st_mtime_ns for name, p in cached.items()}
    edited = root / "fleetscan" / "addresses.py"
    edited.write_text(edited.read_text() + "\nEDITED = True\n")
    os.utime(edited, (stamps["fleetscan/addresses.py"] / 1e9 + 10,) * 2)
    _import(root, dont_write=True)
    changed = {n for n, p in cached.items() if p.stat().st_mtime_ns != stamps[n]}
    assert changed == {"fleetscan/addresses.py"}
    env_check = subprocess.run(
        [sys.executable, "-B", "-c", "import fleetscan.addresses as a; print(a.EDITED)"],
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    )
    assert env_check.stdout.strip() == "True"  # the cache holds the edited code


def test_other_packages_are_left_to_python(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    other = root / "otherpkg"
    other.mkdir()
    (other / "__init__.py").write_text("X = 1\n")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(root)}
    subprocess.run(
        [sys.executable, "-c", "import fleetscan, otherpkg"], env=env, check=True, cwd=root
    )
    assert not (other / "__pycache__").exists()
    assert (root / "fleetscan" / "__pycache__").is_dir()


def test_a_read_only_install_imports_and_compiles_nothing(tmp_path: Path) -> None:
    """A read-only package folder (a real read-only bind mount in a private
    mount namespace, so it holds for root too): fleetscan imports, nothing is
    written, and the cache check stops at the first folder it cannot write
    (it does not compile every module only to fail to save it)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("a read-only bind mount needs root and unshare(1)")
        pytest.skip("a read-only bind mount needs root and unshare(1)")
    root = _copy(tmp_path)
    probe = (
        "import py_compile, sys\n"
        "calls = []\n"
        "real = py_compile.compile\n"
        "py_compile.compile = lambda *a, **k: calls.append(a) or real(*a, **k)\n"
        "import fleetscan.addresses\n"
        "print(len(calls))\n"
    )
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(root)}
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
         str(root / "fleetscan"), sys.executable, "-c", probe],
        env=env, capture_output=True, text=True, check=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.stdout.strip() == "0"  # no module compiled for a cache it cannot write
    assert not list((root / "fleetscan").rglob("*.pyc"))
