"""Garbage in, ConfigError out: load_inventory never fails any other way.

Random bytes, random text and mutations of the real example inventories are
written under each name a user might give (INI without extension, .yaml,
Nornir hosts.yaml with its companions) and loaded.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetscan.errors import ConfigError
from fleetscan.inventory import Inventory, format_inventory, load_inventory

from .helpers import EXAMPLES

SEEDS = [
    (EXAMPLES / "ansible-example.ini").read_bytes(),
    (EXAMPLES / "ansible-example.yaml").read_bytes(),
    (EXAMPLES / "nornir" / "hosts.yaml").read_bytes(),
    (EXAMPLES / "nornir" / "groups.yaml").read_bytes(),
]
NAMES = ["hosts", "inventory.ini", "inventory.yaml", "hosts.yaml"]
# fragments that exercise the syntax of all three formats
TOKENS = [
    "[",
    "]",
    ":",
    "=",
    "\n",
    " ",
    "  ",
    "#",
    ";",
    "'",
    '"',
    "-",
    "*",
    "&",
    "!",
    "{",
    "}",
    "all:",
    "hosts:",
    "children:",
    "vars:",
    "groups:",
    "data:",
    "port:",
    "[web]",
    "[g:children]",
    "[g:vars]",
    "web[01:03]",
    "h[a:c]",
    "h:22",
    "ansible_port=",
    "ansible_become=",
    "abc",
    "999999",
    "0",
    "yes",
    "connection_options:",
    "extras:",
    "- ",
    "&a",
    "*a",
    "\x00",
    "\t",
    "\u00e9",
    "\r\n",
    "---",
    "ansible_host=",
    "hostname:",
    "plugin: x",
]


def _mutate(data: bytes, cuts: list[tuple[int, int, bytes]]) -> bytes:
    out = bytearray(data)
    for pos, length, insert in cuts:
        if not out:
            out.extend(insert)
            continue
        p = pos % len(out)
        out[p : p + length % 8] = insert
    return bytes(out)


mutations = st.builds(
    _mutate,
    st.sampled_from(SEEDS),
    st.lists(
        st.tuples(
            st.integers(0, 10_000),
            st.integers(0, 7),
            st.one_of(st.binary(max_size=6), st.sampled_from(TOKENS).map(str.encode)),
        ),
        min_size=1,
        max_size=6,
    ),
)
token_text = st.lists(st.sampled_from(TOKENS), max_size=60).map(lambda x: "".join(x).encode())
contents = st.one_of(
    mutations, token_text, st.binary(max_size=300), st.text(max_size=300).map(str.encode)
)


def _load_or_config_error(paths: list[Path]) -> Inventory | None:
    try:
        inv = load_inventory(paths, default_user="fuzz")
    except ConfigError as exc:
        assert str(exc)  # always a message a person can read
        return None
    assert inv.targets, "a loaded inventory always has hosts"
    rows = format_inventory(inv.targets)
    assert len(rows) == len(inv.targets)
    for t in inv.targets:
        assert t.name and not any(ch.isspace() for ch in t.name)
        assert not t.address.startswith("-")
        assert t.port is None or 1 <= t.port <= 65535
    return inv


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=contents, name=st.sampled_from(NAMES), groups=st.one_of(st.none(), contents))
def test_any_file_loads_or_raises_config_error(
    content: bytes, name: str, groups: bytes | None
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(content)
        if groups is not None:
            (Path(tmp) / "groups.yaml").write_bytes(groups)
        _load_or_config_error([path])
        _load_or_config_error([Path(tmp)])


@settings(max_examples=50, deadline=None)
@given(limit=st.text(alphabet=st.sampled_from(list("web*db!&:,~[]0-9 .")), max_size=20))
def test_any_limit_selects_or_raises_config_error(limit: str) -> None:
    inv = load_inventory([EXAMPLES / "ansible-example.ini"])
    try:
        chosen = inv.select(limit)
    except ConfigError:
        return
    assert chosen and {t.name for t in chosen} <= {t.name for t in inv.targets}
