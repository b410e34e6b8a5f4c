"""The decisions of one lake batch, record by record (archive/lake/ingest.py runs them): the
file ingest's rules (archive/ingest.py _ingest_page) on what the claims say, building the
claim rows and the lake rows of a Plan."""

from __future__ import annotations

import base64
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from archive.dates import stored as stored_date
from archive.dedup import Decision
from archive.ingest import ARTICLE_COLUMNS, article_values
from archive.lake import bands, claims
from archive.lake import runs as lake_runs
from archive.lake.claims import Looked
from archive.records import PageRecord

logger = logging.getLogger(__name__)

_TEXT_COLUMNS = ("feed_title", "feed_published_at", "discovered_via", "cross_site_canonical")


@dataclass
class Plan:
    """One batch decided: what to claim, what to append, what to change after."""

    batch: str
    claims: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    lake: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    runs: dict[lake_runs.RunKey, dict[str, Any]] = field(default_factory=dict)
    http: list[dict[str, Any]] = field(default_factory=list)
    paragraphs: list[list[Any]] = field(default_factory=list)  # lake.boilerplate entries
    outcomes: Counter[str] = field(default_factory=Counter)
    records: int = 0
    looked: Looked = field(default_factory=dict)  # band keys the decisions relied on

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.lake.setdefault(table, []).append(row)

    def claim(self, table: str, row: tuple[Any, ...]) -> None:
        self.claims.setdefault(table, []).append(row)

    def post(self) -> dict[str, Any]:
        return {"runs": [lake_runs.to_json(r) for r in self.runs.values()], "http": self.http,
                "paragraphs": self.paragraphs}  # fmt: skip


class Batch:
    """The decisions of one batch, record by record, with what the batch itself claimed."""

    def __init__(
        self,
        writer: Any,  # archive.lake.ingest.LakeWriter: its lake connection and home
        plan: Plan,
        known: claims.Known,
        page_ids: list[int],
        article_ids: list[int],
        neighbours: bands.Neighbours,
    ) -> None:
        self.writer = writer
        self.plan = plan
        self.known = known
        self.neighbours = neighbours
        self.page_ids = page_ids
        self.article_ids = article_ids
        self.text_meta: dict[int, dict[str, Any]] = {}

    def run_row(
        self,
        key: lake_runs.RunKey,
        runs: dict[lake_runs.RunKey, dict[str, Any]],
        started_at: datetime | None = None,
    ) -> dict[str, Any]:
        row = (
            self.plan.runs.get(key)
            or runs.get(key)
            or lake_runs.new_row(*key, started_at, self.writer.home)
        )
        self.plan.runs[key] = row
        return row

    def fenced(
        self,
        key: lake_runs.RunKey,
        runs: dict[lake_runs.RunKey, dict[str, Any]],
        fences: tuple[int, int],
    ) -> None:
        row = self.run_row(key, runs)
        if row["status"] != lake_runs.FENCED:
            row.update(status=lake_runs.FENCED, finished_at=row["finished_at"] or datetime.now(UTC))
            row["message"] = (
                f"lease of {key[1]} taken over by another daemon (run fence {fences[0]}, "
                f"lease fence {fences[1]}): the run's late records were refused"
            )
            logger.warning("run %s of %s: %s", key[0], key[1], row["message"])

    def page(self, r: PageRecord) -> str:
        known, plan = self.known, self.plan
        if r["record_id"] in known.records:
            return "already_ingested"
        known.records.add(r["record_id"])  # the same record twice in one segment
        page_id = self.page_ids.pop(0)
        plan.claim("page_records", (r["record_id"], page_id, plan.batch))
        fetched_at = stored_date(r.get("fetched_at")) or datetime.now(UTC)
        article, skip, detail = r.get("article"), r.get("skip_reason"), r.get("detail")
        article_id: int | None = None
        outcome = skip or "skipped"
        if article and not skip:
            article_id, outcome, skip, detail = self._article(r, page_id, fetched_at)
            if outcome == "unchanged":
                detail = "revisit: text unchanged"
        html = r.get("html_gz_b64")
        plan.add(
            "pages",
            {
                "id": page_id, "record_id": r["record_id"], "run_id": r.get("run_id"),
                "outlet": r["outlet"], "url": r["url"], "final_url": r.get("final_url"),
                "status": r.get("status"), "content_type": r.get("content_type"),
                "fetched_at": fetched_at, "size_bytes": r.get("size_bytes"),
                "html_gz": base64.b64decode(html) if html else None, "article_id": article_id,
                "skip_reason": skip, "detail": detail,
            },
        )  # fmt: skip
        return outcome

    def _article(
        self, r: PageRecord, page_id: int, fetched_at: datetime
    ) -> tuple[int, str, str | None, str | None]:
        """(article id, outcome, skip reason, detail) of a page with an article: the file
        ingest's rules (archive/ingest.py _ingest_page) on the claims."""
        known, plan, outlet = self.known, self.plan, r["outlet"]
        key, content_hash = str(r.get("key") or ""), str(r.get("content_hash") or "")
        if not key or not content_hash:
            raise ValueError("a page with an article needs its key and content_hash")
        aliases = list(r.get("url_aliases") or [])
        seen = [str(u) for u in r.get("seen_urls") or []]

        def owner(url: str) -> str | None:
            a = known.urls.get(url)
            return known.articles[a].outlet if a is not None and a in known.articles else None

        syndicated: tuple[int, str, str] | None = None
        skip: str | None = None
        detail = r.get("detail")
        if key in known.urls and owner(key) not in (None, outlet):
            # another outlet's article named as canonical: the page keeps a URL of its own
            syndicated = (known.urls[key], str(owner(key)), key)
            own = [u for u in aliases if (owner(u) or outlet) == outlet]
            key = own[0] if own else str(r.get("final_url") or r["url"])
            if key in aliases:
                aliases.remove(key)
            r = {
                **r,
                "key": key,
                "cross_site_canonical": r.get("cross_site_canonical") or syndicated[2],
            }
        existing = next(
            (known.urls[u] for u in [key, *aliases] if u in known.urls and owner(u) == outlet), None
        )
        if existing is not None:
            article_id = existing
            outcome = self._revisit(existing, r, content_hash, page_id, fetched_at)
        elif known.exact(outlet, content_hash) is not None:
            article_id = int(known.exact(outlet, content_hash) or 0)
            skip = outcome = "exact_duplicate"
            detail = f"same text as article {article_id}"
            plan.add("article_sightings", {"article_id": article_id, "seen_at": fetched_at})
            self._decision(
                Decision(article_id, article_id, "exact", 1.0, f"same text under {key}"), fetched_at
            )
        else:
            article_id = self._new(r, key, content_hash, page_id, fetched_at)
            outcome = "new"
        if syndicated is not None and outcome != "exact_duplicate":
            self._decision(
                Decision(article_id, syndicated[0], "syndication", None,
                         f"rel=canonical to {syndicated[2]}, an article of outlet {syndicated[1]}"),
                fetched_at,
            )  # fmt: skip
        rows = [(key, "canonical")] + [(u, "alias") for u in aliases] + [(u, "seen") for u in seen]
        for url, kind in rows:
            if url not in known.urls:
                known.urls[url] = article_id
                plan.claim("article_urls", (url, article_id, kind, fetched_at, plan.batch))
                plan.add("article_urls", {"url": url, "article_id": article_id, "kind": kind,
                                          "first_seen_at": fetched_at})  # fmt: skip
        return article_id, outcome, skip, detail

    def _decision(self, d: Decision, at: datetime) -> None:
        self.plan.add(
            "duplicate_links",
            {"article_id": d.article_id, "matched_article_id": d.matched_article_id,
             "level": d.level, "score": d.score, "reason": d.reason, "decided_at": at},
        )  # fmt: skip

    def _text_row(
        self, r: PageRecord, article_id: int, version: int, page_id: int, now: datetime
    ) -> dict[str, Any]:
        article = r.get("article") or {"text": ""}
        hints = r.get("hints") or {}
        row = dict(zip(ARTICLE_COLUMNS, article_values(article), strict=True))
        row.update(
            article_id=article_id, version=version, outlet=r["outlet"],
            url=r.get("final_url") or r["url"], canonical_url=r.get("key"),
            promo_flagged=bool(article.get("promo_flagged")), content_hash=r.get("content_hash"),
            feed_title=hints.get("title"), feed_published_at=stored_date(hints.get("published_at")),
            discovered_via=hints.get("source"), cross_site_canonical=r.get("cross_site_canonical"),
            extractor_version=r.get("extractor_version"), page_id=page_id, fetched_at=now,
            first_seen_at=now, recorded_at=now,
        )  # fmt: skip
        for b in r.get("removed_blocks") or []:
            self.plan.add(
                "removed_blocks",
                {"article_id": article_id, "version": version, "position": b["position"],
                 "kind": b["kind"], "rule": b["rule"], "text": b["text"]},
            )  # fmt: skip
        return row

    def _new(self, r: PageRecord, key: str, content_hash: str, page_id: int, now: datetime) -> int:
        plan, outlet = self.plan, r["outlet"]
        article_id = self.article_ids.pop(0)
        row = self._text_row(r, article_id, 1, page_id, now)
        plan.add("article_texts", row)
        plan.claim("article_keys", (key, article_id, outlet, now, row["url"], plan.batch))
        plan.claim("article_versions", (article_id, 1, content_hash, plan.batch))
        plan.claim("content_hashes", (outlet, content_hash, article_id, plan.batch))
        self.known.articles[article_id] = claims.Current(
            outlet, row["url"], key, now, 1, content_hash
        )
        self.known.hashes.setdefault((outlet, content_hash), set()).add(article_id)
        self._place(row, list(r.get("bands") or []), now)
        return article_id

    def _place(self, row: dict[str, Any], hashes: list[int], now: datetime) -> None:
        """The new article's cluster (archive.dedup's decisions on the lake's neighbours): its
        band keys and the cluster's new head are claimed, membership and head appended."""
        plan, article_id = self.plan, int(row["article_id"])
        cluster_id, head, decisions = self.neighbours.place(row, hashes, now)
        self._claim_bands(article_id, hashes)
        plan.claim("cluster_heads", (cluster_id, head.size, head.first_article_id,
                                     head.first_published_at, head.first_seen_at, plan.batch))  # fmt: skip
        plan.add(
            "cluster_members",
            {"article_id": article_id, "cluster_id": cluster_id, "decided_at": now},
        )
        plan.add("cluster_heads", {"cluster_id": cluster_id, "first_article_id": head.first_article_id,
                                   "first_published_at": head.first_published_at, "size": head.size,
                                   "decided_at": now})  # fmt: skip
        for d in decisions:
            self._decision(d, now)

    def _claim_bands(self, article_id: int, hashes: list[int]) -> None:
        for key in sorted(set(bands.keys_of(hashes))):
            self.plan.claim("lsh_bands", (key, article_id, self.plan.batch))

    def _revisit(
        self, article_id: int, r: PageRecord, content_hash: str, page_id: int, now: datetime
    ) -> str:
        """A known article fetched again: a sighting, and a new version when its text changed."""
        plan = self.plan
        current = self.known.articles[article_id]
        plan.add("article_sightings", {"article_id": article_id, "seen_at": now})
        if current.content_hash == content_hash:
            return "unchanged"
        version = current.version + 1
        row = self._text_row(r, article_id, version, page_id, now)
        meta = self._meta(article_id)
        row.update(meta, url=current.url or row["url"], canonical_url=current.canonical_url,
                   first_seen_at=current.first_seen_at)  # fmt: skip
        plan.add("article_texts", row)
        plan.claim("article_versions", (article_id, version, content_hash, plan.batch))
        # as archive.dedup.refresh_bands: later texts find the new one; its cluster stays
        self.neighbours.holds(article_id, list(r.get("bands") or []))
        self.neighbours.edited(article_id, str(row["text"] or ""))
        self._claim_bands(article_id, list(r.get("bands") or []))
        had = self.known.hashes.setdefault((r["outlet"], content_hash), set())
        if article_id not in had:
            plan.claim("content_hashes", (r["outlet"], content_hash, article_id, plan.batch))
            had.add(article_id)
        self._decision(
            Decision(article_id, article_id, "version", None,
                     f"text changed: version {current.version} -> {version}"),
            now,
        )  # fmt: skip
        current.version, current.content_hash = version, content_hash
        return "updated"

    def _meta(self, article_id: int) -> dict[str, Any]:
        """What a new version keeps of the first one (where the article was found)."""
        if article_id not in self.text_meta:
            row = self.writer.lake.execute(
                f"SELECT {', '.join(_TEXT_COLUMNS)} FROM article_texts WHERE article_id = ? "
                "ORDER BY version LIMIT 1",
                [article_id],
            ).fetchone()
            self.text_meta[article_id] = dict(zip(_TEXT_COLUMNS, row, strict=True)) if row else {}
        return self.text_meta[article_id]
