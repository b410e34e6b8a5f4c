"""Text fingerprints for dedup: an exact content hash and MinHash LSH band hashes.

Both work on the cleaned, promo-stripped text, normalised to lower-case word tokens, so
that typography (quotes, dashes, spacing, Unicode forms) never makes two copies differ,
and an outlet's subscription tail never makes two different briefs look alike.

Everything is deterministic across processes and machines: fixed MinHash seed, and a
keyed hash (blake2b) instead of Python's salted ``hash()`` for the bands.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import types
import unicodedata
from collections.abc import Iterable

import numpy as np


def _import_minhash() -> type:
    """datasketch's MinHash, without running the package's __init__: that imports every
    sketch of the library and, for MinHashLSH's parameter search, scipy (56 MB of RSS and
    0.4 s in each process that cleans pages). The stand-in package and the modules loaded
    under it leave sys.modules at once, so a later `import datasketch` loads the real,
    whole package (with its own copy of the class)."""
    if "datasketch" in sys.modules:
        from datasketch import MinHash as loaded

        return loaded
    spec = importlib.util.find_spec("datasketch")
    assert spec is not None and spec.submodule_search_locations is not None
    package = types.ModuleType("datasketch")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["datasketch"] = package
    try:
        from datasketch.minhash import MinHash as minhash
    finally:
        for name in [n for n in sys.modules if n == "datasketch" or n.startswith("datasketch.")]:
            del sys.modules[name]
    return minhash


MinHash = _import_minhash()

__all__ = [
    "BANDS",
    "NUM_PERM",
    "ROWS",
    "SHINGLE",
    "content_hash",
    "minhash_bands",
    "minhash_signature",
    "normalise_text",
    "shingles",
    "words",
]

NUM_PERM = 128
# 42 bands of 3 rows (126 of the 128 values; the last 2 are unused). LSH threshold
# (1/b)^(1/r) ~ 0.29 Jaccard, well below the 0.5 Jaccard decision: a copy cut to half
# (Jaccard ~0.5) becomes a candidate with p = 0.996, at Jaccard 0.4 with p = 0.94, while an
# unrelated text (Jaccard < 0.02) collides on some band with p < 0.0004.
BANDS = 42
ROWS = 3
SHINGLE = 5
SEED = 20240501  # fixed: band hashes stored in the archive must stay comparable forever
_BAND_KEY = b"mediawatch-lsh-v1"

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """Lower-case word tokens after NFKC; punctuation and spacing are not content."""
    return _WORD.findall(unicodedata.normalize("NFKC", text or "").casefold())


def normalise_text(text: str) -> str:
    """The canonical form hashed for exact identity: word tokens joined by one space."""
    return " ".join(words(text))


def content_hash(text: str) -> str:
    """sha256 hex of the normalised text (level 2: same text = same article within an outlet)."""
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


def shingles(text: str | list[str], k: int = SHINGLE) -> set[str]:
    """Word k-shingles; a text shorter than k words is one shingle of all its words."""
    toks = words(text) if isinstance(text, str) else text
    if not toks:
        return set()
    if len(toks) < k:
        return {" ".join(toks)}
    return {" ".join(toks[i : i + k]) for i in range(len(toks) - k + 1)}


def _signature_of(items: Iterable[str]) -> np.ndarray:
    m = MinHash(num_perm=NUM_PERM, seed=SEED)
    m.update_batch([s.encode("utf-8") for s in items])
    return np.asarray(m.hashvalues, dtype=np.uint64)


def minhash_signature(text: str) -> np.ndarray:
    """128 MinHash values (uint64 array) of the text's word 5-shingles; empty text -> empty."""
    sh = shingles(text)
    if not sh:
        return np.zeros(0, dtype=np.uint64)
    return _signature_of(sorted(sh))


def minhash_bands(text: str) -> list[int]:
    """One unsigned 64-bit hash per LSH band (fits UBIGINT); [] for a text without words.

    The band number is hashed in, so a single index on ``lsh_bands.hash`` finds a band
    without a composite (band, hash) lookup, and equal values in different bands never meet.
    """
    sig = minhash_signature(text)
    if sig.size == 0:
        return []
    out: list[int] = []
    for b in range(BANDS):
        chunk = sig[b * ROWS : (b + 1) * ROWS].astype("<u8").tobytes()
        digest = hashlib.blake2b(
            chunk, digest_size=8, key=_BAND_KEY, person=b.to_bytes(2, "little")
        ).digest()
        out.append(int.from_bytes(digest, "little"))
    return out
