"""Garbage in, ConfigError out: load_policies never fails any other way.

Random text and mutations of the shipped policies (lines dropped, duplicated,
swapped, cut, tokens spliced in) are loaded; the only acceptable outcomes are
a Policy or a ConfigError naming the file.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetscan.errors import ConfigError
from fleetscan.policy import Policy, builtin_policy_path, load_policies

SEEDS = [
    builtin_policy_path(name).read_text(encoding="utf-8")
    for name in ("baseline", "demo", "example-infra")
]
TOKENS = [
    ":", "-", " ", "  ", "\n", "#", "'", '"', "[", "]", "{", "}", "&a", "*a", "!!python/object",
    "ports:", "id:", "severity:", "expires:", "2026-13-01", "4444", "-1", "70000", "6667-6669",
    "deny:", "allow:", "waivers:", "forbidden:", "expected:", "rule:", "\t", "\x00", "é",
]  # fmt: skip


@st.composite
def mutated_policy(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(SEEDS)).split("\n")
    for _ in range(draw(st.integers(1, 6))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["drop", "dup", "cut", "splice", "swap"]))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "cut":
            lines[i] = lines[i][: draw(st.integers(0, max(0, len(lines[i]))))]
        elif op == "splice":
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + draw(st.sampled_from(TOKENS)) + lines[i][at:]
        else:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def _load(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            policy = load_policies([path])
        except ConfigError as exc:
            assert str(path) in str(exc)
        else:
            assert isinstance(policy, Policy)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(mutated_policy())
def test_mutated_policies_load_or_raise_config_error(text: str) -> None:
    _load(text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS) | st.text(max_size=4), max_size=80))
def test_random_text_loads_or_raises_config_error(parts: list[str]) -> None:
    _load("".join(parts))
