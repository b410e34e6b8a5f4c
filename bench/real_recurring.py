"""Recurring promotions on real pages: are an outlet's repeated blocks gone once five of
its articles are archived, the articles archived before the block was learned included?

The real-page set has one or two pages per publisher, so an outlet's stream is built from
each page: six articles with the page's own markup, chrome and promotions, whose article
paragraphs (those the truth holds) are replaced by paragraphs of other real articles in the
same language. Each article goes through the real path, one crawl each: the outlet's learned
boilerplate is read from the archive, the page is cleaned (`pipelines.clean.clean_page`),
ingested into a real DuckDB archive (`archive.ingest.ingest_records`), and the writer's
re-clean runs (`crawler.reprocess.reclean_learned`). Scored: the hand-labelled promotional
lines (bench/realpages_labels.tsv) that the extraction keeps, counted in each of the six
archived texts at the end. Related-headline lists are outlet-constant here (the same page
six times), which real outlets' are not: they are reported apart.

Usage: ``.venv/bin/python bench/real_recurring.py [--limit N] [--articles 6]``
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.real_pages import (  # noqa: E402
    DEFAULT_DATA,
    LABELS,
    PROMO_KINDS,
    Page,
    contains,
    half,
    load,
    load_labels,
)


def _norm(text: str) -> str:
    return " ".join(text.split())


def replaceable(page: Page, html: str) -> int:
    """How many of the page's <p> elements hold a paragraph of its true body."""
    import lxml.html

    truth = {_norm(p) for p in page.truth.split("\n") if len(p) > 30}
    return sum(
        _norm(el.text_content()) in truth for el in lxml.html.document_fromstring(html).iter("p")
    )


def variant(page: Page, html: str, donors: list[str], k: int) -> str:
    """The page with its article paragraphs replaced by donor paragraphs: article k takes
    donors from k * n on, so no two articles of a stream share a donor paragraph."""
    import lxml.html

    tree = lxml.html.document_fromstring(html)
    truth = {_norm(p) for p in page.truth.split("\n") if len(p) > 30}
    for el in tree.xpath(
        "//link[@rel='canonical'] | //meta[@property='og:url'] | //script[contains(@type, 'ld+json')]"
    ):
        el.getparent().remove(el)
    n = 0
    for el in list(tree.iter("p")):
        if _norm(el.text_content()) in truth:
            tail, attrs = el.tail, dict(el.attrib)
            el.clear()
            el.attrib.update(attrs)
            el.text, el.tail = donors[(k * len(truth) + n) % len(donors)], tail
            n += 1
    return lxml.html.tostring(tree, encoding="unicode")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--articles", type=int, default=6)
    ap.add_argument("--verbose", action="store_true", help="list the lines that stay")
    args = ap.parse_args(argv)

    from archive.boilerplate import load_boilerplate
    from archive.db import reader, writer
    from archive.ingest import ingest_records
    from crawler.reprocess import reclean_learned
    from pipelines.clean import clean_article, clean_page
    from pipelines.decode import decode_html

    pages = load(DEFAULT_DATA, None)
    labels = load_labels(LABELS, source="leak")
    by_lang: dict[str, list[str]] = defaultdict(list)
    for p in pages:
        by_lang[p.lang].extend(x for x in p.truth.split("\n") if len(x) > 80)
    present: Counter[str] = Counter()
    gone: Counter[str] = Counter()
    first_gone: Counter[str] = Counter()
    streams = 0
    started = time.process_time()
    for page in pages:
        html, _ = decode_html(page.raw)
        extracted = str(clean_article(html, page.url).extracted.get("text") or "")
        lines = [
            (k, line)
            for k, line in labels.get(page.pid, [])
            if k in PROMO_KINDS and contains(extracted, line)
        ]
        if not lines:
            continue
        need = args.articles * max(
            1, len({_norm(p) for p in page.truth.split("\n") if len(p) > 30})
        )
        donors = [d for d in by_lang.get(page.lang, []) if d not in page.truth]
        if len(donors) < need:  # too few pages in this language: English paragraphs stand in
            donors = [d for d in by_lang["en"] if d not in page.truth]
        if len(donors) < need or not replaceable(page, html):
            continue
        if args.limit and streams >= args.limit:
            break
        streams += 1
        outlet = re.sub(r"[^a-z0-9]+", "-", page.pid.lower()).strip("-")[:40]
        base = page.url.split("?")[0].rstrip("/")
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "archive.duckdb"
            with writer(db):
                pass  # creates the archive
            for k in range(args.articles):
                with reader(db) as con:
                    learned = load_boilerplate(con, outlet)
                item = {
                    "type": "page",
                    "record_id": f"{outlet}-{k}",
                    "run_id": f"run-{k}",
                    "outlet": outlet,
                    "url": f"{base}-v{k}",
                    "redirect_urls": [],
                    "final_url": f"{base}-v{k}",
                    "fetched_at": datetime.now(UTC).isoformat(),
                    "status": 200,
                    "content_type": "text/html",
                    "hints": {},
                    "language_hint": None,
                }
                record = clean_page(item, variant(page, html, donors, k), boilerplate=learned)
                with writer(db) as con:
                    ingest_records(con, [record])
                reclean_learned(db, None)
            with reader(db) as con:
                texts = [
                    str(t or "")
                    for (t,) in con.execute("SELECT text FROM articles ORDER BY id").fetchall()
                ]
        for kind, line in lines:
            group = "read_also" if kind == "read_also" else "pitches"
            present[group] += len(texts)
            gone[group] += sum(not contains(t, line) for t in texts)
            present[half(page)] += len(texts)
            gone[half(page)] += sum(not contains(t, line) for t in texts)
            first_gone[group] += sum(not contains(t, line) for t in texts[:4])
            if args.verbose and any(contains(t, line) for t in texts):
                print(
                    f"  stays in {sum(contains(t, line) for t in texts)}/{len(texts)}: {page.pid} {kind} {line[:90]!r}"
                )
    print(
        f"recurring promotions: {streams} outlet streams of {args.articles} articles built from real pages "
        f"({(time.process_time() - started):.0f} s CPU)"
    )
    for group in ("pitches", "read_also"):
        if present[group]:
            print(
                f"  {group:<10} gone from {gone[group]} of {present[group]} (line, article) pairs "
                f"({gone[group] / present[group]:.3f}); from the first four articles: "
                f"{first_gone[group]} of {present[group] * 4 // args.articles} "
            )
    total_present = present["pitches"] + present["read_also"]
    total_gone = gone["pitches"] + gone["read_also"]
    print(f"  all        {total_gone / max(1, total_present):.3f}")
    for h in ("A", "B"):  # the publisher split of bench/real_pages.py
        print(f"  half {h}     {gone[h]} of {present[h]} ({gone[h] / max(1, present[h]):.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
