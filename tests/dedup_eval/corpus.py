"""A labelled dedup set built at run time from compact data, deterministically (fixed seed).

Article bodies come from the Zyte extraction benchmark (MIT, /work/shared/bench/zyte/
ground-truth.json), read at run time, never copied here. What is committed is the recipe:
the edits a wire desk makes (cut to half, new headline, a local paragraph, light rewording,
credit lines), the update an outlet makes, and the hard negatives (independent reports of
one event sharing a quote, one template filled with other figures, short briefs sharing an
outlet's tail, articles of one site).

``build()`` returns documents (with their true story) and labelled pairs:

* text pairs: ``label`` True when both texts are the same story (near-dup or exact copy);
* URL pairs: ``label`` True when both URLs name the same article (URL identity rules).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SHARED = Path(__file__).resolve().parents[2].parent / "shared"  # beside the repo
ZYTE = SHARED / "bench" / "zyte" / "ground-truth.json"
SEED = 7

OUTLETS = [
    "wire-desk",
    "daily-post",
    "evening-star",
    "metro-news",
    "the-courier",
    "valley-times",
    "le-quotidien",
    "rundschau",
    "el-diario",
    "harbour-herald",
]

# What a desk appends to a wire copy, or an outlet to all its short briefs.
TAILS = {
    "daily-post": "Subscribe to the Daily Post for unlimited access to local news, puzzles and our award "
    "winning newsletter. Already a subscriber? Log in to continue reading and manage your account.",
    "evening-star": "Follow the Evening Star on social media for breaking news alerts. Have a story tip? Email "
    "our newsroom at any time, day or night, and our reporters will get back to you.",
    "metro-news": "This article was produced by the Metro News desk with reporting from our correspondents. "
    "Copyright Metro News. All rights reserved. This material may not be published, broadcast, "
    "rewritten or redistributed.",
    "le-quotidien": "Cet article vous a été utile ? Soutenez une rédaction indépendante : abonnez-vous dès "
    "maintenant pour un euro le premier mois et recevez chaque matin notre lettre d'information.",
    "rundschau": "Sie wollen keine Nachrichten aus Ihrer Region verpassen? Abonnieren Sie unseren kostenlosen "
    "Newsletter und folgen Sie der Rundschau auf allen Kanälen, jeden Morgen um sieben Uhr.",
    "el-diario": "Suscríbete a El Diario y apoya el periodismo independiente. Recibe cada mañana en tu correo "
    "las noticias más importantes del día, seleccionadas por nuestra redacción.",
}

# Template stories: the same sentences, other figures and names (must stay apart).
TEMPLATES = [
    (
        "The {index} closed {dir} {pct} percent at {pts} points on {day}, after trading in a range of {lo} to "
        "{hi}. Volume reached {vol} million shares, against a thirty day average of {avg} million. Analysts at "
        "the brokerage said the session was shaped by results season and by the central bank, which meets again "
        "next week. The best performer of the day gained {best} percent while the weakest fell {worst} percent. "
        "Bond yields moved to {yld} percent and the currency traded at {fx} against the dollar."
    ),
    (
        "{team} beat {other} {s1} to {s2} on {day} in front of a crowd of {crowd}. {player} scored in the {m1}th "
        "minute and again in the {m2}th, before a late goal in the {m3}th minute settled the match. The win "
        "leaves the side in {pos}th place with {pointsn} points from {games} games, {gap} points behind the "
        "leaders. The coach told reporters after the final whistle that the team had shown character and that "
        "the squad would now rest before the next fixture."
    ),
    (
        "Forecasters expect a high of {hi} degrees on {day} with a low of {lo} overnight. Winds from the {wind} "
        "will reach {kmh} kilometres per hour along the coast, and there is a {rain} percent chance of showers "
        "in the afternoon. Pollen counts will be {pollen} and the air quality index is forecast at {aqi}. The "
        "weekend looks {dir}, with temperatures between {w1} and {w2} degrees and sunrise at {sun} am."
    ),
    (
        "{company} reported third quarter revenue of {rev} million dollars, up {g} percent from a year earlier, "
        "and net income of {ni} million, or {eps} cents a share. Analysts polled by the data provider had "
        "expected revenue of {exp} million. The company said it now expects full year sales between {f1} and "
        "{f2} million and will pay a quarterly dividend of {div} cents. Shares rose {pct} percent in after hours "
        "trading. The chief executive said demand had held up in every region despite higher costs."
    ),
    (
        "Police said a {age} year old man was arrested on {day} after a collision on the {road} near junction "
        "{j} at about {hh} pm. {n} people were taken to hospital, {k} of them with serious injuries. The road "
        "was closed for {hours} hours while officers examined the scene. Anyone who saw the crash or has dashcam "
        "footage is asked to call the incident line quoting reference {ref}. An investigation is under way."
    ),
    # Long, few figures: most shingles are shared, only the numbers tell the stories apart.
    (
        "The national statistics office said on {day} that consumer prices rose {pct} percent in the year to "
        "last month, compared with a rise of {pct2} percent the month before. Economists had expected the rate "
        "to stay broadly unchanged. Food and energy remained the main contributors to the increase, while the "
        "cost of clothing and footwear eased slightly after the seasonal sales. The central bank, which has "
        "raised its main rate several times over the past year, is expected to keep it on hold at its next "
        "meeting, according to most analysts surveyed by the agency. Core inflation, which strips out volatile "
        "items, was {core} percent. The office will publish its next estimate in {weeks} weeks, together with "
        "revised figures for the previous quarter and a breakdown by region."
    ),
    (
        "The council voted {yes} to {no} on {day} to approve the budget for the coming year, after a debate "
        "that lasted most of the evening. The plan includes funding for road repairs, for the public library "
        "and for the extension of the bus network to the new housing estates on the edge of town. Opposition "
        "members said the increase in local taxes was too steep for families already struggling with higher "
        "bills, and proposed an amendment that was rejected. The mayor said the budget protected essential "
        "services and that the council had found savings of {sav} million in its own administration. The "
        "budget comes into force next month and will be reviewed in {months} months."
    ),
]
NAMES = [
    "Northfield",
    "Riverside",
    "Eastbrook",
    "Westmoor",
    "Kingsport",
    "Lakeview",
    "Ashford",
    "Belmont",
    "Carlton",
    "Dunmore",
    "Elmstead",
    "Fairhaven",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

# Light rewording a sub-editor does (both directions).
SWAPS = {
    "said": "told reporters",
    "says": "said",
    "however": "but",
    "about": "around",
    "more than": "over",
    "percent": "per cent",
    "because": "as",
    "also": "too",
    "company": "firm",
    "people": "residents",
    "government": "administration",
    "began": "started",
    "help": "assist",
    "large": "big",
}

LOCAL_PARAGRAPHS = [
    "Local officials in {town} said they were watching the situation closely and would publish an update "
    "on the council website later in the week.",
    "Residents of {town} contacted by this newspaper said they had not been told about the plans and asked "
    "for a public meeting before any decision is taken.",
    "The {town} chamber of commerce said in a statement that businesses in the area would be affected and "
    "called for support from the regional government.",
    "Readers in {town} can send their questions about this story to our newsroom, which will answer the "
    "most common ones in tomorrow's edition.",
]
CREDITS = ["(AP) — ", "LONDON (Reuters) - ", "PARIS (AFP) - ", "", ""]
SIGNOFFS = [
    "Reporting by staff; editing by the news desk.",
    "© AFP",
    "Additional reporting by agencies.",
    "",
]


@dataclass
class Doc:
    id: int
    outlet: str
    url: str
    text: str
    story: str
    published_at: datetime | None
    kind: str


@dataclass
class Pair:
    a: int | str
    b: int | str
    label: bool
    category: str


@dataclass
class EvalSet:
    docs: list[Doc] = field(default_factory=list)
    text_pairs: list[Pair] = field(default_factory=list)
    url_pairs: list[Pair] = field(default_factory=list)


def load_bodies() -> list[tuple[str, str]]:
    """(url, body) of the Zyte ground truth, in a stable order."""
    data = json.loads(ZYTE.read_text(encoding="utf-8"))
    items = sorted(data.items())
    return [(v["url"], v["articleBody"].strip()) for _, v in items if v.get("articleBody")]


def _paragraphs(text: str) -> list[str]:
    paras = [p.strip() for p in text.split("\n") if p.strip()]
    return paras or [text]


def _headline(body: str, rng: random.Random) -> str:
    words = body.split()
    start = rng.randrange(0, max(1, min(len(words) - 8, 40)))
    return " ".join(words[start : start + rng.randint(6, 10)]).strip(".,;:").capitalize()


def _truncate(paras: list[str], share: float) -> list[str]:
    total = sum(len(p.split()) for p in paras)
    out: list[str] = []
    n = 0
    for p in paras:
        if n >= total * share:
            break
        words = p.split()
        room = int(total * share) - n
        out.append(p if len(words) <= room or len(out) > 0 else " ".join(words[: max(room, 1)]))
        n += len(out[-1].split())
    return out


def _reword(text: str, rng: random.Random, rate: float) -> str:
    words = text.split(" ")
    for i, w in enumerate(words):
        low = w.lower().strip(".,")
        if low in SWAPS and rng.random() < 0.8:
            words[i] = SWAPS[low] + w[len(w.rstrip(".,")) :]
        elif rng.random() < rate and len(w) > 3:
            words[i] = w[:-1] if rng.random() < 0.5 else w + "s"  # typo or plural
    return " ".join(words)


def _drop_sentence(paras: list[str], rng: random.Random) -> list[str]:
    out = list(paras)
    i = rng.randrange(len(out))
    sentences = out[i].split(". ")
    if len(sentences) > 1:
        sentences.pop(rng.randrange(len(sentences)))
        out[i] = ". ".join(sentences)
    elif len(out) > 2:
        out.pop(i)
    return out


def _join(headline: str | None, paras: list[str]) -> str:
    return "\n\n".join(([headline] if headline else []) + [p for p in paras if p])


def _fill(template: str, rng: random.Random) -> str:
    values = {
        "index": rng.choice(["FTSE 100", "CAC 40", "DAX", "Nikkei 225"]),
        "dir": rng.choice(["up", "down"]),
        "day": rng.choice(DAYS),
        "team": rng.choice(NAMES) + " United",
        "other": rng.choice(NAMES) + " City",
        "player": rng.choice(["Silva", "Martin", "Okafor", "Novak", "Berg"]),
        "wind": rng.choice(["north", "south", "west"]),
        "pollen": rng.choice(["low", "moderate", "high"]),
        "company": rng.choice(NAMES) + " Holdings",
        "road": rng.choice(["A34", "M6", "B1040", "A14"]),
    }
    out = template
    while "{" in out:
        start = out.index("{")
        name = out[start + 1 : out.index("}", start)]
        value = values.get(name)
        if value is None:
            value = (
                str(rng.randint(2, 999))
                if rng.random() < 0.7
                else f"{rng.randint(1, 99)}.{rng.randint(1, 9)}"
            )
        out = out.replace("{" + name + "}", value, 1)
    return out


def build(seed: int = SEED) -> EvalSet:
    rng = random.Random(seed)
    bodies = load_bodies()
    long_ = [(u, b) for u, b in bodies if len(b.split()) >= 150]
    short = [(u, b) for u, b in bodies if len(b.split()) < 150]
    rng.shuffle(long_)
    originals = long_[:70]
    indep = long_[70:120]
    brief_src = long_[120:] + short
    ev = EvalSet()
    t0 = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)

    def add(outlet: str, url: str, text: str, story: str, kind: str, minutes: int | None) -> int:
        doc = Doc(
            len(ev.docs) + 1,
            outlet,
            url,
            text,
            story,
            None if minutes is None else t0 + timedelta(minutes=minutes),
            kind,
        )
        ev.docs.append(doc)
        return doc.id

    def text_pair(a: int, b: int, label: bool, cat: str) -> None:
        ev.text_pairs.append(Pair(a, b, label, cat))

    # Wire originals and their copies (positives), plus updates by the same outlet.
    for n, (_url, body) in enumerate(originals):
        story = f"wire-{n}"
        paras = _paragraphs(body)
        head = _headline(body, rng)
        base_min = n * 30
        orig = add(
            "wire-desk",
            f"https://wire-desk.example/{n}",
            _join(head, paras),
            story,
            "original",
            base_min,
        )
        copies: list[int] = []
        recipes = ["verbatim", "headline", "half", "local_para", "reworded", "combo"]
        for r, recipe in enumerate(recipes):
            outlet = OUTLETS[1 + (n + r) % (len(OUTLETS) - 1)]
            p = list(paras)
            h: str | None = head
            if recipe == "headline":
                h = _headline(body, rng)
                p[0] = rng.choice(CREDITS) + p[0]
            elif recipe == "half":
                p = _truncate(p, 0.5)
            elif recipe == "local_para":
                p.insert(
                    min(2, len(p)), rng.choice(LOCAL_PARAGRAPHS).format(town=rng.choice(NAMES))
                )
                p.append(rng.choice(SIGNOFFS))
            elif recipe == "reworded":
                p = _drop_sentence([_reword(x, rng, 0.02) for x in p], rng)
            elif recipe == "combo":
                h = _headline(body, rng)
                p = _truncate([_reword(x, rng, 0.01) for x in p], 0.6)
                p.append(rng.choice(LOCAL_PARAGRAPHS).format(town=rng.choice(NAMES)))
            minutes = base_min + 5 + r if rng.random() < 0.85 else None
            copies.append(
                add(
                    outlet,
                    f"https://{outlet}.example/news/{n}-{r}",
                    _join(h, p),
                    story,
                    recipe,
                    minutes,
                )
            )
            text_pair(orig, copies[-1], True, f"wire_{recipe}")
        text_pair(copies[0], copies[2], True, "copy_vs_copy")
        if n % 2 == 0:
            # The outlet updates its story under a new URL: new lede, one more paragraph.
            p = list(paras)
            p[0] = (
                "Updated: "
                + _reword(p[0], rng, 0.3)
                + f" At least {rng.randint(3, 40)} people were affected."
            )
            p.append("This story has been updated with new information from officials.")
            upd = add(
                "wire-desk",
                f"https://wire-desk.example/{n}-update",
                _join(head, p),
                story,
                "update",
                base_min + 90,
            )
            text_pair(orig, upd, True, "updated_article")

    # Same event reported independently: another text, sharing a quote and the first line's topic.
    for n, (_url, body) in enumerate(indep):
        target = [d for d in ev.docs if d.kind == "original"][n % len(originals)]
        src = target.id
        tparas = _paragraphs(target.text)
        quote = rng.choice(tparas[1:] or tparas)
        qs = quote.split(". ")
        quote = ". ".join(qs[: rng.randint(1, 2)])
        paras = _paragraphs(body)
        paras.insert(min(1, len(paras)), f"\u201c{quote}\u201d, a spokesperson said.")
        outlet = OUTLETS[1 + n % (len(OUTLETS) - 1)]
        d = add(
            outlet,
            f"https://{outlet}.example/own/{n}",
            _join(_headline(body, rng), paras),
            f"indep-{n}",
            "independent",
            n * 30 + 20,
        )
        text_pair(src, d, False, "independent_same_event")

    # One template, other figures: each fill is its own story; a copy of a fill is the same story.
    for t, template in enumerate(TEMPLATES):
        ids = []
        for k in range(10):
            outlet = OUTLETS[1 + (t + k) % (len(OUTLETS) - 1)]
            ids.append(
                add(
                    outlet,
                    f"https://{outlet}.example/auto/{t}-{k}",
                    _fill(template, rng),
                    f"tpl-{t}-{k}",
                    "template",
                    3000 + t * 60 + k,
                )
            )
        for k in range(len(ids) - 1):
            text_pair(ids[k], ids[k + 1], False, "template_other_figures")
            text_pair(ids[k], ids[(k + 3) % len(ids)], False, "template_other_figures")
        src_doc = ev.docs[ids[0] - 1]
        cp = add(
            "harbour-herald",
            f"https://harbour-herald.example/auto/{t}",
            src_doc.text + "\n\n" + rng.choice(SIGNOFFS[:3]),
            src_doc.story,
            "template_copy",
            3200 + t,
        )
        text_pair(ids[0], cp, True, "template_copy")

    # Short briefs of one outlet sharing its tail (must stay apart), and a brief's wire copy.
    k = 0
    for outlet, tail in TAILS.items():
        ids = []
        for _ in range(8):
            _u, body = brief_src[k % len(brief_src)]
            k += 1
            words = body.split()
            start = rng.randrange(0, max(1, len(words) - 80))
            brief = " ".join(words[start : start + rng.randint(20, 70)])
            ids.append(
                add(
                    outlet,
                    f"https://{outlet}.example/brief/{k}",
                    brief + "\n\n" + tail,
                    f"brief-{k}",
                    "brief",
                    4000 + k,
                )
            )
        for i in range(len(ids)):
            for j in (i + 1, i + 2):
                if j < len(ids):
                    text_pair(ids[i], ids[j], False, "brief_shared_tail")
        first = ev.docs[ids[0] - 1]
        body_only = first.text.rsplit("\n\n", 1)[0]
        cp = add(
            "wire-desk",
            f"https://wire-desk.example/brief/{outlet}",
            body_only,
            first.story,
            "brief_copy",
            4500 + k,
        )
        text_pair(ids[0], cp, True, "brief_copy_without_tail")

    # Two articles of one outlet (the wire desk) are different stories.
    origs = [d.id for d in ev.docs if d.kind == "original"]
    for i in range(0, len(origs) - 1, 2):
        text_pair(origs[i], origs[i + 1], False, "same_outlet_other_story")

    _url_pairs(ev, [u for u, _ in bodies], rng)
    return ev


def _with_path(url: str, change: Callable[[str], str]) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=change(parts.path)))


_VARIANTS = [
    lambda u, r: (
        u
        + ("&" if "?" in u else "?")
        + f"utm_source=twitter&utm_medium=social&utm_campaign=c{r.randint(1, 99)}"
    ),
    lambda u, r: u + ("&" if "?" in u else "?") + f"fbclid=IwAR{r.randint(10**6, 10**7)}",
    lambda u, r: u + ("&" if "?" in u else "?") + "gclid=abc&xtor=RSS-3&ref=homepage",
    lambda u, r: u + "#comments",
    lambda u, r: _with_path(u, lambda path: path.rstrip("/") + "/amp/"),
    lambda u, r: u + ("&" if "?" in u else "?") + "amp=1",
    lambda u, r: (
        u.replace("://www.", "://m.", 1) if "://www." in u else u.replace("://", "://m.", 1)
    ),
    lambda u, r: (
        u.replace("://www.", "://amp.", 1) if "://www." in u else u.replace("://", "://amp.", 1)
    ),
    lambda u, r: u.replace("https://", "http://", 1),
    lambda u, r: (
        "https://"
        + u.split("://", 1)[1].split("/", 1)[0].replace(".", "-")
        + ".cdn.ampproject.org/c/s/"
        + u.split("://", 1)[1]
    ),
]

_DIFFERENT = [
    lambda u, r: (
        u + ("&" if "?" in u else "?") + f"id={r.randint(1, 500)}",
        u + ("&" if "?" in u else "?") + f"id={r.randint(501, 999)}",
    ),
    lambda u, r: (
        u + ("&" if "?" in u else "?") + "page=2",
        u + ("&" if "?" in u else "?") + "page=3",
    ),
    lambda u, r: (
        u + ("&" if "?" in u else "?") + "p=101",
        u + ("&" if "?" in u else "?") + "p=102",
    ),
    lambda u, r: (u.rstrip("/") + "-2", u.rstrip("/") + "-3"),
    lambda u, r: (u.replace("://www.", "://sport.", 1), u.replace("://www.", "://news.", 1)),
    lambda u, r: (
        u + ("&" if "?" in u else "?") + "gallery=1",
        u + ("&" if "?" in u else "?") + "gallery=2",
    ),
    lambda u, r: (u.rstrip("/") + "/reviews/amp/one", u.rstrip("/") + "/reviews/one"),
]


def _url_pairs(ev: EvalSet, urls: list[str], rng: random.Random) -> None:
    for n, url in enumerate(urls):
        ev.url_pairs.append(Pair(url, _VARIANTS[n % len(_VARIANTS)](url, rng), True, "url_variant"))
        ev.url_pairs.append(
            Pair(url, _VARIANTS[(n + 3) % len(_VARIANTS)](url, rng), True, "url_variant")
        )
        if n % 2 == 0:
            a, b = _DIFFERENT[n % len(_DIFFERENT)](url, rng)
            if a != b:
                ev.url_pairs.append(Pair(a, b, False, "url_different_article"))
        if n + 1 < len(urls):
            ev.url_pairs.append(Pair(url, urls[n + 1], False, "url_other_article"))
        if n % 3 == 0:
            # A syndicated copy whose rel=canonical names the original: a hint, not its key.
            local = f"https://localpaper{n % 5}.example/wire/{n}"
            ev.url_pairs.append(Pair(url, local, False, "cross_site_canonical"))
