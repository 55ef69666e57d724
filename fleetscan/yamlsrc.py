"""YAML loading that remembers where every value came from.

Inventory and policy errors must name file, line and field. PyYAML's plain
``safe_load`` forgets positions and silently keeps the last of two duplicate
keys; :func:`load_yaml` composes the node tree first, records the line of
every mapping key / sequence item, refuses duplicate keys, and converts any
YAML syntax error into a :class:`~fleetscan.errors.ConfigError`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fleetscan.configfile import read_config_text
from fleetscan.errors import ConfigError

PathKey = tuple[str | int, ...]


@dataclass
class YamlDoc:
    """A loaded YAML document and the line (1-based) of each value in it."""

    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """Line of the value at ``path``, or of its nearest ancestor."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), None)

    def error(self, path: Sequence[str | int], message: str) -> ConfigError:
        return ConfigError(
            message, file=self.file, line=self.line_of(path), field=format_path(path) or None
        )


def format_path(path: Sequence[str | int]) -> str:
    """``a.b[2].c``; keys from the file are shown with control characters escaped
    (a key may hold a newline or a terminal escape sequence)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + _printable(str(part))
    return out


def _printable(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


#: refuse YAML whose aliases expand to more values than this ("billion laughs")
MAX_YAML_NODES = 2_000_000
#: values aliases may add beyond the document's own: ALIAS_BUDGET + ALIAS_FACTOR per
#: distinct node. Anchors shared by many hosts stay well inside; a 2 KB file that
#: expands to hundreds of thousands of values (16 s and 500 MB later) does not.
ALIAS_BUDGET = 10_000
ALIAS_FACTOR = 10

# libyaml's loader keeps line marks and is ~10x faster than the pure-Python one
_Base: Any = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader


class _Loader(_Base):  # type: ignore[misc]
    pass


def load_yaml(path: str | Path, text: str | None = None) -> YamlDoc:
    """Load one YAML document with positions. Empty files give ``data=None``."""
    name = str(path)
    if text is None:
        text = read_config_text(path)
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return YamlDoc(name, None)
            _check_alias_expansion(name, node)
            lines: dict[PathKey, int] = {}
            _index(node, (), lines, name)
            try:
                data = loader.construct_document(node)
            except ValueError as exc:  # PyYAML: impossible dates like 2026-13-01
                raise ConfigError(
                    f"invalid value: {exc}", file=name, line=_bad_scalar_line(node)
                ) from None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"invalid YAML: {problem}", file=name, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=name) from None
    except RecursionError:
        raise ConfigError("invalid YAML: nested too deeply", file=name) from None
    return YamlDoc(name, data, lines)


def _bad_scalar_line(node: yaml.Node) -> int | None:
    """The line of the first scalar PyYAML cannot construct (an impossible date)."""
    probe = yaml.SafeLoader("")
    stack = [node]
    seen: set[int] = set()
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n, yaml.ScalarNode):
            try:
                probe.construct_object(n, deep=True)
            except ValueError:
                return n.start_mark.line + 1
        stack.extend(reversed(_children(n)))
    return None


def _check_alias_expansion(name: str, node: yaml.Node) -> None:
    """Refuse alias bombs (``&a [*b, *b, …]`` nested) and recursive aliases
    before anything walks the document: the size *after* expansion is bounded
    (absolutely, and relative to the document's own size), not the alias count."""
    sizes: dict[int, int] = {}
    # post-order over the node DAG, each distinct node once
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    on_path: set[int] = set()
    while stack:
        n, done = stack.pop()
        if done:
            on_path.discard(id(n))
            total = 1 + sum(sizes[id(c)] for c in _children(n))
            if total > MAX_YAML_NODES:
                raise _bomb(name, n, f"YAML aliases expand to more than {MAX_YAML_NODES} values")
            sizes[id(n)] = total
            continue
        if id(n) in sizes:
            continue
        if id(n) in on_path:
            raise ConfigError("recursive YAML alias", file=name, line=n.start_mark.line + 1)
        on_path.add(id(n))
        stack.append((n, True))
        for c in _children(n):
            if id(c) not in sizes:
                stack.append((c, False))
    allowed = len(sizes) + ALIAS_BUDGET + ALIAS_FACTOR * len(sizes)
    if sizes[id(node)] > allowed:
        raise _bomb(
            name,
            node,
            f"YAML aliases expand {len(sizes)} values to {sizes[id(node)]} (more than "
            f"{allowed}: an alias bomb?)",
        )


def _bomb(name: str, node: yaml.Node, message: str) -> ConfigError:
    return ConfigError(message, file=name, line=node.start_mark.line + 1)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [x for pair in node.value for x in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _index(node: yaml.Node, path: PathKey, lines: dict[PathKey, int], file: str) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            line = key_node.start_mark.line + 1
            if key == "<<":  # merge key: its content is indexed under the parent
                _index(value_node, path, lines, file)
                continue
            if key in seen:
                raise ConfigError(
                    f"duplicate key {key!r} (first defined on line {seen[key]})",
                    file=file,
                    line=line,
                    field=format_path((*path, key)),
                )
            seen[key] = line
            lines[(*path, key)] = line
            _index(value_node, (*path, key), lines, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _index(item, (*path, i), lines, file)


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest valid key, or empty."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""
