"""Real peers for the alert tests, on 127.0.0.1: a webhook receiver (http.server thread) that
can fail or hang on demand and dedupes by Idempotency-Key as a careful receiver would, and
an SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.fakeweb import LoopbackServer, QuietHandler


class WebhookReceiver(LoopbackServer):
    """POSTs are logged with their key; `statuses` are answered first (then 200); while
    `hold` is set, a request waits for it to clear after telling `arrived`."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.requests: list[
            tuple[str, dict[str, Any]]
        ] = []  # (Idempotency-Key, body), every attempt
        self.hold = threading.Event()
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.answered = threading.Event()  # set after a 2xx answer was written
        self._lock = threading.Lock()
        receiver = self

        class _Handler(QuietHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers.get("Idempotency-Key", "")
                if receiver.hold.is_set():
                    receiver.arrived.set()
                    receiver.release.wait(60)
                with receiver._lock:
                    receiver.requests.append((key, body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                payload = b'{"ok": true}' if status < 300 else b'{"error": "try later"}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):  # the daemon was killed meanwhile
                    return
                if status < 300:
                    receiver.answered.set()

        self._serve(_Handler)
        self.url = f"{self.base}/hook"

    def stop(self) -> None:
        self.release.set()
        super().stop()

    def unique(self) -> dict[str, dict[str, Any]]:
        """What a receiver deduping by Idempotency-Key keeps: one body per key."""
        with self._lock:
            return {key: body for key, body in self.requests}

    def keys(self) -> Counter[str]:
        with self._lock:
            return Counter(key for key, _ in self.requests)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Collect:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


class SmtpServer:
    """aiosmtpd on 127.0.0.1: the messages it accepted, parsed. With `login`, AUTH is
    required and only that (user, password) is accepted."""

    def __init__(self, login: tuple[str, str] | None = None) -> None:
        self.handler = _Collect()
        self.port = free_port()
        self.logins: list[tuple[str, str]] = []
        kwargs: dict[str, Any] = {}
        if login is not None:

            def authenticator(
                server: Any, session: Any, envelope: Any, mechanism: str, data: Any
            ) -> AuthResult:
                pair = (data.login.decode(), data.password.decode())
                self.logins.append(pair)
                return AuthResult(success=pair == login)

            kwargs = {
                "authenticator": authenticator,
                "auth_required": True,
                "auth_require_tls": False,
            }
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[Message]:
        return self.handler.messages
