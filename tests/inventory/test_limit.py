"""--limit selects hosts with Ansible's pattern semantics (stricter on typos)."""

from __future__ import annotations

import pytest

from fleetscan.errors import ConfigError
from fleetscan.inventory import Inventory
from fleetscan.inventory.limit import split_terms

from .helpers import EXAMPLES, load


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return load(EXAMPLES / "ansible-example.ini")


WEB = ["web01.example.com", "web02.example.com", "web03.example.com", "web04.example.com"]
DB = ["db-a.example.com", "db-b.example.com", "db-c.example.com"]


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("web", WEB),
        ("web01.example.com", WEB[:1]),
        ("web,db", WEB + DB),
        ("web:db", WEB + DB),
        ("db:web", WEB + DB),  # inventory order, whatever the term order
        ("web*", WEB),
        ("*.example.com:!prod", ["bastion.example.com"]),
        ("prod:!web", [*DB, "app01.example.com"]),
        ("prod,!db-*", [*WEB, "app01.example.com"]),
        ("prod:&db", DB),
        ("&db", DB),
        ("!prod", ["bastion.example.com"]),
        ("~^web0[12]", WEB[:2]),
        ("~db|app", [*DB, "app01.example.com"]),
        ("web[0]", WEB[:1]),
        ("web[-1]", WEB[-1:]),
        ("web[1:2]", WEB[1:3]),
        ("all:!web:!db:!bastion*", ["app01.example.com"]),
        ("*", ["bastion.example.com", *WEB, *DB, "app01.example.com"]),
        ("db,!not-in-inventory", DB),  # an exclusion may name nothing
        (" web , db ", WEB + DB),
    ],
)
def test_limit_patterns(inv: Inventory, limit: str, expected: list[str]) -> None:
    assert [t.name for t in inv.select(limit, check_files=False)] == expected


def test_no_limit_selects_everything(inv: Inventory) -> None:
    assert inv.select(None, check_files=False) == inv.targets


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("wbe", "'wbe' matches no host or group (did you mean 'web'?)"),
        ("web,db-z.example.com", "'db-z.example.com' matches no host"),
        ("web:&nothing*", "'&nothing*' matches no host"),
        ("web:&db", "selects no host"),
        ("prod:!prod", "selects no host"),
        ("~[", "invalid regular expression"),
        ("", "empty limit"),
        (" , ", "empty limit"),
    ],
)
def test_limit_that_matches_nothing_is_a_config_error(
    inv: Inventory, limit: str, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        inv.select(limit, check_files=False)
    assert message in str(err.value)
    assert err.value.field == "--limit"


@pytest.mark.parametrize(
    ("limit", "terms"),
    [
        ("a,b:c", ["a", "b:c"]),
        ("a:b:!c", ["a", "b", "!c"]),
        ("web[1:2]:db", ["web[1:2]", "db"]),
        ("2001:db8::1", ["2001:db8::1"]),
        ("!2001:db8::1", ["!2001:db8::1"]),
    ],
)
def test_limit_is_split_on_commas_else_on_colons_outside_brackets(
    limit: str, terms: list[str]
) -> None:
    assert split_terms(limit) == terms
