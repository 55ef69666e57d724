"""Real local receivers for alert tests: an HTTP server that records every POST
(and can be switched down), and an aiosmtpd SMTP server with TLS and AUTH."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class HttpReceiver:
    """Records JSON bodies and headers of POSTs; ``status`` is what it answers."""

    port: int = 0
    status: int = 200
    posts: list[tuple[dict[str, str], Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/T0SECRETPATH"

    @property
    def bodies(self) -> list[Any]:
        return [b for _, b in self.posts]


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    rec = HttpReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if rec.status == 200:
                rec.posts.append((dict(self.headers.items()), json.loads(body)))
            self.send_response(rec.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "smtp.crt", tmp / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@dataclass
class SmtpReceiver:
    port: int
    cert: Path
    messages: list[Message] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)


class _Handler:
    def __init__(self, rec: SmtpReceiver) -> None:
        self.rec = rec

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.rec.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@contextmanager
def smtp_receiver(
    tmp: Path, *, implicit_tls: bool, user: str, password: str
) -> Iterator[SmtpReceiver]:
    cert, key = self_signed(tmp)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    rec = SmtpReceiver(port=free_port(), cert=cert)

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login = (auth_data.login.decode(), auth_data.password.decode())
            rec.logins.append(login)
            return AuthResult(success=login == (user, password))
        return AuthResult(success=False)

    kwargs: dict[str, Any] = {"authenticator": authenticator, "auth_required": True}
    if implicit_tls:
        # aiosmtpd counts only STARTTLS as TLS for AUTH; the socket is TLS here
        kwargs.update(ssl_context=ctx, auth_require_tls=False)
    else:
        kwargs.update(tls_context=ctx, require_starttls=True, auth_require_tls=True)
    controller = Controller(_Handler(rec), hostname="127.0.0.1", port=rec.port, **kwargs)
    controller.start()
    try:
        yield rec
    finally:
        controller.stop()
