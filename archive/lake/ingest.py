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

The search index (PostgreSQL text search, archive/lake/search_index.py) is written in the settle
transaction of step 5, from the batch's texts (or, for a dead writer's batch, from the lake),
so an article is searchable exactly when its batch is settled.

Learned boilerplate: the batch's new articles' boundary paragraphs ride in the plan (and its
marker), counted in PostgreSQL in the settle transaction (archive/lake/boilerplate.py).

Near duplicates (archive/lake/bands.py): a new text's band keys are looked up in step 2 and
claimed in step 3 under one lock, after a check that no key gained an article meanwhile (else
look up again); a candidate or a cluster head claimed by a batch in flight makes the record
wait (Busy), since its text and cluster are decided only when that batch is.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import psycopg

from archive.dates import stored as stored_date
from archive.db import ArchiveError
from archive.ingest import IngestResult
from archive.lake import bands as lake_bands
from archive.lake import claims
from archive.lake import runs as lake_runs
from archive.lake import search_index as lake_search
from archive.lake.boilerplate import paragraphs_entry
from archive.lake.decide import Batch, Plan
from archive.lake.rows import append
from archive.records import SpoolRecord, checked, record_problem
from archive.spool import PART, READY, Line, discard_segment, read_lines, ready_segments
from archive.target import LakeTarget, unreachable

logger = logging.getLogger(__name__)

ATTEMPTS = 5  # lookups and claims per batch before it waits for a later turn


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
        self.search_prefix = lake_search.ensure_index(self.pg)

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
                lake_search.index_from_lake(
                    self.pg, self.lake, claims.batch_articles(self.pg, batch), self.search_prefix
                )
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
                claims.claim(self.pg, plan.batch, self.owner, plan.claims, plan.looked)
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
            texts = lake_search.rows_of(plan.lake.get("article_texts", []))
            lake_search.index_articles(self.pg, texts, self.search_prefix)
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
        started = datetime.now(UTC)  # when its new articles count for learned boilerplate
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
        texts = [
            r.get("bands") or [] for r in fresh if r.get("article") and not r.get("skip_reason")
        ]
        neighbours = lake_bands.lookup(self.pg, self.lake, known, texts)
        page_ids = claims.next_ids(self.pg, "page_id_seq", len(fresh))
        article_ids = claims.next_ids(
            self.pg, "article_id_seq", sum(1 for r in fresh if r.get("article"))
        )
        ctx = Batch(self, plan, known, page_ids, article_ids, neighbours)
        plan.looked = neighbours.looked
        for record in records:
            plan.records += 1
            key = (str(record.get("run_id") or ""), record["outlet"])
            if key in stale and record["type"] != "run_start":
                plan.outcomes["fenced"] += 1
                ctx.fenced(key, runs, stale[key])
                continue
            if record["type"] == "page":
                outcome = ctx.page(record)
                article = record.get("article")
                if outcome == "new" and article and record.get("para_hashes"):
                    plan.paragraphs.append(
                        paragraphs_entry(
                            record["outlet"], record["para_hashes"], article["text"], started
                        )
                    )
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
