"""Reading the operator's configuration files safely: one function for every loader.

Inventories, ``group_vars``/``host_vars`` files, policies, and the ssh_config
and known_hosts paths given on the command line all go through
:func:`read_config_bytes` (or :func:`check_config_file` for files another
library opens later). A path that is not a regular file — a FIFO, a socket,
a device such as ``/dev/zero`` or a terminal — is a :class:`ConfigError`
(exit 2): opening a FIFO would block forever, and reading a device would
never end. The file is opened with ``O_NONBLOCK`` (so even a FIFO swapped in
between the check and the open cannot hang), checked with ``fstat`` on the
open descriptor, and read with a size bound, so a file that grows while it is
read cannot exhaust memory either.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from fleetscan.errors import ConfigError

#: refuse config files larger than this (a policy or inventory this big is a mistake)
MAX_CONFIG_BYTES = 32 * 1024 * 1024

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _limit(limit: int | None) -> int:
    return MAX_CONFIG_BYTES if limit is None else limit


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _not_regular(path: str, mode: int, field: str | None) -> ConfigError:
    if stat.S_ISDIR(mode):
        return ConfigError("is a directory, expected a file", file=path, field=field)
    return ConfigError(f"is {_kind(mode)}, expected a regular file", file=path, field=field)


def _is_devnull(st: os.stat_result) -> bool:
    """``/dev/null`` (or a link to it) reads as an empty file: ``-F /dev/null`` and
    ``UserKnownHostsFile /dev/null`` are how OpenSSH users say "none"."""
    try:
        null = os.stat(os.devnull)
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == null.st_rdev


def check_config_file(
    path: str | Path, *, field: str | None = None, limit: int | None = None
) -> None:
    """Refuse a missing, non-regular or oversized file that some library will open later.
    ``/dev/null`` is the one exception: the usual way to say "no file"
    (``--ssh-config /dev/null``, as ``ssh -F /dev/null``); it reads empty."""
    name = str(path)
    if os.path.realpath(name) == os.devnull:
        return
    limit = _limit(limit)
    try:
        st = os.stat(name)
    except FileNotFoundError:
        raise ConfigError("file not found", file=name, field=field) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=name, field=field) from None
    if _is_devnull(st):
        return
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(name, st.st_mode, field)
    if st.st_size > limit:
        raise _too_big(name, st.st_size, limit, field)


def _too_big(name: str, size: int | None, limit: int, field: str | None) -> ConfigError:
    what = f"is {size} bytes, " if size is not None else "is "
    return ConfigError(f"file {what}larger than the {limit} byte limit", file=name, field=field)


def read_config_bytes(
    path: str | Path, *, field: str | None = None, limit: int | None = None
) -> bytes:
    """The bytes of a regular file, at most ``limit`` of them (more is an error)."""
    name = str(path)
    limit = _limit(limit)
    check_config_file(name, field=field, limit=limit)  # opening a socket or FIFO is the harm
    if _is_devnull(os.stat(name)):
        return b""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(name, flags | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ConfigError("file not found", file=name, field=field) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, expected a file", file=name, field=field) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=name, field=field) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(name, st.st_mode, field)
        if st.st_size > limit:
            raise _too_big(name, st.st_size, limit, field)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return _read_bounded(handle, name, limit, field)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=name, field=field) from None
    finally:
        os.close(fd)


def read_stream_bytes(
    stream: BinaryIO, name: str, *, field: str | None = None, limit: int | None = None
) -> bytes:
    """At most ``limit`` bytes of an already open stream (standard input)."""
    limit = _limit(limit)
    try:
        return _read_bounded(stream, name, limit, field)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=name, field=field) from None


def _read_bounded(handle: BinaryIO, name: str, limit: int, field: str | None) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = handle.read(min(1 << 20, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise _too_big(name, None, limit, field)
    return b"".join(chunks)


def decode_config(raw: bytes, name: str, *, field: str | None = None) -> str:
    """Config bytes as UTF-8 text (a BOM is dropped); binary data is an error."""
    if b"\x00" in raw:
        raise ConfigError("binary file (contains NUL bytes), expected text", file=name, field=field)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError("not valid UTF-8 text", file=name, line=line, field=field) from None


def read_config_text(
    path: str | Path, *, field: str | None = None, limit: int | None = None
) -> str:
    """A regular text file, size-bounded, as UTF-8 (see :func:`read_config_bytes`)."""
    return decode_config(read_config_bytes(path, field=field, limit=limit), str(path), field=field)
