"""Golden checks on real pages of real outlets (../shared/bench/realpages/, read in place:
third-party content stays there). Each case is one failure class that real pages showed;
tests/golden_real/<page id>.json says what a user must see: archived or not, lines kept,
lines dropped, the paywall flag, the language."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

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
