"""Build the labelled promo evaluation pages (deterministic, seeded) from compact data.

Why generated: no public promo dataset exists, and committing hundreds of HTML pages would
bloat the repo. The data files hold the article and promo paragraphs; this module renders
them into pages with varied markup (bare paragraphs at the head, tail or middle, class-named
boxes, hashed class names, ARIA and data-* boxes, asides, inline "read also" links) and
keeps the labels: which paragraph is editorial and which is a promotion.

English pages are real Zyte benchmark pages (shared/bench/zyte, MIT, read at run time, not
copied) with promotions injected next to their ground-truth paragraphs.
"""

from __future__ import annotations

import gzip
import html as htmllib
import json
import random
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
ZYTE = SHARED / "bench" / "zyte"

LANGS = ("fr", "en", "de", "es", "it", "pt", "nl")
FAMILIES = ("bare_tail", "bare_head", "mid", "box_class", "hashed", "aria", "data", "aside")

CLASS_NAMES = {
    "subscription": [
        "subscribe-box",
        "paywall-prompt",
        "c-abo-teaser",
        "subscription-offer",
        "premium-teaser",
    ],
    "newsletter": ["newsletter-signup", "nl-signup-inline", "email-signup"],
    "donation": ["donate-appeal", "support-us-box", "contributions__epic"],
    "app": ["app-banner", "app-promo", "smart-banner"],
    "social": ["follow-us", "social-follow"],
    "event": ["event-promo", "tickets-box"],
    "shop": ["shop-promo", "boutique-teaser"],
    "read_also": ["read-also", "inline-related", "lire-aussi"],
}
GENERIC_CLASSES = ["promo-inline", "article-cta", "promo"]
ARIA = {
    "subscription": "Subscription offer", "newsletter": "Newsletter sign-up", "donation": "Support us",
    "app": "Get the app", "social": "Follow us", "event": "Event promo", "shop": "Shop promo",
    "read_also": "Read also",
}  # fmt: skip
CTA = {
    "subscription": {"fr": "Je m'abonne", "en": "Subscribe", "de": "Jetzt abonnieren", "es": "Suscríbete",
                     "it": "Abbonati ora", "pt": "Assine já", "nl": "Word abonnee"},
    "newsletter": {"fr": "Je m'inscris à la newsletter", "en": "Sign up for our newsletter",
                   "de": "Newsletter abonnieren", "es": "Apúntate a la newsletter", "it": "Iscriviti alla newsletter",
                   "pt": "Cadastre-se na newsletter", "nl": "Aanmelden voor de nieuwsbrief"},
    "donation": {"fr": "Je fais un don", "en": "Donate now", "de": "Jetzt spenden", "es": "Dona ahora",
                 "it": "Dona ora", "pt": "Doe agora", "nl": "Doneer nu"},
}  # fmt: skip
SEP = {"fr": " : "}


@dataclass
class Page:
    id: str
    lang: str
    split: str  # tune | heldout
    family: str
    html: str
    url: str
    article: list[str]  # editorial paragraphs (must survive)
    promo: list[str] = field(default_factory=list)  # promotional paragraphs (must go)
    hard_negative: bool = False


def _load(name: str) -> Any:
    return tomllib.loads((HERE / name).read_text(encoding="utf-8"))


def _esc(text: str) -> str:
    return htmllib.escape(text, quote=False)


def _rand_hash(rng: random.Random, n: int = 6) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[-_]+", name) if part)


def _promo_html(unit: dict[str, Any], family: str, rng: random.Random) -> tuple[str, list[str]]:
    """HTML of one promotion and its labelled paragraph texts."""
    lang, kind = unit["lang"], unit["kind"]
    texts: list[str] = []
    inner: list[str] = []
    if kind == "read_also":
        sep = SEP.get(lang, ": ")
        for title in unit["teasers"]:
            href = "/" + re.sub(r"\W+", "-", title.lower()).strip("-") + "/"
            inner.append(f'<p>{_esc(unit["lead"])}{sep}<a href="{href}">{_esc(title)}</a></p>')
            texts.append(f"{unit['lead']}{sep}{title}")
    else:
        if unit.get("label"):
            tag = "h3" if family not in ("bare_tail", "bare_head", "mid") else "p"
            label = f"<strong>{_esc(unit['label'])}</strong>" if tag == "p" else _esc(unit["label"])
            inner.append(f"<{tag}>{label}</{tag}>")
            texts.append(unit["label"])
        for para in unit["paras"]:
            inner.append(f"<p>{_esc(para)}</p>")
            texts.append(para)
        cta = CTA.get(kind, {}).get(lang)
        if cta and family not in ("bare_tail", "bare_head", "mid"):
            inner.append(f'<p><a class="button" href="/offre/">{_esc(cta)}</a></p>')
            texts.append(cta)
    body = "\n".join(inner)
    names = CLASS_NAMES.get(kind, []) + GENERIC_CLASSES
    name = rng.choice(names)
    if family in ("bare_tail", "bare_head", "mid"):
        return body, texts
    if family == "box_class":
        return f'<div class="{name}">\n{body}\n</div>', texts
    if family == "hashed":
        if rng.random() < 0.5:
            cls = f"css-{_rand_hash(rng)} e{_rand_hash(rng, 7)} {name}"
        else:
            cls = f"{_camel(name)}-sc-{_rand_hash(rng, 6)} {_rand_hash(rng, 6)}"
        return f'<div class="{cls}">\n{body}\n</div>', texts
    if family == "aria":
        return (
            f'<section class="c-{_rand_hash(rng, 5)}" aria-label="{ARIA[kind]}">\n{body}\n</section>',
            texts,
        )
    if family == "data":
        attr = rng.choice(["data-component", "data-testid", "data-module"])
        return f'<div {attr}="{name}">\n{body}\n</div>', texts
    if family == "aside":
        return f'<aside class="{name}">\n{body}\n</aside>', texts
    raise ValueError(family)


def _page(title: str, lang: str, body: str, url: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{_esc(title)} | Example News</title>
<meta property="og:type" content="article"><meta property="og:title" content="{_esc(title)}">
<meta property="article:published_time" content="2025-03-04T08:00:00+01:00">
<link rel="canonical" href="{url}"></head>
<body><header><nav><a href="/">Home</a> <a href="/politics/">Politics</a> <a href="/subscribe/">Subscribe</a></nav></header>
<main><article><h1>{_esc(title)}</h1><p class="byline">By Staff Writer, 4 March 2025</p>
<div class="article-body">
{body}
</div></article></main>
<footer><p>© 2025 Example News. All rights reserved.</p></footer></body></html>"""


def _synthetic(
    pid: str, lang: str, split: str, family: str, title: str, paras: list[str],
    promo: dict[str, Any] | None, rng: random.Random, *, blockquotes: set[int] | None = None,
    hard: bool = False,
) -> Page:  # fmt: skip
    blockquotes = blockquotes or set()
    parts = [
        f"<blockquote><p>{_esc(p)}</p></blockquote>" if i in blockquotes else f"<p>{_esc(p)}</p>"
        for i, p in enumerate(paras)
    ]
    promo_texts: list[str] = []
    if promo is not None:
        snippet, promo_texts = _promo_html(promo, family, rng)
        if family == "bare_head":
            at = 0
        elif family == "mid" or promo["kind"] == "read_also":
            at = max(1, len(parts) // 2)
        else:
            at = len(parts) if rng.random() < 0.7 else max(1, len(parts) - 1)
        parts.insert(at, snippet)
    url = f"https://news-{lang}.example/{pid}/"
    return Page(
        pid,
        lang,
        split,
        family,
        _page(title, lang, "\n".join(parts), url),
        url,
        list(paras),
        promo_texts,
        hard,
    )


def _zyte() -> list[tuple[str, list[str]]]:
    gt = json.loads((ZYTE / "ground-truth.json").read_text(encoding="utf-8"))
    out = []
    for key in sorted(gt):
        paras = [
            p.strip() for p in re.split(r"\n+", gt[key]["articleBody"]) if len(p.strip()) >= 60
        ]
        if len(paras) >= 5 and (ZYTE / "html" / f"{key}.html.gz").exists():
            out.append((key, paras))
    return out


def _inject(raw: str, paras: list[str], snippet: str, where: str) -> str | None:
    """Insert `snippet` next to the ground-truth paragraph at head, middle or tail."""
    import lxml.html

    try:
        doc = lxml.html.document_fromstring(raw)
    except Exception:
        return None
    pick = {"head": paras[0], "mid": paras[len(paras) // 2], "tail": paras[-1]}[where]
    probe = re.sub(r"\s+", " ", pick)[:50]
    for p in doc.iter("p"):
        if any(a.tag in ("blockquote", "figure", "aside") for a in p.iterancestors()):
            continue  # an embedded tweet or caption: not where an outlet puts its promos
        if probe in re.sub(r"\s+", " ", p.text_content()):
            frag = lxml.html.fragments_fromstring(snippet)
            for el in reversed(frag) if where != "head" else frag:
                if isinstance(el, str):
                    continue
                if where == "head":
                    p.addprevious(el)
                else:
                    p.addnext(el)
            return str(lxml.html.tostring(doc, encoding="unicode"))
    return None


def build_pages(split: str = "tune", seed: int = 7) -> list[Page]:
    """All evaluation pages of one split, in a fixed order: "tune" (rules developed on it),
    "heldout" (first held-out wording, later used as a development set) or "heldout2"
    (written before the rule changes heldout inspired; never tuned on)."""
    rng = random.Random(f"{seed}-{split}")
    arts = _load("articles.toml")
    promo_file = {
        "tune": "promos.toml",
        "heldout": "promos_heldout.toml",
        "heldout2": "promos_heldout2.toml",
    }
    promos = _load(promo_file[split])["promo"]
    about_split = "tune" if split == "tune" else "heldout"
    pages: list[Page] = []
    n = 0

    def pid() -> str:
        nonlocal n
        n += 1
        return f"{split}-{n:03d}"

    fam_cycle = list(FAMILIES)
    by_lang: dict[str, list[dict[str, Any]]] = {}
    for unit in promos:
        by_lang.setdefault(unit["lang"], []).append(unit)

    zyte_docs = _zyte() if ZYTE.exists() else []
    for lang in LANGS:
        units = by_lang.get(lang, [])
        data = arts.get(lang, {})
        story: list[str] = data.get("story", [])
        if lang == "en":  # English filler paragraphs: real article text from the Zyte set
            story = [para for _, paras in zyte_docs[:12] for para in paras[:2]]
        titles: list[str] = data.get("titles", ["News"])
        if lang != "en":
            reps = 3 if split == "tune" else 2
            for unit in units:
                for _ in range(reps):
                    family = rng.choice(fam_cycle)
                    paras = rng.sample(story, rng.randint(6, 9))
                    pages.append(
                        _synthetic(pid(), lang, split, family, rng.choice(titles), paras, unit, rng)
                    )
            # quotes with promo words stay (blockquote and inline), with and without a promo
            quotes = list(data.get("quotes", []))
            for with_promo in (False, True):
                if len(quotes) < 2:
                    break
                paras = rng.sample(story, 6)
                at = rng.randint(1, 5)
                paras.insert(at, quotes[1])
                paras.append(quotes[0])  # last paragraph: where tail pitches usually are
                bq = {at} if rng.random() < 0.5 else set()
                unit = rng.choice(units) if with_promo and units else None
                family = rng.choice(["bare_tail", "box_class"])
                pages.append(
                    _synthetic(
                        pid(),
                        lang,
                        split,
                        family,
                        rng.choice(titles),
                        paras,
                        unit,
                        rng,
                        blockquotes=bq,
                        hard=True,
                    )
                )
        # articles about subscriptions / newsletters / apps / donations stay whole
        for topic, about in sorted(data.get("about", {}).items()):
            if about.get("split", "tune") != about_split:
                continue
            filler = rng.sample(story, 2) if story else []
            body = [
                about["paras"][0],
                about["paras"][1],
                *filler[:1],
                about["paras"][2],
                *filler[1:],
                about["paras"][3],
            ]
            same_kind = [u for u in units if u["kind"] == topic]
            for variant in ("bare", "promo_tail", "promo_box"):
                unit = None
                family = "bare_tail"
                if variant != "bare":
                    pool = same_kind or units
                    if not pool:
                        continue
                    unit = rng.choice(pool)
                    family = (
                        "bare_tail"
                        if variant == "promo_tail"
                        else rng.choice(["box_class", "hashed", "data"])
                    )
                pages.append(
                    _synthetic(
                        pid(), lang, split, family, about["title"], body, unit, rng, hard=True
                    )
                )

    # English: real Zyte pages with injected promotions.
    en_units = by_lang.get("en", [])
    if en_units and zyte_docs:
        docs = zyte_docs[12:]
        count = 40 if split == "tune" else 16
        picks = rng.sample(docs, min(count, len(docs)))
        for key, paras in picks:
            unit = rng.choice(en_units)
            family = rng.choice(
                ["bare_tail", "bare_head", "mid", "box_class", "hashed", "aria", "data"]
            )
            snippet, texts = _promo_html(unit, family, rng)
            where = {"bare_head": "head", "mid": "mid"}.get(
                family, "mid" if unit["kind"] == "read_also" else "tail"
            )
            raw = gzip.decompress((ZYTE / "html" / f"{key}.html.gz").read_bytes()).decode(
                "utf-8", "replace"
            )
            html = _inject(raw, paras, snippet, where)
            if html is None:
                continue
            url = f"https://zyte.example/{key[:12]}/"
            pages.append(Page(pid(), "en", split, family, html, url, paras, texts))
    # English quotes with promo words, on Zyte paragraphs
    if zyte_docs and split == "tune":
        quotes = list(arts.get("en", {}).get("quotes", []))
        for _ in range(2):
            paras = rng.choice(zyte_docs)[1][:6] + quotes
            pages.append(
                _synthetic(
                    pid(),
                    "en",
                    split,
                    "bare_tail",
                    "Regulators act",
                    paras,
                    None,
                    rng,
                    blockquotes={len(paras) - 1},
                    hard=True,
                )
            )
    return pages
