"""Strip promotional blocks (subscription pitches, newsletter sign-ups, "read also" teasers,
donation appeals, app, social, event and shop prompts) from an extracted article.

Why a separate pass after trafilatura: it keeps plain-paragraph calls to action, inline
teasers and boxes named `subscribe`, `promo`, `paywall`... We look at three signals, in
order of trust: the outlet's own overrides, the page markup (boxes whose class/id/ARIA/data-*
names a promotion), and the words of each block (phrase lists per language, kept as data in
`promo_rules/*.toml`). Precision guards: quotes stay, an article *about* subscriptions, apps,
newsletters or donations keeps its body, and when the removals would exceed `MAX_SHARE` of
the article, nothing is removed and the article is flagged instead (auditable, never silent).
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

from archive.records import Article, Block, RemovedBlock
from archive.text import word_count
from pipelines.promo.markup import _contained, _find_boxes, _FoundBox, _parse
from pipelines.promo.rules import (
    MAX_SHARE,
    OutletPromoRules,
    PromoRules,
    _norm,
    _squash,
    load_rules,
    paragraph_hash,
)
from pipelines.promo.structure import box_verdicts
from pipelines.promo.text_rules import (
    _analyse,
    _own_promo,
    _pick_kind,
    _plain_prose,
    _signals,
    _text_rules,
)


def strip_promotions(
    article: Article,
    html: str | None = None,
    *,
    rules: PromoRules | None = None,
    outlet_rules: OutletPromoRules | None = None,
    boilerplate: frozenset[str] = frozenset(),
    tree: Any = None,
) -> tuple[Article, list[RemovedBlock]]:
    """Return (article without promo blocks, removed blocks).

    `html` (or an already parsed lxml `tree`) enables markup boxes and outlet CSS selectors;
    `boilerplate` holds `paragraph_hash` values the outlet repeats (archive.boilerplate).
    Removed blocks: {"position", "kind", "rule", "text"}, position = index in the input
    blocks. When the removals would exceed MAX_SHARE of the text, the article is returned
    whole with promo_flagged=True and no removed blocks.
    """
    rules = rules or load_rules()
    blocks: list[Block] = [Block(**b) for b in (article.get("blocks") or [])]
    out: Article = copy.deepcopy(article)  # the caller's article is left as it was
    n = len(blocks)
    squashed = [_squash(str(b.get("text") or "")) for b in blocks]
    total = sum(len(s) for s in squashed)
    verdict: dict[int, tuple[str, str]] = {}

    if n and outlet_rules is not None:
        for i, b in enumerate(blocks):
            for pat in outlet_rules.patterns:
                if pat.search(str(b.get("text") or "")):
                    verdict[i] = ("custom", f"outlet.pattern:{pat.pattern}")
                    break

    root = tree
    need_tree = bool(outlet_rules and outlet_rules.selectors) or bool(rules.boxes)
    if root is None and html and n and need_tree:
        root = _parse(html)
    if root is not None and hasattr(root, "getroot"):
        root = root.getroot()

    if root is not None and outlet_rules is not None and outlet_rules.selectors:
        custom = [
            _FoundBox(_squash(el.text_content()), "custom", f"outlet.selector:{src}")
            for src, sel in outlet_rules.selectors
            for el in sel(root)
        ]
        for i in range(n):
            if i not in verdict and (box := _contained(squashed[i], custom)):
                verdict[i] = ("custom", box.rule)

    # Learned boilerplate. A short repeated line ("Key points", "IMPORTANT") only goes when it
    # heads removed blocks or ends the article: alone it is structure, not a promotion.
    short_repeats: list[int] = []
    if boilerplate:
        for i, b in enumerate(blocks):
            text = str(b.get("text") or "")
            if i in verdict or b.get("kind") == "quote" or not squashed[i]:
                continue
            if paragraph_hash(text) in boilerplate:
                if word_count(text) >= 6:
                    verdict[i] = ("boilerplate", "boilerplate.outlet")
                else:
                    short_repeats.append(i)

    lang = (article.get("language") or "").lower()[:2] or None
    infos = [_analyse(b, rules, lang) for b in blocks]
    gated = False
    if root is not None and rules.boxes and n:
        boxes = _find_boxes(root, rules, total)
        in_box: dict[int, _FoundBox] = {}
        for i in range(n):
            if i not in verdict and (box := _contained(squashed[i], boxes)) is not None:
                in_box[i] = box
        # A box holding two or more paragraphs of plain prose is a container of the article
        # (whatever its name), not a promotion: only its promotional blocks go.
        prose_per_box = Counter(
            id(box) for i, box in in_box.items() if _plain_prose(blocks[i], infos[i])
        )
        for i, box in in_box.items():
            prose = _plain_prose(blocks[i], infos[i])
            own = infos[i].strong or infos[i].lead or (_own_promo(infos[i]) and not prose)
            if not own and (box.gate or (prose and prose_per_box[id(box)] >= 2)):
                gated = gated or box.gate
                continue
            kind = box.kind
            if kind == "auto":
                hits = rules.hits("strong", _norm(str(blocks[i].get("text") or "")), lang)
                kind = _pick_kind(hits)[0] if hits else "subscription"
            verdict[i] = (kind, box.rule)

    if n:
        _text_rules(blocks, infos, verdict, rules, lang, article.get("title"))
    if root is not None and n:  # after the text rules: their runs do not grow from a box
        page_url = article.get("canonical_url") or article.get("og_url")
        verdict.update(box_verdicts(root, blocks, squashed, verdict, page_url))
    if n:
        _signals(blocks, infos, verdict)
    # a short repeated line next to a removed promo (its label, or its last line) is part of it
    changed = True
    while changed:
        changed = False
        for i in short_repeats:
            near = [verdict[j][0] for j in (i - 1, i + 1) if j in verdict]
            if i not in verdict and (any(k != "credit" for k in near) or i == n - 1):
                verdict[i] = ("boilerplate", "boilerplate.outlet")
                changed = True

    out["paywalled"] = bool(out.get("paywalled")) or gated
    # The share guard protects the article from rules that guess; what the outlet's own
    # rules say and what its other articles repeat (learned boilerplate) is never this
    # article's own text, so it goes whatever its share.
    # A block inside a link to another article (a teaser card) is that article's summary.
    exempt = {
        i: v
        for i, v in verdict.items()
        if v[1].startswith(("outlet.", "boilerplate.")) or v[1] == "signal.box:teaser"
    }
    guessed = {i: v for i, v in verdict.items() if i not in exempt}
    flagged = False
    if sum(len(squashed[i]) for i in guessed) > MAX_SHARE * total:
        # too much for promotions: keep only the strong text cues; box and run guesses go
        guessed = {
            i: v
            for i, v in guessed.items()
            if infos[i].strong and not v[1].startswith(("run.", "markup.", "signal."))
        }
        if sum(len(squashed[i]) for i in guessed) > MAX_SHARE * total:
            guessed, flagged = {}, True
    verdict = {**exempt, **guessed}
    if flagged and not verdict:
        out["blocks"] = blocks
        out["text"] = "\n\n".join(b["text"] for b in blocks)
        out["word_count"] = word_count(out["text"])
        out["promo_flagged"] = True
        return out, []

    kept = [b for i, b in enumerate(blocks) if i not in verdict]
    removed = [
        RemovedBlock(position=i, kind=verdict[i][0], rule=verdict[i][1], text=blocks[i]["text"])
        for i in sorted(verdict)
    ]
    out["blocks"] = kept
    out["text"] = "\n\n".join(b["text"] for b in kept)
    out["word_count"] = word_count(out["text"])
    out["promo_flagged"] = flagged
    return out, removed
