"""The single writer: idempotent by record_id, versions on changed text only, exact copies
under another URL attach to the same article, every article keeps its page."""

from __future__ import annotations

import uuid
from pathlib import Path

from archive.db import writer
from archive.ingest import ingest_records
from tests.fakeweb import FIXTURES
from tests.lake.archives import page as page_record_for


def page_record(url: str, html: str, outlet: str = "o", **extra) -> dict:
    """A cleaned page record of a fetched page, as the crawl spools it."""
    return page_record_for(url, html, outlet=outlet, run_id=extra.pop("run_id", "run"), **extra)


def fixture(name: str) -> str:
    return (FIXTURES / "site" / name).read_text(encoding="utf-8").replace("{host}", "news.example")


def test_replayed_records_change_nothing(tmp_path: Path) -> None:
    records = [
        page_record(
            "http://news.example/2024/05/17/elections-municipales", fixture("elections.html")
        ),
        page_record("http://news.example/2024/05/18/climate-summit", fixture("climate.html")),
    ]
    with writer(tmp_path / "a.duckdb") as con:
        first = ingest_records(con, records)
        again = ingest_records(con, records)
        assert first.outcomes["new"] == 2
        assert again.outcomes["already_ingested"] == 2
        assert con.execute("SELECT count(*) FROM articles").fetchone() == (2,)
        assert con.execute("SELECT count(*) FROM pages").fetchone() == (2,)


def test_versions_only_when_the_text_changes(tmp_path: Path) -> None:
    url = "http://news.example/2024/05/18/climate-summit"
    html = fixture("climate.html")
    edited = html.replace("by a third", "by forty per cent")
    with writer(tmp_path / "a.duckdb") as con:
        ingest_records(con, [page_record(url, html)])
        unchanged = ingest_records(con, [page_record(url, html)])
        assert unchanged.outcomes["unchanged"] == 1
        assert con.execute("SELECT count(*) FROM article_versions").fetchone() == (0,)
        ingest_records(con, [page_record(url + "?utm_source=x", edited)])
        (version, text) = con.execute("SELECT version, text FROM articles").fetchone()
        assert version == 2 and "forty per cent" in text
        (old_version, old_text) = con.execute(
            "SELECT version, text FROM article_versions"
        ).fetchone()
        assert old_version == 1 and "by a third" in old_text
        assert con.execute("SELECT level FROM duplicate_links").fetchall() == [("version",)]
        assert con.execute(
            "SELECT count(*) FROM pages WHERE article_id IS NOT NULL"
        ).fetchone() == (3,)


def test_same_text_under_another_url_of_the_outlet_is_the_same_article(tmp_path: Path) -> None:
    html = fixture("wirtschaft.html")
    with writer(tmp_path / "a.duckdb") as con:
        ingest_records(con, [page_record("http://news.example/2024/05/22/exporte", html)])
        result = ingest_records(
            con, [page_record("http://news.example/wirtschaft/exporte-steigen", html)]
        )
        assert result.outcomes["exact_duplicate"] == 1
        assert con.execute("SELECT count(*) FROM articles").fetchone() == (1,)
        urls = {r[0] for r in con.execute("SELECT url FROM article_urls").fetchall()}
        assert "https://news.example/wirtschaft/exporte-steigen" in urls, (
            "keys are scheme-folded identities"
        )


def test_exact_copies_within_one_transaction_and_after_an_edit(tmp_path: Path) -> None:
    """The exact-text lookup is made once per transaction: copies in the same transaction,
    and a text an edit moved away from, must still be judged as the table says."""
    old_html = fixture("wirtschaft.html")  # no canonical link: each URL is its own key
    new_html = old_html.replace(
        "</article>",
        "<p>Nachtrag: Die Zahlen wurden am Abend von der Behörde "
        "bestätigt und um die Exporte nach Übersee ergänzt.</p></article>",
    )
    assert new_html != old_html
    with writer(tmp_path / "a.duckdb") as con:
        result = ingest_records(
            con,
            [
                page_record("http://news.example/a", old_html),
                page_record("http://news.example/b", old_html),
            ],
        )
        assert (result.outcomes["new"], result.outcomes["exact_duplicate"]) == (1, 1)
        # /a is edited; in the same transaction /c carries /a's old text and /d the new one:
        # /c is a new article (no article has that text any more), /d a copy of /a.
        result = ingest_records(
            con,
            [
                page_record("http://news.example/a", new_html),
                page_record("http://news.example/c", old_html),
                page_record("http://news.example/d", new_html),
            ],
        )
        outcomes = (
            result.outcomes["updated"],
            result.outcomes["new"],
            result.outcomes["exact_duplicate"],
        )
        assert outcomes == (1, 1, 1)
        assert con.execute(
            "SELECT canonical_url, version FROM articles ORDER BY id"
        ).fetchall() == [("https://news.example/a", 2), ("https://news.example/c", 1)]
        assert con.execute(
            "SELECT article_id FROM article_urls WHERE url = 'https://news.example/d'"
        ).fetchall() == [(1,)]


def test_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    good = page_record(
        "http://news.example/2024/05/17/elections-municipales", fixture("elections.html")
    )
    bad = dict(good, record_id=uuid.uuid4().hex, outlet=None)  # NOT NULL violation mid-batch
    with writer(tmp_path / "a.duckdb") as con:
        try:
            ingest_records(con, [good, bad])
        except Exception:
            pass
        else:
            raise AssertionError("a broken record must fail its transaction")
        assert con.execute("SELECT count(*) FROM articles").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM pages").fetchone() == (0,)


def test_sessions_checkpoint_while_the_archive_is_small_and_leave_the_log_once_it_is_big(
    tmp_path: Path, monkeypatch
) -> None:
    """On a small archive a session checkpoints as it closes (readers replay nothing). On a big
    one (a checkpoint costs ~0.5 s at 1M articles) sessions leave their work in the log, readers see it all the same, and the log is folded in when the spool runs empty,
    so a copy of the .duckdb file alone holds everything."""
    import json
    import shutil

    import duckdb

    from archive import db as archive_db
    from archive import ingest
    from archive.db import wal_bytes
    from archive.spool import ready_segments, spool_dir_for

    db = tmp_path / "a.duckdb"
    spool = spool_dir_for(db)
    spool.mkdir()
    pages = [
        ("http://news.example/2024/05/17/elections-municipales", "elections.html"),
        ("http://news.example/2024/05/18/climate-summit", "climate.html"),
        ("http://news.example/2024/05/22/exporte", "wirtschaft.html"),
    ]
    for n, (url, page) in enumerate(pages):
        (spool / f"run.o-{n:06d}.jsonl").write_text(
            json.dumps(page_record(url, fixture(page))) + "\n"
        )

    first = ingest.ingest_spool(db, time_budget=0)  # a new, small archive: checkpoints are cheap
    assert first.segments == 1 and wal_bytes(db) == 0

    monkeypatch.setattr(archive_db, "DEFER_CHECKPOINT_ARTICLES", 0)  # as if the archive were large
    monkeypatch.setattr(ingest, "IDLE_CHECKPOINT_WAL", 0)  # the fixtures log far less than 1 MB
    second = ingest.ingest_spool(db, time_budget=0)  # one more segment waits
    assert (second.segments, second.checkpointed) == (1, False)
    assert wal_bytes(db) > 0, "the session's work stays in the log"
    reader = duckdb.connect(str(db), read_only=True)
    assert reader.execute("SELECT count(*) FROM articles").fetchone() == (2,), (
        "readers replay the log"
    )
    reader.close()

    last = ingest.ingest_spool(db, time_budget=0)
    assert (last.segments, last.checkpointed) == (1, True)
    assert not ready_segments(spool) and wal_bytes(db) == 0
    shutil.copy(db, tmp_path / "copy.duckdb")
    copy = duckdb.connect(str(tmp_path / "copy.duckdb"), read_only=True)
    assert copy.execute("SELECT count(*) FROM articles").fetchone() == (3,), (
        "the file alone holds all three"
    )
    copy.close()


def _quarantine_spool(db: Path) -> tuple[Path, dict[str, bytes], list[str]]:
    """A spool where good records sit among every kind of bad one, and a segment of random
    bytes sits between good segments: (spool, bytes of the bad segments, reasons expected)."""
    import json
    import random

    from archive.spool import spool_dir_for

    spool = spool_dir_for(db)
    spool.mkdir(parents=True)
    good = [
        page_record(
            "http://news.example/2024/05/17/elections-municipales", fixture("elections.html")
        ),
        page_record("http://news.example/2024/05/18/climate-summit", fixture("climate.html")),
        page_record("http://news.example/2024/05/22/exporte", fixture("wirtschaft.html")),
        page_record("http://news.example/2024/05/23/cycling-lanes", fixture("moved.html")),
    ]
    template = page_record(
        "http://news.example/2024/05/30/x", fixture("climate.html").replace("third", "half")
    )

    def variant(**change) -> str:
        record = {**template, "record_id": uuid.uuid4().hex, **change}
        return json.dumps({k: v for k, v in record.items() if v is not ...})

    bad_lines = [
        ("7", "not a JSON object but a number"),
        ("[1, 2]", "not a JSON object but an array"),
        ('"just a string"', "not a JSON object but a string"),
        ('{"type": "page", "record_id": "cut', "not JSON"),
        (variant(status="two hundred"), "status: expected a number, got a string"),
        (variant(status=10**30), "status: 1e+30 is out of range"),
        (variant(record_id=...), "record_id: missing"),
        (variant(outlet=17), "outlet: expected a string, got a number"),
        (
            variant(article=dict(template["article"], authors="Jane Doe")),
            "article.authors: expected a list",
        ),
        (variant(article="the text"), "article: expected an object, got a string"),
        (variant(bands=["a"]), "bands: not a list of unsigned 64-bit integers"),
        (variant(detail="x" * (50 << 20)), "detail: 50 MB, over the 16 MB a field may hold"),
        (json.dumps({"type": "gossip", "outlet": "o"}), "unknown record type 'gossip'"),
        (
            json.dumps(
                {"type": "run", "run_id": "run", "outlet": "o", "stats": {"requests": "many"}}
            ),
            "stats.requests: expected a number, got a string",
        ),
    ]
    lines = [
        json.dumps(good[0]),
        *[line for line, _ in bad_lines[:7]],
        json.dumps(good[1]),
        *[line for line, _ in bad_lines[7:]],
        json.dumps(good[2]),
    ]
    segments = {
        "run.o-000001.jsonl": "\n".join(lines).encode() + b"\n",
        "run.o-000002.jsonl": random.Random(13).randbytes(200_000),
        "run.o-000003.jsonl": (json.dumps(good[3]) + "\n").encode(),
    }
    for name, data in segments.items():
        (spool / name).write_bytes(data)
    return (
        spool,
        {k: v for k, v in segments.items() if k != "run.o-000003.jsonl"},
        [w for _, w in bad_lines],
    )


def test_records_that_cannot_be_ingested_are_quarantined_and_block_nothing(tmp_path: Path) -> None:
    """Not JSON, JSON that is no object, wrong types, missing keys, absurd values, a 50 MB
    field, random bytes: each is quarantined with its reason, and every good record of the
    same segment and of the later ones is archived."""
    import duckdb

    from archive.ingest import drain_spool, quarantine_counts
    from archive.spool import ready_segments

    db = tmp_path / "a.duckdb"
    spool, bad_segments, reasons = _quarantine_spool(db)
    result = drain_spool(db, pause=0)
    assert result.outcomes["new"] == 4
    assert not ready_segments(spool), "no segment waits"
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM articles").fetchone() == (4,)
        rows = con.execute(
            "SELECT segment, line, outlet, reason FROM spool_quarantine "
            "WHERE segment = 'run.o-000001.jsonl' ORDER BY line"
        ).fetchall()
        assert [line for _, line, _, _ in rows] == [*range(2, 9), *range(10, 17)]
        for (_, _, outlet, reason), expected in zip(rows, reasons, strict=True):
            assert expected in reason and outlet == "o", (reason, expected)
        random_lines = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE reason LIKE 'not JSON%' "
            "OR reason LIKE 'not a JSON object%') "
            "FROM spool_quarantine WHERE segment = 'run.o-000002.jsonl'"
        ).fetchone()
        assert (
            random_lines is not None
            and random_lines[0] > 100
            and random_lines[0] == random_lines[1]
        )
        counts = quarantine_counts(con)
        assert set(counts) == {"o"} and counts["o"][0] == len(rows) + random_lines[0]
    finally:
        con.close()
    for name, data in bad_segments.items():
        assert (spool / "quarantine" / name).read_bytes() == data, (
            "a quarantined segment is kept as it was"
        )
    again = drain_spool(db, pause=0)
    assert again.segments == 0


def test_the_status_shows_quarantined_records(tmp_path: Path) -> None:
    from archive.ingest import drain_spool
    from tests.conftest import run_cli

    db = tmp_path / "a.duckdb"
    _quarantine_spool(db)
    drain_spool(db, pause=0)
    status = run_cli("status", "--db", str(db))
    assert status.returncode == 0, status.stderr
    lines = [line for line in status.stdout.splitlines() if "quarantined" in line]
    assert lines and lines[0].startswith("o: ") and "spool_quarantine" in lines[0], status.stdout


def test_a_page_of_another_outlet_never_rewrites_an_article(tmp_path: Path) -> None:
    """Outlet B (blog.example.com, same registrable domain as outlet A, www.example.com) declares rel=canonical
    to A's article and carries another title and text. A's article must stay A's, unchanged;
    B's page is B's own article, and the link is recorded as syndication."""
    a_url = "http://www.example.com/2024/05/17/elections-municipales"
    original = page_record(
        a_url, fixture("elections.html").replace("news.example", "www.example.com"), outlet="a"
    )
    b_html = fixture("wirtschaft.html").replace(
        "<head>", f'<head><link rel="canonical" href="{a_url}">', 1
    )
    assert b_html != fixture("wirtschaft.html")
    copy = page_record("http://blog.example.com/2024/05/22/exporte", b_html, outlet="b")
    assert copy["key"] == original["key"], (
        "same registrable domain: the pipeline takes it as the key"
    )
    with writer(tmp_path / "a.duckdb") as con:
        ingest_records(con, [original])
        before = con.execute(
            "SELECT id, title, text, version FROM articles WHERE outlet = 'a'"
        ).fetchall()
        result = ingest_records(con, [copy])
        assert result.outcomes["new"] == 1
        assert (
            con.execute(
                "SELECT id, title, text, version FROM articles WHERE outlet = 'a'"
            ).fetchall()
            == before
        )
        assert con.execute("SELECT count(*) FROM article_versions").fetchone() == (0,)
        (b_id, b_key, hint, title) = con.execute(
            "SELECT id, canonical_url, cross_site_canonical, title FROM articles WHERE outlet = 'b'"
        ).fetchone()
        assert b_key == "https://blog.example.com/2024/05/22/exporte"
        assert hint == original["key"] and "Exporte" in title
        assert con.execute(
            "SELECT matched_article_id, level FROM duplicate_links WHERE article_id = ?", [b_id]
        ).fetchall() == [(before[0][0], "syndication")]
        assert con.execute(
            "SELECT a.outlet FROM article_urls u JOIN articles a ON a.id = u.article_id "
            "WHERE u.url = ?",
            [original["key"]],
        ).fetchall() == [("a",)]
        # fetched again, B's page finds its own article, still not A's
        again = ingest_records(
            con, [page_record("http://blog.example.com/2024/05/22/exporte", b_html, outlet="b")]
        )
        assert again.outcomes["unchanged"] == 1
        assert con.execute("SELECT count(*) FROM articles").fetchone() == (2,)


def test_a_big_archive_checkpoints_by_the_size_of_its_log_not_by_duckdbs_estimate(
    tmp_path: Path, monkeypatch
) -> None:
    """DuckDB's own trigger adds the undo buffer of the committing transaction to the log's
    size, where each updated vector of a column counts for kilobytes, so a transaction that
    updates a few columns of rows all over a table (paragraph counts, clusters) "weighs"
    megabytes and its commit checkpointed with a log of a few kB: at 1M articles a checkpoint costs 1-3 s, paid every
    third session. Only the log's real size may decide (archive.db.CHECKPOINT_WAL)."""
    from archive import db as archive_db
    from archive.db import wal_bytes, writer

    db = tmp_path / "a.duckdb"
    with writer(db) as con:
        con.execute(
            "CREATE TABLE wide AS SELECT range AS i, 0 AS x, now() AS a, now() AS b FROM range(1000000)"
        )
    monkeypatch.setattr(archive_db, "DEFER_CHECKPOINT_ARTICLES", -1)  # as if the archive were large
    with writer(db) as con:
        con.execute("BEGIN")
        for vector in range(450):  # one row in each of 450 vectors, three columns each
            con.execute("UPDATE wide SET x = 1, a = now(), b = now() WHERE i = ?", [vector * 2048])
        con.execute("COMMIT")
        assert 0 < wal_bytes(db) < 1 << 20, "the commit left its few kB in the log"
    assert wal_bytes(db) > 0, "and so did the end of the session, under CHECKPOINT_WAL"
    monkeypatch.setattr(archive_db, "CHECKPOINT_WAL", 1000)
    with writer(db) as con:
        assert con.execute("SELECT sum(x) FROM wide").fetchone() == (450,)
    assert wal_bytes(db) == 0, "a log over CHECKPOINT_WAL is folded in as the session ends"


def test_one_transaction_sees_what_it_wrote_before_its_rows_are_stored(tmp_path: Path) -> None:
    """A transaction's rows wait in one batch per table until its end (archive/batch.py);
    its later pages must still find what the earlier ones wrote: a copy at another outlet
    joins the new article's cluster, an edit of that article makes version 2, a copy of the
    edited text is an exact duplicate; and article ids stay the sequence's, without gaps."""
    html = fixture("wirtschaft.html")
    edited = html.replace(
        "</article>", "<p>Nachtrag: Die Behörde hat die Zahlen am Abend bestätigt.</p></article>"
    )
    with writer(tmp_path / "a.duckdb") as con:
        result = ingest_records(
            con,
            [
                page_record("http://news.example/a", html),
                page_record("http://wire.example/a", html, outlet="wire"),
                page_record("http://news.example/a", edited),
                page_record("http://news.example/e", edited),
            ],
        )
        assert dict(result.outcomes) == {"new": 2, "updated": 1, "exact_duplicate": 1}
        assert con.execute(
            "SELECT id, outlet, version, cluster_id FROM articles ORDER BY id"
        ).fetchall() == [(1, "o", 2, 1), (2, "wire", 1, 1)]
        assert con.execute(
            "SELECT cluster_id, first_article_id, size FROM clusters"
        ).fetchall() == [(1, 1, 2)]
        assert con.execute(
            "SELECT article_id, matched_article_id, level FROM duplicate_links ORDER BY level"
        ).fetchall() == [(1, 1, "exact"), (2, 1, "near"), (1, 1, "version")]
        urls = dict(con.execute("SELECT url, article_id FROM article_urls").fetchall())
        assert [
            urls[f"https://{u}"] for u in ("news.example/a", "wire.example/a", "news.example/e")
        ] == [1, 2, 1]
        assert con.execute("SELECT count(*), count(article_id) FROM pages").fetchone() == (4, 4)
        assert con.execute("SELECT version FROM article_versions").fetchall() == [(1,)]
        ingest_records(con, [page_record("http://news.example/f", fixture("climate.html"))])
        assert con.execute("SELECT max(id), count(*) FROM articles").fetchone() == (3, 3)
