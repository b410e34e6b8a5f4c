"""Promotion signals that do not depend on wording, so they hold in every language.

Phrase lists only know the words someone wrote down; on real pages most pitches outside
English used words no list had. What a pitch *is* shows in other ways: where its links
go (a checkout, a newsletter form, an app store, a donation page), and where it stands (a
list of headlines after the story's last paragraph). The strongest signal, recurrence of a
block across an outlet's articles, is learned in the archive (archive/boilerplate.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pipelines.promo.targets import target_kind

# Link targets by kind, matched on the URL (path and host), case-blind.
_TARGETS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "app",
        re.compile(
            r"apps\.apple\.com|itunes\.apple\.com|play\.google\.com/store|app\.adjust\.com"
            r"|onelink\.me|app\.link/|/apps?(?:/|$|\?)|/app-download",
            re.I,
        ),
    ),
    (
        "newsletter",
        re.compile(r"newsletter|nieuwsbrief|/nl-signup|/e-?mail-?alerts?|/infolettre", re.I),
    ),
    (
        "donation",
        re.compile(
            r"/donat|/donate|/spende|/spenden|/don(?:s|ate)?(?:/|$|\?)|/contribut|/support-us"
            r"|/soutenir|/unterstuetzen|/apoya|/doneer|paypal\.me|/steady|steadyhq\.com",
            re.I,
        ),
    ),
    (
        "subscription",
        re.compile(
            r"/subscri|/abonn|/abo(?:/|$|\?|-)|/aboshop|/checkout|/offers?(?:/|$|\?)"
            r"|/angebot|/plus(?:/|$|\?)|/premium(?:/|$|\?)|/membership|/join(?:/|$|\?)"
            r"|/suscri|/assin|/abbonam|/predplatne|/prenumerat|/abone|/tilbud|/kjop"
            r"|/registrier|/register(?:/|$|\?)|/login(?:/|$|\?)|/paywall|piano\.io"
            r"|/digital-?access|/produkte?/",
            re.I,
        ),
    ),
    (
        "social",
        re.compile(
            r"(?:^|//)(?:www\.)?(?:facebook\.com|twitter\.com|x\.com|instagram\.com|t\.me"
            r"|whatsapp\.com|linkedin\.com|tiktok\.com|youtube\.com)/(?!watch|status|p/|reel)",
            re.I,
        ),
    ),
)
_SENTENCE = re.compile(
    r"\w[.!?。！？]+(?:[\s»”“\"'’)]|[A-ZÀ-Þ])"
)  # a sentence ends inside the text
_STATEMENT = re.compile(r"\w[.!。！]+(?:[\s»”“\"'’)]|[A-ZÀ-Þ])")  # a statement ends inside
_FULL_STOP = re.compile(r"[.!…。！]\s*[»«”“\"')’\]」』]*$")
_END_PUNCT = re.compile(r"[.!?…:;。！？]\s*[»«”“\"')’\]」』]*$")


def link_kind(links: Iterable[str]) -> str | None:
    """The promotion kind of the first link that goes to a CTA target, if any."""
    for url in links:
        for kind, rx in _TARGETS:
            if rx.search(url):
                return kind
        if found := target_kind(url):
            return found
    return None


# An amount of money in any currency: a symbol or code before or after the number.
_SYMBOLS = "$€£¥₹₩₽₺₴₪₫฿₱₦"
_CODES = r"eur|usd|gbp|chf|sek|nok|dkk|pln|czk|huf|ron|try|inr|jpy|cny|krw|rub|zar|brl|aud|cad"
_MONEY = (
    rf"(?:(?:[{_SYMBOLS}]|r\$|us\$|rp\.?|kr\.?|zł|kč|{_CODES})\s?\d[\d.,]*"
    rf"|(?<![\w.,])\d[\d.,]*\s?(?:[{_SYMBOLS}円元원]|kr\.?|zł|kč|ft|lei|tl|руб|euros?|dollars?"
    rf"|{_CODES})(?!\w))"
)
_PRICE = re.compile(_MONEY, re.I)
_PRICE_PER = re.compile(_MONEY + r"\s?/\s?[^\W\d]{1,12}(?!\w)", re.I)  # "1 €/Monat", "$4.99/mo"


def priced(text: str) -> bool:
    """An amount of money stands in the text, in any currency."""
    return bool(_PRICE.search(text))


def price_per_period(text: str) -> bool:
    """A price per period written the way offers write it ("0,99 €/Monat", "Rp49.000/bulan")."""
    return bool(_PRICE_PER.search(text))


def trailing_headlines(
    blocks: Sequence[Mapping[str, Any]],
    words: Sequence[int],
    density: Sequence[float],
    removed: Mapping[int, Any],
) -> list[int]:
    """Indexes of a list of headlines after the story's last paragraph: a run of short
    lines without closing punctuation at the end, at least one of them a link, none of
    them running text. Two or more lines, or one link-only line: a lone heading at the end
    of an article is a heading."""
    last_prose = -1
    for i, b in enumerate(blocks):
        text = str(b.get("text") or "")
        if (
            i not in removed
            and words[i] >= 15
            and (_END_PUNCT.search(text) or _SENTENCE.search(text))
        ):
            last_prose = i
    run = []
    for i in range(last_prose + 1, len(blocks)):
        if i in removed:
            continue
        b = blocks[i]
        text = str(b.get("text") or "")
        if b.get("kind") == "quote":
            return []
        linky = density[i] >= 0.6 and words[i] <= 25
        headline = words[i] <= 25 and unpunctuated(text)
        if not (linky or headline):
            return []
        run.append((i, linky))
    if any(linky for _, linky in run) and (len(run) >= 2 or all(linky for _, linky in run)):
        return [i for i, _ in run]
    return []


def unpunctuated(text: str) -> bool:
    """No sentence in it: headlines and labels, not running text."""
    return not _END_PUNCT.search(text) and not _SENTENCE.search(text)


def linked_headline(text: str, words: int, density: float) -> bool:
    """Another article's headline inside this one: one short line, all of it a link, no
    closing punctuation (an inline teaser, whatever the words around it)."""
    # a headline may ask ("Kinder? Für mich keine Option“ – Wie ..."); it holds no statement
    return (
        3 <= words <= 25
        and density >= 0.85
        and "\n" not in text
        and headline_ending(text)
        and not _STATEMENT.search(text)
    )


def link_list(text: str, density: float) -> bool:
    """A list of other articles (or shops): two or more short lines, most of the text
    links, most lines without a sentence. A bullet list of the story's own points is prose."""
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if len(lines) < 2 or density < 0.45:
        return False
    # headlines may ask ("Neue Allianz? Europäer reagieren ...") but do not end on a full stop
    short = [ln for ln in lines if len(ln.split()) <= 25 and not _FULL_STOP.search(ln)]
    return len(short) >= 0.7 * len(lines)


_ARTICLE_PATH = re.compile(r"^(?:https?://[^/]+)?/[^?#]*(?:\d{4,}|[\w%]+(?:-[\w%]+){3,})")


def headline_list(text: str, links: Sequence[str] | None) -> bool:
    """A list of other articles whose link texts the extraction lost (an image link beside
    each headline): two or more headline lines, at least one article link a line."""
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if len(lines) < 2 or not links:
        return False
    articles = {u for u in links if _ARTICLE_PATH.match(u) and not link_kind([u])}
    heads = [ln for ln in lines if 4 <= len(ln.split()) <= 25 and unpunctuated(ln)]
    return len(articles) >= max(2, len(lines) - 1) and len(heads) >= max(2, 0.6 * len(lines))


_TRUNCATED = re.compile(r"(?:\.\.\.|…)\s*[»”\")]*$")


def truncated(text: str) -> bool:
    """Cut off with an ellipsis, as a teaser's summary is ("...wynika ze słów Donalda Tr...")."""
    return bool(_TRUNCATED.search(text))


def headline_ending(text: str) -> bool:
    """Ends as a headline does, without a full stop (a teaser under a "Read also" cue)."""
    return not _FULL_STOP.search(text)


# "Label: value" credit lines in the languages of our outlets: photo and source credits,
# copyright, dateline stamps. Short lines only; a sentence that starts "Source:" is text.
_CREDIT = re.compile(
    r"^\(?\s*(?:©|ⓒ|\(c\)|copyright\b|photos?\s*[:/]|fotos?\s*[:/]|fotó\s*:|bild(?:er)?\s*:|images?\s*:"
    r"|pictures?\s*:|credits?\s*:|quelle\s*:|quellen\s*:|sources?\s*:|fuente\s*:|fonte\s*:|kilde\s*:"
    r"|källa\s*:|źródło\s*:|zdroj\s*:|kaynak\s*:|фото\s*:|источник\s*:|stand\s*:|lesedauer\s*:"
    r"|reading time\s*:|temps de lecture\s*:|mit agenturmaterial|with reporting by|additional reporting by"
    r"|first published (?:in|on|by)\b)",
    re.I,
)
_AGENCY = re.compile(r"^\((?:[\w/ .,-]{1,40})\)$")  # "(dpa)", "(Quelle: APA/sda/dpa)", "(phy)"


def credit_line(text: str, words: int) -> bool:
    """A photo, source or agency credit, a copyright line: not the story's text."""
    line = text.strip()
    if "\n" in line or words > 14:
        return False
    return bool(_CREDIT.match(line) or (words <= 5 and _AGENCY.match(line)))


_BY = re.compile(r"^(?:by|von|par|por|di|door|av|af|od|от|mit)\s+", re.I)
_NAME = re.compile(r"^(?:[A-ZÀ-ÞĀ-ſА-Я][\w'’.-]*|and|und|y|et|e|og|och|i|&|[/,–-])$")


def byline(text: str) -> bool:
    """An author line: "Von Nina Magoley", "Daniel Aragón", "MTHOBISI SITHOLE" (two to six
    name-like words, no sentence); only asked of the text's first and last blocks."""
    line = text.strip()
    if "\n" in line or _FULL_STOP.search(line) or any(c.isdigit() for c in line):
        return False
    tokens = _BY.sub("", line).replace(",", " , ").split()
    names = [t for t in tokens if t not in {",", "/", "&", "–", "-"}]
    return (
        2 <= len(names) <= 6
        and all(_NAME.match(t) for t in tokens)
        and sum(t[0].isupper() for t in names) >= 2
    )


def signed_byline(text: str) -> bool:
    """An author line that says so ("Von ...", "By ...", "Par ..."): trusted a little
    inside the text's head, where a byline follows the standfirst."""
    return bool(_BY.match(text.strip())) and byline(text)
