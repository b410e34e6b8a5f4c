"""Where a link goes, as a promotion kind: the wording-free half of a call to action.

A pitch on a site we never saw still sends the reader somewhere we know: a payment or
donation platform, a newsletter service, an app store, a messenger channel; or to a page of
its own site whose address names the offer in the site's language ("/abonnement",
"/tilaa", "/berlangganan", "/spenden"). Three tables, matched case-blind:

- known hosts (the host or a parent domain), each with an optional path it needs;
- the first label of the host ("abo.example.de", "donate.example.org", "newsletter.x.com");
- words opening a segment of a short path: a call-to-action page has a short address
  ("/support-us", "/abo/angebote"); a story about donations has a long slug
  ("/donations-to-the-red-cross-hit-a-record") or a numeric id, and is not a target.

The older regular expressions of `signals._TARGETS` run first; these tables add what they
did not know, in more languages.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# host (or a parent domain) -> (kind, path prefix it needs, "" for any)
_HOSTS: dict[str, tuple[str, str]] = {
    # app stores and app deep-link services
    "apps.apple.com": ("app", ""),
    "itunes.apple.com": ("app", ""),
    "play.google.com": ("app", "/store"),
    "appgallery.huawei.com": ("app", ""),
    "galaxystore.samsung.com": ("app", ""),
    "apps.microsoft.com": ("app", ""),
    "onelink.me": ("app", ""),
    "app.link": ("app", ""),
    "page.link": ("app", ""),
    "app.adjust.com": ("app", ""),
    "app.appsflyer.com": ("app", ""),
    # newsletter services
    "substack.com": ("newsletter", ""),
    "list-manage.com": ("newsletter", ""),
    "eepurl.com": ("newsletter", ""),
    "mailchi.mp": ("newsletter", ""),
    "beehiiv.com": ("newsletter", ""),
    "buttondown.email": ("newsletter", ""),
    "buttondown.com": ("newsletter", ""),
    "ck.page": ("newsletter", ""),
    "convertkit.com": ("newsletter", ""),
    "sibforms.com": ("newsletter", ""),
    "mailerlite.com": ("newsletter", ""),
    "campaign-archive.com": ("newsletter", ""),
    "tinyletter.com": ("newsletter", ""),
    "getrevue.co": ("newsletter", ""),
    # the platforms a publisher asks its own readers to fund it on (not GoFundMe, JustGiving
    # and the like: stories link the fundraisers they report on)
    "patreon.com": ("donation", ""),
    "ko-fi.com": ("donation", ""),
    "buymeacoffee.com": ("donation", ""),
    "liberapay.com": ("donation", ""),
    "donorbox.org": ("donation", ""),
    "givebutter.com": ("donation", ""),
    "tipeee.com": ("donation", ""),
    "opencollective.com": ("donation", ""),
    "flattr.com": ("donation", ""),
    "fundraiseup.com": ("donation", ""),
    "steadyhq.com": ("donation", ""),
    "paypal.me": ("donation", ""),
    "paypal.com": ("donation", "/donate"),
    # payment and subscription back ends
    "checkout.stripe.com": ("subscription", ""),
    "buy.stripe.com": ("subscription", ""),
    "tinypass.com": ("subscription", ""),
    "piano.io": ("subscription", ""),
    "zuora.com": ("subscription", ""),
    "chargebee.com": ("subscription", ""),
    "recurly.com": ("subscription", ""),
    "laterpay.net": ("subscription", ""),
    # messenger channels and "follow us" pages (not share buttons: those carry the story)
    "chat.whatsapp.com": ("social", ""),
    "whatsapp.com": ("social", "/channel"),
    "t.me": ("social", ""),
    "telegram.me": ("social", ""),
    "invite.viber.com": ("social", ""),
    "line.me": ("social", "/r/"),
    "news.google.com": ("social", "/publications"),
}

# the first label of a host that is itself the offer ("abo.faz.net", "donate.example.org")
_HOST_LABELS: dict[str, str] = {
    **dict.fromkeys(
        ("subscribe", "subscription", "subscriptions", "abo", "abonnement", "abonnements",
         "abonnieren", "aboshop", "checkout", "join", "membership", "members", "suscripcion",
         "suscripciones", "assinatura", "assine", "abbonamenti", "abbonati", "prenumeration",
         "tilaus", "paywall", "pricing"),
        "subscription",
    ),
    **dict.fromkeys(
        ("newsletter", "newsletters", "nieuwsbrief", "infolettre", "nyhetsbrev", "nyhedsbrev",
         "uutiskirje", "boletines", "bulten"),
        "newsletter",
    ),
    **dict.fromkeys(
        ("donate", "donation", "donations", "spenden", "spende", "don", "dons",
         "doar", "donar", "dona", "steun", "soutenir", "sostieni", "wesprzyj"),
        "donation",
    ),
}  # fmt: skip

# words opening a short path segment, by kind; tried in this order (the more specific first)
_PATH_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "newsletter",
        re.compile(
            r"newsletter|nieuwsbrief|infolettre|nyhetsbrev|nyhedsbrev|uutiskirje|biuletyn"
            r"|boletin|bulten|hirlevel|e-?mail-?alert|mailing-?list|rundbrief"
        ),
    ),
    (
        "donation",
        re.compile(
            r"donat|donaz|donac|doaç|doacao|spende|spenden|unterstuetz|unterstutz|soutenez|soutenir"
            r"|sostieni|apoya|apoie|doneer|steun-?ons|wesprzyj|podpor|lahjoit|stott|stotte|stod-oss"
            r"|destek|bagis|dukung|donasi|tamogat|doneaz|donir|support-?us"
        ),
    ),
    (
        "app",
        re.compile(
            r"apps?-?download|download-?(?:the-?)?app|mobile-?apps?|aplicac|applicazion"
            r"|aplikac|uygulama"
        ),
    ),
    (
        "subscription",
        re.compile(
            r"subscri|abonn|abona|abbonam|abbonati|suscri|assin|predplat|prenumer|abone|tilaa"
            r"|tilaus|elofizet|podpisk|pretplat|narocni|berlangganan|langganan|iscriviti"
            r"|sign-?up|signup|pricing|membership|mitglied-?werden|mitgliedschaft|checkout"
            r"|paywall|premium"
        ),
    ),
)


def _slug(segment: str) -> bool:
    """An article's address part: four or more hyphen-joined words, or a long number."""
    return segment.count("-") + segment.count("_") >= 3 or bool(re.search(r"\d{5,}", segment))


def target_kind(url: str) -> str | None:
    """The promotion kind of one link target by host, host label or path words; None."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("", "http", "https"):
        return None
    host = (parts.hostname or "").lower()
    path = parts.path.lower()
    labels = host.split(".")
    for k in range(len(labels) - 1):
        entry = _HOSTS.get(".".join(labels[k:]))
        if entry and path.startswith(entry[1]):
            return entry[0]
    if len(labels) >= 3 and labels[0] in _HOST_LABELS:
        return _HOST_LABELS[labels[0]]
    segments = [s for s in path.split("/") if s]
    if len(segments) > 4 or any(_slug(seg) for seg in segments):
        return None  # an article's address (a long slug, an id, a deep path), not an offer
    for seg in segments:
        for kind, rx in _PATH_WORDS:
            if rx.match(seg):
                return kind
    return None
