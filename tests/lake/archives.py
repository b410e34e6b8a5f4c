"""Embedded archives made by the real cleaning and ingest, to move into lakes."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from archive.db import writer
from archive.ingest import ingest_records
from pipelines.clean import clean_page
from tests.fakeweb import FIXTURES

PAGES = ("elections.html", "climate.html", "wirtschaft.html", "moved.html")


SEED = Path(__file__).resolve().parents[2].parent / "shared" / "seed" / "article.html"


def fixture(name: str, host: str = "news.example") -> str:
    return (FIXTURES / "site" / name).read_text(encoding="utf-8").replace("{host}", host)


def page(url: str, html: str, outlet: str = "courrier", run_id: str = "run-1", **extra: Any) -> Any:
    item = {
        "type": "page",
        "record_id": uuid.uuid4().hex,
        "run_id": run_id,
        "outlet": outlet,
        "url": url,
        "final_url": url,
        "redirect_urls": [],
        "status": 200,
        "content_type": "text/html",
        "fetched_at": "2024-05-20T10:00:00+00:00",
        "hints": {},
        "size_bytes": len(html),
        **extra,
    }
    return clean_page(item, html)


RUN_START = {
    "type": "run_start",
    "run_id": "run-1",
    "outlet": "courrier",
    "started_at": "2024-05-20T09:59:00+00:00",
}
RUN_END = {
    "type": "run",
    "run_id": "run-1",
    "outlet": "courrier",
    "started_at": "2024-05-20T09:59:00+00:00",
    "finished_at": "2024-05-20T10:05:00+00:00",
    "status": "ok",
    "stats": {"requests": 9},
}


def archive_batches(copies: int = 1) -> list[list[Any]]:
    """The records of `build_archive`, batch by batch (the run's start, `copies` batches of
    pages, the run's end): articles in two outlets, an edited one (two versions), an exact copy
    under another URL, a cross-outlet copy, a skipped page."""
    batches: list[list[Any]] = [[dict(RUN_START)]]
    for n in range(copies):
        host = f"news{n}.example"  # each copy its own canonical URLs: distinct articles
        records = [
            page(f"http://{host}/{name.removesuffix('.html')}", fixture(name, host))
            for name in PAGES
        ]
        seed = SEED.read_text(encoding="utf-8").replace(
            "https://courrier-strategique.example", f"https://{host}"
        )
        records.append(
            page(f"https://{host}/2024/05/24/trump-poutine-appel", seed)
        )  # a promo pitch stripped
        climate = fixture("climate.html", host)
        records.append(
            page(f"http://{host}/climate", climate.replace("by a third", "by forty per cent"))
        )
        records.append(page(f"http://{host}/copy-of-wirtschaft", fixture("wirtschaft.html", host)))
        records.append(
            page(
                f"http://other{n}.example/wirtschaft",
                fixture("wirtschaft.html", host),
                outlet="autre",
            )
        )
        records.append(
            page(f"http://{host}/gone", "<html><body>Introuvable</body></html>", status=404)
        )
        batches.append(records)
    batches.append([dict(RUN_END)])
    return batches


def build_archive(path: Path, copies: int = 1) -> Path:
    """An embedded archive of `archive_batches(copies)`, by the real ingest."""
    with writer(path) as con:
        for records in archive_batches(copies):
            ingest_records(con, records)
    return path
