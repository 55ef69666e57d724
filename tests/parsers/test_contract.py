"""The parser contract (issue 14, item 5): every module in the registry has a
docstring with a schema note and a runnable example, ``info``, ``parse`` and
``detect``; the registry guards every ``parse`` once; the CLI parses through
the registry."""

from __future__ import annotations

import importlib
import json
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

from fleetscan import parsers
from fleetscan.cli import app
from fleetscan.model import ParseResult, Process
from fleetscan.parsers.base import ParserInfo, never_raises
from tests.parsers.listener_view import CORPUS, read_bytes_as_text

MODULES = [importlib.import_module(name) for name in parsers.MODULES]


def _example(module: ModuleType) -> tuple[str, str, list[object]]:
    """(command, output, listeners as JSON) of the docstring's ``Example::`` block."""
    doc = module.__doc__ or ""
    assert "Example::" in doc, f"{module.__name__}: no Example:: block"
    block = textwrap.dedent(doc.split("Example::", 1)[1].strip("\n").split("\n\n\n")[0])
    command_and_output, _, expected = block.partition("\n\n")
    # the output may itself hold a blank line (Windows): the JSON starts with '['
    while not expected.lstrip().startswith("["):
        more, _, expected = expected.partition("\n\n")
        command_and_output += "\n\n" + more
    first, _, output = command_and_output.partition("\n")
    assert first.startswith("$ "), first
    return first[2:], output + "\n", json.loads(expected)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_module_follows_the_contract(module: ModuleType) -> None:
    assert isinstance(module.info, ParserInfo)
    assert callable(module.parse) and callable(module.detect)
    assert "Schema" in (module.__doc__ or ""), f"{module.__name__}: no schema note"
    command, output, listeners = _example(module)
    result = module.parse(output)
    assert isinstance(result, ParseResult) and result.parser == module.info.name
    assert [x.to_dict() for x in result.listeners] == listeners
    assert result.unparsed == ()
    # the example is recognised by its command and by its content
    if not command.startswith("sh -c"):
        assert parsers.for_command(command).name == module.info.name
    assert parsers.detect(output).name == module.info.name
    assert 0.0 < module.detect(output) <= 1.0


def test_registry_names_are_unique_and_every_spec_is_guarded() -> None:
    names = [spec.name for spec in parsers.all_parsers()]
    assert len(names) == len(set(names)) == len(MODULES)
    for spec, module in zip(parsers.all_parsers(), MODULES, strict=True):
        assert spec.parse is not module.parse  # the registry's guard wraps it
        assert spec.info is module.info


def test_the_guard_turns_a_crash_into_unparsed_lines() -> None:
    def broken(text: str) -> ParseResult:
        raise RuntimeError("bug")

    result = never_raises("x", broken)("a\nb\n")
    assert [(u.line, u.text) for u in result.unparsed] == [(1, "a"), (2, "b")]
    assert result.listeners == () and result.owners_known is False


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_cli_parse_is_the_registry(module: ModuleType) -> None:
    _command, output, listeners = _example(module)
    expected = parsers.parse(output).to_dict()
    got = CliRunner().invoke(app, ["parse", "-"], input=output)
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout) == expected
    assert expected["listeners"] == listeners


CAPTURES = sorted(
    p
    for root in (
        CORPUS,
        CORPUS.parent / "linux",
        CORPUS.parent / "macos",
        CORPUS.parent / "windows",
    )
    for p in root.rglob("*")
    if p.is_file() and p.suffix in (".out", ".txt") and not p.name.startswith("tasklist")
)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_unknown_owner_fields_are_null_never_empty_strings(path: Path) -> None:
    """The JSON contract says null for what a format does not show (macOS
    ``netstat -anv`` without ``process:pid``, Windows pids tasklist does not
    list, ``? ? ? ?`` sockstat rows ...): no parser gives an empty string."""
    text = read_bytes_as_text(path)
    for listener in parsers.parse(text).to_dict()["listeners"]:
        for process in listener["processes"]:
            assert process["name"] != "" and process["user"] != "", (path, process)
            assert process["pid"] is None or isinstance(process["pid"], int)


def test_an_empty_name_or_user_is_stored_as_unknown() -> None:
    assert Process("", 5, "").to_dict() == {"name": None, "pid": 5, "user": None}
