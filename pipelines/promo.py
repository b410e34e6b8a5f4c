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
import dataclasses
import functools
import hashlib
import re
import tomllib
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archive.records import Article, Block, RemovedBlock
from archive.text import is_prose, word_count
from pipelines import promo_signals as signals

KINDS = ("subscription", "newsletter", "read_also", "donation", "app", "social", "event", "shop")
# Besides these, `credit` (photo, source and author lines): not promotions but never the
# story either, removed and recorded the same way.
CUES = ("strong", "lead", "weak", "topic", "label", "speech")
# When a block names several kinds, the more specific one wins.
_PRIORITY = (
    "newsletter",
    "donation",
    "app",
    "social",
    "event",
    "shop",
    "read_also",
    "subscription",
)
MAX_SHARE = 0.20  # never remove more than this share of an article's characters
_ALGO = "promo-3"  # bump when the algorithm changes, so RULES_VERSION changes too
DEFAULT_RULES_DIR = Path(__file__).with_name("promo_rules")


class PromoRuleError(ValueError):
    """A rule file is invalid; the message names the file and the entry."""


# ---------------------------------------------------------------- normalisation

_QUOTE_SPANS = re.compile(r"«[^»]{0,400}»|“[^”]{0,400}”|„[^“”]{0,400}[“”]|\"[^\"]{0,400}\"")
_WS = re.compile(r"\s+")


def _norm(text: str) -> str:
    """Lower-case, accent-blind, one kind of apostrophe and dash, single spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.replace("’", "'").replace("‘", "'").replace("ʼ", "'").replace("\u00a0", " ")
    text = text.replace("‐", "-").replace("‑", "-")
    return _WS.sub(" ", text.casefold()).strip()


def _squash(text: str) -> str:
    """Text without any whitespace: containment that survives re-flowed markup."""
    return _WS.sub("", unicodedata.normalize("NFKC", text))


def paragraph_hash(text: str) -> str:
    """Hash of a paragraph's normalised words (digits folded), for boilerplate learning.

    Digits become 0 so "offer ends 12 May" and "offer ends 19 May" count as one block.
    """
    norm = re.sub(r"\d", "0", _norm(text))
    norm = re.sub(r"[^\w\s]", "", norm)
    norm = _WS.sub(" ", norm).strip()
    return hashlib.sha1(norm.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------- rule loading

_WILD = r"(?:\S+[\s\-]+){0,3}"
_SEP = r"[\s\-]+"
# Inflectional endings a literal word may carry (gender, number, case in the Romance and
# Germanic languages): rules are written in one form, pages use the others.
_INFLECTION = r"(?:e|s|es|en|n|er)?"
_NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def _phrase_regex(phrase: str, inflect: bool = False) -> tuple[str, bool, str]:
    """Literal phrase to (first word or stem, is_stem, regex): words separated by space or
    hyphen, "*" alone = up to 3 words, "stem*" = any ending. The regex is tried only where
    the text has that first word, which keeps hundreds of phrases cheap."""
    tokens = [t for t in re.split(r"[\s\-]+", _norm(phrase)) if t]
    if not tokens:
        raise ValueError("empty phrase")
    if tokens[0] == "*" or tokens[-1] == "*":
        raise ValueError("a phrase cannot start or end with a '*' word gap")
    first = re.match(r"\w+", tokens[0])
    if first is None:
        raise ValueError("a phrase must start with a letter or digit")
    out = ""
    for i, tok in enumerate(tokens):
        last = i == len(tokens) - 1
        if tok == "*":
            out += _WILD
            continue
        if tok.endswith("*") and len(tok) > 1 and "*" not in tok[:-1]:
            out += re.escape(tok[:-1]) + r"\w*"
        elif "*" in tok:
            raise ValueError("'*' only as a word gap or at the end of a word")
        elif inflect and len(tok) >= 4 and tok[-1].isalpha():
            out += re.escape(tok) + _INFLECTION  # "réservé aux abonnés" finds "réservée aux abonnés"
        else:
            out += re.escape(tok)
        if not last:
            out += _SEP
    tail = r"(?!\w)" if re.search(r"\w$", tokens[-1]) else ""
    inflected = inflect and len(tokens[0]) >= 4 and tokens[0][-1].isalpha() and first.group(0) == tokens[0]
    is_stem = (tokens[0].endswith("*") and first.group(0) == tokens[0][:-1]) or inflected
    return first.group(0), is_stem, out + tail


_Hit = tuple[str, str, str, int]  # (rule id, kind, matched words, end offset)


@dataclass(frozen=True)
class _Rule:
    id: str
    kind: str
    cue: str
    lang: str
    phrases: tuple[tuple[str, bool, str], ...]
    raw: tuple[str, ...]


_Entry = tuple[re.Pattern[str], str, str, str, str]  # (regex, rule id, kind, lang, cue)


@dataclass
class _Index:
    """Every phrase of every rule, indexed by its first word (or stem): a text is scanned
    once, and a phrase regex is only tried where its first word occurs."""

    exact: dict[str, list[_Entry]] = field(default_factory=dict)
    stems: dict[str, list[_Entry]] = field(default_factory=dict)
    stem_lengths: tuple[int, ...] = ()
    raw: list[_Entry] = field(default_factory=list)

    def add(self, rule: _Rule) -> None:
        for key, is_stem, rx in rule.phrases:
            entry = (re.compile(rx), rule.id, rule.kind, rule.lang, rule.cue)
            (self.stems if is_stem else self.exact).setdefault(key, []).append(entry)
        for rx in rule.raw:
            self.raw.append((re.compile(rx), rule.id, rule.kind, rule.lang, rule.cue))
        self.stem_lengths = tuple(sorted({len(k) for k in self.stems}))

    def scan(
        self, text: str, keys: set[tuple[str, str]], first_only: set[str]
    ) -> dict[str, list[_Hit]]:
        """Matches by cue; cues in `first_only` are only tried at the first word."""
        out: dict[str, list[_Hit]] = {}
        for n, w in enumerate(_WORDS.finditer(text)):
            word, pos = w.group(0), w.start()
            cands = list(self.exact.get(word, ()))
            for k in self.stem_lengths:
                if k > len(word):
                    break
                cands += self.stems.get(word[:k], ())
            for rx, rid, kind, lang, cue in cands:
                if (lang, cue) not in keys or (n and cue in first_only):
                    continue
                m = rx.match(text, pos)
                if m:
                    out.setdefault(cue, []).append((rid, kind, m.group(0), m.end()))
        for rx, rid, kind, lang, cue in self.raw:
            if (lang, cue) in keys and cue not in first_only:
                for m in rx.finditer(text):
                    out.setdefault(cue, []).append((rid, kind, m.group(0), m.end()))
        return out


_WORDS = re.compile(r"\w+")


@dataclass(frozen=True)
class _Box:
    id: str
    kind: str  # a KIND or "auto"
    names: tuple[tuple[str, ...], ...]
    # A gate name (paywall, piano, premium...) marks where gated article text sits: metered
    # sites put it on the body or on every paragraph, so only blocks that are themselves
    # promotional are removed from such a box; the rest is the article, paywalled.
    gate: bool = False


@dataclass(frozen=True)
class PromoRules:
    """Compiled rules, one matcher per (language, cue)."""

    version: str
    languages: frozenset[str]
    index: _Index
    boxes: tuple[_Box, ...]
    keep: tuple[tuple[str, ...], ...]
    rules: tuple[_Rule, ...] = field(default=())
    box_index: Mapping[str, list[tuple[tuple[str, ...], _Box | None]]] = field(default_factory=dict)
    # Element attributes -> box match, memoised: a page repeats its class names, and so do an
    # outlet's pages; splitting and matching them was a third of the stripping's CPU.
    name_cache: dict[tuple[tuple[str, str], ...], tuple[_Box, str] | None] = field(
        default_factory=dict, compare=False, repr=False)

    def scan(
        self, text: str, lang: str | None, cues: Iterable[str] = CUES
    ) -> dict[str, list[_Hit]]:
        """Matches by cue in normalised `text`; lead cues only at the first word."""
        keys = {key for cue in cues for key in self._keys(cue, lang)}
        return self.index.scan(text, keys, {"lead"})

    def hits(self, cue: str, text: str, lang: str | None) -> list[tuple[str, str]]:
        """(rule id, kind) of every match of `cue` rules in normalised `text`."""
        return [(h[0], h[1]) for h in self.scan(text, lang, (cue,)).get(cue, [])]

    def _keys(self, cue: str, lang: str | None) -> list[tuple[str, str]]:
        # Strong and lead cues are multi-word self-promotions: safe in any language (a page's
        # language may be wrong). Weak, topic and label words are only used in their language.
        if cue in ("strong", "lead") or lang not in self.languages:
            return [(code, cue) for code in sorted(self.languages | {"*"})]
        return [(lang, cue), ("*", cue)]


def _fail(path: Path, where: str, msg: str) -> PromoRuleError:
    return PromoRuleError(f"{path.name}: {where}: {msg}")


def _load_phrase_file(path: Path, data: dict[str, Any]) -> list[_Rule]:
    unknown = set(data) - {"language", "rule"}
    if unknown:
        raise _fail(path, "top level", f"unknown keys {sorted(unknown)}")
    lang = data.get("language")
    if not isinstance(lang, str) or not (lang == "*" or re.fullmatch(r"[a-z]{2}", lang)):
        raise _fail(path, "top level", f"'language' must be a 2-letter code or '*', got {lang!r}")
    entries = data.get("rule", [])
    if not isinstance(entries, list) or not entries:
        raise _fail(path, "top level", "needs at least one [[rule]] table")
    rules: list[_Rule] = []
    for i, entry in enumerate(entries, 1):
        where = f"rule #{i}"
        if not isinstance(entry, dict):
            raise _fail(path, where, "must be a table")
        if isinstance(entry.get("id"), str):
            where = f"rule {entry['id']!r}"
        bad = set(entry) - {"id", "kind", "cue", "phrases", "regex", "note"}
        if bad:
            raise _fail(path, where, f"unknown keys {sorted(bad)}")
        rid = entry.get("id")
        if not isinstance(rid, str) or not rid:
            raise _fail(path, where, "'id' must be a non-empty string")
        if entry.get("kind") not in KINDS:
            raise _fail(
                path, where, f"'kind' must be one of {list(KINDS)}, got {entry.get('kind')!r}"
            )
        if entry.get("cue") not in CUES:
            raise _fail(path, where, f"'cue' must be one of {list(CUES)}, got {entry.get('cue')!r}")
        phrases = entry.get("phrases", [])
        regexes = entry.get("regex", [])
        if (
            not isinstance(phrases, list)
            or not isinstance(regexes, list)
            or not (phrases or regexes)
        ):
            raise _fail(path, where, "needs a non-empty 'phrases' or 'regex' list")
        parts: list[tuple[str, bool, str]] = []
        raws: list[str] = []
        for ph in phrases:
            if not isinstance(ph, str) or not ph.strip():
                raise _fail(path, where, f"phrase {ph!r} must be a non-empty string")
            try:
                parts.append(_phrase_regex(ph, inflect=entry.get("cue") in ("strong", "lead")))
            except ValueError as exc:
                raise _fail(path, where, f"phrase {ph!r}: {exc}") from exc
        for rx in regexes:
            if not isinstance(rx, str) or not rx:
                raise _fail(path, where, f"regex {rx!r} must be a non-empty string")
            try:
                re.compile(rx)
            except re.error as exc:
                raise _fail(path, where, f"regex {rx!r}: {exc}") from exc
            raws.append(rx)
        rules.append(_Rule(rid, entry["kind"], entry["cue"], lang, tuple(parts), tuple(raws)))
    return rules


def _load_markup_file(path: Path, data: dict[str, Any]) -> tuple[list[_Box], list[tuple[str, ...]]]:
    unknown = set(data) - {"language", "box", "keep"}
    if unknown:
        raise _fail(path, "top level", f"unknown keys {sorted(unknown)}")

    def names_of(values: Any, where: str) -> tuple[tuple[str, ...], ...]:
        if not isinstance(values, list) or not values:
            raise _fail(path, where, "needs a non-empty list of names")
        out = []
        for name in values:
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise _fail(path, where, f"name {name!r} must be lower-case words joined by '-'")
            out.append(tuple(name.split("-")))
        return tuple(out)

    keep = list(names_of(data.get("keep", ["summary"]), "keep"))
    boxes = []
    entries = data.get("box", [])
    if not isinstance(entries, list) or not entries:
        raise _fail(path, "top level", "needs at least one [[box]] table")
    for i, entry in enumerate(entries, 1):
        where = f"box #{i}"
        if not isinstance(entry, dict):
            raise _fail(path, where, "must be a table")
        if isinstance(entry.get("id"), str):
            where = f"box {entry['id']!r}"
        bad = set(entry) - {"id", "kind", "names", "note", "gate"}
        if bad:
            raise _fail(path, where, f"unknown keys {sorted(bad)}")
        if not isinstance(entry.get("id"), str) or not entry["id"]:
            raise _fail(path, where, "'id' must be a non-empty string")
        if entry.get("kind") not in (*KINDS, "auto"):
            raise _fail(
                path, where, f"'kind' must be one of {[*KINDS, 'auto']}, got {entry.get('kind')!r}"
            )
        if not isinstance(entry.get("gate", False), bool):
            raise _fail(path, where, "'gate' must be true or false")
        boxes.append(_Box(entry["id"], entry["kind"], names_of(entry.get("names"), where),
                          entry.get("gate", False)))
    return boxes, keep


def _files(path: Path) -> list[Path]:
    files = sorted(path.glob("*.toml")) if path.is_dir() else [path]
    if not files:
        raise PromoRuleError(f"{path}: no rule files (*.toml)")
    return files


def _version(files: Iterable[Path]) -> str:
    h = hashlib.sha256(_ALGO.encode())
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def _load(path: Path) -> PromoRules:
    files = _files(path)
    rules: list[_Rule] = []
    boxes: list[_Box] = []
    keep: list[tuple[str, ...]] = []
    seen: dict[str, str] = {}
    for f in files:
        try:
            data = tomllib.loads(f.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise PromoRuleError(f"{f.name}: not valid TOML: {exc}") from exc
        if data.get("language") == "markup":
            b, k = _load_markup_file(f, data)
            boxes += b
            keep += k
        else:
            for r in _load_phrase_file(f, data):
                if r.id in seen:
                    raise PromoRuleError(f"{f.name}: rule {r.id!r}: id already defined in {seen[r.id]}")
                seen[r.id] = f.name
                rules.append(r)
    index = _Index()
    for r in rules:
        index.add(r)
    languages = frozenset(r.lang for r in rules if r.lang != "*")
    rules_ = PromoRules(_version(files), languages, index, tuple(boxes), tuple(keep), tuple(rules))
    return dataclasses.replace(rules_, box_index=_box_index(rules_))


@functools.lru_cache(maxsize=8)
def _load_cached(path: str) -> PromoRules:
    return _load(Path(path))


def load_rules(path: str | Path | None = None) -> PromoRules:
    """Load, validate and compile rule files (a directory of *.toml or one file); cached."""
    return _load_cached(str(Path(path or DEFAULT_RULES_DIR).resolve()))


RULES_VERSION = _version(_files(DEFAULT_RULES_DIR))


# ---------------------------------------------------------------- outlet overrides


@dataclass(frozen=True)
class OutletPromoRules:
    """Per-outlet overrides; they win over the generic rules (no topic or quote guard)."""

    selectors: tuple[tuple[str, Any], ...] = ()  # (source, compiled CSSSelector)
    patterns: tuple[re.Pattern[str], ...] = ()


def compile_outlet_rules(
    strip_selectors: Sequence[str], strip_patterns: Sequence[str]
) -> OutletPromoRules:
    """Compile an outlet's `strip_selectors` (CSS) and `strip_patterns` (regex, case-blind).

    Raises ValueError naming the bad entry, so the config loader can point at it.
    """
    from lxml.cssselect import CSSSelector, SelectorError

    selectors = []
    for sel in strip_selectors:
        if not isinstance(sel, str) or not sel.strip():
            raise ValueError(f"strip_selectors: {sel!r} is not a non-empty CSS selector")
        try:
            selectors.append((sel, CSSSelector(sel)))
        except (SelectorError, Exception) as exc:
            raise ValueError(f"strip_selectors: bad CSS selector {sel!r}: {exc}") from exc
    patterns = []
    for pat in strip_patterns:
        if not isinstance(pat, str) or not pat:
            raise ValueError(f"strip_patterns: {pat!r} is not a non-empty regular expression")
        try:
            patterns.append(re.compile(pat, re.IGNORECASE))
        except re.error as exc:
            raise ValueError(f"strip_patterns: bad regular expression {pat!r}: {exc}") from exc
    return OutletPromoRules(tuple(selectors), tuple(patterns))


# ---------------------------------------------------------------- markup boxes

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_TOKEN_SPLIT = re.compile(r"[\s\-_.:/]+")


def _token_lists(value: str) -> list[list[str]]:
    """One token list per class (or word group) of an attribute value."""
    out = []
    for part in value.split():
        toks = [t.lower() for t in _TOKEN_SPLIT.split(_CAMEL.sub("-", part)) if t]
        if toks:
            out.append(toks)
    return out


def _element_names(el: Any) -> list[list[str]]:
    lists: list[list[str]] = []
    for attr, value in el.attrib.items():
        attr = str(attr).lower()
        value = str(value)
        if attr in ("class", "id"):
            lists += _token_lists(value)
        elif attr in ("aria-label", "role"):
            words = [t for t in _TOKEN_SPLIT.split(_norm(value)) if t]
            if words:
                lists.append(words)
                lists.append(["-".join(words)])
                lists.append(["".join(words)])
        elif attr.startswith("data-"):
            lists += _token_lists(attr[5:])
            if len(value) <= 60:
                lists += _token_lists(value)
    return lists


def _parse(html: str) -> Any:
    """Parse for markup checks; None when the page cannot be parsed (text rules still run)."""
    import lxml.html

    try:
        return lxml.html.document_fromstring(html)
    except ValueError:  # a str with an XML encoding declaration: lxml wants bytes
        try:
            return lxml.html.document_fromstring(html.encode("utf-8", "replace"))
        except Exception:
            return None
    except Exception:
        return None


@dataclass
class _FoundBox:
    text: str  # squashed
    kind: str
    rule: str
    gate: bool = False


def _box_index(rules: PromoRules) -> dict[str, list[tuple[tuple[str, ...], _Box | None]]]:
    """First token -> (name, box); box None = a "keep" name (editorial box)."""
    index: dict[str, list[tuple[tuple[str, ...], _Box | None]]] = {}
    for name in rules.keep:
        index.setdefault(name[0], []).append((name, None))
    for box in rules.boxes:
        for name in box.names:
            index.setdefault(name[0], []).append((name, box))
    return index


def _match_box(
    lists: list[list[str]], index: Mapping[str, list[tuple[tuple[str, ...], _Box | None]]]
) -> tuple[_Box, str] | None:
    found: tuple[_Box, str] | None = None
    gate: tuple[_Box, str] | None = None
    editorial = False
    for toks in lists:
        for i, tok in enumerate(toks):
            for name, box in index.get(tok, ()):
                if tuple(toks[i : i + len(name)]) != name:
                    continue
                if box is None:
                    editorial = True
                elif box.gate and gate is None:
                    gate = (box, "-".join(name))
                elif not box.gate and found is None:
                    found = (box, "-".join(name))
    # An editorial (keep) name wins over any promo name, but not over a gate: a gated
    # article body ("article-body paywalled") is still gated.
    return gate if editorial else (found or gate)


_UNSEEN: Any = object()
_NAME_CACHE_MAX = 50_000
# Never a box: the document's frame, code, and inline elements (a pitch box holds whole
# paragraphs; skipping inline tags halves the elements whose names are matched).
_SKIP_TAGS = frozenset({
    "html", "body", "head", "script", "style", "noscript", "template", "svg", "path", "g", "use",
    "a", "span", "img", "picture", "source", "b", "i", "em", "strong", "small", "sup", "sub", "br",
    "time", "abbr", "meta", "link", "input", "label", "option", "iframe", "video", "audio", "track",
})  # fmt: skip


def _find_boxes(root: Any, rules: PromoRules, article_chars: int) -> list[_FoundBox]:
    """Elements whose names say promotion, small enough not to be the article itself."""
    index = rules.box_index
    cache = rules.name_cache
    found = []
    for el in root.iter():
        if not isinstance(el.tag, str) or el.tag in _SKIP_TAGS or not el.attrib:
            continue
        key = tuple(el.attrib.items())
        hit = cache.get(key, _UNSEEN)
        if hit is _UNSEEN:
            lists = _element_names(el)
            hit = _match_box(lists, index) if lists else None
            if len(cache) >= _NAME_CACHE_MAX:
                cache.clear()
            cache[key] = hit
        if hit is None:
            continue
        box, name = hit
        text = _squash(el.text_content())
        # A wrapper with a promo name around the whole story is the article, not a promo;
        # gate boxes are kept whatever their size, their blocks are judged one by one.
        if text and (box.gate or len(text) <= 0.5 * article_chars):
            found.append(_FoundBox(text, box.kind, f"{box.id}:{name}", box.gate))
    return found


def _contained(block: str, boxes: Sequence[_FoundBox]) -> _FoundBox | None:
    if not block:
        return None
    for box in boxes:
        if block in box.text and (len(block) >= 25 or 2 * len(block) >= len(box.text)):
            return box
    return None


# ---------------------------------------------------------------- text rules

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


def _signals(blocks: Sequence[Mapping[str, Any]], infos: Sequence[_Info],
             verdict: dict[int, tuple[str, str]]) -> None:
    """Wording-free signals (pipelines/promo_signals.py): a short block whose links go to a
    checkout, a newsletter form, an app store or a donation page; headlines after the end."""
    for i, b in enumerate(blocks):
        if i in verdict or b.get("kind") == "quote" or not b.get("links") or infos[i].speech:
            continue
        kind = signals.link_kind(b["links"])
        if kind and infos[i].words <= 30 and (kind != "social" or infos[i].words <= 12):
            verdict[i] = (kind, f"signal.link:{kind}")
    words = [info.words for info in infos]
    density = [info.density for info in infos]
    for i, b in enumerate(blocks):
        if i not in verdict and b.get("kind") != "quote" and signals.credit_line(str(b.get("text") or ""), words[i]):
            verdict[i] = ("credit", "signal.credit")
    prose = [i for i, info in enumerate(infos) if _plain_prose(blocks[i], info)]
    if prose:  # author lines before the first paragraph or after the last one
        edges = [*range(0, prose[0]), *range(prose[-1] + 1, len(blocks))]
        for i in edges:
            if i not in verdict and blocks[i].get("kind") != "quote" and signals.byline(str(blocks[i].get("text") or "")):
                verdict[i] = ("credit", "signal.byline")
    for i in signals.trailing_headlines(blocks, words, density, verdict):
        verdict[i] = ("read_also", "signal.headlines")
    for i, b in enumerate(blocks):
        if i not in verdict and b.get("kind") != "quote" and signals.link_list(str(b.get("text") or ""), density[i]):
            verdict[i] = ("read_also", "signal.link_list")
    for i, b in enumerate(blocks):
        if i not in verdict and signals.linked_headline(str(b.get("text") or ""), words[i], density[i]):
            verdict[i] = ("read_also", "signal.linked_headline")
            label = i - 1
            if label >= 0 and label not in verdict and 0 < words[label] <= 4 and density[label] < 0.5 \
                    and signals.unpunctuated(str(blocks[label].get("text") or "")):
                verdict[label] = ("read_also", "signal.label")  # "Lesen Sie auch", "Passend zum Artikel"


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
                if len(info.lead_after) <= 3 and nxt < n and nxt not in verdict and 0 < infos[nxt].words <= 30 \
                        and not infos[nxt].speech and blocks[nxt].get("kind") != "quote" \
                        and signals.headline_ending(str(blocks[nxt].get("text") or "")):
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
                (i + 1) in verdict
                and _is_label(info, text)
                and (info.label or all(j in verdict for j in range(i + 1, n)))
            ):
                verdict[i] = (verdict[i + 1][0], "run.label")
            else:
                continue
            changed = True


# ---------------------------------------------------------------- entry point


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
        prose_per_box = Counter(id(box) for i, box in in_box.items() if _plain_prose(blocks[i], infos[i]))
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
        _signals(blocks, infos, verdict)
    for i in reversed(short_repeats):
        if i not in verdict and (i + 1 in verdict or i == n - 1):
            verdict[i] = ("boilerplate", "boilerplate.outlet")

    out["paywalled"] = bool(out.get("paywalled")) or gated
    # The share guard protects the article from rules that guess; what the outlet's own
    # rules say and what its other articles repeat (learned boilerplate) is never this
    # article's own text, so it goes whatever its share.
    exempt = {i: v for i, v in verdict.items() if v[1].startswith(("outlet.", "boilerplate."))}
    guessed = {i: v for i, v in verdict.items() if i not in exempt}
    flagged = False
    if sum(len(squashed[i]) for i in guessed) > MAX_SHARE * total:
        # too much for promotions: keep only the strong text cues; box and run guesses go
        guessed = {i: v for i, v in guessed.items()
                   if infos[i].strong and not v[1].startswith(("run.", "markup.", "signal."))}
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
    removed = [RemovedBlock(position=i, kind=verdict[i][0], rule=verdict[i][1], text=blocks[i]["text"])
               for i in sorted(verdict)]
    out["blocks"] = kept
    out["text"] = "\n\n".join(b["text"] for b in kept)
    out["word_count"] = word_count(out["text"])
    out["promo_flagged"] = flagged
    return out, removed
