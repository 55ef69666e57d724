"""Fixtures shared by the parser tests that read this machine's real tools."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

#: (family, type, address) of the sockets the real-tool tests open
OWN_SOCKETS = [
    (socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1"),
    (socket.AF_INET, socket.SOCK_STREAM, "0.0.0.0"),
    (socket.AF_INET6, socket.SOCK_STREAM, "::1"),
    (socket.AF_INET6, socket.SOCK_STREAM, "::"),
    (socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1"),
    (socket.AF_INET6, socket.SOCK_DGRAM, "::"),
]


@pytest.fixture
def own_sockets() -> Iterator[list[tuple[str, int, str, int]]]:
    """TCP listeners and bound UDP sockets of this process, v4 and v6 (v6only),
    loopback and wildcard: (proto, family, address, port)."""
    made: list[socket.socket] = []
    found: list[tuple[str, int, str, int]] = []
    try:
        for family, kind, host in OWN_SOCKETS:
            sock = socket.socket(family, kind)
            made.append(sock)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((host, 0))
            if kind == socket.SOCK_STREAM:
                sock.listen()
            proto = "tcp" if kind == socket.SOCK_STREAM else "udp"
            fam = 4 if family == socket.AF_INET else 6
            found.append((proto, fam, host, sock.getsockname()[1]))
        yield found
    finally:
        for sock in made:
            sock.close()
