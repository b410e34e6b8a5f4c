"""The language of an article: what the page declares, checked against its text.

Pages declare their language in `<html lang>`, meta tags or JSON-LD, and templates get it
wrong (an English edition served from a German CMS says `de`). The text is the better
witness once there is enough of it, so a confident detection on the article's own text
wins over the declaration; a short text keeps the declaration. Detection is py3langid
(langid.py's model, 97 languages, shipped in the package: no download, ~0.2 ms a page).
"""

from __future__ import annotations

import functools
from typing import Any

from archive.text import word_count

MIN_WORDS = 25  # below this the text is too short to overrule a declaration
CONFIDENT = 0.95  # normalised probability a detection needs to overrule a declaration
ALONE = 0.60  # ... and to be used at all when the page declares nothing


@functools.cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect(text: str) -> tuple[str | None, float]:
    """(ISO 639-1 code, probability) of a text, from its first 2,000 characters (the
    model's cost grows with the sample; a news paragraph or two settles the language)."""
    sample = (text or "")[:2000]
    if word_count(sample) < 5:
        return None, 0.0
    lang, prob = _identifier().classify(sample)
    return str(lang), float(prob)


def decide(declared: str | None, text: str) -> str | None:
    """The article's language: the declaration unless the text confidently says otherwise."""
    detected, prob = detect(text)
    if detected is None:
        return declared
    if declared is None:
        return detected if prob >= ALONE else None
    if detected != declared and prob >= CONFIDENT and word_count(text) >= MIN_WORDS:
        return detected
    return declared
