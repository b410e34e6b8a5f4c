"""The lake's writer: spool records -> claims in PostgreSQL, append-only rows in the lake.

One spool segment is one batch, in this order:

1. settle the batches dead writers left in flight (below);
2. look up what the claims already say (record ids, URLs, articles and their current version,
   the outlet's texts) and decide each record as the file ingest does (new, updated,
   unchanged, exact duplicate, syndication, skipped; archive.ingest.article_values makes the
   article row, archive.dedup.Decision the decisions);
3. **claim** in one PostgreSQL transaction: the batch row (owner = this writer's
   application_name), then page record ids, article keys, URLs, text versions and the outlet's
   texts, each table sorted by key (no deadlock between writers), `INSERT ... ON CONFLICT DO
   NOTHING RETURNING`; a key someone else took meanwhile rolls it all back and we go to 2;
4. **commit to the lake** in one DuckLake transaction: pages, article texts, sightings, URLs,
   removed blocks, decisions, clusters, run log rows, and the batch's marker row
   (ingest_batches, carrying the batch's state changes as JSON);
5. **settle** in one PostgreSQL transaction: the batch row is deleted and the state changes
   applied (run rows, validators); then the segment leaves the spool.

Recovery, by whoever meets the batch first (the restarted writer replaying its spool, or
any other writer at step 1): a batch still listed whose owner has no PostgreSQL session
left is dead, and everything it did is decided (its catalog commit ran on one of those
sessions). Its lake marker is there: the lake has it all, so settle it (step 5, from the
marker). It is not: the lake has none of it, so its claims are deleted, as if never made.
A kill before 3 leaves nothing; between 3 and 4 claims that get deleted, and the replay
claims afresh; between 4 and 5 a marker that settles; after 5 a replay finds every record id
claimed (already ingested). Neither lost nor doubled. A live owner's batch (even a frozen
one: its sessions stay) is never touched: a record needing its claims waits in the spool
(Busy) until the owner ends it.

A run started under a lease fence that is no longer the outlet's (another daemon took the
outlet over) is refused: its records are dropped, counted as `fenced`, logged, and the run
is marked `fenced` (archive/lake/runs.py).

Not yet on the lake: near-duplicate clustering (each article is its own cluster), learned
boilerplate counts, the search index.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import psycopg

from archive.dates import stored as stored_date
from archive.db import ArchiveError
from archive.dedup import Decision
from archive.ingest import IngestResult, article_values
from archive.lake import claims
from archive.lake import runs as lake_runs
from archive.lake.rows import append
from archive.records import PageRecord, SpoolRecord, checked, record_problem
from archive.spool import PART, READY, Line, discard_segment, read_lines, ready_segments
from archive.target import LakeTarget, unreachable

logger = logging.getLogger(__name__)

ATTEMPTS = 5  # lookups and claims per batch before it waits for a later turn
_TEXT_COLUMNS = ("feed_title", "feed_published_at", "discovered_via", "cross_site_canonical")


@dataclass
class Plan:
    """One batch decided: what to claim, what to append, what to change after."""

    batch: str
    claims: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    lake: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    runs: dict[lake_runs.RunKey, dict[str, Any]] = field(default_factory=dict)
    http: list[dict[str, Any]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    records: int = 0

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.lake.setdefault(table, []).append(row)

    def claim(self, table: str, row: tuple[Any, ...]) -> None:
        self.claims.setdefault(table, []).append(row)

    def post(self) -> dict[str, Any]:
        return {"runs": [lake_runs.to_json(r) for r in self.runs.values()], "http": self.http}


class LakeWriter:
    """A lake writer: its PostgreSQL session and its lake connection, both named after it."""

    def __init__(self, target: LakeTarget, home: str | None = None) -> None:
        from archive.lake.connect import attach
        from archive.lake.schema import ensure_schema

        self.target = target
        self.home = home  # this machine's home for the lake: the runs it ingests are its own
        self.owner = claims.writer_token()
        ensure_schema(target)
        try:
            self.pg = claims.connect(target.libpq(application_name=self.owner))
        except psycopg.OperationalError as exc:
            raise ArchiveError(f"{target.display()}: {unreachable(exc)}") from None
        try:
            self.lake = attach(target, read_only=False, application_name=self.owner)
        except ArchiveError:
            self.pg.close()
            raise

    def close(self) -> None:
        self.lake.close()
        self.pg.close()

    def __enter__(self) -> LakeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # recovery ---------------------------------------------------------------------------------

    def settle_dead(self) -> int:
        """Settle the batches of writers that died in flight (see the module docstring)."""
        done = 0
        for batch in claims.dead_batches(self.pg):
            self.resolve(batch)
            done += 1
        return done

    def resolve(self, batch: str) -> None:
        """A batch whose owner is gone (or whose commit failed): kept if the lake has its
        marker, its claims deleted if not."""
        row = self.lake.execute(
            "SELECT counts FROM ingest_batches WHERE batch = ?", [batch]
        ).fetchone()
        if row is None:
            claims.abandon(self.pg, batch)
            logger.warning("batch %s never reached the lake: its claims are released", batch)
            return
        with self.pg.transaction():
            if claims.settle(self.pg, batch):
                lake_runs.apply_post(self.pg, json.loads(row[0]))
        logger.info("batch %s was committed to the lake by a writer that died: settled", batch)

    # ingest -----------------------------------------------------------------------------------

    def ingest_records(
        self,
        records: Sequence[SpoolRecord],
        result: IngestResult | None = None,
        *,
        crashed: str | None = None,
    ) -> IngestResult:
        """Ingest records as one batch (all or nothing). `crashed`: the "run_id.outlet" of a
        dead crawl's open segment, whose run, still 'running', crashed."""
        total = result if result is not None else IngestResult()
        for _ in range(ATTEMPTS):
            self.settle_dead()
            plan = self._plan(records, crashed)
            try:
                claims.claim(self.pg, plan.batch, self.owner, plan.claims)
            except claims.Conflict as exc:
                logger.info("batch %s: %s; looking up again", plan.batch, exc)
                continue
            break
        else:
            raise claims.Busy(f"claims kept conflicting {ATTEMPTS} times")
        self._commit(plan)
        with self.pg.transaction():
            claims.settle(self.pg, plan.batch)
            lake_runs.apply_post(self.pg, plan.post())
        total.records += plan.records
        total.outcomes.update(plan.outcomes)
        return total

    def _commit(self, plan: Plan) -> None:
        now = datetime.now(UTC)
        for key, row in plan.runs.items():
            plan.add("crawl_run_log", lake_runs.log_row(row, now))
            del key
        plan.add(
            "ingest_batches",
            {
                "batch": plan.batch,
                "owner": self.owner,
                "records": plan.records,
                "counts": json.dumps(plan.post(), default=str),
                "committed_at": now,
            },
        )
        try:
            self.lake.execute("BEGIN")
            for table, rows in plan.lake.items():
                append(self.lake, table, rows)
            self.lake.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):  # a failed commit ended it already
                self.lake.execute("ROLLBACK")
            self.resolve(plan.batch)  # a commit that raised may still have landed
            raise

    def _plan(self, records: Sequence[SpoolRecord], crashed: str | None) -> Plan:
        plan = Plan(batch=uuid.uuid4().hex)
        keys = {(str(r.get("run_id") or ""), r["outlet"]) for r in records if r.get("run_id")}
        if crashed:
            keys.add((crashed.partition(".")[0], crashed.partition(".")[2]))
        runs = lake_runs.load(self.pg, keys)
        stale = lake_runs.stale(self.pg, keys)
        pages = [r for r in records if r["type"] == "page"]
        urls: list[str] = []
        hashes: list[tuple[str, str]] = []
        for r in pages:
            if r.get("article") and not r.get("skip_reason"):
                urls += [u for u in (r.get("key"), *(r.get("url_aliases") or [])) if u]
                urls += [str(u) for u in r.get("seen_urls") or []]
                if r.get("content_hash"):
                    hashes.append((r["outlet"], str(r["content_hash"])))
        known = claims.lookup(
            self.pg, [r["record_id"] for r in pages], sorted(set(urls)), sorted(set(hashes))
        )
        fresh = [r for r in pages if r["record_id"] not in known.records]
        page_ids = claims.next_ids(self.pg, "page_id_seq", len(fresh))
        article_ids = claims.next_ids(
            self.pg, "article_id_seq", sum(1 for r in fresh if r.get("article"))
        )
        ctx = _Batch(self, plan, known, page_ids, article_ids)
        for record in records:
            plan.records += 1
            key = (str(record.get("run_id") or ""), record["outlet"])
            if key in stale and record["type"] != "run_start":
                plan.outcomes["fenced"] += 1
                ctx.fenced(key, runs, stale[key])
                continue
            if record["type"] == "page":
                outcome = ctx.page(record)
                if outcome in ("new", "updated") and (key in runs or key in plan.runs):
                    row = ctx.run_row(key, runs)  # a run the archive knows, as the file counts
                    row["articles_" + outcome] = (row["articles_" + outcome] or 0) + 1
            elif record["type"] == "http_state":
                plan.http.append(dict(record))
                outcome = "http_state"
            elif record["type"] == "run_start":
                if key not in runs:
                    ctx.run_row(key, runs, stored_date(record["started_at"]))
                outcome = "run_start"
            elif record["type"] == "run":
                lake_runs.apply_end(ctx.run_row(key, runs), dict(record))
                outcome = "run"
            else:
                outcome = "unknown_record"
            plan.outcomes[outcome] += 1
        if crashed:
            run_id, _, outlet = crashed.partition(".")
            dead = plan.runs.get((run_id, outlet)) or runs.get((run_id, outlet))
            if dead is not None and dead["status"] == "running":
                dead.update(status="crashed", finished_at=datetime.now(UTC))
                dead["message"] = dead["message"] or "crawl process died before finishing"
                plan.runs[(run_id, outlet)] = dead
        return plan


class _Batch:
    """The decisions of one batch, record by record, with what the batch itself claimed."""

    def __init__(
        self,
        writer: LakeWriter,
        plan: Plan,
        known: claims.Known,
        page_ids: list[int],
        article_ids: list[int],
    ) -> None:
        self.writer = writer
        self.plan = plan
        self.known = known
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
        from archive.ingest import ARTICLE_COLUMNS

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
        # near-duplicate clustering is not on the lake yet: the article is its own cluster
        plan.add(
            "cluster_members",
            {"article_id": article_id, "cluster_id": article_id, "decided_at": now},
        )
        article = r.get("article")
        published = stored_date(article.get("published_at")) if article else None
        plan.add("cluster_heads", {"cluster_id": article_id, "first_article_id": article_id,
                                   "first_published_at": published, "size": 1, "decided_at": now})  # fmt: skip
        return article_id

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


# the spool ------------------------------------------------------------------------------------

QUARANTINE_DIR = "quarantine"


def ingest_spool(
    writer: LakeWriter, spool: Path, *, time_budget: float = 2.0, result: IngestResult | None = None
) -> IngestResult:
    """Ingest ready segments of a local spool into the lake, for about time_budget seconds.
    A segment whose claims belong to a live writer's batch in flight waits (Busy)."""
    result = result if result is not None else IngestResult()
    deadline = time.monotonic() + time_budget
    for segment in ready_segments(spool):
        try:
            _ingest_segment(writer, segment, result)
        except claims.Busy as exc:
            logger.info("%s waits: %s", segment.name, exc)
            result.outcomes["waiting"] += 1
            continue
        except (psycopg.OperationalError, duckdb.IOException, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ArchiveError(
                f"{writer.target.display()}: cannot write the lake ({first}); "
                "the spool is kept and ingested once it can be"
            ) from exc
        discard_segment(segment)
        result.segments += 1
        if time.monotonic() > deadline:
            break
    return result


def _ingest_segment(writer: LakeWriter, segment: Path, result: IngestResult) -> None:
    lines = list(read_lines(segment))
    bad: list[tuple[Line, str]] = [(line, line.problem) for line in lines if line.problem]
    good: list[Line] = []
    for line in lines:
        if line.record is not None:
            why = record_problem(line.record)
            (bad.append((line, why)) if why else good.append(line))
    crashed = segment.name.rsplit("-", 1)[0] if segment.name.endswith(PART) else None
    records = [checked(line.record) for line in good if line.record is not None]
    try:
        writer.ingest_records(records, result, crashed=crashed)
    except (psycopg.OperationalError, duckdb.IOException, OSError):
        raise
    except claims.Busy as exc:  # keep the others out of the wait: the busy ones go on waiting
        logger.info("%s: %s; record by record", segment.name, exc)
        bad += _one_by_one(writer, segment, good, result, crashed)
    except Exception as exc:  # a record the lake refuses: keep the others, set it aside
        logger.error("segment %s failed as a whole (%s); record by record", segment.name, exc)
        bad += _one_by_one(writer, segment, good, result, crashed)
    if bad:
        _quarantine(writer, segment, sorted(bad, key=lambda b: b[0].number), result)


def _one_by_one(
    writer: LakeWriter, segment: Path, lines: list[Line], result: IngestResult, crashed: str | None
) -> list[tuple[Line, str]]:
    """Each record its own batch: those the lake refuses come back (for the quarantine);
    those waiting on a live writer's claims go to a segment of their own, which waits in
    the spool (Busy again when none could go in: the segment then stays as it is)."""
    failed: list[tuple[Line, str]] = []
    waiting: list[Line] = []
    for n, line in enumerate(lines):
        assert line.record is not None
        try:
            last = n == len(lines) - 1
            writer.ingest_records([checked(line.record)], result, crashed=crashed if last else None)
        except (psycopg.OperationalError, duckdb.IOException, OSError):
            raise
        except claims.Busy as exc:
            logger.debug("%s line %d waits: %s", segment.name, line.number, exc)
            waiting.append(line)
        except Exception as exc:
            failed.append((line, f"{type(exc).__name__}: {exc}"))
    if waiting and len(waiting) == len(lines):
        raise claims.Busy(f"all {len(lines)} records wait on another writer's claims")
    if waiting:
        rest = segment.with_name(f"{segment.name.rsplit('-', 1)[0]}-w{time.time_ns()}{READY}")
        tmp = rest.with_name("." + rest.name + ".tmp")
        tmp.write_text("".join(json.dumps(line.record) + "\n" for line in waiting), "utf-8")
        os.replace(tmp, rest)  # before the segment goes: a crash between keeps both (idempotent)
        logger.info("%s: %d records wait in %s", segment.name, len(waiting), rest.name)
    return failed


def _quarantine(
    writer: LakeWriter, segment: Path, bad: list[tuple[Line, str]], result: IngestResult
) -> None:
    """The file ingest's quarantine, on the lake: the segment's bytes kept in
    <spool>/quarantine/, one spool_quarantine row per record."""
    folder = segment.parent / QUARANTINE_DIR
    folder.mkdir(exist_ok=True)
    if not (folder / segment.name).exists():
        tmp = folder / f".{segment.name}.tmp"
        shutil.copyfile(segment, tmp)
        os.replace(tmp, folder / segment.name)
    run_id, _, outlet = segment.name.rsplit("-", 1)[0].partition(".")
    now = datetime.now(UTC)
    rows = [
        {
            "segment": segment.name, "line": line.number,
            "outlet": str((line.record or {}).get("outlet") or outlet),
            "run_id": str((line.record or {}).get("run_id") or run_id),
            "record_id": (line.record or {}).get("record_id"),
            "reason": reason[:1000], "excerpt": line.raw[:500], "quarantined_at": now,
        }
        for line, reason in bad
    ]  # fmt: skip
    done = writer.lake.execute(
        "SELECT count(*) FROM spool_quarantine WHERE segment = ?", [segment.name]
    ).fetchone()
    if not done or not done[0]:  # a segment quarantined again (a crash before its unlink)
        writer.lake.execute("BEGIN")
        append(writer.lake, "spool_quarantine", rows)
        writer.lake.execute("COMMIT")
    logger.error(
        "%s: %d records quarantined (first: %s)", segment.name, len(rows), rows[0]["reason"]
    )
    result.outcomes["quarantined"] += len(bad)
