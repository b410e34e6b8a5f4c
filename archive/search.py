"""Ranked full-text search (BM25) over article titles and texts, kept current incrementally.

DuckDB's fts extension rebuilds its whole index on every `create_fts_index` call, which
does not fit an archive where articles land one by one. So the inverted index lives in
ordinary tables (migration 0002_search) and is maintained by `index_articles`, called by
the ingest inside its own transaction. Only the fts extension's Snowball `stem()` function
is used. Terms are keyed by stemmer, so each article is stemmed in its own language and a
French "die" never meets a German one; BM25 statistics are per stemmer.
"""

from __future__ import annotations

import os
import re
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict, Unpack

import duckdb

# ISO 639-1 code -> Snowball stemmer of the fts extension. Others fall back to "none"
# (lower case, accents stripped): exact-word search, still ranked.
STEMMERS: dict[str, str] = {
    "fr": "french", "en": "english", "de": "german", "es": "spanish", "it": "italian",
    "pt": "portuguese", "nl": "dutch", "da": "danish", "fi": "finnish", "hu": "hungarian",
    "no": "norwegian", "nb": "norwegian", "nn": "norwegian", "ro": "romanian",
    "ru": "russian", "sv": "swedish", "tr": "turkish", "ca": "catalan", "el": "greek",
    "ar": "arabic", "eu": "basque", "ga": "irish", "lt": "lithuanian", "id": "indonesian",
    "ne": "nepali", "ta": "tamil", "hi": "hindi", "sr": "serbian",
}  # fmt: skip
FALLBACK_STEMMER = "none"
TITLE_WEIGHT = 2  # a title word counts as two body words (a cheap BM25F)
K1 = 1.2
B = 0.75
# Same token rule in SQL (RE2) and Python (re): runs of letters and digits.
_SPLIT_SQL = r"[^\p{L}\p{N}]+"
_TOKEN_PY = re.compile(r"[^\W_]+")
_MIN_LEN, _MAX_LEN = 2, 40


def fts_extension_path() -> Path:
    """The fts binary shipped by the pinned duckdb-extension-fts wheel (INSTALL needs internet)."""
    import duckdb_extension_fts

    base = Path(duckdb_extension_fts.__file__).parent / "extensions"
    path = base / f"v{duckdb.__version__}" / "fts.duckdb_extension"
    if not path.exists():
        raise RuntimeError(
            f"{path}: fts extension missing; duckdb-extension-fts must match duckdb=={duckdb.__version__}"
        )
    return path


_LOADED: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()


def load_fts(con: duckdb.DuckDBPyConnection) -> None:
    """Load the fts extension (for `stem`) once per connection.

    Remembered on our side: asking DuckDB (duckdb_functions()) costs ~60 ms a call, and
    duckdb_extensions() lists a directory a sandboxed connection may not read.
    """
    if con in _LOADED:
        return
    con.execute(f"LOAD '{_sql_str(str(fts_extension_path()))}'")
    _LOADED.add(con)


def _sql_str(text: str) -> str:
    """Escape a string for a single-quoted SQL literal (only for statements without params)."""
    return text.replace("'", "''")


def _sql_list(items: Iterable[str]) -> str:
    """Our own constant identifiers as an SQL list literal. Inlined, not bound: DuckDB's
    Python binding of list parameters costs ~0.5 ms per element."""
    values = list(items)
    for v in values:
        if not re.fullmatch(r"[a-z_]+", v):
            raise ValueError(f"not an identifier: {v!r}")
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def _stemmer_expr(column: str) -> str:
    """SQL for the stemmer of a language column ('fr', 'fr-FR', 'pt_BR'...)."""
    return (
        f"coalesce(list_extract({_sql_list(STEMMERS.values())}, list_position({_sql_list(STEMMERS)}, "
        f"lower(split_part(split_part({column}, '-', 1), '_', 1)))), '{FALLBACK_STEMMER}')"
    )


def _split_param(values: Iterable[str]) -> str:
    """Many strings as ONE parameter, split in SQL with string_split($x, chr(31))."""
    out = list(values)
    if any("\x1f" in v for v in out):
        raise ValueError("unit separator in a token")
    return "\x1f".join(out)


def _match(column: str, values: Iterable[int]) -> str:
    """An SQL filter `column` in `values` (integers, inlined; int() makes that safe).

    DuckDB prunes row groups of a scan for an IN list or an OR only by the overall min and
    max of the values, so a BETWEEN is as good and is kept for tight ranges (new article
    ids). For scattered values, use `_each` instead.
    """
    vals = sorted({int(v) for v in values})
    if not vals:
        return "FALSE"
    if len(vals) == 1:
        return f"{column} = {vals[0]}"
    listed = ", ".join(str(v) for v in vals)
    return f"({column} BETWEEN {vals[0]} AND {vals[-1]} AND {column} IN ({listed}))"


def _each(select: str, column: str, values: Iterable[int]) -> str:
    """`select` once per value with `column = value`, UNION ALL: each branch reads only the
    row groups whose min/max hold its value. For scattered keys (terms, top hits)."""
    vals = sorted({int(v) for v in values})
    if not vals:
        return f"{select} WHERE FALSE"
    return "\nUNION ALL ".join(f"{select} WHERE {column} = {v}" for v in vals)


# 64 bits of md5, keyed by stemmer: the term's identity without a vocabulary table.
_TERM_KEY = (
    "CAST(md5_number({stemmer} || ':' || strip_accents(stem({word}, {stemmer}))) >> 64 AS UBIGINT)"
)

# The selected articles, their tokens stemmed once per distinct (stemmer, token), counted.
_TOKENS_SQL = f"""
CREATE OR REPLACE TEMP TABLE _mw_search_tok AS
WITH src AS (
    SELECT a.id AS article_id, a.version, {_stemmer_expr("a.language")} AS stemmer,
           lower(coalesce(a.title, '')) AS title, lower(coalesce(a.text, '')) AS body
    FROM articles a
    WHERE __WHERE__
),
toks AS (
    SELECT article_id, version, stemmer,
           unnest(regexp_split_to_array(title, '{_SPLIT_SQL}')) AS tok, {TITLE_WEIGHT} AS w
    FROM src
    UNION ALL
    SELECT article_id, version, stemmer,
           unnest(regexp_split_to_array(body, '{_SPLIT_SQL}')) AS tok, 1 AS w
    FROM src
    UNION ALL  -- keeps articles without any word in the index (len 0): not re-tried forever
    SELECT article_id, version, stemmer, NULL, 0 FROM src
),
kept AS (
    SELECT * FROM toks WHERE tok IS NULL OR length(tok) BETWEEN {_MIN_LEN} AND {_MAX_LEN}
),
vocab AS (
    SELECT stemmer, tok, {_TERM_KEY.format(stemmer="stemmer", word="tok")} AS term_key
    FROM (SELECT DISTINCT stemmer, tok FROM kept WHERE tok IS NOT NULL)
),
counted AS (
    SELECT k.article_id, k.version, k.stemmer, v.term_key, sum(k.w)::INTEGER AS tf
    FROM kept k LEFT JOIN vocab v USING (stemmer, tok)
    GROUP BY ALL
)
SELECT *, (sum(tf) OVER (PARTITION BY article_id))::INTEGER AS doc_len FROM counted
"""


def _index(con: duckdb.DuckDBPyConnection, where: str, *, ordered: bool) -> int:
    """Tokenise the articles matching `where` and append them to the index tables.

    Each indexing of an article gets a new doc_id: postings of an older text need not be
    found and deleted (a scan of every posting), they just stop matching a live doc.
    """
    con.execute(_TOKENS_SQL.replace("__WHERE__", where))
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _mw_search_new AS
        SELECT nextval('search_doc_id_seq') AS doc_id, *
        FROM (SELECT article_id, any_value(stemmer) AS stemmer, any_value(doc_len) AS len,
                     any_value(version) AS version
              FROM _mw_search_tok GROUP BY article_id)
        """
    )
    con.execute(
        """
        INSERT INTO search_docs (article_id, stemmer, len, version, doc_id)
        SELECT article_id, stemmer, len, version, doc_id FROM _mw_search_new
        """
    )
    _add_stats(
        con,
        """SELECT stemmer, count(*) AS docs, sum(len) AS total_len FROM _mw_search_new
           GROUP BY stemmer""",
        sign=1,
    )
    order = "ORDER BY t.term_key, n.doc_id" if ordered else ""
    con.execute(
        f"""
        INSERT INTO search_postings (term_key, article_id, tf, doc_len, doc_id)
        SELECT t.term_key, t.article_id, t.tf, t.doc_len, n.doc_id
        FROM _mw_search_tok t JOIN _mw_search_new n USING (article_id)
        WHERE t.term_key IS NOT NULL
        {order}
        """
    )
    row = con.execute("SELECT count(*) FROM _mw_search_new").fetchone()
    con.execute("DROP TABLE IF EXISTS _mw_search_tok")
    con.execute("DROP TABLE IF EXISTS _mw_search_new")
    return int(row[0]) if row else 0


def _add_stats(con: duckdb.DuckDBPyConnection, delta_sql: str, *, sign: int) -> None:
    """Add (sign=1) or subtract (-1) per-stemmer document counts and lengths."""
    con.execute(
        f"""
        INSERT INTO search_stats (stemmer, docs, total_len)
        SELECT stemmer, {sign} * docs, {sign} * total_len FROM ({delta_sql})
        ON CONFLICT (stemmer) DO UPDATE
        SET docs = search_stats.docs + excluded.docs,
            total_len = search_stats.total_len + excluded.total_len
        """
    )


def _ids(article_ids: Iterable[int]) -> list[int]:
    return sorted({int(i) for i in article_ids})


def remove_articles(con: duckdb.DuckDBPyConnection, article_ids: Iterable[int]) -> None:
    """Drop articles from the index (deleted articles, or before re-indexing a new version).

    Only their search_docs rows go; their postings become garbage that no search counts,
    swept by `compact_index`. Cost: a lookup in search_docs, not a scan of the postings.
    """
    ids = _ids(article_ids)
    if not ids:
        return
    where = _match("article_id", ids)
    _add_stats(
        con,
        f"""SELECT stemmer, count(*) AS docs, sum(len) AS total_len FROM search_docs
            WHERE {where} GROUP BY stemmer""",
        sign=-1,
    )
    con.execute(f"DELETE FROM search_docs WHERE {where}")


def compact_index(con: duckdb.DuckDBPyConnection) -> int:
    """Delete postings of removed or superseded texts; return how many. Occasional upkeep."""
    row = con.execute(
        "DELETE FROM search_postings WHERE doc_id NOT IN (SELECT doc_id FROM search_docs)"
    ).fetchone()
    return int(row[0]) if row else 0


def index_articles(con: duckdb.DuckDBPyConnection, article_ids: Iterable[int]) -> int:
    """(Re-)index these articles from their current title and text; return how many were indexed.

    The ingest calls it inside its transaction after inserting or updating articles, so the
    index commits (or rolls back) with them. Cost grows with the articles given, not with
    the archive. Opens no transaction itself.
    """
    ids = _ids(article_ids)
    if not ids:
        return 0
    load_fts(con)
    done = 0
    for k in range(0, len(ids), 20000):
        chunk = ids[k : k + 20000]
        remove_articles(con, chunk)
        done += _index(con, _match("a.id", chunk), ordered=False)
    return done


def index_pending(con: duckdb.DuckDBPyConnection) -> int:
    """Index every article missing from the index or indexed at an older version (catch-up)."""
    load_fts(con)
    stale = [
        r[0]
        for r in con.execute(
            """
            SELECT a.id FROM articles a LEFT JOIN search_docs d ON d.article_id = a.id
            WHERE d.article_id IS NULL OR d.version <> a.version
            """
        ).fetchall()
    ]
    return index_articles(con, stale) if stale else 0


def rebuild_index(con: duckdb.DuckDBPyConnection) -> int:
    """Rebuild the whole index set-based, postings ordered by term (best for scans).

    For a first build over an existing archive or an occasional compaction; never needed
    for correctness, since `index_articles` keeps the index current.
    """
    load_fts(con)
    con.execute("DELETE FROM search_postings")
    con.execute("DELETE FROM search_docs")
    con.execute("DELETE FROM search_stats")
    return _index(con, "TRUE", ordered=True)


@dataclass
class Hit:
    id: int
    url: str
    outlet: str
    title: str | None
    published_at: datetime | None
    language: str | None
    score: float
    snippet: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SearchFilters(TypedDict, total=False):
    """What narrows a search, as `mediawatch search` passes it to either backend."""

    outlets: Sequence[str]
    languages: Sequence[str]
    since: datetime | None
    until: datetime | None
    limit: int


def tokens(text: str) -> list[str]:
    """Lower-case word tokens, as the index cuts them."""
    return [t for t in _TOKEN_PY.findall(text.lower()) if _MIN_LEN <= len(t) <= _MAX_LEN]


def _query_terms(
    con: duckdb.DuckDBPyConnection, words: list[str], stemmers: list[str]
) -> list[tuple[int, str]]:
    """(term key, stemmer) for every stemmer's form of every query word."""
    rows = con.execute(
        f"""
        SELECT DISTINCT {_TERM_KEY.format(stemmer="s.stemmer", word="w.word")}, s.stemmer
        FROM unnest(string_split($words, chr(31))) w(word)
        CROSS JOIN unnest({_sql_list(stemmers)}) s(stemmer)
        """,
        {"words": _split_param(words)},
    ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def search_in(
    db: str | os.PathLike[str],
    con: duckdb.DuckDBPyConnection | None,
    query: str,
    *,
    mark: tuple[str, str] = ("**", "**"),
    **filters: Unpack[SearchFilters],
) -> list[Hit]:
    """The hits of `query` in the archive `db` names (`con`: its open reader), on either
    backend: this module's BM25 index in the file, PostgreSQL's text search on a lake (where
    `con` may be None: the lake's reader is needed only for hits indexed by an older version)."""
    from archive.target import LakeTarget, parse_target

    target = parse_target(os.fspath(db))
    if isinstance(target, LakeTarget):
        from archive.lake.search import search as search_lake

        return search_lake(target, query, mark=mark, con=con, **filters)
    if con is None:
        raise ValueError("search_in: a file archive needs its open reader")
    return search(con, query, mark=mark, **filters)


def search(
    con: duckdb.DuckDBPyConnection,
    query: str,
    *,
    outlets: Sequence[str] = (),
    languages: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 20,
    snippet_words: int = 30,
    mark: tuple[str, str] = ("**", "**"),
) -> list[Hit]:
    """Articles matching `query`, best BM25 score first, with highlighted snippets.

    Words are OR-ed and ranked; "a phrase", +required, `a AND b`, -excluded and prefix* are
    understood (see SYNTAX); such queries run the archive's `search_articles` SQL macro,
    the one SQL users call, so both give the same hits and scores. Filters narrow the hits,
    not the statistics: a word's rarity is judged on the archive.
    """
    load_fts(con)
    words = positive_words(query)
    if limit <= 0 or (not words and not has_syntax(query)):
        return []
    filters: list[str] = ["TRUE"]
    params: dict[str, Any] = {"limit": int(limit)}
    _add_filters(filters, params, outlets, languages, since, until)
    if has_syntax(query):
        return _search_macro(con, {**params, "q": query}, filters, words, snippet_words, mark)
    stats = {
        str(r[0]): (int(r[1]), float(r[2]) / int(r[1]))
        for r in con.execute(
            "SELECT stemmer, docs, total_len FROM search_stats WHERE docs > 0"
        ).fetchall()
    }
    present = set(stats)
    if languages:
        present &= {STEMMERS.get(lang.lower(), FALLBACK_STEMMER) for lang in languages}
    stemmers = sorted(present & {*STEMMERS.values(), FALLBACK_STEMMER})
    if not stemmers:
        return []
    qterms = _query_terms(con, words, stemmers)
    params.update(k1=K1, b=B)
    # Rank first on ids and scores only; fetch titles and texts for the top ones after, so
    # a common word does not drag every matching article's text through the sort.
    join = "JOIN articles a ON a.id = s.article_id" if len(filters) > 1 else ""
    _sql_list(stemmers)  # validates the stemmer names inlined below
    st_values = ", ".join(f"('{st}', {stats[st][0]}, {stats[st][1]!r})" for st in stemmers)
    top = con.execute(
        f"""
        WITH raw AS MATERIALIZED (
            {
            _each(
                "SELECT term_key, doc_id, tf, doc_len FROM search_postings",
                "term_key",
                (k for k, _ in qterms),
            )
        }
        ),
        p AS MATERIALIZED (  -- live texts only: postings of superseded ones match no doc
            SELECT raw.term_key, d.article_id, d.stemmer, raw.tf, raw.doc_len
            FROM raw JOIN search_docs d USING (doc_id)
        ),
        df AS (SELECT term_key, count(*) AS df FROM p GROUP BY term_key),
        st(stemmer, n, avgdl) AS (VALUES {st_values}),
        scored AS (
            SELECT p.article_id,
                   sum(ln(1 + (st.n - df.df + 0.5) / (df.df + 0.5))
                       * p.tf * ($k1 + 1)
                       / (p.tf + $k1 * (1 - $b + $b * p.doc_len / st.avgdl))) AS score
            FROM p JOIN df USING (term_key) JOIN st USING (stemmer)
            GROUP BY p.article_id
        )
        SELECT s.article_id, s.score FROM scored s {join}
        WHERE {" AND ".join(filters)}
        ORDER BY s.score DESC, s.article_id DESC
        LIMIT $limit
        """,
        params,
    ).fetchall()
    if not top:
        return []
    scores = {int(r[0]): float(r[1]) for r in top}
    details = {
        int(r[0]): r
        for r in con.execute(
            f"""
            SELECT id, url, outlet, title, published_at, language, text,
                   {_stemmer_expr("language")} AS stemmer
            FROM articles WHERE {_match("id", scores)}
            """
        ).fetchall()
    }
    rows = [(*details[i][:6], scores[i], *details[i][6:]) for i in scores if i in details]
    texts = [(r[8], r[7] or "") for r in rows]
    matched = _matching_tokens(con, texts, words)
    return [
        Hit(
            id=int(r[0]), url=r[1], outlet=r[2], title=r[3], published_at=r[4], language=r[5],
            score=round(float(r[6]), 4),
            snippet=_snippet(r[7] or "", matched.get(r[8], set()), snippet_words, mark),
        )
        for r in rows
    ]  # fmt: skip


SYNTAX = """\
words        any of them, best match first (stemmed: "élections" finds "élection")
"a phrase"   these words in this order (accents and case aside); required
+word        required; `a AND b` requires both; OR is the default between words
-word        excluded
pre*         requires a word starting with pre (alone: ranked by how often)"""

_SYNTAX = re.compile(r'["*]|(?:^|\s)[+-]\S|(?:^|\s)AND(?:\s|$)')


def has_syntax(query: str) -> bool:
    """Whether the query uses more than plain words (then the SQL macro answers it)."""
    return bool(_SYNTAX.search(query))


def positive_words(query: str) -> list[str]:
    """The words a hit may contain (for ranking and marking): not excluded ones, not AND/OR,
    not prefixes."""
    out: set[str] = set()
    for phrase in re.findall(r'"([^"]*)"', query):
        out.update(tokens(phrase))
    for tok in re.sub(r'"[^"]*"?', " ", query).split():
        if (
            tok in ("AND", "OR")
            or (tok.startswith("-") and len(tok) > 1)
            or (tok.endswith("*") and len(tok) > 1)
        ):
            continue
        out.update(tokens(tok))
    return sorted(out)


def _add_filters(
    filters: list[str],
    params: dict[str, Any],
    outlets: Sequence[str] | None,
    languages: Sequence[str] | None,
    since: datetime | None,
    until: datetime | None,
) -> None:
    """The --outlet / --lang / --since / --until conditions on `articles a`, as SQL and parameters."""
    if outlets:
        filters.append("list_contains($outlets, a.outlet)")
        params["outlets"] = list(outlets)
    if languages:
        filters.append("list_contains($languages, lower(split_part(a.language, '-', 1)))")
        params["languages"] = [lang.lower() for lang in languages]
    if since is not None:
        filters.append("a.published_at >= $since")
        params["since"] = since
    if until is not None:
        filters.append("a.published_at < $until")
        params["until"] = until


def _search_macro(
    con: duckdb.DuckDBPyConnection,
    params: dict[str, Any],
    filters: list[str],
    words: list[str],
    snippet_words: int,
    mark: tuple[str, str],
) -> list[Hit]:
    """A query with syntax ($q), through the search_articles macro (archive/views.sql)."""
    rows = con.execute(
        f"""
        SELECT a.id, a.url, a.outlet, a.title, a.published_at, a.language, s.score, a.text,
               {_stemmer_expr("a.language")} AS stemmer
        FROM search_articles($q) s JOIN articles a ON a.id = s.article_id
        WHERE {" AND ".join(filters)}
        ORDER BY s.score DESC, s.article_id DESC
        LIMIT $limit
        """,
        params,
    ).fetchall()
    matched = _matching_tokens(con, [(r[8], r[7] or "") for r in rows], words) if words else {}
    return [
        Hit(id=int(r[0]), url=r[1], outlet=r[2], title=r[3], published_at=r[4], language=r[5],
            score=round(float(r[6]), 4),
            snippet=_snippet(r[7] or "", matched.get(r[8], set()), snippet_words, mark))
        for r in rows
    ]  # fmt: skip


def _spans(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group().lower()) for m in _TOKEN_PY.finditer(text)]


def _matching_tokens(
    con: duckdb.DuckDBPyConnection, texts: Sequence[tuple[str, str]], words: Sequence[str]
) -> dict[str, set[str]]:
    """Per stemmer, the tokens of `texts` ((stemmer, text) pairs) that stem like a query word.

    One query for all hits, with the index's own stemming: "élections" marks "élection".
    """
    pairs = sorted(
        {
            (st, t[2])
            for st, text in texts
            for t in _spans(text)
            if _MIN_LEN <= len(t[2]) <= _MAX_LEN
        }
    )
    if not pairs:
        return {}
    rows = con.execute(
        """
        WITH t AS MATERIALIZED (
            SELECT stemmer, tok, strip_accents(stem(tok, stemmer)) AS term
            FROM (SELECT unnest(string_split($st, chr(31))) AS stemmer,
                         unnest(string_split($tok, chr(31))) AS tok)
        ),
        q AS (
            SELECT DISTINCT s.stemmer, strip_accents(stem(w.word, s.stemmer)) AS term
            FROM unnest(string_split($words, chr(31))) w(word)
            CROSS JOIN (SELECT DISTINCT stemmer FROM t) s
        )
        SELECT DISTINCT t.stemmer, t.tok FROM t JOIN q USING (stemmer, term)
        """,
        {
            "st": _split_param(p[0] for p in pairs),
            "tok": _split_param(p[1] for p in pairs),
            "words": _split_param(words),
        },
    ).fetchall()
    out: dict[str, set[str]] = {}
    for stemmer, tok in rows:
        out.setdefault(stemmer, set()).add(tok)
    return out


def snippet(
    con: duckdb.DuckDBPyConnection,
    text: str,
    words: Sequence[str],
    stemmer: str,
    *,
    size: int = 30,
    mark: tuple[str, str] = ("**", "**"),
) -> str:
    """The window of `size` words of `text` with most query words, matches wrapped in `mark`."""
    matched = _matching_tokens(con, [(stemmer, text)], words).get(stemmer, set())
    return _snippet(text, matched, size, mark)


def _snippet(text: str, hit_words: set[str], size: int, mark: tuple[str, str]) -> str:
    spans = _spans(text)
    if not spans or size <= 0:
        return ""
    hits = [i for i, s in enumerate(spans) if s[2] in hit_words]
    start = 0
    if hits:
        best, best_count = hits[0], 0
        for h in hits:  # a window starting a few words before each hit
            lo = max(0, h - 3)
            count = len({spans[i][2] for i in hits if lo <= i < lo + size})
            if count > best_count:
                best, best_count = lo, count
        start = best
    end = min(len(spans), start + size)
    hit_set = set(hits)
    out: list[str] = []
    pos = spans[start][0]
    for i in range(start, end):
        s, e, _ = spans[i]
        out.append(text[pos:s])
        out.append(f"{mark[0]}{text[s:e]}{mark[1]}" if i in hit_set else text[s:e])
        pos = e
    if end == len(spans):
        out.append(text[pos:])  # keep the closing punctuation
    body = " ".join("".join(out).split())
    return ("… " if start > 0 else "") + body + (" …" if end < len(spans) else "")
