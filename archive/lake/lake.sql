-- The lake's tables (DuckLake, Parquet data): append-only, mirroring archive/schema.sql.
-- What the file backend updates in place is a log here, read through a latest-wins view:
-- article_texts (every version of every article) -> articles, article_versions;
-- article_sightings -> articles.last_seen_at; cluster_members / cluster_heads -> cluster_id,
-- clusters; crawl_run_log -> crawl_runs; outlet_state_log -> outlet_state; removed_block_log
-- and recleans -> removed_blocks. A re-clean (archive/lake/reclean.py) appends a text of the
-- same article and version with a later recorded_at, its removed blocks and a recleans row.
CREATE TABLE IF NOT EXISTS pages (
    id BIGINT NOT NULL, record_id VARCHAR NOT NULL, run_id VARCHAR, outlet VARCHAR NOT NULL,
    url VARCHAR NOT NULL, final_url VARCHAR, status INTEGER, content_type VARCHAR,
    fetched_at TIMESTAMPTZ NOT NULL, size_bytes BIGINT, html_gz BLOB, article_id BIGINT,
    skip_reason VARCHAR, detail VARCHAR
);

CREATE TABLE IF NOT EXISTS article_texts (
    article_id BIGINT NOT NULL, version INTEGER NOT NULL, outlet VARCHAR NOT NULL, url VARCHAR NOT NULL,
    canonical_url VARCHAR NOT NULL, page_canonical_url VARCHAR, title VARCHAR, authors VARCHAR[],
    published_at TIMESTAMPTZ, modified_at TIMESTAMPTZ, date_source VARCHAR, language VARCHAR,
    section VARCHAR, tags VARCHAR[], description VARCHAR, summary VARCHAR, image_url VARCHAR,
    site_name VARCHAR, text VARCHAR, word_count INTEGER, paywalled BOOLEAN, promo_flagged BOOLEAN,
    content_hash VARCHAR, feed_title VARCHAR, feed_published_at TIMESTAMPTZ, discovered_via VARCHAR,
    cross_site_canonical VARCHAR, extractor_version VARCHAR, page_id BIGINT,
    fetched_at TIMESTAMPTZ,            -- when this version's text was fetched
    first_seen_at TIMESTAMPTZ NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS article_sightings (
    article_id BIGINT NOT NULL, seen_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS article_urls (
    url VARCHAR NOT NULL, article_id BIGINT NOT NULL, kind VARCHAR NOT NULL, first_seen_at TIMESTAMPTZ NOT NULL
);

-- cleaned_at: NULL for the ingest's cleaning, the recleaned_at of the re-clean that removed them.
CREATE TABLE IF NOT EXISTS removed_block_log (
    article_id BIGINT NOT NULL, version INTEGER NOT NULL, position INTEGER NOT NULL,
    kind VARCHAR NOT NULL, rule VARCHAR NOT NULL, text VARCHAR NOT NULL, cleaned_at TIMESTAMPTZ
);

-- One row per article version a re-clean rewrote (`mediawatch reprocess`), in the lake
-- transaction of its batch: the record of the re-clean and its commit marker.
CREATE TABLE IF NOT EXISTS recleans (
    article_id BIGINT NOT NULL, version INTEGER NOT NULL, batch VARCHAR NOT NULL,
    content_hash VARCHAR, extractor_version VARCHAR, recleaned_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS duplicate_links (
    article_id BIGINT NOT NULL, matched_article_id BIGINT NOT NULL, level VARCHAR NOT NULL,
    score DOUBLE, reason VARCHAR, decided_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS cluster_members (
    article_id BIGINT NOT NULL, cluster_id BIGINT NOT NULL, decided_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS cluster_heads (
    cluster_id BIGINT NOT NULL, first_article_id BIGINT NOT NULL, first_published_at TIMESTAMPTZ,
    size INTEGER NOT NULL, decided_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS lsh_bands (
    band SMALLINT NOT NULL, hash UBIGINT NOT NULL, article_id BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS crawl_run_log (
    run_id VARCHAR NOT NULL, outlet VARCHAR NOT NULL, started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ, status VARCHAR NOT NULL, requests INTEGER, responses JSON,
    articles_new INTEGER, articles_updated INTEGER, skipped JSON, errors INTEGER, message VARCHAR,
    failure VARCHAR, recorded_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS outlet_state_log (
    outlet VARCHAR NOT NULL, next_run_at TIMESTAMPTZ, interval_seconds DOUBLE NOT NULL,
    delay_seconds DOUBLE, consecutive_failures INTEGER NOT NULL, healthy BOOLEAN NOT NULL,
    health_reason VARCHAR, last_run_id VARCHAR, last_status VARCHAR, last_run_at TIMESTAMPTZ,
    last_new_at TIMESTAMPTZ, updated_at TIMESTAMPTZ NOT NULL, recorded_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS daemon_events (
    event_at TIMESTAMPTZ NOT NULL, pid INTEGER, kind VARCHAR NOT NULL, outlet VARCHAR, message VARCHAR
);

CREATE TABLE IF NOT EXISTS spool_quarantine (
    segment VARCHAR NOT NULL, line INTEGER NOT NULL, outlet VARCHAR, run_id VARCHAR, record_id VARCHAR,
    reason VARCHAR NOT NULL, excerpt VARCHAR, quarantined_at TIMESTAMPTZ NOT NULL
);

-- One row per committed ingest batch, in the batch's own lake transaction: the commit marker
-- a writer reads to settle the PostgreSQL claims of a batch whose owner died (ingest.py).
CREATE TABLE IF NOT EXISTS ingest_batches (
    batch VARCHAR NOT NULL, owner VARCHAR NOT NULL, records INTEGER NOT NULL, counts JSON,
    committed_at TIMESTAMPTZ NOT NULL
);

-- The current state, as the file backend's tables of the same names.
CREATE OR REPLACE VIEW articles AS
WITH cur AS (
    SELECT * FROM article_texts
    QUALIFY row_number() OVER (PARTITION BY article_id ORDER BY version DESC, recorded_at DESC) = 1
),
seen AS (SELECT article_id, max(seen_at) AS last_seen_at FROM article_sightings GROUP BY article_id),
cl AS (SELECT article_id, arg_max(cluster_id, decided_at) AS cluster_id FROM cluster_members GROUP BY article_id)
SELECT c.article_id AS id, c.outlet, c.url, c.canonical_url, c.title, c.authors, c.published_at,
       c.modified_at, c.date_source, c.language, c.section, c.tags, c.description, c.summary,
       c.image_url, c.site_name, c.text, c.word_count, c.paywalled, c.promo_flagged, c.content_hash,
       c.feed_title, c.feed_published_at, c.discovered_via, c.cross_site_canonical, cl.cluster_id,
       c.version, c.extractor_version, c.page_id, c.first_seen_at,
       greatest(c.first_seen_at, coalesce(s.last_seen_at, c.first_seen_at)) AS last_seen_at,
       c.page_canonical_url,
       -- the file's exact-copy lookup key (archive/batch.py CONTENT_KEY_SQL), for the same columns
       CASE WHEN regexp_full_match(content_hash[1:15], '[0-9a-fA-F]+')
           THEN ('0x' || content_hash[1:15])::BIGINT END AS content_key
FROM cur c
LEFT JOIN seen s ON s.article_id = c.article_id
LEFT JOIN cl ON cl.article_id = c.article_id;

-- Earlier texts of articles that changed (the file backend's article_versions), each at its
-- newest cleaning.
CREATE OR REPLACE VIEW article_versions AS
SELECT t.article_id, t.version, t.title, t.text, t.content_hash, t.fetched_at, t.page_id
FROM article_texts t
WHERE t.version < (SELECT max(m.version) FROM article_texts m WHERE m.article_id = t.article_id)
QUALIFY row_number() OVER (PARTITION BY t.article_id, t.version ORDER BY t.recorded_at DESC) = 1;

-- The blocks the newest cleaning of each article version removed: the ingest's, or those of
-- its latest re-clean (which may have removed none).
CREATE OR REPLACE VIEW removed_blocks AS
SELECT b.article_id, b.version, b.position, b.kind, b.rule, b.text
FROM removed_block_log b
LEFT JOIN (SELECT article_id, version, max(recleaned_at) AS at FROM recleans GROUP BY ALL) r
       ON r.article_id = b.article_id AND r.version = b.version
WHERE b.cleaned_at IS NOT DISTINCT FROM r.at;

-- A cluster only grows, so its current head is its largest (decided_at breaks a tie a migrated
-- row may make); decided_at alone would follow the writers' clocks and the records' dates.
CREATE OR REPLACE VIEW clusters AS
SELECT cluster_id, arg_max(first_article_id, (size, decided_at)) AS first_article_id,
       arg_max(first_published_at, (size, decided_at)) AS first_published_at, max(size) AS size
FROM cluster_heads GROUP BY cluster_id;

CREATE OR REPLACE VIEW crawl_runs AS
SELECT * EXCLUDE (recorded_at) FROM crawl_run_log
QUALIFY row_number() OVER (PARTITION BY run_id, outlet ORDER BY recorded_at DESC) = 1;

CREATE OR REPLACE VIEW outlet_state AS
SELECT * EXCLUDE (recorded_at) FROM outlet_state_log
QUALIFY row_number() OVER (PARTITION BY outlet ORDER BY recorded_at DESC) = 1;

-- The file backend's search tables (fts postings, stats) are not on a lake: its index is
-- PostgreSQL's text search (archive/lake/search.py). The views a query might name say so,
-- instead of "no such table" or an empty answer.
CREATE OR REPLACE VIEW search_stats AS
SELECT error('the search tables of the file backend are not on a lake; search it with '
             || 'mediawatch search --db URL (PostgreSQL text search)')::VARCHAR AS stemmer,
       error('the search tables are not on a lake')::BIGINT AS docs,
       error('the search tables are not on a lake')::BIGINT AS total_len;
