"""A fault-injecting fake web on loopback, built on tests/fakeweb.py's FakeWeb.

Every misbehaviour a real outlet shows us is a handler here: wrong charsets, huge and
endless bodies, gzip bombs, servers that hang, reset or loop, entity bombs. Each handler is
bounded in bytes and seconds, and ends when its server stops, so a test can never hang on it.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakeweb import FakeWeb

Handler = Callable[[BaseHTTPRequestHandler], None]

MB = 1024 * 1024

_TEXT_EN = (
    "council budget river harbour school teachers mayor vote district railway station farmers "
    "drought water prices hospital nurses strike union minister report committee museum library "
    "bridge repairs winter heating families rents housing plan court ruling judges appeal police "
    "inquiry witnesses evidence factory jobs workers exports market shares bank rates inflation "
    "energy wind turbines coast fishermen quota election campaign candidates debate survey voters "
    "festival music theatre audience season players coach league match goal injury stadium tickets"
)
_TEXT_FR = (
    "été élève général préfecture café théâtre début réseau sécurité société économie énergie "
    "hôpital médecin grève syndicat ministère rapport comité musée bibliothèque pont réparations "
    "hiver chauffage familles loyers logement tribunal décision juges appel enquête témoins usine "
    "emplois ouvriers marché banque taux électricité côte pêcheurs élection campagne candidats "
    "débat sondage électeurs festival musique saison joueurs entraîneur équipe stade billets"
)
_WORDS_EN = _TEXT_EN.split()
_WORDS_FR = _TEXT_FR.split()


def prose(seed: int, paragraphs: int = 6, words: int = 55, lang: str = "en") -> list[str]:
    """Distinct, article-like paragraphs (seeded), so no two pages are near-duplicates."""
    rng = random.Random(seed)
    vocab = _WORDS_FR if lang == "fr" else _WORDS_EN
    glue = (
        ["et", "de", "la", "le", "pour", "avec", "dans"]
        if lang == "fr"
        else ["and", "the", "of", "for", "with", "in", "after"]
    )
    out = []
    for _ in range(paragraphs):
        sentence = []
        for i in range(words):
            sentence.append(rng.choice(glue) if i % 3 == 2 else rng.choice(vocab))
        text = " ".join(sentence)
        out.append(text[0].upper() + text[1:] + f" ({rng.randrange(10**6)}).")
    return out


def article_html(
    title: str,
    seed: int,
    *,
    lang: str = "en",
    date: str | None = "2024-05-17T08:00:00Z",
    charset: str | None = "utf-8",
    extra_head: str = "",
    extra_body: str = "",
    paragraphs: int = 6,
    jsonld: dict[str, Any] | None = None,
) -> str:
    """A plain news article page: title, date, a few paragraphs of prose."""
    meta_charset = f'<meta charset="{charset}">' if charset else ""
    date_meta = f'<meta property="article:published_time" content="{date}">' if date else ""
    ld = f'<script type="application/ld+json">{json.dumps(jsonld)}</script>' if jsonld else ""
    paras = "\n".join(f"<p>{p}</p>" for p in prose(seed, paragraphs, lang=lang))
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head>{meta_charset}
<title>{title} - The Hostile Herald</title>
<meta property="og:title" content="{title}">{date_meta}{ld}{extra_head}
</head><body><header><a href="/">The Hostile Herald</a></header>
<article><h1>{title}</h1>
{paras}
{extra_body}
</article><footer>Contact us</footer></body></html>"""


class HostileWeb(FakeWeb):
    """FakeWeb on any loopback address (127.0.0.2 is a second, offsite host) whose
    slow handlers stop when the server stops."""

    def __init__(self, address: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self.stopping = threading.Event()
        if address != "127.0.0.1" or port:
            handler_class = self.server.RequestHandlerClass
            self.server.server_close()
            self.server = ThreadingHTTPServer((address, port), handler_class)
            self.server.daemon_threads = True
            self.host = f"{address}:{self.server.server_address[1]}"
            self.base = f"http://{self.host}"
            self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        # A crawler hanging up on a 50 MB body is the expected outcome, not a server error.
        self.server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]

    def start(self) -> HostileWeb:
        super().start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        super().stop()

    def paths(self) -> list[str]:
        with self._lock:
            return [p for _, p in self.log]

    def count(self, path: str) -> int:
        return sum(1 for p in self.paths() if p == path)

    # -- handler factories -------------------------------------------------------------------

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True when the server is stopping."""
        return self.stopping.wait(seconds)

    def slow(self, seconds: float, then: bytes = b"<html><body>late</body></html>") -> Handler:
        """Headers only after `seconds`: longer than the crawl's DOWNLOAD_TIMEOUT is a timeout."""

        def handler(h: BaseHTTPRequestHandler) -> None:
            if self.wait(seconds):
                return
            _send(h, 200, then, {"Content-Type": "text/html; charset=utf-8"})

        return handler

    def silent(self, seconds: float = 60.0) -> Handler:
        """Accepts, reads the request, never answers a byte (bounded so threads end)."""

        def handler(h: BaseHTTPRequestHandler) -> None:
            self.wait(seconds)
            h.close_connection = True

        return handler

    def reset(self) -> Handler:
        """Connection reset by peer: SO_LINGER 0 then close sends an RST instead of a FIN."""

        def handler(h: BaseHTTPRequestHandler) -> None:
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.close_connection = True
            h.connection.close()

        return handler

    def stream(
        self,
        chunks: Callable[[], Iterable[bytes]],
        headers: dict[str, str],
        *,
        length: int | None = None,
        max_seconds: float = 60.0,
    ) -> Handler:
        """Stream a generated body, chunked (no length) or with Content-Length; stops when
        the client hangs up, the server stops, or after max_seconds."""

        def handler(h: BaseHTTPRequestHandler) -> None:
            h.send_response(200)
            for k, v in headers.items():
                h.send_header(k, v)
            if length is None:
                h.send_header("Transfer-Encoding", "chunked")
            else:
                h.send_header("Content-Length", str(length))
            h.end_headers()
            deadline = time.monotonic() + max_seconds
            try:
                for chunk in chunks():
                    if self.stopping.is_set() or time.monotonic() > deadline:
                        break
                    if not chunk:
                        continue
                    if length is None:
                        h.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    else:
                        h.wfile.write(chunk)
                else:
                    if length is None:
                        h.wfile.write(b"0\r\n\r\n")
                    return
            except OSError:
                pass  # the crawler hung up: what a size limit does
            h.close_connection = True

        return handler

    def header_flood(
        self, line_bytes: int = 8000, max_bytes: int = 4096 * MB, max_seconds: float = 60.0
    ) -> Handler:
        """A status line, then header lines forever: the header section never ends (bounded in
        bytes and seconds only so a client without a limit cannot pin a thread)."""

        def handler(h: BaseHTTPRequestHandler) -> None:
            line = b"X-Flood: " + b"a" * max(1, line_bytes - 11) + b"\r\n"
            block = line * max(1, 64 * 1024 // len(line))
            sent = 0
            deadline = time.monotonic() + max_seconds
            try:
                h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n")
                while (
                    sent < max_bytes and not self.stopping.is_set() and time.monotonic() < deadline
                ):
                    h.wfile.write(block)
                    sent += len(block)
            except OSError:
                pass  # the crawler hung up: what a header limit does
            h.close_connection = True

        return handler

    def many_headers(self, count: int, body: bytes) -> Handler:
        """A complete response with `count` small header lines before its body."""

        def handler(h: BaseHTTPRequestHandler) -> None:
            head = [
                b"HTTP/1.1 200 OK",
                b"Content-Type: text/html; charset=utf-8",
                b"Content-Length: %d" % len(body),
            ]
            head += [b"X-Tag-%d: %d" % (i, i) for i in range(count)]
            with contextlib.suppress(OSError):
                h.wfile.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
            h.close_connection = True

        return handler

    def redirect(self, location: str, status: int = 301) -> Handler:
        def handler(h: BaseHTTPRequestHandler) -> None:
            _send(h, status, b"", {"Location": location.replace("{base}", self.base)})

        return handler

    def sequence(self, *answers: tuple[int, bytes, dict[str, str]]) -> Handler:
        """Answer each request with the next of `answers`; the last one repeats."""
        state = {"n": 0}
        lock = threading.Lock()

        def handler(h: BaseHTTPRequestHandler) -> None:
            with lock:
                i = min(state["n"], len(answers) - 1)
                state["n"] += 1
            status, body, headers = answers[i]
            _send(h, status, body, headers)

        return handler


def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]) -> None:
    h.send_response(status)
    for k, v in headers.items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


# -- generated bodies (never committed: made at test time) ------------------------------------


def big_page_chunks(
    total: int, title: str = "A page of fifty megabytes"
) -> Callable[[], Iterator[bytes]]:
    """An HTML page of `total` bytes, generated as it is sent."""

    def gen() -> Iterator[bytes]:
        head = f"<!DOCTYPE html><html><head><title>{title}</title></head><body><article><h1>{title}</h1>".encode()
        yield head
        para = ("<p>" + " ".join(prose(7, 1)[0].split()[:40]) + "</p>\n").encode()
        block = para * (256 * 1024 // len(para) + 1)
        sent = len(head)
        while sent < total - 64:
            piece = block[: total - 64 - sent]
            sent += len(piece)
            yield piece
        tail = b"</article></body></html>"
        yield tail + b" " * max(0, total - sent - len(tail))

    return gen


def endless_chunks(limit_bytes: int = 400 * MB) -> Callable[[], Iterator[bytes]]:
    """A body that never ends on its own (bounded only so a broken client cannot pin a thread)."""

    def gen() -> Iterator[bytes]:
        yield b"<html><body><article><h1>Live ticker</h1>"
        line = b"<p>" + b"update " * 100 + b"</p>\n"
        block = line * 256
        sent = 0
        while sent < limit_bytes:
            sent += len(block)
            yield block

    return gen


_BOMB_CACHE: dict[int, bytes] = {}


def gzip_bomb(members: int = 16) -> bytes:
    """A gzip body of about 1 MB that inflates to `members` x 64 MB of spaces: one member
    compressed once and repeated (a gzip stream may hold many members)."""
    if members not in _BOMB_CACHE:
        comp = zlib.compressobj(9, zlib.DEFLATED, 31)
        member = comp.compress(b"<html><body><p>" + b" " * (64 * MB)) + comp.flush()
        _BOMB_CACHE[members] = member * members
    return _BOMB_CACHE[members]


def million_url_sitemap(
    base: str, urls: int = 1_000_000, *, gzip: bool = True
) -> Callable[[], Iterator[bytes]]:
    """A sitemap of `urls` entries, generated (and gzipped) as it is sent."""

    def raw() -> Iterator[bytes]:
        yield (
            b'<?xml version="1.0" encoding="UTF-8"?>\n'
            b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        )
        batch = []
        for i in range(urls):
            batch.append(
                f"<url><loc>{base}/2024/05/{i % 28 + 1:02d}/million-{i:07d}</loc>"
                f"<lastmod>2024-05-{i % 28 + 1:02d}</lastmod></url>\n"
            )
            if len(batch) == 5000:
                yield "".join(batch).encode()
                batch = []
        if batch:
            yield "".join(batch).encode()
        yield b"</urlset>\n"

    def gzipped() -> Iterator[bytes]:
        comp = zlib.compressobj(1, zlib.DEFLATED, 31)
        for piece in raw():
            out = comp.compress(piece)
            if out:
                yield out
        yield comp.flush()

    return gzipped if gzip else raw


def billion_laughs(root: str, inner: str) -> str:
    """The classic entity bomb: ten levels of ten references, a few GB once expanded."""
    entities = '<!ENTITY lol0 "lollollollollollollollollollol">\n' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">\n' for i in range(1, 10)
    )
    return f'<?xml version="1.0"?>\n<!DOCTYPE {root} [\n{entities}]>\n{inner}'


# -- a growing outlet (bench/chaos.py, test_crashes.py) -------------------------------------------------------------------------------


PAGE_DELAY = 0.08  # seconds per article page: a crawl lasts long enough to be cut anywhere


class GrowingOutlet:
    """Articles published (and edited) over time, served with a small delay."""

    def __init__(self, web: HostileWeb) -> None:
        self.web = web
        self.slugs: list[str] = []
        self.edits: dict[str, int] = {}
        self.lastmod: dict[str, str] = {}
        self._lock = threading.Lock()
        web.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
        web.add_handler("/sitemap.xml", self._sitemap)

    def publish(self, n: int) -> None:
        with self._lock:
            for _ in range(n):
                i = len(self.slugs)
                slug = f"/2024/09/{i % 28 + 1:02d}/chaos-story-{i:04d}"
                self.slugs.append(slug)
                self.edits[slug] = 0
                self.lastmod[slug] = "2024-09-01T00:00:00Z"
                self.web.add_handler(slug, self._page(slug, i))

    def edit(self, rng: random.Random) -> str:
        with self._lock:
            slug = rng.choice(self.slugs)
            self.edits[slug] += 1
            # ahead of now: a revisit needs a lastmod over a minute past our last fetch
            self.lastmod[slug] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 120))
            return slug

    def _page(self, slug: str, i: int) -> Any:
        def handler(h: BaseHTTPRequestHandler) -> None:
            if self.web.wait(PAGE_DELAY):
                return
            body = article_html(
                f"Chaos story number {i}",
                5000 + i,
                extra_body=f"<p>Edition {self.edits[slug]} of this story: "
                + " ".join(["corrected"] * 30) * (1 if self.edits[slug] else 0)
                + "</p>",
            )
            data = body.encode()
            h.send_response(200)
            h.send_header("Content-Type", "text/html; charset=utf-8")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)

        return handler

    def _sitemap(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            entries = "".join(
                f"<url><loc>{self.web.base}{s}</loc><lastmod>{self.lastmod[s]}</lastmod></url>"
                for s in self.slugs
            )
        data = (
            '<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/'
            f'sitemap/0.9">{entries}</urlset>'
        ).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/xml")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
