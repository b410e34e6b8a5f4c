"""Verdicts from the words of each block (phrase cues per language) and the wording-free signals."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from archive.text import is_prose, word_count
from pipelines.promo import signals
from pipelines.promo.rules import _PRIORITY, _QUOTE_SPANS, PromoRules, _norm

_END_PUNCT = re.compile(r"[.!?…]\s*[»”\")]*$")


@dataclass
class _Info:
    strong: list[tuple[str, str]]
    lead: list[tuple[str, str]]
    lead_after: str
    weak: set[tuple[str, str]]  # (kind, matched words); every price counts as one "price"
    topic: set[str]
    label: bool
    speech: bool
    words: int
    density: float


def _analyse(block: Mapping[str, Any], rules: PromoRules, lang: str | None) -> _Info:
    raw = str(block.get("text") or "")
    text = _norm(_QUOTE_SPANS.sub(" ", raw))
    words = word_count(raw)
    density = min(1.0, int(block.get("link_chars") or 0) / max(1, len(raw.strip())))
    if block.get("kind") == "quote":
        return _Info([], [], "", set(), set(), False, False, words, density)
    found = rules.scan(text, lang)
    lead: list[tuple[str, str]] = []
    after = ""
    if found.get("lead"):
        best = max(found["lead"], key=lambda h: h[3])  # the longest phrase opening the block
        lead = [(best[0], best[1])]
        after = text[best[3] :].strip()
    return _Info(
        strong=[(h[0], h[1]) for h in found.get("strong", [])],
        lead=lead,
        lead_after=after,
        weak={(h[1], "price" if h[0] == "common.price" else h[2]) for h in found.get("weak", [])},
        topic={h[1] for h in found.get("topic", [])},
        label=bool(found.get("label")),
        speech=bool(found.get("speech")),
        words=words,
        density=density,
    )


def _pick_kind(hits: list[tuple[str, str]]) -> tuple[str, str]:
    counts = Counter(kind for _, kind in hits)
    kind = max(counts, key=lambda k: (counts[k], -_PRIORITY.index(k)))
    rid = next(r for r, k in hits if k == kind)
    return kind, rid


def _is_label(info: _Info, text: str) -> bool:
    return 0 < info.words <= 8 and not _END_PUNCT.search(text)


_TAIL_KINDS = ("subscription", "newsletter", "app")  # not donations: stories end on appeals


def _signals(
    blocks: Sequence[Mapping[str, Any]], infos: Sequence[_Info], verdict: dict[int, tuple[str, str]]
) -> None:
    """Wording-free signals (pipelines/promo/signals.py): a short block whose links go to a
    checkout, a newsletter form, an app store or a donation page (up to 60 words when it
    names a price or closes the text); a short line with a price per period; headlines
    after the end."""
    for i, b in enumerate(blocks):
        if i in verdict or b.get("kind") == "quote" or infos[i].speech:
            continue
        text = str(b.get("text") or "")
        kind = signals.link_kind(b["links"]) if b.get("links") else None
        if kind and infos[i].words <= 30 and (kind != "social" or infos[i].words <= 12):
            verdict[i] = (kind, f"signal.link:{kind}")
        elif kind == "subscription" and infos[i].words <= 60 and signals.priced(text):
            verdict[i] = (kind, "signal.offer")  # a price beside a link to the offer
        elif kind in _TAIL_KINDS and i >= len(blocks) - 2 and infos[i].words <= 60:
            verdict[i] = (kind, "signal.link_tail")  # the sign-off pitch under the story
        elif (
            infos[i].words <= 25
            and signals.price_per_period(text)
            and not is_prose(text, int(b.get("link_chars") or 0))
        ):
            verdict[i] = ("subscription", "signal.price")  # "0,99 €/Monat", "$4.99/mo"
    words = [info.words for info in infos]
    density = [info.density for info in infos]
    for i, b in enumerate(blocks):
        if (
            i not in verdict
            and b.get("kind") != "quote"
            and signals.credit_line(str(b.get("text") or ""), words[i])
        ):
            verdict[i] = ("credit", "signal.credit")
    prose = [i for i, info in enumerate(infos) if _plain_prose(blocks[i], info)]
    if prose:  # author lines before the first paragraph or after the last one
        edges = [*range(0, prose[0]), *range(prose[-1] + 1, len(blocks))]
        # a signed line ("Von Nina Magoley") may follow the standfirst
        signed = [i for i in range(min(6, len(blocks))) if i not in edges]
        for i in [*edges, *signed]:
            text = str(blocks[i].get("text") or "")
            if (
                i not in verdict
                and blocks[i].get("kind") != "quote"
                and (signals.signed_byline(text) if i in signed else signals.byline(text))
            ):
                verdict[i] = ("credit", "signal.byline")
    for i in signals.trailing_headlines(blocks, words, density, verdict):
        verdict[i] = ("read_also", "signal.headlines")
    for i, b in enumerate(blocks):
        text = str(b.get("text") or "")
        if i in verdict or b.get("kind") == "quote":
            continue
        if signals.link_list(text, density[i]) or signals.headline_list(text, b.get("links")):
            verdict[i] = ("read_also", "signal.link_list")
    for i, b in enumerate(blocks):
        if i not in verdict and signals.linked_headline(
            str(b.get("text") or ""), words[i], density[i]
        ):
            verdict[i] = ("read_also", "signal.linked_headline")
            label = i - 1
            if (
                label >= 0
                and label not in verdict
                and 0 < words[label] <= 4
                and density[label] < 0.5
                and signals.unpunctuated(str(blocks[label].get("text") or ""))
            ):
                verdict[label] = (
                    "read_also",
                    "signal.label",
                )  # "Lesen Sie auch", "Passend zum Artikel"


def _own_promo(info: _Info) -> bool:
    """The block's own words promote something (not only the box around it)."""
    return bool(info.strong or info.lead or len({w for _, w in info.weak}) >= 2)


def _plain_prose(block: Mapping[str, Any], info: _Info) -> bool:
    return is_prose(str(block.get("text") or ""), int(block.get("link_chars") or 0))


def _text_rules(
    blocks: Sequence[Mapping[str, Any]],
    infos: Sequence[_Info],
    verdict: dict[int, tuple[str, str]],
    rules: PromoRules,
    lang: str | None,
    title: str | None,
) -> None:
    n = len(blocks)
    head = {i for i in range(min(2, n))}
    tail = {i for i in range(max(0, n - 3), n)}

    # Topic guard: an article whose middle keeps talking about subscriptions (apps,
    # newsletters, donations) is about them; only its head and tail may hold pitches.
    topic_blocks: Counter[str] = Counter()
    for i, info in enumerate(infos):
        if i in head or i in tail or info.strong or info.lead or i in verdict:
            continue
        topic_blocks.update(info.topic)
    about = {k for k, c in topic_blocks.items() if c >= 2}
    if title:
        about |= {kind for _, kind in rules.hits("topic", _norm(title), lang)}

    for i, info in enumerate(infos):
        if i in verdict or blocks[i].get("kind") == "quote":
            continue
        text = str(blocks[i].get("text") or "")
        if info.strong and not info.speech:
            kind, rid = _pick_kind(info.strong)
            edge = i in head or i in tail
            if kind in about and not edge:
                continue
            # A long middle paragraph with one stray phrase is editorial text.
            if not edge and info.words > 70 and len(info.strong) < 2 and not info.weak:
                continue
            verdict[i] = (kind, rid)
        elif info.lead:
            rid = info.lead[0][0]
            teaser = (
                info.density >= 0.3
                or len(info.lead_after) <= 3
                or info.lead_after[:1] in (":", "-", "|", ">", "»", "–", "—")
            )
            if teaser and info.words <= 40 and "read_also" not in about:
                verdict[i] = ("read_also", rid)
                # a cue standing alone ("Czytaj więcej", "Read also") heads the teaser below it
                nxt = i + 1
                if (
                    len(info.lead_after) <= 3
                    and nxt < n
                    and nxt not in verdict
                    and 0 < infos[nxt].words <= 30
                    and not infos[nxt].speech
                    and blocks[nxt].get("kind") != "quote"
                    and signals.headline_ending(str(blocks[nxt].get("text") or ""))
                ):
                    verdict[nxt] = ("read_also", "run.teaser")

    # Grow each removed run over its neighbours: promo vocabulary, link lists after a
    # teaser, and short labels ("IMPORTANT - À lire") heading a run.
    changed = True
    while changed:
        changed = False
        for i, info in enumerate(infos):
            if i in verdict or blocks[i].get("kind") == "quote":
                continue
            text = str(blocks[i].get("text") or "")
            near = [
                verdict[j] for j in (i - 1, i + 1) if j in verdict and verdict[j][0] != "custom"
            ]
            if not near or info.speech:
                continue
            kind = near[0][0]
            # In an article about this kind, a neighbour that talks about the topic is the
            # article's own text; only promo vocabulary without the topic words joins the run.
            on_topic = kind in about and kind in info.topic
            # Two distinct promo words, one of them from this kind's own vocabulary: a price
            # and an "offer" are not a newsletter pitch.
            words = {w for _, w in info.weak}
            own = any(k == kind and w != "price" for k, w in info.weak)
            if len(words) >= 2 and own and not info.strong and info.words <= 90 and not on_topic:
                verdict[i] = (kind, "run.weak")
            elif kind == "read_also" and info.density >= 0.5 and info.words <= 40:
                verdict[i] = ("read_also", "run.links")
            elif (
                verdict.get(i - 1, ("",))[0] == "read_also"
                and info.words <= 60
                and signals.truncated(text)
            ):
                verdict[i] = ("read_also", "run.teaser")  # the cut summary under a teaser
            elif (
                (i + 1) in verdict
                and _is_label(info, text)
                and (info.label or all(j in verdict for j in range(i + 1, n)))
            ):
                verdict[i] = (verdict[i + 1][0], "run.label")
            else:
                continue
            changed = True
