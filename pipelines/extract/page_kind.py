"""What a page is: article, listing, bot challenge, empty or not HTML."""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import urlsplit

from lxml import etree
from lxml.html import HtmlElement
from trafilatura.utils import load_html

from archive.records import Block
from archive.text import is_prose, word_count
from pipelines.extract.common import _clean

_HTMLISH = re.compile(
    r"<\s*(?:!doctype|html|head|body|meta|title|div|p|article|span|a|table|script)\b", re.I
)


_BINARY_MAGIC = (b"%PDF", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"PK\x03\x04", b"\x1f\x8b", b"RIFF", b"OggS", b"ID3")  # fmt: skip


# Bot-challenge / interstitial markers. STRONG ones are vendor fingerprints; they only count
# when the page also has little visible text, because e.g. Cloudflare injects its
# challenge-platform script into ordinary article pages too.
_CHALLENGE_STRONG = re.compile(
    r"cf-browser-verification|cf_chl_opt|cf-challenge|challenge-platform|cf-turnstile"
    r"|_Incapsula_Resource|incapsula incident|px-captcha|perimeterx|captcha-delivery\.com"
    r"|geo\.captcha-delivery|datadome|g-recaptcha|h-captcha|hcaptcha\.com|recaptcha/api"
    r"|sucuri website firewall|ddos-guard|awswaf|aws-waf-token|__cf_chl",
    re.I,
)


_CHALLENGE_TEXT = re.compile(
    r"just a moment|checking your browser|checking if the site connection is secure"
    r"|verify(?:ing)? (?:that )?you are (?:a )?human|are you a robot|not a robot|captcha"
    r"|enable javascript|javascript (?:is )?(?:required|disabled)|please turn javascript on"
    r"|enable cookies|cookies (?:are )?(?:required|disabled)|attention required"
    r"|access denied|pardon our interruption|request unsuccessful|ddos protection"
    r"|unusual traffic|security check|one more step|bot protection|press (?:and|&) hold"
    r"|activez javascript|javascript activ|veuillez activer|vérifi\w* que vous (?:êtes|n'êtes)"
    r"|bitte aktivieren sie javascript|javascript aktivieren|sie sind kein roboter"
    r"|habilita javascript|activa javascript|no eres un robot"
    r"|before you continue|avant de continuer|bevor sie fortfahren|antes de continuar"
    r"|accept(?:ez)? (?:all )?cookies to continue|we value your privacy|consent to the use of cookies"
    r"|accepter les cookies|tout accepter|alle akzeptieren|aceptar todo|accept all",
    re.I,
)


_CHALLENGE_TITLE = re.compile(
    # the whole title (or the part before a " | Site" suffix) ...
    r"^\s*(?:(?:just a moment|attention required|access denied|security check|captcha"
    r"|one moment, please|please wait|ddos-guard|are you a robot|pardon our interruption"
    r"|un instant|un moment|bitte warten|verifying|we value your privacy|consent)"
    r"[\s.…!?,]*(?:$|[|–—:-])"
    # ... or an interstitial's typical opening words
    r"|before you continue|avant de continuer|bevor sie fortfahren|antes de continuar"
    r"|please wait while|un moment,? s)",
    re.I,
)


def _looks_binary(data: bytes | str) -> bool:
    sample = data[:4096]
    if isinstance(sample, bytes):
        if sample.startswith(_BINARY_MAGIC):
            return True
        try:
            text = sample.decode("utf-8")
        except UnicodeDecodeError:
            text = sample.decode("latin-1")
    else:
        text = sample
    if not text:  # a stray NUL is no proof of binary: the share of control characters decides
        return False
    bad = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\t\n\r\f") or ch == "\ufffd")
    return bad / len(text) > 0.1


_SPACES = re.compile(r"\s+")


_LISTING_SEGMENT = re.compile(r"^[a-z][a-z_]*(?:-[a-z_]+){0,2}$|^page$|^\d{1,3}$", re.I)


class PageStats:
    """What the page-kind checks read of the whole page: its visible body text and chars,
    its <title>; the link figures (chars inside links, number of links) only when asked,
    since only the listing check, after the prose check, reads them (half a ms a page).

    The exact visible text (an XPath over every text node) is only computed for short
    pages, the only ones the challenge check reads; long pages get a C-speed estimate.
    """

    def __init__(self, tree: HtmlElement) -> None:
        body = tree.find(".//body")
        self.root = body if body is not None else tree
        root = self.root
        total = " ".join((etree.tostring(root, method="text", encoding="unicode") or "").split())
        hidden = sum(len(el.text or "") for el in root.iter("script", "style", "template"))
        self.n_chars = max(len(total) - hidden, 0)
        self.visible = ""
        if self.n_chars < 8000:
            texts = root.xpath(
                ".//text()[not(ancestor::script) and not(ancestor::style) and not(ancestor::template)]"
            )
            self.visible = _SPACES.sub(" ", " ".join(texts)).strip()
            self.n_chars = len(self.visible)
        t = tree.find(".//title")
        self.title = (_clean(t.text_content()) if t is not None else "") or ""

    @functools.cached_property
    def n_anchors(self) -> int:
        return int(self.root.xpath("count(.//a[@href])"))

    @functools.cached_property
    def link_chars(self) -> int:
        return len(" ".join(" ".join(self.root.xpath(".//a[@href]//text()")).split()))


_TEASERS = etree.XPath(
    "count(//h2[.//a[@href]]|//h3[.//a[@href]]|//h4[.//a[@href]]"
    "|//a[@href][.//h2 or .//h3 or .//h4])"
)


def _teasers(tree: HtmlElement) -> int:
    """Headlines that are links: a river of teasers is what makes a section page."""
    return int(_TEASERS(tree))


def _listing_url(url: str) -> bool:
    """Home, section or pagination URL: short word-only path segments, no id, no date."""
    try:
        path = urlsplit(url or "").path
    except ValueError:
        return False
    segments = [s for s in path.split("/") if s]
    if not segments:
        return True
    return len(segments) <= 3 and all(_LISTING_SEGMENT.match(s) for s in segments)


def classify_page(
    html: str,
    tree: HtmlElement | None = None,
    blocks: list[Block] | None = None,
    md: dict[str, Any] | None = None,
    url: str = "",
    _stats: PageStats | None = None,
) -> str:
    """article | listing | empty | challenge | not_html: why a fetched page might not be
    an article, from the raw page and (when given) the extracted blocks and metadata.

    Listing needs no article markup (JSON-LD article, og:type article, published_time)
    and either link-dominated extracted text, listing markup, or a link-heavy page with
    little text and a river of linked headlines (fewer needed on a section-like URL):
    a short article on a busy portal or blog stays an article.
    """
    if not html or not html.strip():
        return "empty"
    if _looks_binary(html) or not _HTMLISH.search(html[:20000]):
        return "not_html"
    if tree is None:
        try:
            tree = load_html(html)
        except Exception:
            tree = None
        if tree is None:
            return "not_html"
    stats = _stats or PageStats(tree)
    n_chars = stats.n_chars
    if n_chars < 8000 and _is_challenge(html, stats.visible, stats.title, blocks):
        return "challenge"
    if blocks is None:
        return "article" if n_chars else "empty"
    words = sum(word_count(b["text"]) for b in blocks)
    if words == 0:
        return "empty"
    md = md or {}
    if _prose_words(blocks) >= ARTICLE_PROSE_WORDS:
        return "article"  # running text is what an article is, whatever the page's markup says
    if not md.get("_article_markup"):
        body_chars = sum(len(b["text"]) for b in blocks)
        body_links = sum(b["link_chars"] for b in blocks)
        link_heavy = stats.n_anchors >= 30 and n_chars > 0 and stats.link_chars / n_chars > 0.4
        if (
            (body_chars and body_links / body_chars > 0.5)
            or (md.get("_listing_markup") and words < 500)
            or (link_heavy and words < 500 and _listing_url(url) and _teasers(tree) >= 8)
            or (link_heavy and words < 150 and _teasers(tree) >= 15)
            or (md.get("_og_type") == "website" and stats.n_anchors >= 30 and words < 300)
        ):
            return "listing"
    return "article"


ARTICLE_PROSE_WORDS = 150


def _prose_words(blocks: list[Block]) -> int:
    """Words in paragraphs of running text (a listing's teasers are links; its headlines
    have no full stop)."""
    return sum(
        word_count(b["text"])
        for b in blocks
        if b["kind"] == "p" and is_prose(b["text"], b["link_chars"])
    )


def _is_challenge(
    html: str, visible: str, title: str, blocks: list[Block] | None, weak: bool = True
) -> bool:
    """Bot challenge, JavaScript or cookie wall: a short page with a vendor fingerprint or
    a challenge title; with ``weak``, also challenge wording, unless the extracted text is
    a real (short) article that merely carries a cookie banner."""
    if _CHALLENGE_TITLE.search(title):
        return True  # callers only ask for pages under 8000 visible characters
    if not visible or len(visible) > 4000:
        return False  # longer pages arrive here with visible == "" (see PageStats)
    words = word_count(visible)
    if words >= 120:
        return False
    if _CHALLENGE_STRONG.search(html[:200000]):
        return True
    if not weak or not (_CHALLENGE_TEXT.search(visible) or _CHALLENGE_TEXT.search(title)):
        return False
    if blocks is None:
        return True
    text = " ".join(b["text"] for b in blocks)
    return word_count(text) < 40 or bool(_CHALLENGE_TEXT.search(text))
