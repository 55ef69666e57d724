"""Masking secrets in what fleetscan prints about an inventory.

Inventories carry secrets in many shapes: a variable named like one
(``ansible_password``, ``api_key``, ``pwd``, ``vault_token``, ``db_creds``),
or a secret *inside* a harmless-looking value (``sshpass -p XXX`` in
``ansible_ssh_common_args``, ``--password=XXX``, ``https://user:XXX@host``,
``PGPASSWORD=XXX``, ``Authorization: Bearer XXX``). :func:`mask_value`
replaces both with ``***``, at any depth. It errs on the side of hiding:
``inventory show`` is for checking where hosts and settings come from, not
for reading credentials back.

On top of that, :func:`env_secret_values` collects the values of the
environment variables fleetscan may read as secrets, and :func:`redact`
removes any of them wherever they appear, so a value read from a secret
environment variable is never printed, whatever the inventory says.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"

#: a variable whose name contains one of these (any case) holds a secret
SECRET_NAME_PARTS = (
    "pass",  # password, passwd, passphrase, ansible_ssh_pass, sshpass
    "pwd",
    "secret",
    "token",
    "key",  # api_key, private_key, access_key … (a key *file* path is shown as key_files)
    "cred",  # credential(s), creds
    "auth",
    "cookie",
    "session",
    "bearer",
    "private",
    "signature",
    "cert",
)
# values that are settings, not secrets (``-o PasswordAuthentication=no``)
_PLAIN_VALUES = frozenset(
    {"yes", "no", "true", "false", "on", "off", "none", "ask", "accept-new", "0", "1"}
)

_NAME_PART = "|".join(SECRET_NAME_PARTS)
# NAME=value / NAME: value inside a longer text, NAME looking secret
_ASSIGN = re.compile(
    rf"(?i)(?P<name>[A-Za-z0-9_.-]*(?:{_NAME_PART})[A-Za-z0-9_.-]*)(?P<sep>\s*[=:]\s*)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&]+)"
)
# --password VALUE / -password VALUE (the '=' form is _ASSIGN)
_LONG_OPTION = re.compile(
    rf"(?i)(?P<name>--?[A-Za-z0-9_-]*(?:{_NAME_PART})[A-Za-z0-9_-]*)(?P<sep>\s+)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s-][^\s]*)"
)
# sshpass -p VALUE / -pVALUE (and the same option on mysql-style clients)
_SSHPASS = re.compile(
    r"(?P<name>\bsshpass\b[^|;&]*?\s-p)(?P<sep>\s*)(?P<value>\"[^\"]*\"|'[^']*'|\S+)"
)
# scheme://user:password@host
_URL_USERINFO = re.compile(
    r"(?P<name>[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*:)(?P<sep>)(?P<value>[^\s/@]+)(?=@)"
)
# Authorization: Bearer VALUE / Basic VALUE
_SCHEME_TOKEN = re.compile(
    r"(?i)(?P<name>\b(?:bearer|basic|token))(?P<sep>\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})"
)

_TEXT_PATTERNS = (_URL_USERINFO, _SSHPASS, _SCHEME_TOKEN, _LONG_OPTION, _ASSIGN)


def looks_secret(name: str) -> bool:
    """True for a variable name that suggests a secret."""
    low = name.lower()
    return any(part in low for part in SECRET_NAME_PARTS)


def mask_text(text: str) -> str:
    """``text`` with every secret written inside it replaced by ``***``."""
    for pattern in _TEXT_PATTERNS:
        text = pattern.sub(_keep_name, text)
    return text


def _keep_name(m: re.Match[str]) -> str:
    if m.group("value").strip("'\"").lower() in _PLAIN_VALUES:
        return m.group(0)
    return f"{m.group('name')}{m.group('sep')}{MASK}"


def mask_value(value: Any, *, depth: int = 0) -> Any:
    """A JSON-safe copy of ``value`` with secrets masked at every depth."""
    if depth > 50:
        return "..."
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {
            str(k): MASK if looks_secret(str(k)) else mask_value(v, depth=depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [mask_value(v, depth=depth + 1) for v in value]
    return mask_text(str(value))


#: secrets shorter than this are not searched for in printed text (a one-letter
#: "secret" would blank out every word holding that letter)
MIN_REDACTED_LENGTH = 4


def env_secret_values(names: Iterable[str], environ: Mapping[str, str] | None = None) -> set[str]:
    """Values of the environment variables ``names`` and of every variable whose
    name looks secret (``FLEETSCAN_DB_PASSWORD``, ``CI_DEPLOY_TOKEN`` …)."""
    env = os.environ if environ is None else environ
    wanted = set(names) | {k for k in env if looks_secret(k)}
    return {v for k in wanted if len(v := env.get(k, "")) >= MIN_REDACTED_LENGTH}


def redact(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` (JSON types) with every occurrence of a secret replaced by ``***``."""
    ordered = sorted(set(secrets), key=len, reverse=True)
    if not ordered:
        return value
    pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return pattern.sub(MASK, v)
        if isinstance(v, Mapping):
            return {pattern.sub(MASK, str(k)): walk(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(x) for x in v]
        return v

    return walk(value)
