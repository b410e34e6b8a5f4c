"""Promo rules as data: the phrase and markup files (promo_rules/*.toml), validated on load and
compiled once, the outlet's own overrides, and the text normalisation they match on."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("subscription", "newsletter", "read_also", "donation", "app", "social", "event", "shop")


# Besides these, `credit` (photo, source and author lines, captions): not promotions but never the
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


_ALGO = "promo-5"  # bump when the algorithm changes, so RULES_VERSION changes too


DEFAULT_RULES_DIR = Path(__file__).resolve().parent.parent / "promo_rules"


class PromoRuleError(ValueError):
    """A rule file is invalid; the message names the file and the entry."""


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
            out += (
                re.escape(tok) + _INFLECTION
            )  # "réservé aux abonnés" finds "réservée aux abonnés"
        else:
            out += re.escape(tok)
        if not last:
            out += _SEP
    tail = r"(?!\w)" if re.search(r"\w$", tokens[-1]) else ""
    inflected = (
        inflect and len(tokens[0]) >= 4 and tokens[0][-1].isalpha() and first.group(0) == tokens[0]
    )
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
        default_factory=dict, compare=False, repr=False
    )

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


def _tables(
    path: Path, data: dict[str, Any], name: str, keys: set[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each [[name]] table of a rule file with where it is ("rule 'en-subscribe'"), once its
    keys are known and its id is a non-empty string."""
    entries = data.get(name, [])
    if not isinstance(entries, list) or not entries:
        raise _fail(path, "top level", f"needs at least one [[{name}]] table")
    for i, entry in enumerate(entries, 1):
        where = f"{name} #{i}"
        if not isinstance(entry, dict):
            raise _fail(path, where, "must be a table")
        if isinstance(entry.get("id"), str):
            where = f"{name} {entry['id']!r}"
        if bad := set(entry) - keys:
            raise _fail(path, where, f"unknown keys {sorted(bad)}")
        if not isinstance(entry.get("id"), str) or not entry["id"]:
            raise _fail(path, where, "'id' must be a non-empty string")
        yield where, entry


def _load_phrase_file(path: Path, data: dict[str, Any]) -> list[_Rule]:
    unknown = set(data) - {"language", "rule"}
    if unknown:
        raise _fail(path, "top level", f"unknown keys {sorted(unknown)}")
    lang = data.get("language")
    if not isinstance(lang, str) or not (lang == "*" or re.fullmatch(r"[a-z]{2}", lang)):
        raise _fail(path, "top level", f"'language' must be a 2-letter code or '*', got {lang!r}")
    rules: list[_Rule] = []
    for where, entry in _tables(
        path, data, "rule", {"id", "kind", "cue", "phrases", "regex", "note"}
    ):
        rid = entry["id"]
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
    for where, entry in _tables(path, data, "box", {"id", "kind", "names", "note", "gate"}):
        if entry.get("kind") not in (*KINDS, "auto"):
            raise _fail(
                path, where, f"'kind' must be one of {[*KINDS, 'auto']}, got {entry.get('kind')!r}"
            )
        if not isinstance(entry.get("gate", False), bool):
            raise _fail(path, where, "'gate' must be true or false")
        boxes.append(
            _Box(
                entry["id"],
                entry["kind"],
                names_of(entry.get("names"), where),
                entry.get("gate", False),
            )
        )
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
                    raise PromoRuleError(
                        f"{f.name}: rule {r.id!r}: id already defined in {seen[r.id]}"
                    )
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


def _box_index(rules: PromoRules) -> dict[str, list[tuple[tuple[str, ...], _Box | None]]]:
    """First token -> (name, box); box None = a "keep" name (editorial box)."""
    index: dict[str, list[tuple[tuple[str, ...], _Box | None]]] = {}
    for name in rules.keep:
        index.setdefault(name[0], []).append((name, None))
    for box in rules.boxes:
        for name in box.names:
            index.setdefault(name[0], []).append((name, box))
    return index
