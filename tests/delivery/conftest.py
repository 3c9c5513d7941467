"""A real SMTP server (aiosmtpd) on 127.0.0.1 for the transport, with faults on demand.

The server records every message it accepts and every session it sees. A test queues
faults for the next MAIL, RCPT or DATA commands: a reply (a 421 also closes the
connection, as RFC 5321 §3.8 has servers do), ``DROP`` (the connection goes away with
no reply) or ``STALL`` (no reply for a long while). TLS uses trustme certificates for
127.0.0.1 issued by a private CA.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from publisher.settings import SmtpSettings

HOST = "127.0.0.1"
USERNAME = "mailer"
PASSWORD = "correct horse"
DROP = "DROP"  # close the connection instead of replying
STALL = "STALL"  # do not reply for STALL_SECONDS
STALL_SECONDS = 30.0  # far longer than any test; the server's stop cancels it


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    sender: str
    recipients: tuple[str, ...]
    content: bytes
    mail_options: tuple[str, ...]
    tls: bool
    user: str | None


@dataclass
class Handler:
    """aiosmtpd hooks that record what they see and misbehave when told to."""

    messages: list[Received] = field(default_factory=list)
    peers: set[tuple[str, int]] = field(default_factory=set)  # clients that said EHLO
    mail_commands: int = 0
    # Recipient → the reply to every RCPT for it.
    refuse: dict[str, str] = field(default_factory=dict)
    faults: dict[str, deque[str]] = field(
        default_factory=lambda: {"MAIL": deque(), "RCPT": deque(), "DATA": deque()}
    )
    lock: threading.Lock = field(default_factory=threading.Lock)
    data_delay: float = 0.0  # seconds each DATA takes, as a real server's disk would

    @property
    def sessions(self) -> int:
        """How many connections clients opened (and said EHLO on)."""
        with self.lock:
            return len(self.peers)

    def fail(self, command: str, *replies: str) -> None:
        """The next ``len(replies)`` ``command``s get these replies, in order."""
        with self.lock:
            self.faults[command].extend(replies)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.lock:  # a client says EHLO again after STARTTLS: count its address once
            self.peers.add(session.peer)
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self.lock:
            self.mail_commands += 1
        if (fault := await self._fault("MAIL", server)) is not None:
            return fault
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if (fault := await self._fault("RCPT", server)) is not None:
            return fault
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if (fault := await self._fault("DATA", server)) is not None:
            return fault
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        received = Received(
            sender=envelope.mail_from,
            recipients=tuple(envelope.rcpt_tos),
            content=envelope.original_content,
            mail_options=tuple(envelope.mail_options),
            tls=server.transport.get_extra_info("ssl_object") is not None,
            user=session.auth_data.login.decode() if session.authenticated else None,
        )
        with self.lock:
            self.messages.append(received)
        return "250 2.0.0 Ok: queued"

    async def _fault(self, command: str, server: Any) -> str | None:
        with self.lock:
            queue = self.faults[command]
            fault = queue.popleft() if queue else None
        if fault == DROP:
            server.transport.abort()
            return "250 never sent"
        if fault == STALL:
            await asyncio.sleep(STALL_SECONDS)
            return "451 4.4.2 Stalled"
        if fault is not None and fault.startswith("421"):
            # The reply is written before this callback runs, and close() flushes it.
            server.loop.call_soon(server.transport.close)
        return fault


class _Controller(Controller):
    """A Controller on port 0: it learns the port the system chose before using it.

    aiosmtpd 1.4.6 would try to reach the server on port 0 to start it.
    """

    def _trigger_server(self) -> None:
        server = cast(asyncio.Server, self.server)  # listening since start() saw it ready
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USERNAME.encode(),
        PASSWORD.encode(),
    )
    # handled=False: aiosmtpd answers a failure with 535 itself.
    return AuthResult(success=ok, handled=ok, auth_data=auth_data if ok else None)


@dataclass
class MailServer:
    """A running server: where it listens and what it saw."""

    port: int
    handler: Handler

    def settings(self, **overrides: Any) -> SmtpSettings:
        return SmtpSettings(host=HOST, port=self.port, **overrides)


@dataclass(frozen=True)
class Certificates:
    """A private CA, the server's certificate for 127.0.0.1, and a CA that did not sign it."""

    server_context: ssl.SSLContext
    ca_file: Path
    other_ca_file: Path


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """trustme certificates: the server's is for 127.0.0.1 and localhost."""
    folder = tmp_path_factory.mktemp("tls")
    ca, other = trustme.CA(), trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST, "localhost").configure_cert(context)
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    other.cert_pem.write_to_path(str(folder / "other.pem"))
    return Certificates(context, folder / "ca.pem", folder / "other.pem")


@pytest.fixture
def start_server(certificates: Certificates) -> Iterator[Callable[..., MailServer]]:
    """Start servers: ``start_server(tls="starttls" | "tls" | None, auth=False, ...)``.

    Each is stopped at the end of the test.
    """
    controllers: list[Controller] = []

    def start(
        *,
        tls: str | None = None,
        auth: bool = False,
        require_tls: bool = True,
        handler: Handler | None = None,
        **kwargs: Any,
    ) -> MailServer:
        handler = handler or Handler()
        options: dict[str, Any] = {"hostname": HOST, "port": 0, "server_hostname": "mx.test"}
        if tls == "starttls":
            options |= {"tls_context": certificates.server_context, "require_starttls": require_tls}
        elif tls == "tls":
            options["ssl_context"] = certificates.server_context
        if auth:
            options |= {"authenticator": _authenticate, "auth_require_tls": tls is not None}
        controller = _Controller(handler, **(options | kwargs))
        controller.start()
        controllers.append(controller)
        return MailServer(controller.port, handler)

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def server(start_server: Callable[..., MailServer]) -> MailServer:
    """A plain SMTP server with no TLS and no AUTH."""
    return start_server()


@pytest.fixture(scope="session")
def dkim_key() -> tuple[bytes, bytes]:
    """A fresh RSA key: the private PEM and the DNS TXT record of its public half."""
    pytest.importorskip("dkim")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def deployment_config(
    directory: Path, database_url: str, server: MailServer, *, extra: str = ""
) -> Path:
    """A deployment in ``directory`` sending to ``server`` from ``database_url``: an empty
    subscriptions.yaml and a publisher.toml (``extra`` appended, TOML) for the commands
    a test starts in a process of their own."""
    (directory / "subscriptions.yaml").write_text("subscribers: []\n", encoding="utf-8")
    config = directory / "publisher.toml"
    config.write_text(
        f'database_url = "{database_url}"\n'
        'secret_key = "delivery-test-key"\n'
        '[sender]\nfrom = "OSCE News <news@example.org>"\n'
        f'[smtp]\nhost = "{HOST}"\nport = {server.port}\n' + extra,
        encoding="utf-8",
    )
    return config


def command_environment() -> dict[str, str]:
    """This process's environment without PUBLISHER_* settings: the config file rules."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
