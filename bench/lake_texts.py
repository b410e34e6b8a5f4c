"""Synthetic news texts for the lake benches, written straight into a lake as the lake writer
writes new articles (article_texts version 1 and each article its own cluster, as
archive/lake/decide.py does), set-based in DuckDB: 300-800 words, real stop words of eight
languages at the head of a Zipf (1/rank) vocabulary of made-up words, two-word collocations,
one name in every language, one language per outlet, dates over a year in id order."""

from __future__ import annotations

import functools
import itertools
import random
import time

from archive.lake.connect import connect_lake_write
from archive.target import LakeTarget

VOCAB = 100_000  # made-up words per language, after its stop words
OUTLETS = 1_000
YEAR = 365 * 86400
# language: (share of outlets, stop words, syllables, suffixes)
LANGUAGES: dict[str, tuple[float, str, str, str]] = {
    "fr": (0.25, "de la le et les des en un du une que est pour qui dans par sur au pas plus",
           "ra mi lo sé pa ti vou cha gne on ré bo lu", "ation ement eur ique es s er é"),
    "en": (0.25, "the of and to a in is that for it on was with as by at be this from",
           "ba ro ting ka lo mer ston wil pe da", "ing ed ness s ly er ment"),
    "de": (0.15, "der die und in den von zu das mit sich des auf für ist im dem nicht ein",
           "ge ber kra lin sto hau wer mu zei", "ung keit en er lich heit ig"),
    "es": (0.10, "de la que el en y a los del se las por un para con no una su al",
           "ca ro mi to sa pe lu ña ve", "ción mente dad os as ar"),
    "it": (0.08, "di e il la che in a per un del non è con sono una le si da",
           "ri ca to lo ve gi pa ne sci", "zione mente ità i e are"),
    "pt": (0.07, "de a o que e do da em um para é com não uma os no se na",
           "ção mo ra ti lu ve ca pe", "ção mente dade os as ar"),
    "nl": (0.05, "de en van het een in is dat op te zijn met voor niet aan er",
           "ge ver lan hui koo sta wer", "ing heid en er lijk"),
    "sv": (0.05, "och i att det som en på är av för med till den har de inte om",
           "för sta kla vär hem ska lin", "ning het en ar lig"),
}  # fmt: skip
SHARED_NAME = "kalorvia"  # a place every outlet writes about: in nearly every article


@functools.cache
def vocabulary(lang: str, seed: int = 15) -> list[str]:
    """Stop words, the shared name at rank 5, made-up words, and collocations at ranks 500
    and 5,000 (two made-up words of ranks 30 and 90, 40 and 120, as one vocabulary entry)."""
    _, stops, syllables, suffixes = LANGUAGES[lang]
    rng = random.Random(f"{seed}-{lang}")
    sylls, sufs, stop = syllables.split(), ["", *suffixes.split()], set(stops.split())
    made: set[str] = set()
    for k in range(2, 6):
        made.update("".join(p) + s for p in itertools.product(sylls, repeat=k) for s in sufs)
        if len(made) - len(stop) >= VOCAB:
            break
    else:
        raise ValueError(f"{lang}: its syllables make fewer than {VOCAB} words")
    # shorter words tend to rank higher, as in real texts
    words = sorted(sorted(made - stop), key=lambda w: len(w) + rng.random() * 8)[:VOCAB]
    head = stops.split()
    head.insert(4, SHARED_NAME)
    words.insert(500, f"{words[30]} {words[90]}")
    words.insert(5000, f"{words[40]} {words[120]}")
    return head + words


def outlet_languages() -> list[tuple[int, str]]:
    rng = random.Random(15)
    langs, shares = list(LANGUAGES), [v[0] for v in LANGUAGES.values()]
    return [(o, rng.choices(langs, shares)[0]) for o in range(OUTLETS)]


_DRAW = "v.words[least(v.n, floor(pow(v.n, random()))::INT)]"  # Zipf: P(rank) ~ 1/rank
# The article_texts rows of one language's articles among ids first..last.
_ROWS = f"""
INSERT INTO article_texts (article_id, version, outlet, url, canonical_url, title, published_at,
    date_source, language, text, word_count, paywalled, promo_flagged, content_hash,
    extractor_version, fetched_at, first_seen_at, recorded_at)
WITH t AS (
    SELECT i, TIMESTAMPTZ '2026-01-01 00:00:00+00'
              + to_seconds((i * {YEAR} // {{articles}})::BIGINT) AS ts
    FROM range({{first}}, {{last}} + 1) r(i)
    SEMI JOIN outlet_lang o ON o.o = r.i % {OUTLETS} AND o.lang = '{{lang}}'
), g AS (
    SELECT i, ts, array_to_string(list_transform(range(6 + i % 7), k -> {_DRAW}), ' ') AS title,
           array_to_string(list_transform(range(300 + (hash(i) % 501)::INT), k -> {_DRAW}), ' ')
               AS body
    FROM t, (SELECT words, n FROM vocab WHERE lang = '{{lang}}') v
)
SELECT i, 1, 'outlet' || lpad((i % {OUTLETS})::VARCHAR, 4, '0'),
       'https://outlet' || (i % {OUTLETS}) || '.example/a/' || i,
       'https://outlet' || (i % {OUTLETS}) || '.example/a/' || i,
       title, ts, 'jsonld', '{{lang}}', body, len(string_split(body, ' ')), false, false, md5(body),
       'bench', ts + INTERVAL 10 MINUTE, ts + INTERVAL 10 MINUTE, ts + INTERVAL 10 MINUTE
FROM g
"""


def build_lake(target: LakeTarget, articles: int, chunk: int) -> float:
    """article_texts and cluster rows of `articles` new articles, `chunk` a commit."""
    started = time.perf_counter()
    con = connect_lake_write(target)
    try:
        con.execute("SET preserve_insertion_order = false")
        con.execute("CREATE TEMP TABLE vocab (lang VARCHAR, words VARCHAR[], n INTEGER)")
        for lang in LANGUAGES:
            words = vocabulary(lang)
            con.execute("INSERT INTO vocab VALUES (?, ?, ?)", [lang, words, len(words)])
        con.execute("CREATE TEMP TABLE outlet_lang (o INTEGER, lang VARCHAR)")
        con.executemany("INSERT INTO outlet_lang VALUES (?, ?)", outlet_languages())
        for first in range(1, articles + 1, chunk):
            last = min(articles, first + chunk - 1)
            con.execute("BEGIN")
            for lang in LANGUAGES:  # one vocabulary row a statement: a join would copy its list
                con.execute(_ROWS.format(first=first, last=last, lang=lang, articles=articles))
            con.execute(f"""
                INSERT INTO cluster_members SELECT article_id, article_id, recorded_at
                FROM article_texts WHERE article_id BETWEEN {first} AND {last}""")
            con.execute(f"""
                INSERT INTO cluster_heads SELECT article_id, article_id, published_at, 1, recorded_at
                FROM article_texts WHERE article_id BETWEEN {first} AND {last}""")
            con.execute("COMMIT")
            print(f"  lake rows {last:,} ({time.perf_counter() - started:.0f} s)", flush=True)
    finally:
        con.close()
    return time.perf_counter() - started
