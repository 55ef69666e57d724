"""Where report files go and how they are written.

A security audit's reports are sensitive, and the report folder may be one
other people can write to (a shared CI workspace). So:

* the folder is checked before the first connection (:func:`prepare_output`):
  it must be a folder fleetscan can create files in, and no report file name
  in it may be a folder — a clear error, exit 2, never a traceback after the
  scan; folders fleetscan creates are owner-only (0700);
* every file is written to a temporary file in the same folder, then renamed
  over its name (:func:`atomic_open`): a reader never sees half a report, and
  a planted symlink ``report.html → elsewhere`` is *replaced*, its target is
  never opened; files are owner-only (0600) unless ``--report-mode`` says
  otherwise;
* ``.fleetscan-manifest.json`` lists the files the last run wrote, with their
  SHA-256. The next run into the same folder removes the ones it does not
  write again (``--format json`` after a full run leaves no stale
  ``report.html``), but only a plain file whose content is still exactly
  what fleetscan wrote: a file fleetscan did not write is never deleted;
* ``-o -`` (:data:`STDOUT`) writes one single-file format to standard
  output instead, e.g. ``fleetscan scan … --format json -o - | jq``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from fleetscan.errors import ConfigError

#: ``-o -``: the report goes to standard output
STDOUT = Path("-")
#: where reports go without ``--output``: one sub-folder per run
DEFAULT_REPORTS = Path("fleetscan-reports")
MANIFEST = ".fleetscan-manifest.json"
DEFAULT_MODE = 0o600
MANIFEST_SCHEMA = "fleetscan.manifest/1"

#: the files each format writes (the writers use these names)
FILE_NAMES: dict[str, tuple[str, ...]] = {
    "html": ("report.html",),
    "csv": ("hosts.csv", "listeners.csv", "findings.csv", "changes.csv", "exposure.csv"),
    "json": ("report.json",),
    "junit": ("junit.xml",),
}


class ReportWriteError(ConfigError):
    """A report could not be written (exit 2, like any bad ``--output``)."""


def mode_problem(mode: int) -> str | None:
    """Why ``mode`` is not a safe report file mode (None when it is): the
    owner must read and write, no execute bits, nothing writable by others
    (``0600``, ``0640``, ``0644``, ``0660`` are fine)."""
    if mode & ~0o666 or mode & 0o600 != 0o600 or mode & 0o002:
        return f"{mode:04o}: the owner must read and write, no execute bits, not writable by others"
    return None


def parse_mode(text: str) -> int:
    """``--report-mode``: octal file permissions, checked by :func:`mode_problem`."""
    try:
        mode = int(text, 8)
    except ValueError:
        raise ConfigError(
            f"not an octal file mode: {text!r} (e.g. 0600)", field="--report-mode"
        ) from None
    problem = mode_problem(mode)
    if problem:
        raise ConfigError(problem, field="--report-mode")
    return mode


def folder_mode(mode: int) -> int:
    """The mode of a folder fleetscan creates: the file mode plus the search
    bit wherever reading is allowed (0600 → 0700, 0640 → 0750)."""
    return mode | ((mode & 0o444) >> 2)


def is_stdout(outdir: Path | None) -> bool:
    return outdir is not None and str(outdir) == str(STDOUT)


def prepare_output(outdir: Path, formats: Sequence[str], mode: int = DEFAULT_MODE) -> None:
    """Check (and create) the report destination before any connection.
    Raises :class:`ConfigError` naming ``--output``."""
    if is_stdout(outdir):
        if len(formats) != 1 or formats[0] == "csv":
            raise ConfigError(
                "standard output takes exactly one of html, json or junit "
                f"(got {','.join(formats)}); e.g. --format json -o -",
                field="--output",
            )
        return
    if outdir.exists() and not outdir.is_dir():
        raise ConfigError("exists and is not a folder", file=str(outdir), field="--output")
    try:
        make_folder(outdir, folder_mode(mode))
        fd, probe = tempfile.mkstemp(dir=outdir, prefix=".fleetscan-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(
            f"cannot write in the report folder: {exc.strerror}",
            file=str(outdir),
            field="--output",
        ) from None
    for name in (n for f in formats for n in FILE_NAMES.get(f, ())):
        _check_target(outdir / name)


def _check_target(path: Path) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise ConfigError(
            "is a folder, where fleetscan writes a report file",
            file=str(path),
            field="--output",
        )


def make_folder(path: Path, mode: int) -> None:
    """``mkdir -p`` where every folder created gets ``mode`` (umask aside)."""
    missing = []
    for p in (path, *path.parents):
        if p.exists():
            break
        missing.append(p)
    for p in reversed(missing):
        with contextlib.suppress(FileExistsError):
            p.mkdir(mode=mode)
            os.chmod(p, mode)


@contextlib.contextmanager
def atomic_open(path: Path, *, binary: bool = False, mode: int = DEFAULT_MODE) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` (created with O_EXCL, so it
    follows no symlink; permissions ``mode``); on success it is flushed to
    disk and renamed over ``path`` (a symlink there is replaced, not
    followed); on failure it is removed and ``path`` is left untouched."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        fh: IO[Any]
        if binary:
            fh = os.fdopen(fd, "wb")
        else:
            # backslashreplace: a lone surrogate becomes \udcXX, never an error
            fh = os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace", newline="")
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
            drop_cache(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def drop_cache(fd: int) -> None:
    """Tell the kernel a report's pages need not stay cached: a 5,000-host run
    writes over 100 MB of reports that nobody reads back right away, and a
    scheduled scan should not push the machine's useful cache out (nor be
    charged for it in its cgroup). Only clean pages go (the file is fsynced);
    a kernel that ignores the advice changes nothing."""
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def write_text(path: Path, text: str, mode: int = DEFAULT_MODE) -> Path:
    with atomic_open(path, mode=mode) as fh:
        fh.write(text)
    return path


@contextlib.contextmanager
def stdout_sink() -> Iterator[IO[Any]]:
    """Standard output as a report destination (``-o -``). A reader that
    quits early (``| head``) ends the output quietly."""
    try:
        yield sys.stdout
        sys.stdout.flush()
    except BrokenPipeError:
        # keep Python from complaining again when it flushes stdout at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


# --- the manifest: which files the last run wrote ---------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
        drop_cache(fh.fileno())
    return digest.hexdigest()


def read_manifest(outdir: Path) -> dict[str, str]:
    """name → SHA-256 of the files the previous run wrote here ({} when
    there is no readable manifest). Only plain names: a manifest can never
    point outside the folder."""
    try:
        data = json.loads((outdir / MANIFEST).read_text(encoding="utf-8"))
        files = data["files"] if data.get("schema") == MANIFEST_SCHEMA else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
    if not isinstance(files, dict):
        return {}
    return {
        name: digest
        for name, digest in files.items()
        if isinstance(name, str)
        and isinstance(digest, str)
        and name == Path(name).name
        and name not in ("", ".", "..", MANIFEST)
    }


def remove_stale(outdir: Path, previous: Mapping[str, str], written: Iterable[str]) -> list[str]:
    """Delete the files of ``previous`` this run did not write again, when
    each is still a plain file with the content fleetscan wrote. Returns the
    names removed."""
    keep = set(written)
    removed = []
    for name, digest in previous.items():
        if name in keep:
            continue
        path = outdir / name
        try:
            if not stat.S_ISREG(path.lstat().st_mode) or _sha256(path) != digest:
                continue  # changed or replaced since: not fleetscan's any more
            path.unlink()
        except OSError:
            continue
        removed.append(name)
    return removed


def write_manifest(outdir: Path, run_id: str, paths: Iterable[Path], mode: int) -> None:
    files = {p.name: _sha256(p) for p in paths}
    doc = {"schema": MANIFEST_SCHEMA, "run_id": run_id, "files": files}
    write_text(outdir / MANIFEST, json.dumps(doc, indent=2, sort_keys=True) + "\n", mode)
