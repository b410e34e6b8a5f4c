"""Golden checks on real pages of real outlets (../shared/bench/realpages/, read in place:
third-party content stays there). Each case is one failure class that real pages showed;
tests/golden_real/<page id>.json says what a user must see: archived or not, lines kept,
lines dropped, the paywall flag, the language."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from archive.text import word_count
from pipelines.clean import clean_article
from pipelines.decode import decode_html

HERE = Path(__file__).resolve().parent
REALPAGES = HERE.parents[1] / "shared" / "bench" / "realpages"
CASES = sorted((HERE / "golden_real").glob("*.json"))


def _page(pid: str) -> tuple[bytes, str]:
    if not REALPAGES.is_dir():
        pytest.fail(
            f"{REALPAGES} is missing: the real pages live in shared/bench/realpages beside the repo"
        )
    truth = json.loads((REALPAGES / "ground-truth.json").read_text(encoding="utf-8"))
    return gzip.decompress((REALPAGES / "html" / f"{pid}.html.gz").read_bytes()), truth[pid]["url"]


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_real_page(case: Path) -> None:
    expected = json.loads(case.read_text(encoding="utf-8"))
    raw, url = _page(case.stem)
    html, _note = decode_html(raw)
    cleaned = clean_article(html, url)
    text = cleaned.article.get("text") or ""
    assert (cleaned.skip_reason is None) is expected["archived"], (
        expected["why"],
        cleaned.skip_reason,
    )
    if "min_words" in expected:
        assert word_count(text) >= expected["min_words"], expected["why"]
    if "language" in expected:
        assert cleaned.article.get("language") == expected["language"], expected["why"]
    if "paywalled" in expected:
        assert cleaned.article.get("paywalled") is expected["paywalled"], expected["why"]
    for line in expected.get("keep", []):
        assert line in text, (expected["why"], line)
    removed = [b["text"] for b in cleaned.removed]
    for start in expected.get("drop_starting", []):  # long blocks, named by how they start
        assert not any(b.startswith(start) for b in text.split("\n\n")), (expected["why"], start)
        assert any(r.startswith(start) for r in removed), (expected["why"], "not removed", start)
    for line in expected.get("drop", []):
        assert line not in text.split("\n\n"), (expected["why"], line)
        assert any(line in r for r in removed), (expected["why"], "not recorded as removed", line)


# ------------------------------------------------- the held-out promo labels on the Zyte pages


def _zyte_pages() -> dict[str, Any]:
    from bench.realset import ZYTE_DATA, load

    if not ZYTE_DATA.is_dir():
        pytest.fail(
            f"{ZYTE_DATA} is missing: the Zyte pages live in shared/bench/zyte beside the repo"
        )
    return {page.pid: page for page in load(ZYTE_DATA, None)}


def test_label_kinds_are_known() -> None:
    from bench.realset import KINDS, LABELS, ZYTE_LABELS, read_rows

    for path in (LABELS, ZYTE_LABELS):
        unknown = {row[1] for row in read_rows(path) if len(row) < 3 or row[1] not in KINDS}
        assert not unknown, (path.name, unknown)


def test_zyte_labels_are_the_controls_leaks_each_labelled_once() -> None:
    """bench/zyte_promo_labels.tsv labels exactly the lines of the control's output that are
    not article text: a stale or mistyped row, or a line left unlabelled, would skew the promo
    recall that bench/real_pages.py --set zyte prints."""
    from bench.realset import ZYTE_LABELS, candidates, control, read_rows

    pages = _zyte_pages()
    rows = read_rows(ZYTE_LABELS)
    assert rows, ZYTE_LABELS
    assert all(len(row) == 4 and row[3] == "leak" for row in rows), [
        row for row in rows if len(row) != 4 or row[3] != "leak"
    ]
    assert not {row[0] for row in rows} - set(pages), "page ids not in the Zyte set"
    labelled = [(row[0], row[2]) for row in rows]
    assert len(labelled) == len(set(labelled)), "a line labelled twice"
    leaks = {(pid, line) for pid, page in pages.items() for line in candidates(control(page), page)}
    stray, unlabelled = set(labelled) - leaks, leaks - set(labelled)
    assert not stray, ("labelled lines not in the control's output", sorted(stray)[:5])
    assert not unlabelled, ("lines of the control's output left unlabelled", sorted(unlabelled)[:5])


def test_a_link_inside_a_sentence_stays_in_its_sentence() -> None:
    """A page written as text between <br>s (no <p>): trafilatura hands each inline link back
    as a block of its own between two pieces of its sentence, and the promo stage took the
    link for a teaser and cut it out ("Apple will\\n\\n, including all MacBook Pro ...")."""
    page = _zyte_pages()["232a43fb15abde807427b2a7bf4f772e27b8760554370956d8291df4e8166dbf"]
    html, _note = decode_html(page.raw)
    cleaned = clean_article(html, page.url)
    text = cleaned.article["text"]
    for sentence in (
        "Apple will transition its entire notebook lineup to scissor switch keyboards in 2020, "
        "including all MacBook Pro and MacBook Air models.",
        "which have suffered from issues with sticky, repeating, or nonfunctional keys since "
        "their inception in 2016.",
        "as part of its worldwide service program.",
    ):
        assert sentence in text, sentence
    assert "Related Roundup: MacBook Pro" in [b["text"] for b in cleaned.removed], "pitch still cut"
