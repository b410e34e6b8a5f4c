"""The real-page sets the promo and cleaning benches score on, and how a line is matched.

Two sets, each a directory of gzipped pages with a hand-checked body, and a hand-made
label file (page id, kind, line[, source]) of the output lines that are not article text:

- ``realpages`` (`../shared/bench/realpages/`, `bench/realpages_labels.tsv`): 140 news pages
  of 104 publishers; the promo signals were tuned on it.
- ``zyte`` (`../shared/bench/zyte/`, `bench/zyte_promo_labels.tsv`): the 181 pages of the
  Zyte extraction benchmark, labelled on the control's output only and never used for
  tuning: the check on outlets never seen.

One module, so the benches and the label test count a line the same way.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench.extract_quality import _TOKEN

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "bench"
DEFAULT_DATA = SHARED / "realpages"
LABELS = REPO / "bench" / "realpages_labels.tsv"
ZYTE_DATA = SHARED / "zyte"
ZYTE_LABELS = REPO / "bench" / "zyte_promo_labels.tsv"
SETS = {"realpages": (DEFAULT_DATA, LABELS), "zyte": (ZYTE_DATA, ZYTE_LABELS)}

PROMO_KINDS = {
    "subscription",
    "newsletter",
    "read_also",
    "donation",
    "app",
    "social",
    "event",
    "shop",
}
# the kinds of the labelled lines that are not promotions (realpages_labels.tsv uses them)
OTHER_KINDS = {
    "ad",
    "article",
    "byline",
    "caption",
    "comment",
    "consent",
    "embed",
    "legal",
    "nav",
    "other",
    "title",
}
KINDS = PROMO_KINDS | OTHER_KINDS


@dataclass
class Page:
    pid: str
    url: str
    raw: bytes
    truth: str
    lang: str
    publisher: str = ""
    truth_tokens: str = ""
    truth_shingles: set[tuple[str, ...]] = field(default_factory=set)


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text or "")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(nfc(text).casefold())


def host(url: str) -> str:
    """The outlet of a page without a publisher field: its host name, less ``www.``."""
    return (urlsplit(url).hostname or "").removeprefix("www.")


def hosts(data: Path) -> set[str]:
    """The outlets (hosts) a set has pages of, read from its truth file alone."""
    truth = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
    return {host(entry["url"]) for entry in truth.values()}


def load(data: Path, limit: int | None) -> list[Page]:
    """The pages of a set; the truth is ``paragraphs`` (realpages) or ``articleBody`` (Zyte)."""
    import py3langid

    truth = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for pid in sorted(truth)[: limit or None]:
        entry = truth[pid]
        raw = gzip.decompress((data / "html" / f"{pid}.html.gz").read_bytes())
        paragraphs = entry["paragraphs"] if "paragraphs" in entry else [entry["articleBody"]]
        body = nfc("\n".join(paragraphs))
        page = Page(pid, entry["url"], raw, body, py3langid.classify(body)[0])
        page.publisher = entry.get("publisher") or (
            pid.split("_")[2] if pid.count("_") >= 2 else host(entry["url"])
        )
        toks = tokens(body)
        page.truth_tokens = " " + " ".join(toks) + " "
        page.truth_shingles = {tuple(toks[i : i + 4]) for i in range(max(1, len(toks) - 3))}
        pages.append(page)
    return pages


def half(page: Page) -> str:
    """The held-out split, by publisher (never by page, so no outlet is on both sides):
    "A" when the first byte of sha1(publisher) is even, else "B". Signals are tuned on A,
    B is the check on outlets never looked at."""
    return "A" if hashlib.sha1(page.publisher.encode()).digest()[0] % 2 == 0 else "B"


def control(page: Page) -> str:
    """The control: trafilatura with the two options our cleaning builds on (the page's
    bytes, decoded by trafilatura itself; passing ``url=`` changes no output on either set)."""
    import trafilatura

    return nfc(trafilatura.extract(page.raw, favor_precision=True, include_comments=False) or "")


def is_article_text(line: str, page: Page) -> bool:
    """A line is article text when (most of) it stands in the page's true body."""
    toks = tokens(line)
    if not toks:
        return True
    if len(toks) < 8:
        return " " + " ".join(toks) + " " in page.truth_tokens
    grams = [tuple(toks[i : i + 4]) for i in range(len(toks) - 3)]
    return sum(g in page.truth_shingles for g in grams) >= 0.5 * len(grams)


def candidates(text: str, page: Page) -> list[str]:
    """The lines of a system's output that are not article text (whitespace-normalised,
    each once): what the label files label."""
    seen: dict[str, None] = {}
    for line in text.split("\n"):
        line = " ".join(line.split())
        if line and not is_article_text(line, page):
            seen.setdefault(line)
    return list(seen)


def contains(text: str, line: str) -> bool:
    """The line's tokens stand, in order and contiguous, in the text."""
    toks = tokens(line)
    return bool(toks) and " " + " ".join(toks) + " " in " " + " ".join(tokens(text)) + " "


def read_rows(path: Path) -> list[list[str]]:
    """The label rows of a file (comments and blank lines left out), as written."""
    with path.open(encoding="utf-8", newline="") as f:
        return [
            row
            for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            if row and not row[0].startswith("#")
        ]


def load_labels(path: Path, source: str | None = None) -> dict[str, list[tuple[str, str]]]:
    """page id -> [(kind, line)]; `source` "leak" (lines systems output that the truth does
    not hold) or "truth" (promotional lines the truth itself holds); None: both."""
    labels: dict[str, list[tuple[str, str]]] = defaultdict(list)
    if path.exists():
        for row in read_rows(path):
            wanted = source is None or (row[3] if len(row) > 3 else "leak") == source
            if len(row) >= 3 and wanted:
                labels[row[0]].append((row[1], row[2]))
    return labels
