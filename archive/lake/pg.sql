-- The lake's PostgreSQL state (archive/lake/schema.py): what must be unique or mutable, which
-- DuckLake cannot hold (no PRIMARY KEY, UNIQUE or sequences; an UPDATE conflicts with every
-- concurrent write to its table). Every statement is idempotent: run at each first use.
CREATE SCHEMA IF NOT EXISTS mediawatch;

CREATE TABLE IF NOT EXISTS mediawatch.schema_version (
    version INTEGER PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE SEQUENCE IF NOT EXISTS mediawatch.article_id_seq;
CREATE SEQUENCE IF NOT EXISTS mediawatch.page_id_seq;

-- The dedup key of each article (articles.canonical_url UNIQUE in the file): claimed with
-- INSERT ... ON CONFLICT DO NOTHING RETURNING, in sorted batches (no deadlock between writers).
CREATE TABLE IF NOT EXISTS mediawatch.article_keys (
    canonical_url TEXT PRIMARY KEY,
    article_id BIGINT NOT NULL UNIQUE,
    outlet TEXT NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL
);

-- Every URL an article was seen under -> its article (article_urls.url PRIMARY KEY in the file).
CREATE TABLE IF NOT EXISTS mediawatch.article_urls (
    url TEXT PRIMARY KEY,
    article_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL
);

-- Spool record ids already ingested: the ingest's idempotency (pages.record_id UNIQUE).
CREATE TABLE IF NOT EXISTS mediawatch.page_records (
    record_id TEXT PRIMARY KEY,
    page_id BIGINT NOT NULL
);

-- Runs as the writers update them (status, figures); each change is also appended to the
-- lake's crawl_run_log, which readers see as the crawl_runs view.
CREATE TABLE IF NOT EXISTS mediawatch.crawl_runs (
    run_id TEXT NOT NULL,
    outlet TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status TEXT NOT NULL,
    requests INTEGER DEFAULT 0,
    responses JSONB,
    articles_new INTEGER DEFAULT 0,
    articles_updated INTEGER DEFAULT 0,
    skipped JSONB,
    errors INTEGER DEFAULT 0,
    message TEXT,
    failure TEXT,
    fence BIGINT,                      -- the lease fence the run was started under
    PRIMARY KEY (run_id, outlet)
);

CREATE TABLE IF NOT EXISTS mediawatch.outlet_state (
    outlet TEXT PRIMARY KEY,
    next_run_at TIMESTAMPTZ,
    interval_seconds DOUBLE PRECISION NOT NULL,
    delay_seconds DOUBLE PRECISION,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    healthy BOOLEAN NOT NULL DEFAULT TRUE,
    health_reason TEXT,
    last_run_id TEXT,
    last_status TEXT,
    last_run_at TIMESTAMPTZ,
    last_new_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS mediawatch.http_state (
    url TEXT PRIMARY KEY,
    outlet TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    last_status INTEGER,
    last_fetched_at TIMESTAMPTZ,
    last_changed_at TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS mediawatch.paragraph_stats (
    para_key TEXT PRIMARY KEY,
    outlet TEXT NOT NULL,
    para_hash TEXT NOT NULL,
    articles INTEGER NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    sample TEXT
);

CREATE TABLE IF NOT EXISTS mediawatch.boilerplate_due (
    para_key TEXT PRIMARY KEY,
    outlet TEXT NOT NULL,
    para_hash TEXT NOT NULL,
    sample TEXT NOT NULL,
    due_since TIMESTAMPTZ NOT NULL
);

-- Who crawls an outlet (daemons on many machines): taken with FOR UPDATE SKIP LOCKED, expiry
-- as the take-over timer, fence bumped at each take-over so a woken stale holder is refused.
-- The lake ingest (archive/lake/ingest.py): a batch in flight, from its claims to the end of
-- its lake commit. Claims name their batch; a claim whose batch is still listed here is not
-- final yet: its owner (a PostgreSQL application_name) is alive and finishing, or dead and
-- the next writer settles it from the lake's ingest_batches (committed: kept; not: deleted).
CREATE TABLE IF NOT EXISTS mediawatch.batches (
    batch TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
ALTER TABLE mediawatch.page_records ADD COLUMN IF NOT EXISTS batch TEXT;
ALTER TABLE mediawatch.article_urls ADD COLUMN IF NOT EXISTS batch TEXT;
ALTER TABLE mediawatch.article_keys ADD COLUMN IF NOT EXISTS batch TEXT;
ALTER TABLE mediawatch.article_keys ADD COLUMN IF NOT EXISTS url TEXT;
CREATE INDEX IF NOT EXISTS page_records_batch ON mediawatch.page_records (batch);
CREATE INDEX IF NOT EXISTS article_urls_batch ON mediawatch.article_urls (batch);
CREATE INDEX IF NOT EXISTS article_keys_batch ON mediawatch.article_keys (batch);

-- Each text version of an article (its current one is the highest): claiming (id, version + 1)
-- is what makes two writers unable to both add "version 2".
CREATE TABLE IF NOT EXISTS mediawatch.article_versions (
    article_id BIGINT NOT NULL,
    version INTEGER NOT NULL,
    content_hash TEXT,
    batch TEXT,
    PRIMARY KEY (article_id, version)
);
CREATE INDEX IF NOT EXISTS article_versions_batch ON mediawatch.article_versions (batch);

-- Every text an outlet's articles have had (exact duplicates are per outlet, dedup level 2,
-- against the articles whose current text it is: their current version says which).
CREATE TABLE IF NOT EXISTS mediawatch.content_hashes (
    outlet TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    article_id BIGINT NOT NULL,
    batch TEXT,
    PRIMARY KEY (outlet, content_hash, article_id)
);
CREATE INDEX IF NOT EXISTS content_hashes_batch ON mediawatch.content_hashes (batch);

-- Which machine's spool holds a run (archive/lake/home.py): only its daemon calls it crashed.
ALTER TABLE mediawatch.crawl_runs ADD COLUMN IF NOT EXISTS home TEXT;

CREATE TABLE IF NOT EXISTS mediawatch.leases (
    outlet TEXT PRIMARY KEY,
    holder TEXT,
    expires_at TIMESTAMPTZ,
    fence BIGINT NOT NULL DEFAULT 0
);

-- The daemons sharing a lake, each seen at its last lease tick: how many share the outlets.
CREATE TABLE IF NOT EXISTS mediawatch.daemons (
    holder TEXT PRIMARY KEY,
    home TEXT,
    seen_at TIMESTAMPTZ NOT NULL
);

-- Near duplicates (archive/lake/bands.py): the LSH band keys of every article text (the low 32
-- bits of a band hash, archive.bandindex.band_key) -> the articles holding them, claimed with
-- the batch. Writers add theirs under one transaction lock (bands.LOCK_KEY) after checking
-- that no key they looked up gained an article meanwhile, so two writers ingesting copies of
-- one story at once cannot both miss each other.
CREATE TABLE IF NOT EXISTS mediawatch.lsh_bands (
    band_key BIGINT NOT NULL,
    article_id BIGINT NOT NULL,
    batch TEXT,
    PRIMARY KEY (band_key, article_id)
);
CREATE INDEX IF NOT EXISTS lsh_bands_batch ON mediawatch.lsh_bands (batch);

-- Each state of a cluster's head (its current one has the largest size): claiming
-- (cluster, size + 1) is what makes two writers unable to both add "the third member".
CREATE TABLE IF NOT EXISTS mediawatch.cluster_heads (
    cluster_id BIGINT NOT NULL,
    size INTEGER NOT NULL,
    first_article_id BIGINT NOT NULL,
    first_published_at TIMESTAMPTZ,
    first_seen_at TIMESTAMPTZ,
    batch TEXT,
    PRIMARY KEY (cluster_id, size)
);
CREATE INDEX IF NOT EXISTS cluster_heads_batch ON mediawatch.cluster_heads (batch);

-- Alerts (archive/lake/alerts.py): the outbox of the file's migration 0015_alerts, shared by
-- the lake's daemons. The watermark is a PostgreSQL snapshot, not an article id: ids are drawn
-- before their batch settles, so batches settle out of id order (see the module).
CREATE TABLE IF NOT EXISTS mediawatch.alert_state (
    alert TEXT PRIMARY KEY,
    watermark pg_snapshot NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    matched_at TIMESTAMPTZ
);
-- Each match with what a delivery shows of its article (no lake read while sending).
CREATE TABLE IF NOT EXISTS mediawatch.alert_matches (
    alert TEXT NOT NULL,
    article_id BIGINT NOT NULL,
    cluster_id BIGINT NOT NULL,
    matched_at TIMESTAMPTZ NOT NULL,
    snippet TEXT,
    outlet TEXT,
    title TEXT,
    url TEXT,
    published_at TIMESTAMPTZ,
    language TEXT,
    PRIMARY KEY (alert, article_id)
);
CREATE TABLE IF NOT EXISTS mediawatch.alert_deliveries (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,  -- the webhook's Idempotency-Key
    alert TEXT NOT NULL,
    channel TEXT NOT NULL,
    cluster_id BIGINT NOT NULL,
    article_id BIGINT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    enqueued_at TIMESTAMPTZ NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    claimed_at TIMESTAMPTZ,
    claimed_by TEXT,                   -- the sender's application_name: in doubt once it is gone
    sent_at TIMESTAMPTZ,
    UNIQUE (alert, channel, cluster_id)
);
CREATE INDEX IF NOT EXISTS alert_deliveries_due
    ON mediawatch.alert_deliveries (next_attempt_at) WHERE status = 'pending';
