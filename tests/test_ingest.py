"""The single writer: idempotent by record_id, versions on changed text only, exact copies
under another URL attach to the same article, every article keeps its page."""

from __future__ import annotations

import uuid
from pathlib import Path

from archive.db import writer
from archive.ingest import ingest_records
from pipelines.clean import clean_page
from tests.fakeweb import FIXTURES


def page_record(url: str, html: str, outlet: str = "o", **extra) -> dict:
    item = {"type": "page", "record_id": uuid.uuid4().hex, "run_id": "run", "outlet": outlet, "url": url,
            "final_url": url, "redirect_urls": [], "status": 200, "content_type": "text/html",
            "fetched_at": "2024-05-20T10:00:00+00:00", "hints": {}, "size_bytes": len(html), **extra}
    return clean_page(item, html)


def fixture(name: str) -> str:
    return (FIXTURES / "site" / name).read_text(encoding="utf-8").replace("{host}", "news.example")


def test_replayed_records_change_nothing(tmp_path: Path) -> None:
    records = [page_record("http://news.example/2024/05/17/elections-municipales", fixture("elections.html")),
               page_record("http://news.example/2024/05/18/climate-summit", fixture("climate.html"))]
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
        (old_version, old_text) = con.execute("SELECT version, text FROM article_versions").fetchone()
        assert old_version == 1 and "by a third" in old_text
        assert con.execute("SELECT level FROM duplicate_links").fetchall() == [("version",)]
        assert con.execute("SELECT count(*) FROM pages WHERE article_id IS NOT NULL").fetchone() == (3,)


def test_same_text_under_another_url_of_the_outlet_is_the_same_article(tmp_path: Path) -> None:
    html = fixture("wirtschaft.html")
    with writer(tmp_path / "a.duckdb") as con:
        ingest_records(con, [page_record("http://news.example/2024/05/22/exporte", html)])
        result = ingest_records(con, [page_record("http://news.example/wirtschaft/exporte-steigen", html)])
        assert result.outcomes["exact_duplicate"] == 1
        assert con.execute("SELECT count(*) FROM articles").fetchone() == (1,)
        urls = {r[0] for r in con.execute("SELECT url FROM article_urls").fetchall()}
        assert "https://news.example/wirtschaft/exporte-steigen" in urls, "keys are scheme-folded identities"


def test_exact_copies_within_one_transaction_and_after_an_edit(tmp_path: Path) -> None:
    """The exact-text lookup is made once per transaction: copies in the same transaction,
    and a text an edit moved away from, must still be judged as the table says."""
    old_html = fixture("wirtschaft.html")  # no canonical link: each URL is its own key
    new_html = old_html.replace("</article>", "<p>Nachtrag: Die Zahlen wurden am Abend von der Behörde "
                                "bestätigt und um die Exporte nach Übersee ergänzt.</p></article>")
    assert new_html != old_html
    with writer(tmp_path / "a.duckdb") as con:
        result = ingest_records(con, [page_record("http://news.example/a", old_html),
                                      page_record("http://news.example/b", old_html)])
        assert (result.outcomes["new"], result.outcomes["exact_duplicate"]) == (1, 1)
        # /a is edited; in the same transaction /c carries /a's old text and /d the new one:
        # /c is a new article (no article has that text any more), /d a copy of /a.
        result = ingest_records(con, [page_record("http://news.example/a", new_html),
                                      page_record("http://news.example/c", old_html),
                                      page_record("http://news.example/d", new_html)])
        outcomes = (result.outcomes["updated"], result.outcomes["new"], result.outcomes["exact_duplicate"])
        assert outcomes == (1, 1, 1)
        assert con.execute("SELECT canonical_url, version FROM articles ORDER BY id").fetchall() == [
            ("https://news.example/a", 2), ("https://news.example/c", 1)]
        assert con.execute("SELECT article_id FROM article_urls WHERE url = 'https://news.example/d'").fetchall() == [(1,)]


def test_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    good = page_record("http://news.example/2024/05/17/elections-municipales", fixture("elections.html"))
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


def test_sessions_checkpoint_while_the_archive_is_small_and_leave_the_log_once_it_is_big(tmp_path: Path, monkeypatch) -> None:
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
    pages = [("http://news.example/2024/05/17/elections-municipales", "elections.html"),
             ("http://news.example/2024/05/18/climate-summit", "climate.html"),
             ("http://news.example/2024/05/22/exporte", "wirtschaft.html")]
    for n, (url, page) in enumerate(pages):
        (spool / f"run.o-{n:06d}.jsonl").write_text(json.dumps(page_record(url, fixture(page))) + "\n")

    first = ingest.ingest_spool(db, time_budget=0)  # a new, small archive: checkpoints are cheap
    assert first.segments == 1 and wal_bytes(db) == 0

    monkeypatch.setattr(archive_db, "DEFER_CHECKPOINT_ARTICLES", 0)  # as if the archive were large
    monkeypatch.setattr(ingest, "IDLE_CHECKPOINT_WAL", 0)  # the fixtures log far less than 1 MB
    second = ingest.ingest_spool(db, time_budget=0)  # one more segment waits
    assert (second.segments, second.checkpointed) == (1, False)
    assert wal_bytes(db) > 0, "the session's work stays in the log"
    reader = duckdb.connect(str(db), read_only=True)
    assert reader.execute("SELECT count(*) FROM articles").fetchone() == (2,), "readers replay the log"
    reader.close()

    last = ingest.ingest_spool(db, time_budget=0)
    assert (last.segments, last.checkpointed) == (1, True)
    assert not ready_segments(spool) and wal_bytes(db) == 0
    shutil.copy(db, tmp_path / "copy.duckdb")
    copy = duckdb.connect(str(tmp_path / "copy.duckdb"), read_only=True)
    assert copy.execute("SELECT count(*) FROM articles").fetchone() == (3,), "the file alone holds all three"
    copy.close()
