"""Read policy files, validate them, and merge them into one :class:`Policy`.

Everything that can be wrong with a policy is found here, before any host is
contacted: YAML syntax, unknown keys (with the nearest valid one suggested),
bad ports/severities/dates, duplicate ids across files, waivers naming rules
that do not exist. Each error is a :class:`~fleetscan.errors.ConfigError`
naming file, line, field and the rule it belongs to.

Merging ``-p a.yaml -p b.yaml``: rule lists concatenate in file order; ids
share one namespace across all files; ``undocumented`` and ``scan_incomplete``
may be set by several files only if they agree. ``defaults.severity`` applies
to the rules of the file that declares it.
"""

from __future__ import annotations

import hashlib
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from fleetscan.configfile import read_config_text
from fleetscan.errors import ConfigError
from fleetscan.policy.builtin import builtin_defining, resolve_policy
from fleetscan.policy.schema import (
    BUILTIN_RULE_IDS,
    RULE_SECTIONS,
    SCANNER_ZONE,
    WAIVER_EXPIRED,
    Policy,
    PolicyFile,
    ScanIncompleteSettings,
    UndocumentedSettings,
    Zone,
)
from fleetscan.yamlsrc import YamlDoc, format_path, load_yaml, suggest

#: at most this many validation problems are listed in one error
MAX_REPORTED_ERRORS = 10

_SECTION_NOUN = {
    "forbidden": "rule",
    "bind": "rule",
    "owner": "rule",
    "drift": "rule",
    "exposure": "exposure rule",
    "expected": "expected entry",
    "waivers": "waiver",
}


def load_policies(paths: Sequence[str | Path]) -> Policy:
    """Load, validate and merge policy files (in order); each may also be the
    name of a built-in policy (``baseline``). Raises ConfigError."""
    docs: list[tuple[YamlDoc, PolicyFile]] = []
    digest = hashlib.sha256()
    for value in paths:
        path = resolve_policy(value)
        text = read_config_text(path)
        # the digest covers exactly the text that was validated, file by file
        digest.update(hashlib.sha256(text.encode("utf-8")).digest())
        doc = load_yaml(path, text)
        docs.append((doc, _validate(doc)))
    return _merge(docs, digest.hexdigest())


def parse_policy_text(text: str, name: str = "<policy>") -> PolicyFile:
    """Validate one policy given as text (for tests and ``fleetscan policy check``)."""
    return _validate(load_yaml(name, text))


# --- one file ----------------------------------------------------------------


def _validate(doc: YamlDoc) -> PolicyFile:
    data = doc.data
    if data is None:
        raise ConfigError(
            "empty policy file (expected a mapping starting with 'version: 1')", file=doc.file
        )
    if not isinstance(data, dict):
        raise ConfigError(
            f"a policy file must be a mapping (version:, forbidden:, …), not a "
            f"{type(data).__name__}",
            file=doc.file,
            line=doc.line_of(()),
        )
    _check_keys_are_strings(doc, data, ())
    if "version" not in data:
        raise ConfigError(
            "missing 'version: 1' (the policy language version)",
            file=doc.file,
            line=1,
            field="version",
        )
    if data["version"] != 1:
        raise doc.error(
            ("version",),
            f"unsupported policy version {data['version']!r} (this fleetscan reads version 1)",
        )
    try:
        parsed = PolicyFile.model_validate(data)
    except ValidationError as exc:
        raise _to_config_error(doc, exc) from None
    return _apply_defaults(parsed)


def _check_keys_are_strings(doc: YamlDoc, node: Any, path: tuple[str | int, ...]) -> None:
    """YAML 1.1 reads unquoted ``on``/``off``/``yes``/``no`` keys as booleans and
    numbers as ints; neither is a policy key, so say what happened."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                # the line index keeps the key as written; find it to quote it
                written = [
                    k[-1]
                    for k in doc.lines
                    if len(k) == len(path) + 1 and k[:-1] == path and k[-1] not in node
                ]
                name = str(written[0]) if written else str(key)
                hint = " (in bind rules write 'deny:', not 'on:')" if key is True else ""
                owner = _owner_of(doc.data, path)
                raise doc.error(
                    (*path, name),
                    (f"{owner}: " if owner else "")
                    + f"key {name!r} is read by YAML as {key!r}, not as text: quote it or use "
                    f"another key{hint}",
                )
            _check_keys_are_strings(doc, value, (*path, key))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _check_keys_are_strings(doc, item, (*path, i))


def _apply_defaults(parsed: PolicyFile) -> PolicyFile:
    default = parsed.defaults.severity
    updates: dict[str, Any] = {}
    for section in ("forbidden", "bind", "owner", "drift", "exposure"):
        rules = getattr(parsed, section)
        updates[section] = tuple(
            r if r.severity is not None else r.model_copy(update={"severity": default})
            for r in rules
        )
    return parsed.model_copy(update=updates)


# --- pydantic errors → ConfigError ---------------------------------------------


def _to_config_error(doc: YamlDoc, exc: ValidationError) -> ConfigError:
    errors = sorted((_one_error(doc, e) for e in exc.errors()), key=lambda e: e.line or 0)
    first = errors[0]
    if len(errors) > 1:
        return ConfigError(
            first.detail,
            file=first.file,
            line=first.line,
            field=first.field,
            more=tuple(errors[1:MAX_REPORTED_ERRORS]),
            omitted=max(0, len(errors) - MAX_REPORTED_ERRORS),
        )
    return first


def _one_error(doc: YamlDoc, err: Any) -> ConfigError:
    loc: tuple[Any, ...] = tuple(err["loc"])
    path = _data_path(doc.data, loc)
    etype: str = err["type"]
    shown: list[str | int] = list(path)
    if etype == "missing" and loc and isinstance(loc[-1], str):
        shown.append(loc[-1])
        detail = f"missing required field {loc[-1]!r}"
    elif etype == "extra_forbidden" and path and isinstance(path[-1], str):
        key = path[-1]
        detail = f"unknown field {key!r}{suggest(key, _fields_at(path[:-1]))}"
    else:
        msg = str(err["msg"])
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        detail = msg
        value = err.get("input")
        if etype == "literal_error":
            choices = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
            detail = f"{msg}, got {value!r}" + (
                suggest(value, choices) if isinstance(value, str) else ""
            )
        elif not etype.startswith("value_error") and isinstance(value, str | int | float):
            detail = f"{msg}, got {value!r}"
    owner = _owner_of(doc.data, path)
    if owner:
        detail = f"{owner}: {detail}"
    return ConfigError(
        detail, file=doc.file, line=doc.line_of(path), field=format_path(shown) or None
    )


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """Keep the parts of a pydantic loc that address the YAML data (pydantic adds
    union/validator tags like ``function-before[...]`` that are not in the file)."""
    out: list[str | int] = []
    cur = data
    for part in loc:
        in_dict = isinstance(cur, dict) and isinstance(part, str) and part in cur
        in_list = (
            isinstance(cur, list)
            and isinstance(part, int)
            and not isinstance(part, bool)
            and 0 <= part < len(cur)
        )
        if in_dict or in_list:
            out.append(part)
            cur = cur[part]
    return tuple(out)


def _owner_of(data: Any, path: tuple[str | int, ...]) -> str:
    """``rule 'db-loopback'`` for a path inside a rule list item with an id."""
    if len(path) >= 2 and path[0] in RULE_SECTIONS and isinstance(path[1], int):
        item = data[path[0]][path[1]]
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            return f"{_SECTION_NOUN[str(path[0])]} {item['id']!r}"
    return ""


def _fields_at(path: Sequence[str | int]) -> tuple[str, ...]:
    """Valid keys of the model found at ``path`` of a policy file (for suggestions)."""
    model: type[BaseModel] | None = PolicyFile
    for part in path:
        if model is None:
            return ()
        if isinstance(part, str):
            info = model.model_fields.get(part)
            model = _inner_model(info.annotation) if info else None
    return tuple(model.model_fields) if model else ()


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is None and not isinstance(annotation, types.UnionType):
        return None
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


# --- several files ------------------------------------------------------------


def _merge(docs: list[tuple[YamlDoc, PolicyFile]], digest: str) -> Policy:
    sources: dict[str, str] = {}
    for doc, parsed in docs:
        for section in RULE_SECTIONS:
            for i, item in enumerate(getattr(parsed, section)):
                line = doc.line_of((section, i, "id"))
                where = f"{doc.file}:{line}" if line else doc.file
                if item.id in BUILTIN_RULE_IDS:
                    raise doc.error(
                        (section, i, "id"),
                        f"{item.id!r} is a built-in rule id; choose another id",
                    )
                if item.id in sources:
                    raise doc.error(
                        (section, i, "id"),
                        f"duplicate id {item.id!r} (first defined at {sources[item.id]}); "
                        "ids must be unique across all policy files",
                    )
                sources[item.id] = where

    zones, zone_sources = _merge_zones(docs)
    undocumented = _singleton(docs, "undocumented", UndocumentedSettings())
    scan_incomplete = _singleton(docs, "scan_incomplete", ScanIncompleteSettings())
    policy = Policy(
        forbidden=tuple(r for _, p in docs for r in p.forbidden),
        expected=tuple(r for _, p in docs for r in p.expected),
        bind=tuple(r for _, p in docs for r in p.bind),
        owner=tuple(r for _, p in docs for r in p.owner),
        drift=tuple(r for _, p in docs for r in p.drift),
        exposure=tuple(r for _, p in docs for r in p.exposure),
        zones=zones,
        zone_sources=zone_sources,
        waivers=tuple(w for _, p in docs for w in p.waivers),
        undocumented=undocumented,
        scan_incomplete=scan_incomplete,
        files=tuple(doc.file for doc, _ in docs),
        digest=digest,
        sources=sources,
    )
    _check_waivers(docs, policy)
    _check_exposure_zones(docs, policy)
    return policy


def _merge_zones(
    docs: list[tuple[YamlDoc, PolicyFile]],
) -> tuple[dict[str, Zone], dict[str, str]]:
    """Zones of every file; a zone may be declared twice only identically.
    ``scanner`` is always this machine and cannot be declared."""
    zones: dict[str, Zone] = {}
    where: dict[str, str] = {}
    for doc, parsed in docs:
        for name, zone in parsed.zones.items():
            if name == SCANNER_ZONE:
                raise doc.error(
                    ("zones", name),
                    f"zone {SCANNER_ZONE!r} is always the machine fleetscan runs on; "
                    "it cannot be declared",
                )
            if name in zones and zones[name] != zone:
                raise doc.error(
                    ("zones", name),
                    f"zone {name!r} conflicts with its declaration at {where[name]}",
                )
            zones[name] = zone
            where[name] = f"{doc.file}:{doc.line_of(('zones', name))}"
    return zones, where


def _check_exposure_zones(docs: list[tuple[YamlDoc, PolicyFile]], policy: Policy) -> None:
    known = policy.zone_names()
    for doc, parsed in docs:
        for i, rule in enumerate(parsed.exposure):
            for key in ("reachable_from", "not_reachable_from"):
                for j, zone in enumerate(getattr(rule, key)):
                    if zone not in known:
                        raise doc.error(
                            ("exposure", i, key, j),
                            f"exposure rule {rule.id!r}: unknown zone {zone!r} "
                            f"(declared: {', '.join(known)}){suggest(zone, known)}",
                        )


_S = typing.TypeVar("_S", UndocumentedSettings, ScanIncompleteSettings)


def _singleton(docs: list[tuple[YamlDoc, PolicyFile]], key: str, default: _S) -> _S:
    """A setting several files may repeat, but only with the same value."""
    chosen: _S | None = None
    chosen_at = ""
    for doc, parsed in docs:
        value = getattr(parsed, key)
        if value is None:
            continue
        where = f"{doc.file}:{doc.line_of((key,))}"
        if chosen is not None and value != chosen:
            raise doc.error(
                (key,), f"conflicts with the '{key}' settings at {chosen_at}; set it in one file"
            )
        chosen, chosen_at = value, where
    return chosen if chosen is not None else default


def _check_waivers(docs: list[tuple[YamlDoc, PolicyFile]], policy: Policy) -> None:
    valid = policy.rule_ids()
    expected_ids = {e.id for e in policy.expected}
    for doc, parsed in docs:
        for i, waiver in enumerate(parsed.waivers):
            if waiver.rule in valid:
                continue
            path = ("waivers", i, "rule")
            if waiver.rule in expected_ids:
                why = (
                    f"{waiver.rule!r} is an expected entry, which produces no findings; "
                    f"to waive an undocumented listener use rule: undocumented"
                )
            elif waiver.rule == WAIVER_EXPIRED:
                why = "'waiver-expired' cannot be waived; renew or remove the expired waiver"
            elif (home := builtin_defining(waiver.rule, policy.files)) is not None:
                why = (
                    f"rule {waiver.rule!r} is defined in the built-in policy {home!r}, which is "
                    f"not loaded: add -p {home} (before this file)"
                )
            else:
                why = f"unknown rule {waiver.rule!r}{suggest(waiver.rule, valid)}"
            raise doc.error(path, f"waiver {waiver.id!r}: {why}")
