"""The per-host lookups made cheap: the known_hosts name index (exact names
need no pattern match) gives exactly what matching every line one by one
gives, for plain, wildcard, negated, hashed, multi-name, @cert-authority and
@revoked lines; a hop without ssh_config resolves as asyncssh would."""

from __future__ import annotations

import base64
import hashlib
import hmac

from hypothesis import given, settings
from hypothesis import strategies as st

from fleetscan.transports.hostkeys import Entry, KnownHosts, parse_line


def _blob(n: int) -> bytes:
    kind = b"ssh-ed25519"
    return len(kind).to_bytes(4, "big") + kind + (32).to_bytes(4, "big") + bytes([n]) * 32


def _hashed(name: str, salt: bytes = b"s" * 20) -> str:
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


NAMES = ["[10.0.0.1]:22", "[10.0.0.2]:2222", "web-01", "WEB-02", "db.example", "10.0.0.3"]
PATTERNS = [
    *NAMES,
    "web-01,db.example",
    "[10.0.0.1]:22,[10.0.0.1]:22",
    "web-*",
    "*.example,!db.example",
    "[10.0.0.?]:22",
    _hashed("web-01"),
    _hashed("[10.0.0.2]:2222"),
]


def _brute(known: KnownHosts, name: str, marker: str | None) -> list[Entry]:
    return [e for e in known.entries if e.marker == marker and e.matches(name)]


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.tuples(
            st.sampled_from([None, "cert-authority", "revoked"]),
            st.sampled_from(PATTERNS),
            st.integers(0, 5),
        ),
        max_size=12,
    ),
    name=st.sampled_from([*NAMES, "web-01".upper(), "other", "x.example"]),
)
def test_index_finds_what_matching_every_line_finds(
    lines: list[tuple[str | None, str, int]], name: str
) -> None:
    entries = []
    for number, (marker, pattern, key) in enumerate(lines, 1):
        text = f"{'@' + marker + ' ' if marker else ''}{pattern} ssh-ed25519 "
        entry = parse_line(text + base64.b64encode(_blob(key)).decode(), f"kh:{number}")
        assert entry is not None
        entries.append(entry)
    known = KnownHosts(tuple(entries))
    for marker in (None, "cert-authority", "revoked"):
        assert known.for_name(name, marker) == _brute(known, name, marker)
    for key in range(6):
        revoked = any(e.marker == "revoked" and e.blob == _blob(key) for e in entries)
        assert known.revoked(_blob(key)) == revoked


# --- a hop without any ssh_config file ---------------------------------------------


def test_a_hop_without_ssh_config_resolves_as_asyncssh_would() -> None:
    """With no ssh_config file, a hop is not run through asyncssh's option
    parser; the host, port, user, alias and ProxyJump are what it would give."""
    from pathlib import Path

    import asyncssh

    from fleetscan.model import Target
    from fleetscan.options import RunOptions
    from fleetscan.transports import asyncssh_transport as t

    for default_user in (None, "ops"):
        options = RunOptions(inventory=(Path("i.ini"),), policies=(Path("p.yaml"),), ssh_config=())
        settings = options.connect_settings()
        if default_user:
            from dataclasses import replace

            settings = replace(settings, default_user=default_user)
        route = t._Route(Target("h1", "10.0.0.1"), settings)
        assert route.config == []
        for host, port, user in [("10.0.0.1", None, None), ("h", 2222, "bob"), ("h", 22, None)]:
            got = route.resolve(host, port, user)
            want = asyncssh.SSHClientConnectionOptions(
                options=route.options,
                config=[],
                host=host,
                client_keys=None,
                **t._given(port, user),
            )
            fields = ("host", "port", "username", "host_key_alias", "tunnel")
            assert [getattr(got, f) for f in fields] == [getattr(want, f) for f in fields]
