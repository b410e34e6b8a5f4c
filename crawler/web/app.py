"""The Starlette app of `mediawatch serve`: routes, the token gate, templates, static files.

Handlers are plain functions (Starlette runs them in its thread pool) that open the archive
for one short read session each (archive/browse.py), so the daemon writes between requests.
No asset comes from elsewhere: CSS is in static/, charts are SVG drawn by charts.py, and no
page needs a script.
"""

from __future__ import annotations

import hmac
import ipaddress
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

HERE = Path(__file__).parent
COOKIE = "mediawatch_token"
# Our pages: own files only, no script at all. A stored raw page: a sandbox that may load
# nothing (no script, no beacon to the outlet, no request leaving the machine).
PAGE_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
RAW_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: the only binds that need no token."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class TokenGate:
    """Every request needs the token when one is set: `Authorization: Bearer T`, or
    `?token=T` once (it is then kept in an HttpOnly cookie and dropped from the URL)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token

    def _ok(self, given: str | None) -> bool:
        return (
            given is not None
            and self.token is not None
            and hmac.compare_digest(given.encode(), self.token.encode())
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.token is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        auth = request.headers.get("authorization", "")
        bearer = auth[7:] if auth.lower().startswith("bearer ") else None
        in_url = request.query_params.get("token")
        if self._ok(in_url):
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + ("?" + urlencode(rest) if rest else "")
            response: Response = RedirectResponse(target, status_code=303)
            response.set_cookie(COOKIE, in_url or "", httponly=True, samesite="strict")
        elif self._ok(bearer) or self._ok(request.cookies.get(COOKIE)):
            await self.app(scope, receive, send)
            return
        else:
            response = PlainTextResponse(
                "401: this mediawatch serve needs its token: open /?token=TOKEN once, "
                "or send Authorization: Bearer TOKEN\n",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        await response(scope, receive, send)


class SecurityHeaders:
    """CSP and friends on every response that did not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                names = {k.lower() for k, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


def create_app(db: str | Path, *, token: str | None = None, timeout: float = 20.0) -> ASGIApp:
    """The whole web app over the archive at `db` (read-only)."""
    from crawler.web import views

    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["fmt"] = views.fmt
    templates.env.globals["qs"] = views.qs
    routes = [
        Route("/", views.index),
        Route("/search", views.search_page),
        Route("/search/chart.svg", views.search_chart),
        Route("/search.{fmt:str}", views.search_download),
        Route("/articles/{id:int}", views.article_page),
        Route("/articles/{id:int}/raw", views.raw_page),
        Route("/outlets", views.outlets_page),
        Route("/trends", views.trends_page),
        Route("/trends.csv", views.trends_csv),
        Route("/sql", views.sql_page),
        Route("/sql.csv", views.sql_csv),
        Route("/alerts/{name:str}.atom", views.alert_feed),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={404: views.not_found})
    app.state.db = str(db)  # a file path or a lake URL (a Path would lose a slash of the URL)
    app.state.timeout = timeout  # seconds a page may hold the archive (the daemon waits meanwhile)
    app.state.templates = templates
    return TokenGate(SecurityHeaders(app), token)
