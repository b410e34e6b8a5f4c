"""Dedup: fingerprints, decisions in a real DuckDB archive, and the labelled set's figures."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from archive import batch, dedup
from archive.db import writer
from pipelines.fingerprint import (
    BANDS,
    content_hash,
    minhash_bands,
    normalise_text,
    shingles,
    words,
)
from tests.dedup_eval.corpus import build
from tests.dedup_eval.harness import Report, evaluate_clusters, evaluate_pairs, evaluate_urls

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)

STORY = (
    "The regional transport authority announced on Tuesday that the northern railway line will close "
    "for eleven weeks next summer while engineers replace two bridges and rebuild the signalling system. "
    "Commuters will be offered replacement buses every ten minutes at peak hours, and season ticket "
    "holders will receive a refund for the months affected.\n\n"
    "The director of the authority said the work could not be postponed any longer because the bridges "
    "were built more than a century ago and had reached the end of their working life. Passenger groups "
    "welcomed the investment but criticised the length of the closure and the timing during the holidays.\n\n"
    "Local businesses near the stations fear a fall in trade, and the chamber of commerce has asked for "
    "compensation. The authority said a consultation on the bus timetable would open next month and that "
    "detailed plans would be published on its website before the end of the year."
)
OTHER = (
    "A new public library opened its doors on Saturday in the old post office building, after a renovation "
    "that took three years and was funded largely by a local foundation. The building keeps its original "
    "facade and clock tower, while the interior has been redesigned with reading rooms, a children's "
    "section and a small theatre for readings and concerts. Volunteers will run a weekly repair cafe in the "
    "basement, and the library will stay open until nine in the evening on weekdays."
)


def _half(text: str) -> str:
    toks = text.split(" ")
    return " ".join(toks[: len(toks) // 2])


@pytest.fixture()
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with writer(tmp_path / "a.duckdb") as c:
        dedup.ensure_indexes(c)
        yield c


def _insert(
    con: duckdb.DuckDBPyConnection,
    outlet: str,
    text: str,
    published: datetime | None,
    url: str | None = None,
) -> int:
    row = con.execute(
        "INSERT INTO articles (outlet, url, canonical_url, text, content_hash, content_key, "
        "published_at, first_seen_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        [
            outlet,
            url or f"https://{outlet}.example/{len(text)}-{published}",
            url or f"k-{outlet}-{len(text)}-{published}",
            text,
            content_hash(text),
            batch.content_key(content_hash(text)),
            published,
            T0,
            T0,
        ],
    ).fetchone()
    assert row is not None
    return int(row[0])


def _place(
    con: duckdb.DuckDBPyConnection,
    outlet: str,
    text: str,
    published: datetime | None,
    url: str | None = None,
) -> tuple[int, list[dedup.Decision]]:
    aid = _insert(con, outlet, text, published, url)
    return aid, dedup.place_article(
        con,
        aid,
        outlet=outlet,
        text=text,
        bands=minhash_bands(text),
        published_at=published,
        now=T0,
    )


def _cluster(con: duckdb.DuckDBPyConnection, aid: int) -> int:
    row = con.execute("SELECT cluster_id FROM articles WHERE id = ?", [aid]).fetchone()
    assert row is not None and row[0] is not None
    return int(row[0])


# -- fingerprints -------------------------------------------------------------------------


def test_content_hash_ignores_typography_not_words() -> None:
    assert content_hash("L’été — “chaud”,  très\u00a0chaud!") == content_hash(
        'l\'été - "chaud" très chaud'
    )
    assert content_hash(STORY) != content_hash(STORY.replace("eleven", "twelve"))
    assert normalise_text("Hello,\n\nWORLD!") == "hello world"


def test_shingles_short_and_normal() -> None:
    assert shingles("one two") == {"one two"}
    assert shingles("") == set()
    assert len(shingles("a b c d e f")) == 2


def test_bands_shape_and_range() -> None:
    bands = minhash_bands(STORY)
    assert len(bands) == BANDS
    assert all(0 <= b < 2**64 for b in bands)
    assert len(set(bands)) == BANDS  # band number is hashed in
    assert minhash_bands("") == []
    assert minhash_bands("   ...  ") == []


def test_bands_deterministic_across_processes() -> None:
    code = "import json; from pipelines.fingerprint import minhash_bands as m; print(json.dumps(m(open(0).read())))"
    assert _fresh_python(code, STORY) == minhash_bands(STORY)


def _fresh_python(code: str, stdin: str) -> Any:
    """What `code`, run in a new interpreter with `stdin`, prints as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return json.loads(done.stdout)


def test_cleaning_processes_do_not_load_scipy_and_bands_match_datasketch() -> None:
    # datasketch's package __init__ imports scipy (56 MB in each cleaning worker) for a
    # sketch we do not use; the bands must be what the whole package computes all the same
    code = (
        "import json, sys; import pipelines.clean; from pipelines.fingerprint import "
        "minhash_signature as s; text = open(0).read(); mine = s(text).tolist(); "
        "loaded = 'scipy' in sys.modules; import datasketch; from pipelines.fingerprint "
        "import SEED, shingles; m = datasketch.MinHash(num_perm=128, seed=SEED); "
        "m.update_batch([x.encode() for x in sorted(shingles(text))]); "
        "print(json.dumps([loaded, mine == m.hashvalues.tolist(), datasketch.minhash.__name__]))"
    )
    assert _fresh_python(code, STORY) == [False, True, "datasketch.minhash"]


def test_archive_tokeniser_matches_pipeline() -> None:
    samples = [
        STORY,
        OTHER,
        "Straße ÉTÉ ﬁnal 3,5 % x²",
        "naïve café—déjà vu",
        "日本語のテキスト 2024年",
    ]
    for s in samples:
        assert dedup._words(s) == words(s)


def test_similarity_truncated_and_template() -> None:
    half = dedup.similarity(STORY, _half(STORY))
    assert half.duplicate and half.containment > 0.95 and half.jaccard < 0.6
    assert not dedup.similarity(STORY, OTHER).duplicate
    a = STORY + " Prices rose 3.1 percent, 2.4 percent and 7.5 percent in three years."
    b = (
        STORY.replace("eleven", "nine").replace("ten minutes", "15 minutes")
        + " Prices rose 4.2 percent, 1.9 percent and 6.6 percent in three years."
    )
    assert not dedup.similarity(a, b).duplicate  # same text, other figures: the number guard


# -- archive decisions ---------------------------------------------------------------------


def test_truncated_copy_joins_original_cluster(con: duckdb.DuckDBPyConnection) -> None:
    orig, d0 = _place(con, "wire", STORY, T0)
    assert d0 == []
    copy, d1 = _place(
        con, "daily", "Bridges to be rebuilt\n\n" + _half(STORY), T0 + timedelta(hours=2)
    )
    assert [d.matched_article_id for d in d1] == [orig]
    assert d1[0].level == "near" and d1[0].score is not None and d1[0].score > 0.9
    assert _cluster(con, copy) == _cluster(con, orig) == orig
    other, d2 = _place(con, "daily", OTHER, T0)
    assert d2 == [] and _cluster(con, other) == other
    rows = con.execute(
        "SELECT article_id, matched_article_id, level, reason FROM duplicate_links"
    ).fetchall()
    assert rows == [(copy, orig, "near", rows[0][3])] and "contained" in rows[0][3]
    assert con.execute(
        "SELECT size, first_article_id FROM clusters WHERE cluster_id = ?", [orig]
    ).fetchone() == (2, orig)
    assert con.execute("SELECT count(*) FROM lsh_bands").fetchone() == (3 * BANDS,)


def test_earliest_member_tracked(con: duckdb.DuckDBPyConnection) -> None:
    late, _ = _place(con, "a", STORY, T0 + timedelta(hours=5))
    early, _ = _place(con, "b", STORY + "\n\nReporting by agencies.", T0)
    undated, _ = _place(con, "c", STORY, None)
    cid = _cluster(con, late)
    assert _cluster(con, early) == _cluster(con, undated) == cid
    row = con.execute(
        "SELECT first_article_id, first_published_at, size FROM clusters WHERE cluster_id = ?",
        [cid],
    ).fetchone()
    assert row == (early, T0, 3)


def test_exact_is_per_outlet(con: duckdb.DuckDBPyConnection) -> None:
    aid, _ = _place(con, "wire", STORY, T0)
    assert dedup.find_exact(con, "wire", content_hash(STORY.replace("\n\n", "\n"))) == aid
    assert dedup.find_exact(con, "other", content_hash(STORY)) is None
    assert dedup.find_exact(con, "wire", "") is None
    dedup.record_decision(
        con, dedup.Decision(aid, aid, "exact", 1.0, "same text under https://x/y"), T0
    )
    assert con.execute("SELECT level FROM duplicate_links").fetchall() == [("exact",)]


def test_add_url(con: duckdb.DuckDBPyConnection) -> None:
    aid, _ = _place(con, "wire", STORY, T0)
    assert dedup.add_url(con, "https://x.com/a", aid, "canonical", T0) is True
    assert dedup.add_url(con, "https://x.com/a", aid + 1, "alias", T0) is False
    assert con.execute("SELECT article_id FROM article_urls").fetchall() == [(aid,)]


def test_bridge_does_not_merge_clusters(con: duckdb.DuckDBPyConnection) -> None:
    first = STORY.split("\n\n")[0]
    last = STORY.split("\n\n")[2]
    a, _ = _place(con, "a", first * 1, T0)
    b, _ = _place(con, "b", last, T0)
    assert _cluster(con, a) != _cluster(con, b)
    c, decisions = _place(con, "c", first + "\n\n" + last, T0 + timedelta(hours=1))
    assert {d.matched_article_id for d in decisions} == {a, b}
    assert _cluster(con, a) != _cluster(con, b)
    assert _cluster(con, c) in (_cluster(con, a), _cluster(con, b))
    assert any("not merged" in d.reason for d in decisions)


def test_refresh_bands_adds_only_missing(con: duckdb.DuckDBPyConnection) -> None:
    aid, _ = _place(con, "a", STORY, T0)
    new_text = STORY.replace("eleven weeks", "twelve weeks")
    dedup.refresh_bands(con, aid, minhash_bands(new_text))
    n = con.execute(
        "SELECT count(*), count(DISTINCT hash) FROM lsh_bands WHERE article_id = ?", [aid]
    ).fetchone()
    assert n is not None and BANDS < n[0] < 2 * BANDS and n[0] == n[1]


def test_runs_inside_callers_transaction(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("BEGIN")
    _place(con, "a", STORY, T0)
    _place(con, "b", STORY, T0)
    con.execute("ROLLBACK")  # would fail if place_article had committed on its own
    assert con.execute("SELECT count(*) FROM lsh_bands").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM clusters").fetchone() == (0,)


def test_article_without_text_gets_own_cluster(con: duckdb.DuckDBPyConnection) -> None:
    aid, decisions = _place(con, "a", "", T0)
    assert decisions == [] and _cluster(con, aid) == aid


def test_lookups_use_indexes_not_scans(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "INSERT INTO articles (outlet, url, canonical_url, text, content_hash, first_seen_at, "
        "last_seen_at) SELECT 'o', 'u' || range, 'u' || range, 't', md5(range::VARCHAR), now(), now() "
        "FROM range(20000)"
    )
    con.execute(f"UPDATE articles SET content_key = {batch.CONTENT_KEY_SQL}")
    con.execute("INSERT INTO clusters SELECT id, id, NULL, 1 FROM articles")
    con.execute("INSERT INTO article_urls SELECT url, id, 'canonical', now() FROM articles")
    ids = "3, 50, 700"
    checks = [
        (batch.CANDIDATE_ROWS.format(ids=ids), []),
        (batch.OUTLETS.format(ids=ids), []),
        (batch.FIRST_SEEN.format(ids=ids), []),
        (batch.CLUSTER_ROWS.format(ids=ids), []),
        (batch.KNOWN_URLS.format(params="?, ?, ?"), ["u3", "u50", "nowhere"]),
        (
            "SELECT id, outlet, content_hash FROM articles WHERE content_key = ?",
            [batch.content_key(content_hash("x"))],
        ),
    ]
    for sql, params in checks:
        plan = con.execute("EXPLAIN ANALYZE " + sql, params).fetchall()[0][1]
        assert "Index Scan" in plan and "Sequential Scan" not in plan, sql


def test_band_index_follows_other_writers_and_replaced_files(tmp_path: Path) -> None:
    path = tmp_path / "b.duckdb"
    with writer(path) as c1:
        a, _ = _place(c1, "a", STORY, T0)
    with writer(path) as c2:  # another connection (another cycle, or another process)
        aid = _insert(c2, "b", STORY, T0)
        c2.execute(
            "INSERT INTO lsh_bands SELECT range::SMALLINT, unnest(?::UBIGINT[]), ? FROM range(1)",
            [minhash_bands(OTHER)[:1], aid],
        )
    with writer(path) as c3:
        _, decisions = _place(c3, "c", OTHER, T0)
        assert [d.matched_article_id for d in decisions] == []  # b's row seen, text differs
        _, decisions = _place(c3, "d", STORY, T0)
        assert a in [d.matched_article_id for d in decisions]
    path.unlink()
    path.with_name(path.name + ".wal").unlink(missing_ok=True)
    with writer(path) as c4:  # a new archive at the same path must not inherit the old index
        x, decisions = _place(c4, "e", STORY, T0)
        assert decisions == [] and _cluster(c4, x) == x


def test_ingest_writes_a_transactions_band_rows_at_once_and_a_replay_changes_nothing(
    tmp_path: Path,
) -> None:
    """Band rows are deferred to one INSERT before COMMIT: a copy later in the same
    transaction is still found, a replay adds no row, a failed transaction leaves none."""
    from archive.ingest import ingest_records
    from tests.test_ingest import fixture, page_record

    html = fixture("elections.html")
    first = page_record("http://news.example/2024/05/17/elections-municipales", html)
    copy = page_record("http://news.example/2024/05/17/elections-municipales", html, outlet="wire")
    other = page_record("http://news.example/2024/05/18/climate-summit", fixture("climate.html"))
    db = tmp_path / "a.duckdb"
    with writer(db) as con:
        assert ingest_records(con, [first, copy]).outcomes["new"] == 2
        ids = [r[0] for r in con.execute("SELECT id FROM articles ORDER BY id").fetchall()]
        near = con.execute(
            "SELECT article_id, matched_article_id FROM duplicate_links WHERE level = 'near'"
        ).fetchall()
        assert near == [(ids[1], ids[0])]
        bands = (
            "SELECT article_id, count(*), count(DISTINCT band) FROM lsh_bands GROUP BY 1 ORDER BY 1"
        )
        assert con.execute(bands).fetchall() == [(i, BANDS, BANDS) for i in ids]
        before = con.execute("SELECT count(*) FROM lsh_bands").fetchone()
        assert ingest_records(con, [first, copy]).outcomes["already_ingested"] == 2
        assert con.execute("SELECT count(*) FROM lsh_bands").fetchone() == before
        with pytest.raises(duckdb.Error):  # a NOT NULL violation after the article was placed
            ingest_records(con, [other, dict(other, record_id="x" * 32, outlet=None)])
        assert con.execute("SELECT count(*) FROM lsh_bands").fetchone() == before
        assert ingest_records(con, [other]).outcomes["new"] == 1  # and it goes in afterwards
        assert con.execute("SELECT count(*) FROM lsh_bands").fetchone() == (before[0] + BANDS,)  # type: ignore[index]


# -- the labelled set ----------------------------------------------------------------------


def test_labelled_set_is_big_enough() -> None:
    ev = build()
    assert len(ev.text_pairs) + len(ev.url_pairs) >= 300
    assert len(ev.text_pairs) >= 300 and len(ev.url_pairs) >= 300
    assert build().docs[5].text == ev.docs[5].text  # deterministic


def test_url_rules_make_no_false_merge() -> None:
    rep = Report()
    evaluate_urls(build(), rep)
    assert rep.url_false_merges == []
    assert rep.url.recall >= 0.99


def test_near_duplicate_pairs_meet_targets() -> None:
    ev = build()
    rep = Report()
    evaluate_pairs(ev, rep, {d.id: minhash_bands(d.text) for d in ev.docs})
    assert rep.pairs.precision >= 0.97, rep.pair_errors[:5]
    assert rep.pairs.recall >= 0.90, rep.pair_errors[:5]
    for cat in ("brief_shared_tail", "template_other_figures", "independent_same_event"):
        assert rep.pairs_by_cat[cat].fp == 0, cat


def test_archive_clusters_on_a_slice(tmp_path: Path) -> None:
    ev = build()
    stories = {"wire-1", "wire-2", "wire-3", "wire-4", "indep-1", "indep-2"}
    keep = {
        d.id
        for d in ev.docs
        if d.story in stories
        or d.story.startswith(("tpl-5", "tpl-6"))
        or (d.story.startswith("brief-") and d.outlet in ("daily-post", "metro-news", "wire-desk"))
    }
    ev.docs = [d for d in ev.docs if d.id in keep]
    ev.text_pairs = [p for p in ev.text_pairs if p.a in keep and p.b in keep]
    rep = Report()
    with writer(tmp_path / "a.duckdb") as con:
        evaluate_clusters(con, ev, rep, {d.id: minhash_bands(d.text) for d in ev.docs})
    assert rep.clustered.fp == 0
    assert rep.clustered.recall >= 0.95
    assert rep.bcubed[2] >= 0.95
    ok, total = rep.earliest_ok
    assert total > 0 and ok == total


def test_the_content_key_is_the_same_in_python_in_sql_and_in_its_migration() -> None:
    """Exact copies are found by the key the ingest computes (Python), the key a bulk load
    computes (CONTENT_KEY_SQL) and the key the migration gave older articles: one function."""
    from archive.migrations import load_migrations

    (migration,) = [sql for name, sql in load_migrations() if name == "0018_content_key"]
    lake_sql = (Path(batch.__file__).parent / "lake" / "lake.sql").read_text(encoding="utf-8")
    for sql in (migration, lake_sql):  # the migration of older files; the lake's articles view
        assert " ".join(batch.CONTENT_KEY_SQL.split()) in " ".join(sql.split())
    hashes = [content_hash(f"text {n}") for n in range(200)]
    hashes += ["", "abc", "not-hex-at-all-but-long", "ABCDEF0123456789abcdef", "1_000000000000000"]
    con = duckdb.connect()
    got = con.execute(
        f"SELECT {batch.CONTENT_KEY_SQL} FROM unnest(?::VARCHAR[]) AS t(content_hash)", [hashes]
    ).fetchall()
    assert [k for (k,) in got] == [batch.content_key(h) for h in hashes]
    assert len({batch.content_key(h) for h in hashes[:200]}) == 200, "keys of distinct texts differ"
    assert batch.content_key("not-hex-at-all-but-long") is None
