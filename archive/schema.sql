-- The archive's one schema file. Each "-- migration: NAME" section is a named migration,
-- applied once, in file order, and recorded in schema_migrations. Never edit a section that
-- has shipped: append a new one. archive/migrations.py reads this file.

-- migration: 0001_core
CREATE SEQUENCE IF NOT EXISTS article_id_seq START 1;
CREATE SEQUENCE IF NOT EXISTS page_id_seq START 1;

-- One row per article (one per canonical URL). Text is the cleaned, promo-stripped text.
CREATE TABLE articles (
    id BIGINT PRIMARY KEY DEFAULT nextval('article_id_seq'),
    outlet VARCHAR NOT NULL,
    url VARCHAR NOT NULL,              -- the URL it was first fetched under (after redirects)
    canonical_url VARCHAR NOT NULL UNIQUE,
    title VARCHAR,
    authors VARCHAR[],
    published_at TIMESTAMPTZ,
    modified_at TIMESTAMPTZ,
    date_source VARCHAR,               -- jsonld | meta | feed | sitemap | url | htmldate
    language VARCHAR,
    section VARCHAR,
    tags VARCHAR[],
    description VARCHAR,
    summary VARCHAR,                   -- editorial "key points" box, when told apart
    image_url VARCHAR,
    site_name VARCHAR,
    text VARCHAR,
    word_count INTEGER,
    paywalled BOOLEAN,
    promo_flagged BOOLEAN DEFAULT FALSE, -- a rule wanted to remove too much: kept whole
    content_hash VARCHAR,
    feed_title VARCHAR,                -- what the feed or sitemap said, beside the page
    feed_published_at TIMESTAMPTZ,
    discovered_via VARCHAR,            -- feed | sitemap | section
    cross_site_canonical VARCHAR,      -- syndication hint, never identity
    cluster_id BIGINT,
    version INTEGER NOT NULL DEFAULT 1,
    extractor_version VARCHAR,
    page_id BIGINT,                    -- the page the current text came from
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL
);

-- Every fetched article page, archived or not, with its raw HTML (gzip) for re-extraction.
CREATE TABLE pages (
    id BIGINT PRIMARY KEY DEFAULT nextval('page_id_seq'),
    record_id VARCHAR NOT NULL UNIQUE,  -- spool record id: makes ingest idempotent
    run_id VARCHAR,
    outlet VARCHAR NOT NULL,
    url VARCHAR NOT NULL,
    final_url VARCHAR,
    status INTEGER,
    content_type VARCHAR,
    fetched_at TIMESTAMPTZ NOT NULL,
    size_bytes BIGINT,
    html_gz BLOB,
    article_id BIGINT,
    skip_reason VARCHAR,               -- why it did not become an article (NULL when it did)
    detail VARCHAR
);

-- One row per run and outlet.
CREATE TABLE crawl_runs (
    run_id VARCHAR NOT NULL,
    outlet VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status VARCHAR NOT NULL,           -- running | ok | failed | crashed | timeout | stopped
    requests INTEGER DEFAULT 0,
    responses JSON,                    -- {"200": n, "404": n, ...}
    articles_new INTEGER DEFAULT 0,
    articles_updated INTEGER DEFAULT 0,
    skipped JSON,                      -- {"reason": n, ...}
    errors INTEGER DEFAULT 0,
    message VARCHAR,
    PRIMARY KEY (run_id, outlet)
);

-- Every URL an article was seen under: fetched, redirected from, canonical, og:url, AMP.
CREATE TABLE article_urls (
    url VARCHAR PRIMARY KEY,
    article_id BIGINT NOT NULL,
    kind VARCHAR NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL
);

-- Promotional blocks removed from an article, with the rule that fired.
CREATE TABLE removed_blocks (
    article_id BIGINT NOT NULL,
    version INTEGER NOT NULL,
    position INTEGER NOT NULL,         -- block index in the extracted article
    kind VARCHAR NOT NULL,             -- subscription | newsletter | read_also | donation | app | social | event | shop | boilerplate | custom
    rule VARCHAR NOT NULL,
    text VARCHAR NOT NULL
);

-- Earlier texts of articles that changed after publication.
CREATE TABLE article_versions (
    article_id BIGINT NOT NULL,
    version INTEGER NOT NULL,
    title VARCHAR,
    text VARCHAR,
    content_hash VARCHAR,
    fetched_at TIMESTAMPTZ NOT NULL,
    page_id BIGINT,
    PRIMARY KEY (article_id, version)
);

-- Every dedup decision, with its level and score.
CREATE TABLE duplicate_links (
    article_id BIGINT NOT NULL,
    matched_article_id BIGINT NOT NULL,
    level VARCHAR NOT NULL,            -- url | exact | near | version
    score DOUBLE,
    reason VARCHAR,
    decided_at TIMESTAMPTZ NOT NULL
);

-- Near-duplicate clusters: every copy stays an article; the cluster knows its first member.
CREATE TABLE clusters (
    cluster_id BIGINT PRIMARY KEY,
    first_article_id BIGINT NOT NULL,
    first_published_at TIMESTAMPTZ,
    size INTEGER NOT NULL DEFAULT 1
);

-- MinHash LSH band hashes: candidate lookup without scanning the archive.
CREATE TABLE lsh_bands (
    band SMALLINT NOT NULL,
    hash UBIGINT NOT NULL,
    article_id BIGINT NOT NULL
);

-- Conditional GET state of feeds, sitemaps and section pages.
CREATE TABLE http_state (
    url VARCHAR PRIMARY KEY,
    outlet VARCHAR NOT NULL,
    etag VARCHAR,
    last_modified VARCHAR,
    last_status INTEGER,
    last_fetched_at TIMESTAMPTZ,
    last_changed_at TIMESTAMPTZ
);

-- Paragraphs an outlet repeats across its articles: learned boilerplate.
CREATE TABLE paragraph_stats (
    outlet VARCHAR NOT NULL,
    para_hash VARCHAR NOT NULL,
    articles INTEGER NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    sample VARCHAR,
    PRIMARY KEY (outlet, para_hash)
);

-- migration: 0002_search
-- Full-text index kept current article by article (archive/search.py): the fts extension's
-- create_fts_index rebuilds everything, so the inverted index lives in plain tables.
-- A term is keyed by 64 bits of md5(stemmer || ':' || stemmed, accent-stripped word):
-- no vocabulary table to look up or grow on the ingest's hot path (md5 is stable across
-- DuckDB versions, unlike hash()). The single writer keeps the tables consistent.

-- One row per indexed article: its stemmer ('french'..., or 'none'), length in tokens
-- (title words count double) and the article version indexed (stale ones are re-indexed).
CREATE TABLE search_docs (
    article_id BIGINT NOT NULL,
    stemmer VARCHAR NOT NULL,
    len INTEGER NOT NULL,
    version INTEGER NOT NULL
);

-- One row per (term, article): weighted term frequency; doc_len repeated to spare a join.
CREATE TABLE search_postings (
    term_key UBIGINT NOT NULL,
    article_id BIGINT NOT NULL,
    tf INTEGER NOT NULL,
    doc_len INTEGER NOT NULL
);

-- migration: 0003_views
-- The user views were created here; they now live in archive/views.sql (re-created on change).

-- migration: 0004_daemon
-- Scheduler state of each outlet, kept by the daemon (crawler/daemon.py): a restart resumes
-- the adapted interval and the back-off instead of hammering an outlet that keeps failing.
CREATE TABLE outlet_state (
    outlet VARCHAR PRIMARY KEY,
    next_run_at TIMESTAMPTZ,
    interval_seconds DOUBLE NOT NULL,  -- adapted poll interval, within the outlet's bounds
    delay_seconds DOUBLE,              -- delay applied before next_run_at (back-off included)
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    healthy BOOLEAN NOT NULL DEFAULT TRUE,
    health_reason VARCHAR,             -- why it is unhealthy, in words
    last_run_id VARCHAR,
    last_status VARCHAR,
    last_run_at TIMESTAMPTZ,
    last_new_at TIMESTAMPTZ,           -- last run that brought new articles
    updated_at TIMESTAMPTZ NOT NULL
);

-- What the daemon did that a user may need to know: starts, stops, config reloads and
-- rejected configs, outlets turning unhealthy or recovering.
CREATE TABLE daemon_events (
    event_at TIMESTAMPTZ NOT NULL,
    pid INTEGER,
    kind VARCHAR NOT NULL,             -- start | stop | config_reloaded | config_invalid | unhealthy | recovered
    outlet VARCHAR,
    message VARCHAR
);

-- migration: 0005_dedup_indexes
-- Same-outlet exact copies: without it every new article scans content_hash. lsh_bands has
-- no index on purpose: random band hashes made each ART insert and checkpoint cost seconds
-- at 100k articles; archive/dedup.py keeps a sorted in-memory copy instead.
CREATE INDEX IF NOT EXISTS articles_content_hash_idx ON articles (content_hash);

-- migration: 0006_search_stats
-- BM25 needs the number of documents and their mean length per stemmer: kept here by
-- archive/search.py with the index, so a search does not aggregate search_docs.
CREATE TABLE search_stats (
    stemmer VARCHAR PRIMARY KEY,
    docs BIGINT NOT NULL,
    total_len BIGINT NOT NULL
);
INSERT INTO search_stats
SELECT stemmer, count(*), sum(len) FROM search_docs GROUP BY stemmer;

-- migration: 0007_search_doc_ids
-- Each indexing of an article gets its own doc_id: re-indexing an edited article drops its
-- search_docs row only, and postings of the old text (found by no live doc) wait for
-- archive.search.compact_index instead of costing a scan of every posting.
CREATE SEQUENCE IF NOT EXISTS search_doc_id_seq START 1;
ALTER TABLE search_docs ADD COLUMN doc_id BIGINT;
ALTER TABLE search_postings ADD COLUMN doc_id BIGINT;
UPDATE search_docs SET doc_id = nextval('search_doc_id_seq');
UPDATE search_postings SET doc_id = d.doc_id FROM search_docs d
WHERE d.article_id = search_postings.article_id;

-- migration: 0008_paragraph_stats_key
-- paragraph_stats keyed by one column, para_key = outlet || ':' || para_hash (outlet names
-- are [a-z0-9_-]). DuckDB uses an ART index for lookups and updates on a single column
-- only: with the composite key every lookup was a scan and the ON CONFLICT upsert cost grew
-- with the table (0.38 s a transaction at 5M rows, bench/dedup_scale.py).
CREATE TABLE paragraph_stats_v2 (
    para_key VARCHAR PRIMARY KEY,
    outlet VARCHAR NOT NULL,
    para_hash VARCHAR NOT NULL,
    articles INTEGER NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    sample VARCHAR
);
INSERT INTO paragraph_stats_v2
SELECT outlet || ':' || para_hash, outlet, para_hash, articles, first_seen_at, last_seen_at, sample
FROM paragraph_stats;
DROP TABLE paragraph_stats;
ALTER TABLE paragraph_stats_v2 RENAME TO paragraph_stats;

-- migration: 0009_page_canonical_url
-- articles.canonical_url is the dedup key (our normalised URL, unique); exports promised
-- "canonical_url" and users read it as the page's own rel=canonical. Keep what the page
-- states beside the key (NULL for articles archived before this migration, or pages
-- that state none).
ALTER TABLE articles ADD COLUMN page_canonical_url VARCHAR;

-- migration: 0010_run_failures
-- One definition of a failed run, used by both views (they disagreed: outlet_activity
-- counted 'stopped' and not "errors and nothing new", outlet_status the reverse), and by
-- anyone in SQL: `SELECT * FROM crawl_runs WHERE run_failed(status, errors, articles_new,
-- articles_updated)`. A run fails when it did not end well, or had errors and brought
-- nothing (every source down ends 'ok' for Scrapy). crawler/daemon.py run_failed() is the
-- same rule for the scheduler. crawl_runs.failure says what went wrong in one line
-- ("DNS lookup failed for news.example (3 attempts)", "feed https://x/feed answered 404"),
-- recorded by crawler/failures.py during the crawl.
ALTER TABLE crawl_runs ADD COLUMN failure VARCHAR;

-- migration: 0011_search_macro
-- search_articles() was created here; it now lives in archive/views.sql.

-- migration: 0012_boilerplate_due
-- Learned boilerplate that archived articles still carry: when a paragraph becomes an
-- outlet's boilerplate (seen in enough of its articles), the articles archived before that,
-- or cleaned by a crawl that started before it, still hold it. The ingest queues the
-- paragraph here; the writer re-cleans the outlet's articles that contain it and clears the
-- row (crawler/reprocess.reclean_learned), so the first articles do not keep a pitch forever.
CREATE TABLE boilerplate_due (
    para_key VARCHAR PRIMARY KEY,
    outlet VARCHAR NOT NULL,
    para_hash VARCHAR NOT NULL,
    sample VARCHAR NOT NULL,
    due_since TIMESTAMPTZ NOT NULL
);

-- migration: 0013_spool_quarantine
-- Spool records that could not be ingested (not JSON, not an object, wrong types, too big,
-- refused by a constraint): one row each, with the reason, so one bad record blocks nothing
-- and is seen. The segment's bytes are kept as they were in <spool>/quarantine/<segment>.
CREATE TABLE spool_quarantine (
    segment VARCHAR NOT NULL,          -- file name under <spool>/quarantine/
    line INTEGER NOT NULL,             -- line number in that file
    outlet VARCHAR,
    run_id VARCHAR,
    record_id VARCHAR,
    reason VARCHAR NOT NULL,
    excerpt VARCHAR,                   -- the line's first 500 characters
    quarantined_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (segment, line)
);

-- migration: 0015_alerts
-- Alerts (issue #16): saved searches whose new matches the daemon delivers. The outbox is
-- here, in the archive, so a delivery survives a crash or a kill -9 of the daemon: a row is
-- claimed ('sending', attempts + 1) in one short session, sent outside any session, and
-- marked 'sent' (or 'pending' again with a later next_attempt_at, or 'failed' when it gave
-- up) in another. One row per (alert, channel, cluster): a syndicated copy of an article
-- already alerted joins its cluster's row (alert_matches) instead of being sent again.
CREATE SEQUENCE IF NOT EXISTS alert_delivery_id_seq START 1;

-- Where each alert is in the archive: articles with a larger id are not matched yet.
CREATE TABLE alert_state (
    alert VARCHAR PRIMARY KEY,
    watermark BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    matched_at TIMESTAMPTZ             -- the last enqueue that looked at new articles
);

CREATE TABLE alert_deliveries (
    id BIGINT PRIMARY KEY DEFAULT nextval('alert_delivery_id_seq'),  -- the webhook's Idempotency-Key
    alert VARCHAR NOT NULL,
    channel VARCHAR NOT NULL,          -- atom | webhook | email
    cluster_id BIGINT NOT NULL,        -- the syndication cluster: one delivery per cluster
    article_id BIGINT NOT NULL,        -- its first matching article
    status VARCHAR NOT NULL,           -- pending | sending | sent | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error VARCHAR,
    enqueued_at TIMESTAMPTZ NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    claimed_at TIMESTAMPTZ,
    sent_at TIMESTAMPTZ,
    UNIQUE (alert, channel, cluster_id)
);

-- Every article an alert matched, under its cluster: the copies a delivery groups.
CREATE TABLE alert_matches (
    alert VARCHAR NOT NULL,
    article_id BIGINT NOT NULL,
    cluster_id BIGINT NOT NULL,
    matched_at TIMESTAMPTZ NOT NULL,
    snippet VARCHAR,                   -- the words around the match, as the search shows them
    PRIMARY KEY (alert, article_id)
);
-- migration: 0017_archive_identity
-- A random id made once per archive: the band index file beside it (archive/bandstore.py)
-- names the archive it was built from, so a file beside a new or another archive at the
-- same path is rebuilt, never trusted.
CREATE TABLE archive_identity (
    archive_id VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO archive_identity (archive_id) SELECT uuid()::VARCHAR;

-- migration: 0018_content_key
-- Exact copies are looked up by a BIGINT key of the content hash (archive/batch.py,
-- content_key; the same expression there as CONTENT_KEY_SQL): the index on the 64-character
-- hash itself cost about 1 s of every checkpoint of 1,000 new articles at 1M articles.
ALTER TABLE articles ADD COLUMN content_key BIGINT;
UPDATE articles SET content_key = CASE WHEN regexp_full_match(content_hash[1:15], '[0-9a-fA-F]+')
    THEN ('0x' || content_hash[1:15])::BIGINT END;

-- migration: 0019_content_key_index
-- (Its own transaction: DuckDB creates no index over updates not yet committed.)
DROP INDEX IF EXISTS articles_content_hash_idx;
CREATE INDEX IF NOT EXISTS articles_content_key_idx ON articles (content_key);
