"""One-line text views of parse results, so corpus expectations read like the
raw output they were checked against (``tests/fixtures/expected/...``)."""

from __future__ import annotations

from pathlib import Path

from fleetscan.model import Listener, ParseResult

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CORPUS = FIXTURES / "corpus"
EXPECTED = FIXTURES / "expected"


def view(listener: Listener) -> str:
    """``tcp4 0.0.0.0 135 LISTEN @5 1712/svchost.exe/-``: proto+family, address
    (``%zone``), port, state, first line, then pid/name/user per process."""
    zone = f"%{listener.zone}" if listener.zone else ""
    owners = " ".join(
        f"{p.pid if p.pid is not None else '-'}/{p.name or '-'}/{p.user or '-'}"
        for p in listener.processes
    )
    text = (
        f"{listener.proto}{listener.family} {listener.address}{zone} {listener.port} "
        f"{listener.state} @{listener.line}"
    )
    return f"{text} {owners}" if owners else text


def views(result: ParseResult) -> list[str]:
    return [view(x) for x in result.listeners]


def read_bytes_as_text(path: Path) -> str:
    """Corpus files are UTF-8 (CRLF kept); undecodable bytes must not stop a test."""
    return path.read_bytes().decode("utf-8", "replace")


def expected_views(corpus_file: Path) -> list[str]:
    """The checked expectation for a corpus file: one view per line, ``#`` comments."""
    relative = corpus_file.relative_to(CORPUS)
    golden = EXPECTED / relative.with_suffix(".listeners")
    lines = golden.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def expected_unparsed(corpus_file: Path) -> list[int]:
    """Line numbers the golden file says stay unparsed (``# unparsed @N: ...``)."""
    relative = corpus_file.relative_to(CORPUS)
    golden = EXPECTED / relative.with_suffix(".listeners")
    numbers = []
    for line in golden.read_text(encoding="utf-8").splitlines():
        if line.startswith("# unparsed @"):
            numbers.append(int(line[len("# unparsed @") :].split(":", 1)[0]))
    return numbers


def corpus_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (CORPUS / folder).rglob("*.out"))
