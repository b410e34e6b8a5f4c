"""Run the labelled set through the real code: URL rules, pair decisions, archive clustering."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from archive import dedup
from archive.batch import content_key
from pipelines.fingerprint import content_hash, minhash_bands
from pipelines.urls import article_key, canonical_url
from tests.dedup_eval.corpus import Doc, EvalSet


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, label: bool, predicted: bool) -> None:
        if label and predicted:
            self.tp += 1
        elif label:
            self.fn += 1
        elif predicted:
            self.fp += 1
        else:
            self.tn += 1

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass
class Report:
    url: Counts = field(default_factory=Counts)
    url_by_cat: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    url_false_merges: list[tuple[str, str]] = field(default_factory=list)
    pairs: Counts = field(default_factory=Counts)
    pairs_by_cat: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    pair_errors: list[tuple[str, int | str, int | str, str]] = field(default_factory=list)
    clustered: Counts = field(default_factory=Counts)
    clustered_by_cat: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    bcubed: tuple[float, float, float] = (0.0, 0.0, 0.0)
    earliest_ok: tuple[int, int] = (0, 0)
    place_ms: float = 0.0


def url_same(a: str, b: str, category: str) -> bool:
    if category == "cross_site_canonical":
        # b is a syndicated copy whose canonical and og:url both name a.
        return article_key(b, a, a)[0] == canonical_url(a)
    return canonical_url(a) == canonical_url(b)


def evaluate_urls(ev: EvalSet, rep: Report) -> None:
    for p in ev.url_pairs:
        assert isinstance(p.a, str) and isinstance(p.b, str)
        same = url_same(p.a, p.b, p.category)
        rep.url.add(p.label, same)
        rep.url_by_cat[p.category].add(p.label, same)
        if same and not p.label:
            rep.url_false_merges.append((p.a, p.b))


def evaluate_pairs(ev: EvalSet, rep: Report, bands: dict[int, list[int]]) -> None:
    docs = {d.id: d for d in ev.docs}
    for p in ev.text_pairs:
        assert isinstance(p.a, int) and isinstance(p.b, int)
        candidate = bool(set(bands[p.a]) & set(bands[p.b]))
        sim = dedup.similarity(docs[p.a].text, docs[p.b].text)
        predicted = candidate and sim.duplicate
        rep.pairs.add(p.label, predicted)
        rep.pairs_by_cat[p.category].add(p.label, predicted)
        if predicted != p.label:
            why = sim.describe() + ("" if candidate else ", no shared band")
            rep.pair_errors.append((p.category, p.a, p.b, why))


def ingest(
    con: duckdb.DuckDBPyConnection, docs: list[Doc], bands: dict[int, list[int]], batch: int = 50
) -> tuple[dict[int, int], float]:
    """Insert docs as the ingest does (exact per outlet, else new article + place_article),
    ``batch`` documents per transaction.

    Returns doc id -> article id, and the mean milliseconds of place_article.
    """
    dedup.ensure_indexes(con)
    article_of: dict[int, int] = {}
    spent = 0.0
    placed = 0
    now = datetime(2024, 6, 1, tzinfo=UTC)
    for n, d in enumerate(docs):
        h = content_hash(d.text)
        if n % batch == 0:
            con.execute("BEGIN")
        exact = dedup.find_exact(con, d.outlet, h)
        if exact is not None:
            article_of[d.id] = exact
            dedup.record_decision(
                con, dedup.Decision(exact, exact, "exact", 1.0, f"same text under {d.url}"), now
            )
        else:
            row = con.execute(
                "INSERT INTO articles (outlet, url, canonical_url, text, content_hash, content_key, "
                "published_at, first_seen_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id",
                [
                    d.outlet,
                    d.url,
                    canonical_url(d.url),
                    d.text,
                    h,
                    content_key(h),
                    d.published_at,
                    now,
                    now,
                ],
            ).fetchone()
            assert row is not None
            article_of[d.id] = int(row[0])
            t = time.perf_counter()
            dedup.place_article(
                con,
                int(row[0]),
                outlet=d.outlet,
                text=d.text,
                bands=bands[d.id],
                published_at=d.published_at,
                now=now,
            )
            spent += time.perf_counter() - t
            placed += 1
        if n % batch == batch - 1 or n == len(docs) - 1:
            con.execute("COMMIT")
    return article_of, spent / max(placed, 1) * 1000


def evaluate_clusters(
    con: duckdb.DuckDBPyConnection, ev: EvalSet, rep: Report, bands: dict[int, list[int]]
) -> None:
    article_of, rep.place_ms = ingest(con, ev.docs, bands)
    cluster_of_article = dict(con.execute("SELECT id, cluster_id FROM articles").fetchall())
    cluster = {d.id: cluster_of_article[article_of[d.id]] for d in ev.docs}
    for p in ev.text_pairs:
        assert isinstance(p.a, int) and isinstance(p.b, int)
        same = cluster[p.a] == cluster[p.b]
        rep.clustered.add(p.label, same)
        rep.clustered_by_cat[p.category].add(p.label, same)
    # B-cubed over documents: per doc, the share of its cluster in its story and vice versa.
    story = {d.id: d.story for d in ev.docs}
    by_cluster: dict[Any, set[int]] = defaultdict(set)
    by_story: dict[str, set[int]] = defaultdict(set)
    for d in ev.docs:
        by_cluster[cluster[d.id]].add(d.id)
        by_story[d.story].add(d.id)
    prec = rec = 0.0
    for d in ev.docs:
        c, s = by_cluster[cluster[d.id]], by_story[story[d.id]]
        both = len(c & s)
        prec += both / len(c)
        rec += both / len(s)
    n = len(ev.docs)
    bp, br = prec / n, rec / n
    rep.bcubed = (bp, br, 2 * bp * br / (bp + br) if bp + br else 0.0)
    # Earliest member: for each multi-doc story, does its cluster name the earliest dated doc?
    first = dict(con.execute("SELECT cluster_id, first_article_id FROM clusters").fetchall())
    by_id = {d.id: d for d in ev.docs}
    ok = total = 0
    for ids in by_story.values():
        dated = [by_id[i] for i in ids if by_id[i].published_at is not None]
        if len(ids) < 2 or not dated:
            continue
        earliest = min(dated, key=lambda d: (d.published_at, d.id))
        total += 1
        ok += first.get(cluster[earliest.id]) == article_of[earliest.id]
    rep.earliest_ok = (ok, total)


def run(ev: EvalSet, con: duckdb.DuckDBPyConnection) -> Report:
    rep = Report()
    bands = {d.id: minhash_bands(d.text) for d in ev.docs}
    evaluate_urls(ev, rep)
    evaluate_pairs(ev, rep, bands)
    evaluate_clusters(con, ev, rep, bands)
    return rep


def sweep(
    ev: EvalSet,
    jaccards: tuple[float, ...] = (0.4, 0.5, 0.6),
    containments: tuple[float, ...] = (0.6, 0.7, 0.75, 0.8, 0.9),
) -> list[tuple[float, float, Counts]]:
    """Pair precision/recall for other thresholds (same candidates, same number guard)."""
    docs = {d.id: d for d in ev.docs}
    bands = {d.id: set(minhash_bands(d.text)) for d in ev.docs}
    sims = []
    for p in ev.text_pairs:
        assert isinstance(p.a, int) and isinstance(p.b, int)
        sims.append(
            (
                p.label,
                bool(bands[p.a] & bands[p.b]),
                dedup.similarity(docs[p.a].text, docs[p.b].text),
            )
        )
    out = []
    for jmin in jaccards:
        for cmin in containments:
            c = Counts()
            for label, candidate, s in sims:
                guard = s.number_overlap is not None and s.number_overlap < dedup.NUMBER_OVERLAP_MIN
                dup = not guard and (
                    s.jaccard >= jmin or (s.containment >= cmin and s.shared >= dedup.MIN_SHARED)
                )
                c.add(label, candidate and dup)
            out.append((jmin, cmin, c))
    return out
