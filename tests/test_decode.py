"""One decoding path for the crawl, `mediawatch extract` and `reprocess` (pipelines/decode.py):
bytes that are valid UTF-8 are UTF-8 whatever the page declares, a stray windows-1252 byte
costs one character and not the page, and a page really in a single-byte charset stays in it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import duckdb

from pipelines.decode import decode_html
from tests.conftest import MEDIAWATCH, run_cli
from tests.fakeweb import FakeWeb

FR = "Les élèves ont décidé de manifester à Besançon, où l’été fut très chaud."


def test_valid_utf8_wins_over_a_wrong_declaration() -> None:
    text, note = decode_html(FR.encode("utf-8"), "text/html; charset=iso-8859-1")
    assert text == FR and note and "UTF-8" in note


def test_one_stray_cp1252_byte_is_repaired_where_it_stands() -> None:
    body = (FR * 20).encode("utf-8") + b" \x93citation\x94 " + FR.encode("utf-8")
    text, note = decode_html(body, "text/html; charset=utf-8")
    assert text == FR * 20 + " “citation” " + FR  # every accent intact, the quotes read as cp1252
    assert note and "windows-1252" in note


def test_a_valid_utf8_page_over_1_mb_gets_no_repair_note() -> None:
    # a character across the 1 MB mark of the run count was read as a stray byte
    body = b"<p>" + b"a" * (1_000_000 - 4) + "éèà".encode() + FR.encode("utf-8")
    text, note = decode_html(body, "text/html; charset=utf-8")
    assert text == "<p>" + "a" * (1_000_000 - 4) + "éèà" + FR
    assert note is None


def test_a_real_single_byte_page_keeps_its_charset() -> None:
    text, note = decode_html(FR.encode("cp1252"), "text/html; charset=utf-8")
    assert text == FR and note and "not UTF-8" in note
    text, _ = decode_html(b'<meta charset="iso-8859-2">' + "Zażółć gęślą".encode("iso-8859-2"))
    assert text.endswith("Zażółć gęślą")


def test_multi_byte_charsets_and_boms() -> None:
    ja = "東京都新宿区の新校舎"
    assert decode_html(b'<meta charset="shift_jis">' + ja.encode("shift_jis"))[0].endswith(ja)
    assert decode_html(b"\xef\xbb\xbf" + FR.encode("utf-8"), "text/html; charset=iso-8859-1")[
        0
    ].endswith(FR)


def _page(title: str) -> bytes:
    paras = "".join(
        f"<p>{FR} Paragraphe {i} sur la rentrée et ses élèves, à Besançon comme ailleurs.</p>"
        for i in range(8)
    )
    return (
        f'<html lang="fr"><head><meta charset="iso-8859-1"><title>{title}</title></head>'
        f"<body><article><h1>{title}</h1>{paras}</article></body></html>"
    ).encode()


def test_the_crawl_and_mediawatch_extract_read_the_same_characters(tmp_path: Path) -> None:
    body = _page("Rentrée à Besançon")  # UTF-8 bytes behind a latin-1 declaration
    web = FakeWeb()
    web.add("/2024/09/02/rentree", body, content_type="text/html")
    web.add(
        "/feed.xml",
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        f"<item><title>Rentrée</title><link>{web.base}/2024/09/02/rentree</link></item></channel></rss>",
        content_type="application/rss+xml",
    )
    web.start()
    try:
        config = tmp_path / "outlets.toml"
        config.write_text(
            f'[[outlet]]\nname = "besancon"\nfeeds = ["{web.base}/feed.xml"]\ndelay = 0\n'
        )
        db = tmp_path / "archive.duckdb"
        done = run_cli("crawl", "--config", str(config), "--db", str(db))
        assert done.returncode == 0, done.stderr
    finally:
        web.stop()
    con = duckdb.connect(str(db), read_only=True)
    try:
        (crawled,) = con.execute("SELECT text FROM articles").fetchone()
    finally:
        con.close()
    page = tmp_path / "page.html"
    page.write_bytes(body)
    out = subprocess.run(
        [str(MEDIAWATCH), "extract", str(page), "--url", "https://x.example/2024/09/02/rentree"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    extracted = json.loads(out.stdout)["text"]
    assert "élèves" in crawled and "Ã" not in crawled
    assert crawled == extracted
