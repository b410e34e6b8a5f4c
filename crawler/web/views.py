"""The pages of `mediawatch serve`. Each handler reads through archive/browse.py (one short
read session) and renders a template; bad input is a 400 page saying what to fix in one
line, an archive that cannot be opened a 503 saying why."""

from __future__ import annotations

import csv
import difflib
import functools
import io
import json
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from archive import browse
from archive.db import ArchiveError, ArchiveLocked
from archive.export import parse_when
from archive.query import (
    QueryError,
    check_languages,
    check_outlets,
    jsonable,
    parse_params,
    write_rows,
)
from archive.search import SYNTAX
from crawler.web import charts

SEARCH_PAGE = 20  # hits a page: each costs a read of its text (~5 ms cold at 1M articles)
DOWNLOAD_LIMIT = 10_000
MARK = ("\x02", "\x03")  # snippet marks, turned into <mark> after escaping


def fmt(value: Any) -> str:
    """A cell as a reader wants it: UTC times to the minute, delays in words, lists joined."""
    if value is None:
        return "–"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, timedelta):
        s = int(value.total_seconds())
        sign, s = ("-" if s < 0 else "+"), abs(s)
        return (
            f"{sign}{s // 86400}d {s % 86400 // 3600}h {s % 3600 // 60}m"
            if s >= 86400
            else f"{sign}{s // 3600}h {s % 3600 // 60}m"
        )
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def qs(request: Request, **changes: Any) -> str:
    """This page's query string with some parameters replaced (None drops one)."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    items += [(k, str(v)) for k, v in changes.items() if v is not None]
    return "?" + urlencode(items) if items else ""


def render(request: Request, name: str, status: int = 200, **ctx: Any) -> Response:
    templates = request.app.state.templates
    return templates.TemplateResponse(
        request, name, {"path": request.url.path, **ctx}, status_code=status
    )


def guarded(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
    """Refused input and a busy or missing archive as a page with one line, never a trace."""

    @functools.wraps(handler)
    def wrapper(request: Request) -> Response:
        try:
            return handler(request)
        except QueryError as exc:
            return render(request, "error.html", 400, title="Not understood", message=str(exc))
        except ArchiveLocked as exc:
            return render(request, "error.html", 503, title="Archive busy", message=str(exc))
        except ArchiveError as exc:
            return render(request, "error.html", 503, title="Archive unavailable", message=str(exc))

    return wrapper


def filters_from(request: Request, con: Any) -> browse.Filters:
    """outlet=, lang= (repeatable), since=, until= (YYYY-MM-DD); unknown names refused as
    `mediawatch search` refuses them, naming the close match."""
    p = request.query_params
    outlets = [o for o in p.getlist("outlet") if o]
    langs = [lang for lang in p.getlist("lang") if lang]
    known = cached_facets(request, con)
    if not set(outlets) <= set(known["outlets"]):  # else already known: no scan of the archive
        check_outlets(con, outlets)
    if not set(langs) <= set(known["languages"]):
        check_languages(con, langs)
    return browse.Filters(
        outlets,
        langs,
        parse_when(p.get("since") or None),
        parse_when(p.get("until") or None, end=True),
    )


_FACETS: dict[str, tuple[float, dict[str, list[str]]]] = {}
FACETS_TTL = 30.0  # seconds: the filter menus may miss an outlet that appeared since


def cached_facets(request: Request, con: Any) -> dict[str, list[str]]:
    """The outlets and languages for the menus, read at most every FACETS_TTL seconds
    (two scans of every article: 20-40 ms a page at 1M)."""
    key = str(_db(request))
    hit = _FACETS.get(key)
    if hit is None or time.monotonic() - hit[0] > FACETS_TTL:
        hit = _FACETS[key] = (time.monotonic(), browse.facets(con))
    return hit[1]


def _session(request: Request, *, fts: bool = False) -> Any:
    return browse.session(_db(request), fts=fts, timeout=request.app.state.timeout)


def _db(request: Request) -> Any:
    return request.app.state.db


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "0")
    if not raw.isdigit():
        raise QueryError(f"page: not a page number: {raw!r}")
    return int(raw)


@guarded
def index(request: Request) -> Response:
    page = _page_number(request)
    with _session(request) as con:
        filters = filters_from(request, con)
        facets = cached_facets(request, con)
        rows = browse.latest(con, filters, page=page)
    more = len(rows) > browse.PAGE_SIZE
    return render(
        request,
        "index.html",
        title="Latest articles",
        rows=rows[: browse.PAGE_SIZE],
        facets=facets,
        page=page,
        more=more,
    )


def _hits(request: Request, limit: int, mark: tuple[str, str] = MARK) -> tuple[str, list[Any], Any]:
    q = request.query_params.get("q", "").strip()
    with _session(request, fts=True) as con:
        filters = filters_from(request, con)
        facets = cached_facets(request, con)
        if not q:
            return q, [], facets
        hits = browse.hits(_db(request), con, q, filters, limit=limit, mark=mark)
    return q, hits, facets


def marked(snippet: str) -> Markup:
    """A snippet escaped, its matched words in <mark>."""
    return Markup(str(escape(snippet)).replace(MARK[0], "<mark>").replace(MARK[1], "</mark>"))


@guarded
def search_page(request: Request) -> Response:
    page = _page_number(request)
    q, hits, facets = _hits(request, (page + 1) * SEARCH_PAGE + 1)
    more = len(hits) > (page + 1) * SEARCH_PAGE
    hits = hits[page * SEARCH_PAGE : (page + 1) * SEARCH_PAGE]
    return render(
        request,
        "search.html",
        title=f"Search: {q}" if q else "Search",
        q=q,
        hits=hits,
        facets=facets,
        marked=marked,
        syntax=SYNTAX,
        page=page,
        more=more,
        first=page * SEARCH_PAGE + 1,
    )


@guarded
def search_chart(request: Request) -> Response:
    """The search page's matches per day, an SVG of its own: the hits do not wait for it."""
    q = request.query_params.get("q", "").strip()
    with _session(request, fts=True) as con:
        filters = filters_from(request, con)
        per_day = browse.matches_per_day(_db(request), con, q, filters) if q else []
    total = sum(n for _, n in per_day)
    svg = charts.bars(per_day, label="matches per day", total_label=f"{total} dated matches · ")
    return Response(str(svg), media_type="image/svg+xml")


@guarded
def search_download(request: Request) -> Response:
    """The hits as `mediawatch search --format csv|json` writes them."""
    kind = request.path_params["fmt"]
    if kind not in ("csv", "json"):
        return PlainTextResponse("404: /search.csv or /search.json\n", status_code=404)
    q, hits, _facets = _hits(request, DOWNLOAD_LIMIT, mark=("**", "**"))
    if not q:
        raise QueryError("q: give the words to search for (/search.csv?q=words)")
    name = f'attachment; filename="search.{kind}"'
    if kind == "json":
        body = (
            json.dumps([jsonable(h.as_dict()) for h in hits], ensure_ascii=False, indent=2) + "\n"
        )
        return Response(body, media_type="application/json", headers={"Content-Disposition": name})
    out = io.StringIO()
    columns = ["id", "url", "outlet", "title", "published_at", "language", "score", "snippet"]
    rows = [tuple(getattr(h, c) for c in columns) for h in hits]
    write_rows(columns, [rows], "csv", out)
    return Response(
        out.getvalue(), media_type="text/csv; charset=utf-8", headers={"Content-Disposition": name}
    )


def in_place(text: str, removed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The article's paragraphs with the removed blocks back at their positions."""
    kept = [p for p in (text or "").split("\n\n") if p.strip()]
    by_pos = {int(r["position"]): r for r in removed}
    out: list[dict[str, Any]] = []
    i = 0
    while kept or by_pos:
        if i in by_pos:
            out.append({"removed": True, **by_pos.pop(i)})
        elif kept:
            out.append({"removed": False, "text": kept.pop(0)})
        else:
            out.extend({"removed": True, **by_pos.pop(k)} for k in sorted(by_pos))
        i += 1
    return out


def diff(old: str, new: str) -> list[tuple[str, str]]:
    """Paragraph diff of two texts: ("same"|"del"|"ins", paragraph); long unchanged runs shortened."""
    a, b = (old or "").split("\n\n"), (new or "").split("\n\n")
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            same = a[i1:i2]
            out += (
                [("same", p) for p in same]
                if len(same) <= 2
                else [
                    ("same", same[0]),
                    ("skip", f"{len(same) - 2} unchanged paragraphs"),
                    ("same", same[-1]),
                ]
            )
        else:
            out += [("del", p) for p in a[i1:i2]] + [("ins", p) for p in b[j1:j2]]
    return out


@guarded
def article_page(request: Request) -> Response:
    article_id = request.path_params["id"]
    with _session(request) as con:
        view = browse.article(con, article_id)
    if view is None:
        return render(
            request,
            "error.html",
            404,
            title="No such article",
            message=f"no article {article_id} in the archive",
        )
    a = view.article
    texts = [
        *view.versions,
        {
            "version": a["version"],
            "text": a["text"],
            "title": a["title"],
            "fetched_at": view.page["fetched_at"] if view.page else a["last_seen_at"],
        },
    ]
    changes = [
        {"from": texts[k], "to": texts[k + 1], "diff": diff(texts[k]["text"], texts[k + 1]["text"])}
        for k in range(len(texts) - 1)
    ]
    return render(
        request,
        "article.html",
        title=a["title"] or f"Article {article_id}",
        a=a,
        view=view,
        blocks=in_place(a["text"], view.removed),
        changes=changes,
    )


@guarded
def raw_page(request: Request) -> Response:
    """The stored page, as fetched, in a sandbox: no script runs, nothing is loaded."""
    with _session(request) as con:
        raw = browse.raw_page(con, request.path_params["id"])
    if raw is None:
        return render(
            request,
            "error.html",
            404,
            title="No stored page",
            message=f"article {request.path_params['id']} has no stored raw page",
        )
    from crawler.web.app import RAW_CSP

    content_type, body = raw
    return Response(body, media_type=content_type, headers={"Content-Security-Policy": RAW_CSP})


def alert_feed(request: Request) -> Response:
    """An alert's Atom feed, as the daemon last wrote it beside the archive (the app reads the
    file, never the outbox: what a feed reader gets here is what the file holds)."""
    from crawler.alerts.config import NAME_RE
    from crawler.alerts.outbox import feed_file  # beside the file, or in the lake's home here

    name = request.path_params["name"]
    path = feed_file(_db(request), name) if NAME_RE.match(name) else None
    if path is None or not path.is_file():
        return PlainTextResponse(f"no alert feed named {name!r:.80}\n", status_code=404)
    return Response(path.read_bytes(), media_type="application/atom+xml")


@guarded
def outlets_page(request: Request) -> Response:
    from crawler.scheduler.status import health, read_status  # the view `mediawatch status` shows

    status = read_status(_db(request))
    today = datetime.now(UTC).date()
    span = (today - timedelta(days=browse.ACTIVITY_DAYS - 1), today)
    with _session(request) as con:
        activity = browse.outlet_activity(con)
    rows = [
        {
            **r,
            "health": health(r),
            "chart": charts.bars(
                activity["per_day"].get(r["outlet"], []), width=240, height=40, span=span
            ),
            "skips": activity["skips"].get(r["outlet"], []),
            "last_success_at": activity["last_success"].get(r["outlet"]),
        }
        for r in status
    ]
    return render(request, "outlets.html", title="Outlets", rows=rows)


def _trends(request: Request) -> tuple[str, str, dict[str, list[tuple[date, int]]], Any]:
    q = request.query_params.get("q", "").strip()
    by = request.query_params.get("by", "outlet")
    if by not in ("outlet", "language"):
        raise QueryError(f"by: {by!r} is not one of outlet, language")
    series: dict[str, list[tuple[date, int]]] = {}
    with _session(request, fts=True) as con:
        filters = filters_from(request, con)
        facets = cached_facets(request, con)
        if q:
            for day, name, n in browse.mentions(_db(request), con, q, filters, by=by):
                series.setdefault(name, []).append((day, n))
    return q, by, series, facets


@guarded
def trends_page(request: Request) -> Response:
    q, by, series, facets = _trends(request)
    days = sorted({d for pts in series.values() for d, _ in pts})
    table = [(d, [dict(series[s]).get(d, 0) for s in sorted(series)]) for d in days]
    return render(
        request,
        "trends.html",
        title=f"Trends: {q}" if q else "Trends",
        q=q,
        by=by,
        facets=facets,
        chart=charts.lines(series),
        names=sorted(series),
        table=table,
        totals={s: sum(n for _, n in pts) for s, pts in series.items()},
    )


@guarded
def trends_csv(request: Request) -> Response:
    _q, by, series, _ = _trends(request)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["day", by, "articles"])
    for name in sorted(series):
        w.writerows((d.isoformat(), name, n) for d, n in series[name])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="trends.csv"'},
    )


def _sql_args(request: Request) -> tuple[str, dict[str, str]]:
    sql = request.query_params.get("sql", "").strip()
    return sql, parse_params(request.query_params.getlist("param"))


@guarded
def sql_page(request: Request) -> Response:
    sql, params = _sql_args(request)
    result, error = None, None
    if sql:
        try:
            result = browse.run_sql(_db(request), sql, params, timeout=request.app.state.timeout)
        except QueryError as exc:
            error = str(exc)
    return render(
        request,
        "sql.html",
        400 if error else 200,
        title="SQL",
        sql=sql,
        result=result,
        error=error,
        params=request.query_params.getlist("param"),
        limit=browse.SQL_ROW_LIMIT,
    )


@guarded
def sql_csv(request: Request) -> Response:
    sql, params = _sql_args(request)
    if not sql:
        raise QueryError("sql: give one read-only statement (/sql.csv?sql=SELECT ...)")
    return Response(
        browse.sql_csv(_db(request), sql, params, timeout=request.app.state.timeout),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="query.csv"'},
    )


async def not_found(request: Request, exc: Exception) -> Response:
    return HTMLResponse(
        f"<!doctype html><title>Not found</title><p>404: no page at {escape(request.url.path)}; "
        'see <a href="/">the latest articles</a></p>',
        status_code=404,
    )
