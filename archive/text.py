"""Words as every layer counts them, in every script.

Chinese and Japanese are written without spaces, so `\\w+` sees a whole sentence as one
"word" and a 1,744-character Japanese article counted 21 words. Here each Han ideograph and
each kana counts as one word, the convention of CJK word processors (and close to how
readers of those scripts measure length); Korean separates its words with spaces and is
counted like any other script. Used for `word_count`, the archiving threshold and the
promo stage's guards, so they agree.
"""

from __future__ import annotations

import re

# Han (with extensions and compatibility ideographs), hiragana, katakana (with the
# halfwidth forms and the prolonged sound mark), bopomofo.
_CJK_CHARS = (
    "\u3005\u3007\u3021-\u3029\u3038-\u303b\u3040-\u30ff\u3100-\u312f\u31a0-\u31bf\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
_TOKEN = re.compile(f"[{_CJK_CHARS}]|[^\\W{_CJK_CHARS}]+")
_HAS_CJK = re.compile(f"[{_CJK_CHARS}]")


def words(text: str) -> list[str]:
    """The words of a text: `\\w+` runs, each CJK character on its own."""
    return _TOKEN.findall(text or "")


def word_count(text: str) -> int:
    return len(words(text))


def has_cjk(text: str) -> bool:
    return bool(_HAS_CJK.search(text or ""))


# A sentence's end, closing quotes and brackets after it allowed, in Latin and CJK scripts.
_SENTENCE_END = re.compile(r"[.!?…。！？][\s»«”“\"')’\]」』]*$")


def ends_sentence(text: str) -> bool:
    return bool(_SENTENCE_END.search(text or ""))


def is_prose(text: str, link_chars: int = 0) -> bool:
    """A paragraph of running text: 15 words or more, closed like a sentence, under 30 % of it
    links. The one definition the extractor (articles vs listings) and the promo stage
    (containers, edges of the text) share."""
    return word_count(text) >= 15 and link_chars < 0.3 * max(1, len(text)) and ends_sentence(text)
