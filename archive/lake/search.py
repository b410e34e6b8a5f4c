"""Full-text search on a lake, read: PostgreSQL's text search over the index that
archive/lake/search_index.py writes, answered by PostgreSQL alone (the index row holds what a
hit shows; rows of an older index are read from the lake until a reindex).

The query syntax is the file backend's (archive.search_syntax): words OR-ed and ranked;
"phrases", +required words, `a AND b` and prefix* required; -words excluded. Each language's
configuration stems the query its own way and matches only the articles of that language.
Ranking is ts_rank_cd over a bounded candidate set: the CANDIDATES most recent matches, so a
word found in every article costs one index scan and a short sort, not a sort of them all
(a user asking for such a word wants recent articles; rarer words rank all their matches).
Accents go before stemming here (the file backend stems first), so "élections" also finds an
English "elections"; a prefix matches stems ("électi*" misses English "elect"). Scores are
PostgreSQL's ts_rank_cd, not the file backend's BM25.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Unpack

from archive.db import ArchiveError
from archive.lake.search_index import UNACCENTED, config_for, known_config
from archive.search import Hit, SearchFilters
from archive.search_syntax import parse_query
from archive.target import LakeTarget, pg_session

if TYPE_CHECKING:
    import duckdb

CANDIDATES = 20_000
_PREFIX_CHARS = re.compile(r"[^\w]|_")
# Snippets as the file backend's: about 30 words, matched ones as **word**.
SNIPPET = 'StartSel="{0}", StopSel="{1}", MaxWords=30, MinWords=15, ShortWord=1'


def _term(role: str, token: str, config: str) -> tuple[str, str] | None:
    """(tsquery SQL, its one parameter) of a query item in one configuration; None for AND/OR."""
    if role == "op":
        return None
    if role == "phrase":
        return f"phraseto_tsquery('{config}', %s)", token
    if role == "prefix":
        return f"to_tsquery('{config}', %s)", f"{_PREFIX_CHARS.sub('', token)}:*"
    return f"plainto_tsquery('{config}', %s)", token.lstrip("+-")


@dataclass(frozen=True)
class Query:
    """One configuration's tsqueries: what a hit must match and what ranks it, with the
    parameters of each in the order of their placeholders."""

    match: str
    match_params: list[Any]
    rank: str
    rank_params: list[Any]


def tsqueries(items: Sequence[tuple[str, str]], config: str) -> Query:
    groups: dict[str, list[tuple[str, str]]] = {"need": [], "may": [], "not": []}
    for token, role in items:
        term = _term(role, token, config)
        if term is not None:
            group = "not" if role == "excluded" else "may" if role == "optional" else "need"
            groups[group].append(term)

    def joined(group: str, op: str) -> tuple[str, list[Any]]:
        return f" {op} ".join(sql for sql, _ in groups[group]), [p for _, p in groups[group]]

    (need, need_p), (may, may_p), (nope, nope_p) = (
        joined("need", "&&"), joined("may", "||"), joined("not", "||")
    )  # fmt: skip
    match, match_p = (f"({need})", need_p) if need else (f"({may})", may_p)
    if nope:
        match, match_p = f"{match} && !!({nope})", [*match_p, *nope_p]
    rank = " || ".join(f"({q})" for q in (need, may) if q)
    return Query(match, match_p, rank, [*need_p, *may_p])


def index_configs(pg: Any, target: LakeTarget, languages: Sequence[str]) -> list[str]:
    """The configurations the index holds articles in, narrowed to `languages`."""
    present = pg.execute("SELECT to_regclass('mediawatch.search_index')").fetchone()
    if not present or present[0] is None:
        raise ArchiveError(
            f"{target.display()}: this lake has no search index yet (run `mediawatch "
            "reindex --db` with this URL once; crawls keep it current after that)"
        )
    kept = pg.execute("SELECT to_regclass('mediawatch.search_configs')").fetchone()
    if kept and kept[0] is not None:  # kept by the writers (archive/lake/search_index.py)
        rows = pg.execute("SELECT config::text FROM mediawatch.search_configs").fetchall()
    else:  # a lake no writer of this version opened yet
        rows = pg.execute("SELECT DISTINCT config::text FROM mediawatch.search_index").fetchall()
    configs = sorted(str(r[0]) for r in rows if known_config(str(r[0])))
    wanted = {config_for(lang) for lang in languages}
    return [c for c in configs if not wanted or c.removeprefix(UNACCENTED) in wanted]


def where_clause(queries: dict[str, Query], filters: SearchFilters) -> tuple[str, list[Any]]:
    """The candidates' WHERE clause: a match in the article's own configuration, then the
    filters; its parameters in the order of the placeholders."""
    params: list[Any] = []
    matches = []
    for config, q in queries.items():
        matches.append(f"(config = '{config}'::regconfig AND doc @@ ({q.match}))")
        params += q.match_params
    clauses = [f"({' OR '.join(matches)})"]
    narrowing = {
        "outlet = ANY(%s)": list(filters.get("outlets", ())),
        "language = ANY(%s)": [lang.lower() for lang in filters.get("languages", ())],
        "published_at >= %s": filters.get("since"),
        "published_at < %s": filters.get("until"),
    }
    for clause, value in narrowing.items():
        if value:
            clauses.append(clause)
            params.append(value)
    return " AND ".join(clauses), params


def top_hits(pg: Any, queries: dict[str, Query], filters: SearchFilters) -> list[tuple[Any, ...]]:
    """The best hits among the recent candidates: (article id, configuration, score, url,
    outlet, title, published_at, language, text); url is NULL where the row predates the
    display columns."""
    where, params = where_clause(queries, filters)
    cases = " ".join(
        f"WHEN '{config}'::regconfig THEN ts_rank_cd(doc, {q.rank})"
        for config, q in queries.items()
    )
    ranks = [p for q in queries.values() for p in q.rank_params]
    return list(
        pg.execute(
            f"""
            WITH cand AS (
                SELECT article_id, config, doc FROM mediawatch.search_index WHERE {where}
                ORDER BY published_at DESC NULLS LAST LIMIT {CANDIDATES}
            ), best AS (
                SELECT article_id, config::text AS config, CASE config {cases} END AS score
                FROM cand ORDER BY score DESC, article_id DESC LIMIT {int(filters.get("limit", 20))}
            )
            SELECT b.article_id, b.config, b.score, s.url, s.outlet, s.title, s.published_at,
                   s.language, s.body
            FROM best b JOIN mediawatch.search_index s USING (article_id)
            ORDER BY b.score DESC, b.article_id DESC
            """,
            [*params, *ranks],  # the placeholders' order in the text: candidates, then ranks
        ).fetchall()
    )


def lake_fields(
    target: LakeTarget, ids: list[int], con: duckdb.DuckDBPyConnection | None = None
) -> dict[int, tuple[Any, ...]]:
    """The hits' fields from article_texts itself, not the `articles` view: a literal id list
    reaches the Parquet scan, whose zone maps skip the files that hold none of them (the view's
    window over every text read them all), and the newest row of each id is taken here as the
    view takes it. `con`: the caller's open reader, else one opened (and closed) here."""
    from archive.lake.connect import connect_lake_read

    own = con is None
    reader = connect_lake_read(target) if con is None else con
    listed = ", ".join(str(int(i)) for i in ids)
    try:
        rows = reader.execute(
            "SELECT article_id, url, outlet, title, published_at, language, text "
            f"FROM article_texts WHERE article_id IN ({listed}) QUALIFY row_number() OVER "
            "(PARTITION BY article_id ORDER BY version DESC, recorded_at DESC) = 1"
        ).fetchall()
    finally:
        if own:
            reader.close()
    return {int(r[0]): r for r in rows}


def snippets_of(
    pg: Any, queries: dict[str, Query], texts: list[tuple[int, str, str]], mark: tuple[str, str]
) -> dict[int, str]:
    """ts_headline of every hit: one statement per configuration, not one per hit."""
    options = SNIPPET.format(*(m.replace('"', "") for m in mark))
    out: dict[int, str] = {}
    for config, q in queries.items():
        mine = [(i, text) for i, c, text in texts if c == config]
        if not mine:
            continue
        rows = pg.execute(
            f"SELECT id, ts_headline('{config}', body, {q.rank}, %s) "
            "FROM unnest(%s::bigint[], %s::text[]) AS t(id, body)",
            [*q.rank_params, options, [i for i, _ in mine], [t for _, t in mine]],
        ).fetchall()
        out.update((int(r[0]), str(r[1])) for r in rows)
    return out


def queries_for(
    pg: Any, target: LakeTarget, query: str, filters: SearchFilters
) -> dict[str, Query]:
    """The query in each configuration the index holds (those of `languages` if given)."""
    items = parse_query(query).items
    configs = index_configs(pg, target, filters.get("languages", ()))
    return {config: tsqueries(items, config) for config in configs}


def search(
    target: LakeTarget,
    query: str,
    *,
    mark: tuple[str, str] = ("**", "**"),
    con: duckdb.DuckDBPyConnection | None = None,
    **filters: Unpack[SearchFilters],
) -> list[Hit]:
    """The lake's hits for `query`, best first, each with its fields from the index row (from
    the lake, through `con` if given, for a row an older mediawatch indexed) and a snippet
    (ts_headline, matched words between `mark`); the filters of archive.search.search."""
    with pg_session(target, read_only=True) as pg:
        queries = queries_for(pg, target, query, filters)
        if not queries or filters.get("limit", 20) <= 0:
            return []
        top = top_hits(pg, queries, filters)
        # (url, outlet, title, published_at, language, text) of each hit, from the index row
        fields = {int(t[0]): tuple(t[3:]) for t in top if t[3] is not None}
        older = [int(t[0]) for t in top if t[3] is None]
        if older:  # indexed before the index kept them: the lake has them
            fields.update((i, tuple(r[1:])) for i, r in lake_fields(target, older, con).items())
        found = [(int(i), str(c), float(score)) for i, c, score, *_ in top if int(i) in fields]
        # (an older row whose article is gone from the lake is skipped)
        texts = [(i, c, fields[i][5] or "") for i, c, _ in found]
        snippets = snippets_of(pg, queries, texts, mark)
        hits = []
        for article_id, _, score in found:
            row = fields[article_id]
            hits.append(
                Hit(id=article_id, url=row[0], outlet=row[1], title=row[2],
                    published_at=row[3], language=row[4], score=round(score, 4),
                    snippet=snippets.get(article_id, ""))
            )  # fmt: skip
    return hits


def matches_per_day(
    target: LakeTarget, query: str, by: str | None = None, **filters: Unpack[SearchFilters]
) -> list[tuple[Any, ...]]:
    """(UTC day of publication, [outlet or language,] matching articles) of every match, not
    only the ranked candidates: the search page's chart and the trends page's series, counted
    in PostgreSQL from the index (it holds each article's current version once)."""
    series = {None: "", "outlet": ", outlet", "language": ", coalesce(language, '?')"}[by]
    with pg_session(target, read_only=True) as pg:
        queries = queries_for(pg, target, query, filters)
        if not queries:
            return []
        where, params = where_clause(queries, filters)
        keys = "1" + (", 2" if by else "")
        rows = pg.execute(
            f"""SELECT (published_at AT TIME ZONE 'UTC')::date AS day{series}, count(*)
                FROM mediawatch.search_index WHERE {where} AND published_at IS NOT NULL
                GROUP BY {keys} ORDER BY {keys}""",
            params,
        ).fetchall()
    return [tuple(r) for r in rows]
