"""The search syntax, parsed in Python the way the `search_articles` macro (migration 0011)
reads it, so a saved query (an alert) is checked when the config loads, not when it first
finds nothing.

The macro accepts any text: an unclosed quote silently drops its phrase, `-x` excludes
nothing, `-paris` alone finds nothing. A user who saves such a query for months must be
told at once, so `parse_query` refuses them with what is wrong. The roles it assigns are
the macro's (same rules, same token split), and `archive.alerts` hands them to SQL that
computes words, prefixes and phrases with the macro's own expressions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from archive.search import tokens

# RE2's \s (the macro splits on it): ASCII white space only, so a no-break space stays inside a token
_SPACE = re.compile(r"[\t\n\f\r ]+")
_PHRASE = re.compile(r'"([^"]*)"')
_PHRASE_OR_OPEN = re.compile(r'"[^"]*"?')
_EDGES = re.compile(r"^[+-]+|[*]+$")


class QuerySyntaxError(ValueError):
    """A query that the search would read other than its author meant (one line)."""


@dataclass(frozen=True)
class ParsedQuery:
    text: str
    items: tuple[
        tuple[str, str], ...
    ]  # (token, role): role optional|required|excluded|prefix|phrase|op

    def words(self) -> list[str]:
        """The words a hit may contain (for snippets): not excluded ones, not prefixes."""
        out: list[str] = []
        for tok, role in self.items:
            if role in ("optional", "required", "phrase"):
                out += [w for w in tokens(_EDGES.sub("", tok)) if w not in out]
        return out


def _roles(toks: list[str]) -> list[str]:
    roles = []
    for i, x in enumerate(toks):
        before = toks[i - 1] if i > 0 else ""
        after = toks[i + 1] if i + 1 < len(toks) else ""
        if x in ("AND", "OR"):
            roles.append("op")
        elif x.startswith("-") and len(x) > 1:
            roles.append("excluded")
        elif x.endswith("*") and len(x) > 1:
            roles.append("prefix")
        elif x.startswith("+") or "AND" in (before, after):
            roles.append("required")
        else:
            roles.append("optional")
    return roles


def parse_query(query: str) -> ParsedQuery:
    """The query's tokens and their roles; QuerySyntaxError when it cannot mean what it says."""
    if not isinstance(query, str) or not query.strip():
        raise QuerySyntaxError("empty query")
    if query.count('"') % 2:
        raise QuerySyntaxError('unclosed quote: a "phrase" needs its closing "')
    phrases = _PHRASE.findall(query)
    toks = [t for t in _SPACE.split(_PHRASE_OR_OPEN.sub(" ", query)) if t]
    roles = _roles(toks)
    for i, (tok, role) in enumerate(zip(toks, roles, strict=True)):
        if role == "op" and (i == 0 or i == len(toks) - 1 or roles[i - 1] == "op"):
            raise QuerySyntaxError(f"{tok!r} needs a word on each side")
        if role in ("excluded", "required") and not tokens(_EDGES.sub("", tok)):
            raise QuerySyntaxError(
                f"{tok!r}: no word of 2 to 40 letters or digits after {tok[0]!r}"
            )
        if role == "prefix" and not re.sub(r"[^\w]|_", "", tok):
            raise QuerySyntaxError(f"{tok!r}: a prefix needs letters or digits before '*'")
        if tok in ("+", "-", "*"):
            raise QuerySyntaxError(f"{tok!r} alone is not a word")
    for phrase in phrases:
        if not tokens(phrase):
            raise QuerySyntaxError(
                f'"{phrase}": a phrase needs a word of 2 to 40 letters or digits'
            )
    items = [*zip(toks, roles, strict=True), *((p, "phrase") for p in phrases)]
    positive = any(
        role == "prefix"
        or (role in ("optional", "required", "phrase") and tokens(_EDGES.sub("", tok)))
        for tok, role in items
    )
    if not positive:
        raise QuerySyntaxError(
            'finds nothing: it needs a word, a "phrase" or a prefix* (exclusions only narrow)'
        )
    return ParsedQuery(query, tuple(items))
