"""Untrusted text is printed as plain text on the terminal (issue 7, item 8).

Rich reads ``[...]`` in a plain string as markup: ``[link=URL]x[/link]``
becomes a clickable OSC 8 hyperlink and a closing tag without an opening one
(``[/x]``) raises a MarkupError. A process name on a scanned host and a value
in an inventory are data, so every table and line fleetscan prints shows them
exactly as they are. The attack runs for real: a process renames itself
(``/proc/self/comm``, what ``ss`` shows), listens on loopback, and the real
``ss`` output is parsed by the real CLI on a (forced) colour terminal.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import cli_env, named_listener, run_cli

#: process names (kernel comm holds at most 15 bytes) and inventory values
MARKUP = [
    pytest.param("[/x]", id="stray-closing-tag"),
    pytest.param("[link=h://e]x[/]", id="hyperlink"),  # 16 bytes: comm keeps 15
    pytest.param("[bold red]b[/]", id="style"),
    pytest.param(":thumbs_up:", id="emoji-code"),
    pytest.param("[/]", id="bare-close"),
]


@pytest.fixture(name="named_listener")
def named_listener_fixture(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    with named_listener(request.param) as found:
        yield found


def colour_env(home: Path) -> dict[str, str]:
    # a colour terminal: where Rich would emit styles and OSC 8 hyperlinks
    return cli_env(home, {"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1", "COLUMNS": "200"})


@pytest.mark.skipif(shutil.which("ss") is None, reason="iproute2 ss not installed")
@pytest.mark.parametrize("named_listener", MARKUP, indirect=True)
def test_parse_table_prints_a_hostile_process_name_literally(
    tmp_path: Path, named_listener: tuple[str, int]
) -> None:
    comm, port = named_listener
    listing = subprocess.run(
        ["ss", "-H", "-tlnp"], capture_output=True, text=True, check=True
    ).stdout
    assert comm in listing  # the real tool shows the name raw
    saved = tmp_path / "ss.out"
    saved.write_text(listing)
    out = run_cli(
        ["parse", str(saved), "--command", "ss -tlnp", "--format", "table"],
        cwd=tmp_path,
        env=colour_env(tmp_path),
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert "\x1b]8;" not in out.stdout  # no terminal hyperlink
    row = next(line for line in out.stdout.splitlines() if str(port) in line)
    plain = _strip_sgr(row)
    assert comm in plain


def _strip_sgr(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.mark.parametrize("value", [p.values[0] for p in MARKUP] + ["[link=https://evil]x[/link]"])
def test_inventory_show_prints_markup_in_values_literally(tmp_path: Path, value: str) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        json.dumps(
            {
                "all": {
                    "hosts": {"web1": {"ansible_host": "127.0.0.1", "note": value}},
                    "vars": {"owner": value},
                }
            }
        )
    )
    out = run_cli(["inventory", "show", "-i", str(inv)], cwd=tmp_path, env=colour_env(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "\x1b]8;" not in out.stdout
    text = _strip_sgr(out.stdout)
    assert f"note={value}" in text and f"owner={value}" in text


def test_policy_check_prints_a_bracketed_file_name_literally(tmp_path: Path) -> None:
    folder = tmp_path / "[bold"
    folder.mkdir()
    policy = folder / "x]policy.yaml"  # the path reads [bold/x]policy.yaml
    policy.write_text("version: 1\nforbidden:\n  - id: irc\n    ports: 6667\n")
    out = run_cli(["policy", "check", "-p", str(policy)], cwd=tmp_path, env=colour_env(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "[bold/x]policy.yaml" in out.stdout


def test_piped_tables_are_not_squeezed_to_80_columns(tmp_path: Path) -> None:
    """Issue 8 §5: a table written to a pipe keeps its natural width, so a
    long value is on one line and whole (no wrapping, no ellipsis)."""
    long = "very-long-value-" * 10
    inv = tmp_path / "inv.yaml"
    inv.write_text(json.dumps({"all": {"hosts": {"web1": {"ansible_host": "::1", "x": long}}}}))
    out = run_cli(["inventory", "show", "-i", str(inv)], cwd=tmp_path)  # stdout is a pipe
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if "web1" in line)
    assert f"x={long}" in row
    assert len(row) > 160
