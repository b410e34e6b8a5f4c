"""A small real HTTP server on 127.0.0.1 for tests: static routes with conditional GET,
callables for misbehaving servers, and a log of every request it answered."""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: bool = False  # answer If-None-Match with 304


Handler = Callable[[BaseHTTPRequestHandler], None]


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 (keep-alive, as the crawler and the daemon's clients speak it), no stderr log."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass


class LoopbackServer:
    """A threading HTTP server on a free port of `host`, served from a daemon thread."""

    def _serve(self, handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1") -> None:
        self.server = ThreadingHTTPServer((host, 0), handler)
        self.server.daemon_threads = True
        self.host = f"{host}:{self.server.server_address[1]}"
        self.base = f"http://{self.host}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeWeb(LoopbackServer):
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route | Handler] = {}
        self.log: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        web = self

        class _Handler(QuietHandler):
            def do_GET(self) -> None:
                with web._lock:
                    web.log.append(("GET", self.path))
                route = web.routes.get(self.path) or web.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    self._send(
                        404, b"<html><body>not found</body></html>", {"Content-Type": "text/html"}
                    )
                    return
                if callable(route):
                    route(self)
                    return
                headers = dict(route.headers)
                if route.etag:
                    tag = '"' + hashlib.sha1(route.body).hexdigest()[:16] + '"'
                    headers["ETag"] = tag
                    if self.headers.get("If-None-Match") == tag:
                        self._send(304, b"", headers)
                        return
                self._send(route.status, route.body, headers)

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if status != 304:
                    self.wfile.write(body)

        self._serve(_Handler, host)

    def add(
        self,
        path: str,
        body: bytes | str = b"",
        *,
        status: int = 200,
        content_type: str = "text/html; charset=utf-8",
        etag: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        if isinstance(body, str):
            body = body.replace("{host}", self.host).encode("utf-8")
        all_headers = {"Content-Type": content_type, **(headers or {})}
        self.routes[path] = Route(body, status, all_headers, etag)

    def add_handler(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def fixture(self, name: str) -> str:
        return (FIXTURES / "site" / name).read_text(encoding="utf-8")

    def requests_to(self, path_prefix: str) -> list[str]:
        with self._lock:
            return [p for _, p in self.log if p.startswith(path_prefix)]


def gz(data: str) -> bytes:
    return gzip.compress(data.encode("utf-8"))
