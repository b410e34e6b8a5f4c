"""URL identity: one key per article, whatever link, AMP page or mobile host led to it.

The key is an identity, not a URL to fetch: it is always ``https``, has no ``www.``/``m.``/
``mobile.``/``amp.`` host prefix and no trailing slash, so every spelling of one article maps
to one string. The fetched URL is kept beside it (``articles.url``).

Generic normalisation (case, default ports, dot segments, percent-encoding, query order) is
left to courlan and w3lib. Our own code does only what no library does (AMP and mobile
unwrapping) and the parameter policy: courlan's tracker pattern is unanchored (``\\bga``,
``gl``, ``source``... also match ``gallery=2`` or ``glossary``), so using it for identity
could merge different articles. We drop a closed list of known trackers and keep all else:
an unknown tracker left in only makes a second URL for the same text, which the exact
content hash (level 2) then aliases; a meaningful parameter dropped would merge two
articles for good.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit

import tldextract
from courlan import normalize_url
from w3lib.url import canonicalize_url

__all__ = ["article_key", "canonical_url", "registrable_domain", "same_site", "url_variants"]

# Exact parameter names (compared lower-case) that only say where a click came from.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "ttclid",
        "igshid",
        "igsh",
        "li_fat_id",
        "mc_cid",
        "mc_eid",
        "xtor",
        "xtref",
        "ref",
        "ref_src",
        "ref_url",
        "referer",
        "referrer",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "__twitter_impression",
        "cmpid",
        "cmp",
        "ncid",
        "ocid",
        "smid",
        "smtyp",
        "soc_src",
        "soc_trk",
        "s_cid",
        "icid",
        "intcmp",
        "spm",
        "ito",
        "wt.mc_id",
        "cid_source",
        "sr_share",
        "usqp",
        "amp_js_v",
        "amp_gsa",
        "__amp_source_origin",
        "amp",
    }
)
# Prefixes of tracker families (utm_source, utm_medium, at_campaign, pk_kwd...).
TRACKING_PREFIXES = ("utm_", "mtm_", "pk_", "matomo_", "hsa_", "at_", "oly_", "vero_", "ga_")
# Parameters that only select the AMP rendering when they carry this value.
_AMP_VALUED = frozenset({"outputtype", "output", "format", "view"})

# Host labels that name a rendering of the same site, not another site.
_VARIANT_LABELS = frozenset({"www", "m", "mobile", "amp"})

_AMP_SUFFIX = re.compile(r"\.amp(?=(\.html?)?$)", re.IGNORECASE)

# Bundled public suffix snapshot only: the crawler must not fetch the list over the network.
_EXTRACT = tldextract.TLDExtract(
    suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True
)


def _is_tracking(name: str, value: str) -> bool:
    low = name.lower()
    if low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES):
        return True
    return low in _AMP_VALUED and value.lower() == "amp"


def _unwrap_amp_cache(url: str) -> str:
    """Google AMP cache and viewer URLs carry the publisher URL in their path."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    path = parts.path
    if host.endswith(".cdn.ampproject.org"):
        # /c/s/www.example.com/a  (s = https), /v/s/..., /i/s/... ; /c/www.example.com/a = http
        m = re.match(r"^/[cvi]/(s/)?(.+)$", path)
        if m:
            scheme = "https" if m.group(1) else "http"
            return f"{scheme}://{m.group(2)}" + (f"?{parts.query}" if parts.query else "")
    if host in ("www.google.com", "google.com") and path.startswith("/amp/"):
        rest = path[len("/amp/") :]
        scheme = "http"
        if rest.startswith("s/"):
            scheme, rest = "https", rest[2:]
        if rest:
            return f"{scheme}://{unquote(rest)}" + (f"?{parts.query}" if parts.query else "")
    return url


def _strip_host(host: str) -> str:
    """Drop www./m./mobile./amp. labels, but only from the subdomain (m.com stays m.com)."""
    ext = _EXTRACT(host)
    if not ext.suffix or not ext.domain:
        return host  # IP address, localhost: nothing to unwrap
    labels = ext.subdomain.split(".") if ext.subdomain else []
    while labels and labels[0] in _VARIANT_LABELS:
        labels.pop(0)
    return ".".join([*labels, ext.domain, ext.suffix])


def _strip_amp_path(path: str) -> str:
    """AMP spellings of a path: /a/b/amp, /amp/a/b, /a/b.amp, /a/b.amp.html.

    Only a whole first or last ``amp`` segment is removed: a middle ``amp`` can be a real
    section (guitar amps), and a missed variant is still caught by the content hash.
    """
    segs = path.split("/")
    # path "/amp/a/" -> ["", "amp", "a", ""]
    while len(segs) > 2 and segs[-1] == "":
        segs.pop()
    if len(segs) > 2 and segs[-1].lower() == "amp":
        segs.pop()
    if len(segs) > 2 and segs[1].lower() == "amp":
        segs.pop(1)
    path = "/".join(segs) or "/"
    return _AMP_SUFFIX.sub("", path)


def canonical_url(url: str) -> str:
    """The identity key of a URL: trackers, fragment, AMP, mobile host and www. removed.

    Idempotent. Non-http(s) input is returned stripped, unchanged otherwise.
    """
    url = url.strip()
    if not re.match(r"^https?://", url, re.IGNORECASE):
        return url
    url = _unwrap_amp_cache(url)
    parts = urlsplit(url)
    if not parts.hostname:
        return url
    # courlan: lower-case scheme and host, default port, dot segments, punycode, path quoting.
    base = normalize_url(
        urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", "")),
        strict=True,
        trailing_slash=False,
    )
    b = urlsplit(base)
    host = _strip_host(b.hostname or "")
    netloc = host if b.port is None else f"{host}:{b.port}"
    path = _strip_amp_path(b.path or "/")
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    kept = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k, v)
    ]
    query = urlencode(kept)
    # w3lib: one percent-encoding and a sorted query, the same for every spelling.
    return canonicalize_url(urlunsplit(("https", netloc, path, query, "")))


@lru_cache(maxsize=65536)
def registrable_domain(url_or_host: str) -> str:
    """The registrable domain (eTLD+1, private suffixes included) of a URL or host."""
    host = urlsplit(url_or_host).hostname if "://" in url_or_host else url_or_host
    host = (host or "").lower().rstrip(".")
    ext = _EXTRACT(host)
    if ext.suffix and ext.domain:
        return f"{ext.domain}.{ext.suffix}"
    return host


def same_site(a: str, b: str) -> bool:
    """True when two URLs (or hosts) belong to one registrable domain (amp.x.com ~ www.x.com)."""
    da, db = registrable_domain(a), registrable_domain(b)
    return bool(da) and da == db


def _usable(candidate: str | None, fetched: str) -> str | None:
    if not candidate or not candidate.strip():
        return None
    absolute = urljoin(fetched, candidate.strip())
    if not re.match(r"^https?://", absolute, re.IGNORECASE) or not urlsplit(absolute).hostname:
        return None
    return absolute


def _is_root(url: str) -> bool:
    p = urlsplit(url)
    return p.path in ("", "/") and not p.query


def article_key(
    fetched_url: str, canonical: str | None, og_url: str | None
) -> tuple[str, str | None]:
    """(identity key, cross-site canonical hint or None) for a fetched article page.

    A same-site ``rel=canonical`` (else a same-site ``og:url``) is the key: the outlet says
    which URL the page is. A canonical on another site (syndicated wire copy) is only a
    hint: taking it as identity would fold the copy into the original outlet's article. A
    canonical pointing at the site root while the page is deeper is a known CMS bug that
    would merge every article into one, so it is ignored.
    """
    key = canonical_url(fetched_url)
    hint: str | None = None
    for declared in (canonical, og_url):
        absolute = _usable(declared, fetched_url)
        if absolute is None:
            continue
        if not same_site(absolute, fetched_url):
            if hint is None:
                hint = canonical_url(absolute)
            continue
        if _is_root(absolute) and not _is_root(fetched_url):
            continue
        return canonical_url(absolute), hint
    return key, hint


def url_variants(
    fetched_url: str,
    redirect_urls: tuple[str, ...] | list[str] = (),
    canonical: str | None = None,
    og_url: str | None = None,
) -> list[tuple[str, str]]:
    """Every same-site URL the page was seen under, as (key, kind), key first, no repeats.

    Kinds: ``key``, ``fetched``, ``redirect``, ``canonical``, ``og_url``. The ingest stores
    them in ``article_urls`` so a later link to any of them is known without fetching.
    Cross-site URLs are left out: they name another outlet's article.
    """
    key, _hint = article_key(fetched_url, canonical, og_url)
    out: list[tuple[str, str]] = [(key, "key")]
    seen = {key}
    candidates: list[tuple[str | None, str]] = [(fetched_url, "fetched")]
    candidates += [(u, "redirect") for u in redirect_urls]
    candidates += [(canonical, "canonical"), (og_url, "og_url")]
    for raw, kind in candidates:
        absolute = _usable(raw, fetched_url)
        if absolute is None or not same_site(absolute, fetched_url):
            continue
        if kind in ("canonical", "og_url") and _is_root(absolute) and not _is_root(fetched_url):
            continue
        variant = canonical_url(absolute)
        if variant not in seen:
            seen.add(variant)
            out.append((variant, kind))
    return out
