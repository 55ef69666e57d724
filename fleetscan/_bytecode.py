"""Keep fleetscan's own bytecode cached under ``PYTHONDONTWRITEBYTECODE``.

A wheel install compiles the package once (pip does); an editable install
(``pip install -e .``, ``make setup``) compiles nothing, and with
``PYTHONDONTWRITEBYTECODE=1`` in the environment Python then compiles all of
fleetscan's modules from source again on every run: about 0.4 s of CPU per
run, a third of the fixed start-up cost of a scan (measured in
``docs/architecture.md``, "Start-up"). So when Python would not write
bytecode, fleetscan writes the cache of its own package, and only of its own
package: other packages, and the choice for them, are left alone. A
read-only install is fine (nothing is written, nothing fails)."""

from __future__ import annotations

import os
import sys


def cache_own_bytecode() -> None:
    if not sys.dont_write_bytecode:
        return  # Python writes the cache itself as modules are imported
    import importlib.util

    root = os.path.dirname(os.path.abspath(__file__))
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "__pycache__" and not entry.name.startswith("."):
                    stack.append(entry.path)
                continue
            if not entry.name.endswith(".py"):
                continue
            cached = importlib.util.cache_from_source(entry.path)
            try:
                fresh = os.stat(cached).st_mtime >= entry.stat().st_mtime
            except OSError:
                fresh = False
            if not fresh:
                if not os.access(folder, os.W_OK):
                    return  # a read-only install: compiling here would only add work
                import py_compile

                try:
                    py_compile.compile(entry.path, cfile=cached, doraise=True)
                except py_compile.PyCompileError:
                    continue  # a broken file: its import reports it
                except OSError:
                    return  # cannot write after all: stop trying for this run
