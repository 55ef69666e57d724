"""``report.html``: one self-contained file for auditors.

Rendered with Jinja2 from ``reports/templates/report.html.j2``. The templates
live at the repository top level and are read as the ``_templates`` resources
of the installed package (:mod:`fleetscan.resources`), one way for a checkout
and a wheel.

Safety of untrusted text, in layers:

1. autoescape is on for every template and undefined variables raise;
2. the environment's ``finalize`` hook runs every printed string through
   :func:`~fleetscan.reports.sanitize.visible_controls` (ESC shows as
   ``\\x1b``); multi-line blocks use the ``block`` filter, which keeps
   newlines but escapes the rest;
3. a Content-Security-Policy allows no network access at all and only the
   report's own inline CSS and JS, pinned by their SHA-256 — an injected
   ``<script>`` or ``onerror=`` would not run even if escaping failed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import jinja2
from markupsafe import Markup, escape

from fleetscan.addresses import bind_class
from fleetscan.exposure.firewall import is_ruleset
from fleetscan.model import Finding, Listener, ProbeResult, ScanRun, Status
from fleetscan.reports import htmldata, summary, trend
from fleetscan.reports.files import DEFAULT_MODE, atomic_open
from fleetscan.reports.sanitize import clip, visible_controls
from fleetscan.resources import PACKAGE, TEMPLATES

FILENAME = "report.html"
TEMPLATE = "report.html.j2"

MAX_UNPARSED_SHOWN = 200  # per host; the JSON report keeps them all
MAX_EVIDENCE_CHARS = 4_000  # per stderr block
MAX_RULESET_CHARS = 16_000  # firewall ruleset evidence (the JSON report has the same)
OPEN_DETAILS_LIMIT = 200  # above this many hosts, every host section starts closed
#: rows of the hosts and findings tables rendered as HTML (the first screen);
#: report.js pages through the rest from the embedded data. A run with at most
#: this many hosts also gets every host's details as HTML (and on paper).
PAGE_SIZE = 100
#: host details are HTML when the run fits on one page and has at most this
#: many listeners; else report.js draws a host's details when it is opened
#: (a host of 100,000 listeners made a 67 MB page of table rows)
INLINE_LISTENER_LIMIT = 5_000

#: characters written at a time (the rendered pieces are joined up to this size)
CHUNK = 256 * 1024

STATUS_ICONS = {Status.OK: "✔", Status.PARTIAL: "◐"}  # everything else: ✖
VERDICT_ICONS = {"compliant": "✔", "non-compliant": "✖", "not-scanned": "?"}


def _finalize(value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, Markup):
        return visible_controls(value)
    return value


def _block(value: str, limit: int) -> Markup:
    """Multi-line untrusted text for ``<pre>``: bounded, newlines and tabs
    kept, other controls visible, HTML-escaped."""
    return escape(visible_controls(clip(value, limit), keep="\n\t"))


class _TemplateCache(jinja2.FileSystemBytecodeCache):
    """Jinja's file cache of compiled templates; a file that cannot be read or
    written is a template compiled again, never a failed report."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except OSError:
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def template_cache_dir() -> Path | None:
    """Where compiled templates are kept between runs (compiling them costs
    ~0.15 s of CPU per run): ``$XDG_CACHE_HOME/fleetscan/templates`` (default
    ``~/.cache``), a folder of this user's that nobody else can write, since
    its files are code this process runs. None (compile every time) when it
    cannot be made or is not private. Jinja checks each file against its
    template's source, so an edited template is compiled again."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    folder = root / "fleetscan" / "templates"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = folder.lstat()
    except (OSError, RuntimeError):  # RuntimeError: no home directory
        return None
    private = stat.S_ISDIR(st.st_mode) and not st.st_mode & 0o022
    return folder if private and st.st_uid == os.geteuid() else None


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    cache_dir = template_cache_dir()
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(PACKAGE, TEMPLATES),
        bytecode_cache=_TemplateCache(str(cache_dir)) if cache_dir is not None else None,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=False,
        keep_trailing_newline=True,
    )
    env.filters["clip"] = clip
    env.filters["block"] = _block
    env.globals.update(
        status_icon=lambda st: STATUS_ICONS.get(st, "✖"),
        verdict_icon=lambda v: VERDICT_ICONS.get(v, "?"),
        verdict_label=lambda v: summary.VERDICT_LABELS.get(v, v),
        bind_class=bind_class,
        fmt_duration=summary.format_duration,
    )
    return env


def _static(env: jinja2.Environment, name: str) -> str:
    """The raw text of a non-template asset (CSS/JS) found by the loader."""
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, name)
    return source


def _sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def render_html(run: ScanRun, extra_sections: Sequence[str] = ()) -> str:
    """The report as a string (pure apart from reading the templates)."""
    return "".join(render_chunks(run, extra_sections))


def render_chunks(run: ScanRun, extra_sections: Sequence[str] = ()) -> Iterator[str]:
    """The report as it is rendered, in pieces of about :data:`CHUNK` characters.

    A host with 100,000 listeners renders millions of small strings: joined
    into one document they cost several times the report's size in memory
    (340 MB for that host); written as they come, a chunk at a time."""
    env = environment()
    css = _static(env, "report.css") + _static(env, "changes.css")
    js = _static(env, "report.js")
    csp = (
        "default-src 'none'; "
        f"style-src {_sha256(css)}; "
        f"script-src {_sha256(js)}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    findings = summary.sort_findings(run.findings)
    by_listener: dict[tuple[str, Listener], list[Finding]] = {}
    for f in findings:
        if f.listener is not None:
            by_listener.setdefault((f.host, f.listener), []).append(f)
    waived = [f for f in findings if f.waived]
    listener_total = sum(len(s.listeners) for s in run.scans)
    matrix: dict[str, dict[Listener, dict[str, ProbeResult]]] = {}
    for r in run.exposure:
        matrix.setdefault(r.host, {}).setdefault(r.listener, {})[r.zone] = r
    context = {
        "run": run,
        "exposure_for": lambda host: list(matrix.get(host, {}).items()),
        "is_ruleset": is_ruleset,
        "max_ruleset": MAX_RULESET_CHARS,
        "csp": csp,
        "css": Markup(css),
        "js": Markup(js),
        "counts": summary.counts(run),
        "verdicts": summary.verdicts(run),
        "exit_code": summary.exit_code(run),
        "exit_meaning": summary.EXIT_MEANINGS.get(summary.exit_code(run), ""),
        "duration": summary.format_duration(summary.duration_seconds(run)),
        "findings": findings,
        "waived": waived,
        "expired": [f for f in findings if f.kind == "waiver"],
        "by_host": summary.findings_by_host(run),
        "host_index": {s.host: i for i, s in enumerate(run.scans, start=1)},
        "is_gating": lambda f: summary.is_gating(f, run.fail_on),
        "findings_for": lambda host, x: by_listener.get((host, x), ()),
        "listener_total": listener_total,
        "scanned_total": sum(1 for s in run.scans if s.status.scanned),
        "max_unparsed": MAX_UNPARSED_SHOWN,
        "max_evidence": MAX_EVIDENCE_CHARS,
        "open_limit": OPEN_DETAILS_LIMIT,
        "page_size": PAGE_SIZE,
        "hosts_page": run.scans[:PAGE_SIZE],
        "findings_page": findings[:PAGE_SIZE],
        "details_inline": len(run.scans) <= PAGE_SIZE and listener_total <= INLINE_LISTENER_LIMIT,
        "rollup": summary.rollup(run),
        "data": Markup(htmldata.page_data(run)),
        "extra_sections": extra_sections,
        "hostkey_notes": summary.hostkey_trust_notes(run, include_off=False),
        "trend_charts": trend.charts(run.trend),
    }
    pending: list[str] = []
    size = 0
    for piece in env.get_template(TEMPLATE).generate(context):
        if len(piece) > CHUNK:  # the data block: passed on in slices, never copied whole
            if pending:
                yield "".join(pending)
                pending.clear()
                size = 0
            for start in range(0, len(piece), CHUNK):
                yield piece[start : start + CHUNK]
            continue
        pending.append(piece)
        size += len(piece)
        if size >= CHUNK:
            yield "".join(pending)
            pending.clear()
            size = 0
    if pending:
        yield "".join(pending)


def stream_html(run: ScanRun, out: IO[str]) -> None:
    for chunk in render_chunks(run):
        out.write(chunk)


def write_html(run: ScanRun, outdir: Path, mode: int = DEFAULT_MODE) -> list[Path]:
    path = outdir / FILENAME
    # finalize already escaped surrogates; atomic_open's backslashreplace is the backstop
    with atomic_open(path, mode=mode) as out:
        stream_html(run, out)
    return [path]
