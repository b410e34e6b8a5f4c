"""Which blocks of an article are counted for recurrence across the outlet's articles
(learned boilerplate, archive/boilerplate.py): where outlets put what they repeat.

- the first 2 and last 3 blocks (pitches, footers, "read also" boxes);
- every block after the story's last paragraph of running prose: related-story boxes with
  long summaries and sign-up blurbs sit there, often more than three of them;
- the 8 shortest blocks between (labels, prompts and teaser lines mid-article).

A block is counted up to EDGE_CHARS at the edges (a related story's summary runs past 600
characters; one row per block whatever its length, the sample is its first 300), up to
MID_SHORT_CHARS inside the text, so the table grows by a bounded number of rows an article.
"""

from __future__ import annotations

from archive.records import Article, Block
from archive.text import is_prose

EDGE_CHARS = 2000
MID_SHORT_CHARS = 400  # short blocks inside the text: pitches, labels, teaser lines
MID_SHORT_MAX = 8
TRAILING_MAX = 8


def boundary_blocks(article: Article) -> list[Block]:
    """The blocks whose recurrence is counted, each once, in text order of their group."""
    blocks = article.get("blocks") or []

    def fits(b: Block, limit: int) -> bool:
        return 0 < len(b.get("text", "")) <= limit

    if len(blocks) <= 5:
        return [b for b in blocks if fits(b, EDGE_CHARS)]
    prose = [i for i, b in enumerate(blocks) if is_prose(b["text"], b.get("link_chars", 0))]
    last = prose[-1] if prose else len(blocks) - 1
    trailing = range(max(last + 1, len(blocks) - 3 - TRAILING_MAX), len(blocks) - 3)
    edges = [0, 1, *trailing, *range(len(blocks) - 3, len(blocks))]
    picked = [blocks[i] for i in dict.fromkeys(edges) if fits(blocks[i], EDGE_CHARS)]
    middle = sorted(
        (b for i, b in enumerate(blocks) if 2 <= i < len(blocks) - 3 and i not in trailing),
        key=lambda b: len(b.get("text", "")),
    )
    return picked + [b for b in middle if fits(b, MID_SHORT_CHARS)][:MID_SHORT_MAX]
