"""The HTML report's trend charts: the last runs as inline SVG. Pure.

No script and no external resource: the SVG is markup in the page, coloured
by presentation attributes (not ``style=``, which the report's
Content-Security-Policy forbids). Every label is escaped; run ids are ours,
but nothing here trusts them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from fleetscan.model import TrendPoint

WIDTH, HEIGHT, PAD = 320, 90, 4

#: series colours; the legend says the names in text (never colour alone)
STATUS_SERIES = (("ok", "#2e7d32"), ("partial", "#f9a825"), ("not scanned", "#c62828"))
SEVERITY_SERIES = (
    ("critical", "#8e0000"),
    ("high", "#c62828"),
    ("medium", "#ef6c00"),
    ("low", "#f9a825"),
    ("info", "#607d8b"),
)
LISTENER_SERIES = (("listeners", "#1565c0"),)


@dataclass(frozen=True)
class Chart:
    title: str
    svg: Markup
    legend: tuple[tuple[str, str], ...]
    latest: str


def _status_values(p: TrendPoint) -> list[int]:
    ok = p.by_status.get("ok", 0)
    partial = p.by_status.get("partial", 0)
    return [ok, partial, sum(p.by_status.values()) - ok - partial]


def _severity_values(p: TrendPoint) -> list[int]:
    return [p.active_by_severity.get(name, 0) for name, _ in SEVERITY_SERIES]


def charts(points: Sequence[TrendPoint]) -> list[Chart]:
    """Three stacked-bar charts (hosts by status, active findings by severity,
    listeners), one bar per run, oldest left; empty for fewer than two runs."""
    if len(points) < 2:
        return []
    specs: list[tuple[str, tuple[tuple[str, str], ...], Callable[[TrendPoint], list[int]]]] = [
        ("Hosts by status", STATUS_SERIES, _status_values),
        ("Active findings by severity", SEVERITY_SERIES, _severity_values),
        ("Listening sockets", LISTENER_SERIES, lambda p: [p.listeners]),
    ]
    out = []
    for title, series, values in specs:
        rows = [values(p) for p in points]
        latest = ", ".join(f"{n} {name}" for (name, _), n in zip(series, rows[-1], strict=True))
        out.append(Chart(title, _bars(title, points, series, rows), series, latest))
    return out


def _bars(
    title: str,
    points: Sequence[TrendPoint],
    series: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[int]],
) -> Markup:
    top = max((sum(r) for r in rows), default=0) or 1
    slot = (WIDTH - 2 * PAD) / len(rows)
    bar = max(1.0, slot * 0.7)
    parts = [
        f'<svg class="trend" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(title)}, last {len(rows)} runs">'
    ]
    for i, (point, row) in enumerate(zip(points, rows, strict=True)):
        x = PAD + i * slot + (slot - bar) / 2
        y = float(HEIGHT - PAD)
        label = f"{point.run}: " + ", ".join(
            f"{n} {name}" for (name, _), n in zip(series, row, strict=True)
        )
        parts.append(f"<g><title>{escape(label)}</title>")
        for (_, colour), n in zip(series, row, strict=True):
            if not n:
                continue
            h = (HEIGHT - 2 * PAD) * n / top
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour}"/>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))
