"""Ranked full-text search (BM25) over article titles and texts, kept current incrementally.

DuckDB's fts extension rebuilds its whole index on every `create_fts_index` call, which
does not fit an archive where articles land one by one. So the inverted index lives in
ordinary tables (migration 0002_search) and is maintained by `index_articles`, called by
the ingest inside its own transaction. Only the fts extension's Snowball `stem()` function
is used. Terms are keyed by stemmer, so each article is stemmed in its own language and a
French "die" never meets a German one; BM25 statistics are per stemmer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

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


def load_fts(con: duckdb.DuckDBPyConnection) -> None:
    """Load the fts extension (for `stem`); cheap when already loaded."""
    # duckdb_functions(), not duckdb_extensions(): the latter lists the extension directory,
    # which a sandboxed connection may not read.
    loaded = con.execute(
        "SELECT count(*) FROM duckdb_functions() WHERE function_name = 'stem'"
    ).fetchone()
    if loaded and loaded[0]:
        return
    con.execute(f"LOAD '{_sql_str(str(fts_extension_path()))}'")


def _sql_str(text: str) -> str:
    """Escape a string for a single-quoted SQL literal (only for statements without params)."""
    return text.replace("'", "''")


def _stemmer_expr(column: str) -> str:
    """SQL for the stemmer of a language column; languages are passed as $langs/$stemmers."""
    return (
        f"coalesce(list_extract($stemmers, list_position($langs, "
        f"lower(split_part(split_part({column}, '-', 1), '_', 1)))), '{FALLBACK_STEMMER}')"
    )


def _stem_params() -> dict[str, Any]:
    return {"langs": list(STEMMERS), "stemmers": list(STEMMERS.values())}


# Tokens of the selected articles, stemmed once per distinct (stemmer, token), counted.
_TOKENS_SQL = f"""
CREATE OR REPLACE TEMP TABLE _mw_search_tok AS
WITH src AS (
    SELECT a.id AS article_id, a.version, {_stemmer_expr("a.language")} AS stemmer,
           lower(coalesce(a.title, '')) AS title, lower(coalesce(a.text, '')) AS body
    FROM articles a
    WHERE __WHERE__
),
toks AS (
    SELECT article_id, stemmer, unnest(regexp_split_to_array(title, '{_SPLIT_SQL}')) AS tok,
           {TITLE_WEIGHT} AS w
    FROM src
    UNION ALL
    SELECT article_id, stemmer, unnest(regexp_split_to_array(body, '{_SPLIT_SQL}')) AS tok, 1 AS w
    FROM src
),
kept AS (
    SELECT * FROM toks WHERE length(tok) BETWEEN {_MIN_LEN} AND {_MAX_LEN}
),
vocab AS (
    SELECT stemmer, tok, strip_accents(stem(tok, stemmer)) AS term
    FROM (SELECT DISTINCT stemmer, tok FROM kept)
)
SELECT k.article_id, k.stemmer, v.term, sum(k.w)::INTEGER AS tf
FROM kept k JOIN vocab v USING (stemmer, tok)
GROUP BY ALL
"""


def _index(con: duckdb.DuckDBPyConnection, where: str, params: dict[str, Any], *, ordered: bool) -> int:
    """Tokenise the articles matching `where` and append them to the index tables."""
    con.execute(_TOKENS_SQL.replace("__WHERE__", where), {**params, **_stem_params()})
    con.execute(
        """
        INSERT INTO search_terms (term_id, stemmer, term)
        SELECT nextval('search_term_id_seq'), n.stemmer, n.term
        FROM (SELECT DISTINCT stemmer, term FROM _mw_search_tok) n
        ANTI JOIN search_terms t ON t.stemmer = n.stemmer AND t.term = n.term
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _mw_search_len AS
        SELECT article_id, any_value(stemmer) AS stemmer, sum(tf)::INTEGER AS len
        FROM _mw_search_tok GROUP BY article_id
        """
    )
    con.execute(
        """
        INSERT INTO search_docs (article_id, stemmer, len, version)
        SELECT l.article_id, l.stemmer, l.len, a.version
        FROM _mw_search_len l JOIN articles a ON a.id = l.article_id
        """
    )
    order = "ORDER BY t.term_id, k.article_id" if ordered else ""
    con.execute(
        f"""
        INSERT INTO search_postings (term_id, article_id, tf, doc_len)
        SELECT t.term_id, k.article_id, k.tf, l.len
        FROM _mw_search_tok k
        JOIN search_terms t ON t.stemmer = k.stemmer AND t.term = k.term
        JOIN _mw_search_len l ON l.article_id = k.article_id
        {order}
        """
    )
    row = con.execute("SELECT count(*) FROM _mw_search_len").fetchone()
    con.execute("DROP TABLE IF EXISTS _mw_search_tok")
    con.execute("DROP TABLE IF EXISTS _mw_search_len")
    return int(row[0]) if row else 0


def _ids(article_ids: Iterable[int]) -> list[int]:
    return sorted({int(i) for i in article_ids})


def remove_articles(con: duckdb.DuckDBPyConnection, article_ids: Iterable[int]) -> None:
    """Drop articles from the index (deleted articles, or before re-indexing a new version)."""
    ids = _ids(article_ids)
    if not ids:
        return
    known = [
        r[0]
        for r in con.execute(
            "SELECT article_id FROM search_docs WHERE article_id IN (SELECT unnest($ids))",
            {"ids": ids},
        ).fetchall()
    ]
    if not known:  # a brand-new article: no scan of the postings
        return
    con.execute("DELETE FROM search_postings WHERE article_id IN (SELECT unnest($ids))", {"ids": known})
    con.execute("DELETE FROM search_docs WHERE article_id IN (SELECT unnest($ids))", {"ids": known})


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
    remove_articles(con, ids)
    return _index(con, "a.id IN (SELECT unnest($ids))", {"ids": ids}, ordered=False)


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
    con.execute("DELETE FROM search_terms")
    return _index(con, "TRUE", {}, ordered=True)


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


def tokens(text: str) -> list[str]:
    """Lower-case word tokens, as the index cuts them."""
    return [t for t in _TOKEN_PY.findall(text.lower()) if _MIN_LEN <= len(t) <= _MAX_LEN]


def _query_terms(
    con: duckdb.DuckDBPyConnection, words: list[str], stemmers: list[str]
) -> list[tuple[int, str, str]]:
    """(term_id, stemmer, query word) for every stemmer's form of every query word in the index."""
    rows = con.execute(
        """
        WITH q AS (
            SELECT w.word, s.stemmer, strip_accents(stem(w.word, s.stemmer)) AS term
            FROM unnest($words) w(word) CROSS JOIN unnest($stemmers) s(stemmer)
        )
        SELECT t.term_id, q.stemmer, q.word FROM q
        JOIN search_terms t ON t.stemmer = q.stemmer AND t.term = q.term
        """,
        {"words": words, "stemmers": stemmers},
    ).fetchall()
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


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
    """Articles matching any word of `query`, best BM25 score first, with highlighted snippets.

    Filters narrow the hits, not the statistics: a word's rarity is judged on the archive.
    """
    load_fts(con)
    words = sorted(set(tokens(query)))
    if not words or limit <= 0:
        return []
    if languages:
        stemmers = sorted({STEMMERS.get(lang.lower(), FALLBACK_STEMMER) for lang in languages})
    else:
        stemmers = sorted({*STEMMERS.values(), FALLBACK_STEMMER})
    qterms = _query_terms(con, words, stemmers)
    if not qterms:
        return []
    term_ids = sorted({t[0] for t in qterms})
    # Inlined integer literals (from our own table, int()-checked) let DuckDB prune row
    # groups of the postings by their min/max term_id; a list parameter would not.
    in_list = ", ".join(str(int(t)) for t in term_ids)
    filters: list[str] = ["TRUE"]
    params: dict[str, Any] = {"limit": int(limit), "k1": K1, "b": B}
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
    rows = con.execute(
        f"""
        WITH p AS (
            SELECT term_id, article_id, tf, doc_len FROM search_postings
            WHERE term_id IN ({in_list})
        ),
        qt AS (
            SELECT DISTINCT term_id, stemmer FROM search_terms WHERE term_id IN ({in_list})
        ),
        df AS (SELECT term_id, count(*) AS df FROM p GROUP BY term_id),
        st AS (
            SELECT stemmer, count(*) AS n, avg(len) AS avgdl FROM search_docs
            WHERE stemmer IN (SELECT stemmer FROM qt) GROUP BY stemmer
        ),
        scored AS (
            SELECT p.article_id,
                   sum(ln(1 + (st.n - df.df + 0.5) / (df.df + 0.5))
                       * p.tf * ($k1 + 1)
                       / (p.tf + $k1 * (1 - $b + $b * p.doc_len / st.avgdl))) AS score
            FROM p JOIN df USING (term_id) JOIN qt USING (term_id) JOIN st USING (stemmer)
            GROUP BY p.article_id
        )
        SELECT a.id, a.url, a.outlet, a.title, a.published_at, a.language, s.score, a.text,
               {_stemmer_expr("a.language")} AS stemmer
        FROM scored s JOIN articles a ON a.id = s.article_id
        WHERE {" AND ".join(filters)}
        ORDER BY s.score DESC, a.published_at DESC NULLS LAST, a.id
        LIMIT $limit
        """,
        {**params, **_stem_params()},
    ).fetchall()
    return [
        Hit(
            id=int(r[0]), url=r[1], outlet=r[2], title=r[3], published_at=r[4], language=r[5],
            score=round(float(r[6]), 4),
            snippet=snippet(con, r[7] or "", words, r[8], size=snippet_words, mark=mark),
        )
        for r in rows
    ]  # fmt: skip


def snippet(
    con: duckdb.DuckDBPyConnection,
    text: str,
    words: Sequence[str],
    stemmer: str,
    *,
    size: int = 30,
    mark: tuple[str, str] = ("**", "**"),
) -> str:
    """The window of `size` words with most query words, matched words wrapped in `mark`.

    Matching uses the same stems as the index, so "élections" highlights "élection".
    """
    spans = [(m.start(), m.end(), m.group().lower()) for m in _TOKEN_PY.finditer(text)]
    if not spans:
        return ""
    distinct = sorted({s[2] for s in spans if _MIN_LEN <= len(s[2]) <= _MAX_LEN})
    rows = con.execute(
        """
        WITH q AS (SELECT DISTINCT strip_accents(stem(w, $stemmer)) AS term FROM unnest($words) t(w))
        SELECT tok FROM unnest($toks) t(tok)
        WHERE strip_accents(stem(tok, $stemmer)) IN (SELECT term FROM q)
        """,
        {"stemmer": stemmer, "words": list(words), "toks": distinct},
    ).fetchall()
    hit_words = {r[0] for r in rows}
    hits = [i for i, s in enumerate(spans) if s[2] in hit_words]
    start = 0
    if hits:
        best, best_count = hits[0], 0
        for h in hits:  # window starting a few words before each hit
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
