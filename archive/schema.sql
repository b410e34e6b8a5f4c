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
-- Views for users (README "Views"). Days are UTC days.

-- Every article at its current version, with when that text was fetched.
CREATE VIEW article_latest AS
SELECT a.id AS article_id, a.outlet, a.url, a.canonical_url, a.title, a.authors,
       a.published_at, a.modified_at, a.date_source, a.language, a.section, a.tags,
       a.description, a.text, a.word_count, a.paywalled, a.version,
       a.version - 1 AS earlier_versions, a.cluster_id,
       coalesce(p.fetched_at, a.last_seen_at) AS text_fetched_at,
       a.first_seen_at, a.last_seen_at
FROM articles a
LEFT JOIN pages p ON p.id = a.page_id;

-- Every known text of every article: earlier versions and the current one.
CREATE VIEW article_history AS
SELECT v.article_id, v.version, v.title, v.text, v.content_hash, v.fetched_at, v.page_id,
       FALSE AS is_latest
FROM article_versions v
WHERE NOT EXISTS (SELECT 1 FROM articles a WHERE a.id = v.article_id AND a.version = v.version)
UNION ALL
SELECT a.id, a.version, a.title, a.text, a.content_hash,
       coalesce(p.fetched_at, a.last_seen_at), a.page_id, TRUE
FROM articles a
LEFT JOIN pages p ON p.id = a.page_id;

-- Articles per outlet and UTC day of publication (first_seen_at when undated).
CREATE VIEW articles_per_outlet_day AS
SELECT outlet,
       CAST(timezone('UTC', coalesce(published_at, first_seen_at)) AS DATE) AS day,
       count(*) AS articles,
       count(*) FILTER (WHERE published_at IS NULL) AS undated,
       count(*) FILTER (WHERE paywalled) AS paywalled,
       CAST(round(avg(word_count)) AS INTEGER) AS avg_words
FROM articles
GROUP BY ALL;

-- One row per near-duplicate cluster: who published first, who copied.
CREATE VIEW syndication AS
SELECT c.cluster_id, c.size, c.first_article_id,
       f.outlet AS first_outlet, f.title AS first_title, f.url AS first_url,
       coalesce(c.first_published_at, f.published_at) AS first_published_at,
       m.articles, m.outlet_count, m.outlets, m.last_published_at
FROM clusters c
LEFT JOIN articles f ON f.id = c.first_article_id
LEFT JOIN (
    SELECT cluster_id, count(*) AS articles, count(DISTINCT outlet) AS outlet_count,
           list_sort(list_distinct(list(outlet))) AS outlets,
           max(published_at) AS last_published_at
    FROM articles
    WHERE cluster_id IS NOT NULL
    GROUP BY cluster_id
) m ON m.cluster_id = c.cluster_id;

-- One row per article of a cluster, with its delay after the first and the dedup decision.
CREATE VIEW syndication_copies AS
SELECT a.cluster_id, a.id AS article_id, a.outlet, a.url, a.title, a.published_at,
       a.id = c.first_article_id AS is_first,
       a.published_at - coalesce(c.first_published_at, f.published_at) AS delay,
       l.matched_article_id, l.level, l.score, l.reason
FROM articles a
JOIN clusters c ON c.cluster_id = a.cluster_id
LEFT JOIN articles f ON f.id = c.first_article_id
LEFT JOIN (
    SELECT article_id,
           arg_max(matched_article_id, decided_at) AS matched_article_id,
           arg_max(level, decided_at) AS level,
           arg_max(score, decided_at) AS score,
           arg_max(reason, decided_at) AS reason
    FROM duplicate_links
    WHERE level <> 'version'
    GROUP BY article_id
) l ON l.article_id = a.id;

-- Promotional blocks removed from the current version of articles, per outlet and rule.
CREATE VIEW removed_promotions AS
SELECT a.outlet, r.kind, r.rule,
       count(*) AS blocks,
       count(DISTINCT r.article_id) AS articles,
       round(count(DISTINCT r.article_id) / any_value(o.articles), 4) AS article_share,
       max(a.first_seen_at) AS last_seen_at,
       any_value(left(r.text, 200)) AS sample
FROM removed_blocks r
JOIN articles a ON a.id = r.article_id AND a.version = r.version
JOIN (SELECT outlet, count(*) AS articles FROM articles GROUP BY outlet) o ON o.outlet = a.outlet
GROUP BY a.outlet, r.kind, r.rule;

-- Health of each outlet: runs, last success, last 24 hours of pages and articles.
CREATE VIEW outlet_activity AS
WITH outlets AS (
    SELECT outlet FROM crawl_runs UNION SELECT outlet FROM articles UNION SELECT outlet FROM pages
),
runs AS (
    SELECT outlet,
           max(started_at) AS last_run_at,
           arg_max(status, started_at) AS last_run_status,
           max(coalesce(finished_at, started_at)) FILTER (WHERE status = 'ok') AS last_success_at,
           count(*) FILTER (WHERE started_at >= now() - INTERVAL 24 HOUR) AS runs_24h,
           count(*) FILTER (WHERE started_at >= now() - INTERVAL 24 HOUR
                            AND status NOT IN ('ok', 'running')) AS failed_runs_24h
    FROM crawl_runs GROUP BY outlet
),
arts AS (
    SELECT outlet,
           count(*) AS articles_total,
           count(*) FILTER (WHERE first_seen_at >= now() - INTERVAL 24 HOUR) AS articles_24h,
           count(*) FILTER (WHERE first_seen_at >= now() - INTERVAL 24 HOUR
                            AND published_at IS NULL) AS undated_24h,
           max(first_seen_at) AS last_article_at
    FROM articles GROUP BY outlet
),
pg AS (
    SELECT outlet,
           count(*) AS pages_24h,
           count(*) FILTER (WHERE status >= 400 OR skip_reason = 'download_error'
                            OR starts_with(skip_reason, 'http_')) AS errors_24h,
           count(*) FILTER (WHERE skip_reason = 'empty_extraction') AS empty_24h
    FROM pages WHERE fetched_at >= now() - INTERVAL 24 HOUR GROUP BY outlet
)
SELECT o.outlet, r.last_run_at, r.last_run_status, r.last_success_at,
       coalesce(r.runs_24h, 0) AS runs_24h, coalesce(r.failed_runs_24h, 0) AS failed_runs_24h,
       coalesce(a.articles_24h, 0) AS articles_24h, coalesce(a.articles_total, 0) AS articles_total,
       a.last_article_at,
       coalesce(pg.pages_24h, 0) AS pages_24h,
       round(pg.errors_24h / nullif(pg.pages_24h, 0), 4) AS error_rate_24h,
       round(pg.empty_24h / nullif(pg.pages_24h - pg.errors_24h, 0), 4) AS empty_extraction_rate_24h,
       round(a.undated_24h / nullif(a.articles_24h, 0), 4) AS missing_date_rate_24h
FROM outlets o
LEFT JOIN runs r ON r.outlet = o.outlet
LEFT JOIN arts a ON a.outlet = o.outlet
LEFT JOIN pg ON pg.outlet = o.outlet;

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

-- One row per outlet: last run and its figures, next run, 24-hour rates, health.
-- A run fails when it did not end ok, or when it had errors and brought nothing
-- (every source down looks like that).
CREATE VIEW outlet_status AS
WITH names AS (
    SELECT outlet FROM outlet_state UNION SELECT outlet FROM crawl_runs UNION SELECT outlet FROM articles
),
last_run AS (
    SELECT * FROM crawl_runs
    QUALIFY row_number() OVER (PARTITION BY outlet ORDER BY started_at DESC) = 1
),
runs AS (
    SELECT outlet,
           count(*) AS runs_24h,
           count(*) FILTER (WHERE status IN ('failed', 'crashed', 'timeout')
                            OR (status = 'ok' AND errors > 0 AND articles_new = 0
                                AND articles_updated = 0)) AS failed_runs_24h
    FROM crawl_runs
    WHERE started_at >= now() - INTERVAL 24 HOUR AND status <> 'running'
    GROUP BY outlet
),
arts AS (
    SELECT outlet,
           count(*) FILTER (WHERE first_seen_at >= now() - INTERVAL 24 HOUR) AS articles_24h,
           count(*) AS articles_total,
           max(first_seen_at) AS last_article_at
    FROM articles GROUP BY outlet
),
pg AS (
    SELECT outlet,
           count(*) AS pages_24h,
           count(*) FILTER (WHERE status >= 400 OR skip_reason = 'download_error'
                            OR starts_with(skip_reason, 'http_')) AS errors_24h,
           count(*) FILTER (WHERE skip_reason = 'empty_extraction') AS empty_24h
    FROM pages WHERE fetched_at >= now() - INTERVAL 24 HOUR GROUP BY outlet
)
SELECT n.outlet,
       lr.run_id AS last_run_id, lr.started_at AS last_run_at, lr.finished_at AS last_run_finished_at,
       lr.status AS last_run_status, lr.requests AS last_run_requests,
       lr.articles_new AS last_run_new, lr.articles_updated AS last_run_updated,
       lr.errors AS last_run_errors,
       round(epoch(lr.finished_at - lr.started_at), 2) AS last_run_seconds,
       s.next_run_at, s.interval_seconds, s.delay_seconds,
       coalesce(s.consecutive_failures, 0) AS consecutive_failures,
       s.healthy, s.health_reason,
       coalesce(r.runs_24h, 0) AS runs_24h, coalesce(r.failed_runs_24h, 0) AS failed_runs_24h,
       round(r.failed_runs_24h / nullif(r.runs_24h, 0), 4) AS run_failure_rate_24h,
       coalesce(a.articles_24h, 0) AS articles_24h, coalesce(a.articles_total, 0) AS articles_total,
       coalesce(pg.pages_24h, 0) AS pages_24h,
       round(pg.errors_24h / nullif(pg.pages_24h, 0), 4) AS error_rate_24h,
       round(pg.empty_24h / nullif(pg.pages_24h - pg.errors_24h, 0), 4) AS empty_extraction_rate_24h,
       a.last_article_at,
       round(epoch(now() - a.last_article_at) / 86400, 3) AS days_since_new_article
FROM names n
LEFT JOIN last_run lr ON lr.outlet = n.outlet
LEFT JOIN outlet_state s ON s.outlet = n.outlet
LEFT JOIN runs r ON r.outlet = n.outlet
LEFT JOIN arts a ON a.outlet = n.outlet
LEFT JOIN pg ON pg.outlet = n.outlet;

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
CREATE OR REPLACE MACRO run_failed(status, errors, articles_new, articles_updated) AS
    status IN ('failed', 'crashed', 'timeout')
    OR (status = 'ok' AND coalesce(errors, 0) > 0 AND coalesce(articles_new, 0) = 0
        AND coalesce(articles_updated, 0) = 0);
CREATE OR REPLACE VIEW outlet_activity AS
WITH outlets AS (
    SELECT outlet FROM crawl_runs UNION SELECT outlet FROM articles UNION SELECT outlet FROM pages
),
runs AS (
    SELECT outlet,
           max(started_at) AS last_run_at,
           arg_max(status, started_at) AS last_run_status,
           max(coalesce(finished_at, started_at)) FILTER (
               WHERE status = 'ok' AND NOT run_failed(status, errors, articles_new, articles_updated)) AS last_success_at,
           count(*) FILTER (WHERE started_at >= now() - INTERVAL 24 HOUR AND status <> 'running') AS runs_24h,
           count(*) FILTER (WHERE started_at >= now() - INTERVAL 24 HOUR
                            AND run_failed(status, errors, articles_new, articles_updated)) AS failed_runs_24h
    FROM crawl_runs GROUP BY outlet
),
arts AS (
    SELECT outlet,
           count(*) AS articles_total,
           count(*) FILTER (WHERE first_seen_at >= now() - INTERVAL 24 HOUR) AS articles_24h,
           count(*) FILTER (WHERE first_seen_at >= now() - INTERVAL 24 HOUR
                            AND published_at IS NULL) AS undated_24h,
           max(first_seen_at) AS last_article_at
    FROM articles GROUP BY outlet
),
pg AS (
    SELECT outlet,
           count(*) AS pages_24h,
           count(*) FILTER (WHERE status >= 400 OR skip_reason = 'download_error'
                            OR starts_with(skip_reason, 'http_')) AS errors_24h,
           count(*) FILTER (WHERE skip_reason = 'empty_extraction') AS empty_24h
    FROM pages WHERE fetched_at >= now() - INTERVAL 24 HOUR GROUP BY outlet
)
SELECT o.outlet, r.last_run_at, r.last_run_status, r.last_success_at,
       coalesce(r.runs_24h, 0) AS runs_24h, coalesce(r.failed_runs_24h, 0) AS failed_runs_24h,
       coalesce(a.articles_24h, 0) AS articles_24h, coalesce(a.articles_total, 0) AS articles_total,
       a.last_article_at,
       coalesce(pg.pages_24h, 0) AS pages_24h,
       round(pg.errors_24h / nullif(pg.pages_24h, 0), 4) AS error_rate_24h,
       round(pg.empty_24h / nullif(pg.pages_24h - pg.errors_24h, 0), 4) AS empty_extraction_rate_24h,
       round(a.undated_24h / nullif(a.articles_24h, 0), 4) AS missing_date_rate_24h
FROM outlets o
LEFT JOIN runs r ON r.outlet = o.outlet
LEFT JOIN arts a ON a.outlet = o.outlet
LEFT JOIN pg ON pg.outlet = o.outlet;

CREATE OR REPLACE VIEW outlet_status AS
WITH names AS (
    SELECT outlet FROM outlet_state UNION SELECT outlet FROM crawl_runs UNION SELECT outlet FROM articles
),
last_run AS (
    SELECT * FROM crawl_runs
    QUALIFY row_number() OVER (PARTITION BY outlet ORDER BY started_at DESC) = 1
),
runs AS (
    SELECT outlet,
           count(*) AS runs_24h,
           count(*) FILTER (WHERE run_failed(status, errors, articles_new, articles_updated)) AS failed_runs_24h
    FROM crawl_runs
    WHERE started_at >= now() - INTERVAL 24 HOUR AND status <> 'running'
    GROUP BY outlet
),
arts AS (
    SELECT outlet,
           count(*) FILTER (WHERE first_seen_at >= now() - INTERVAL 24 HOUR) AS articles_24h,
           count(*) AS articles_total,
           max(first_seen_at) AS last_article_at
    FROM articles GROUP BY outlet
),
pg AS (
    SELECT outlet,
           count(*) AS pages_24h,
           count(*) FILTER (WHERE status >= 400 OR skip_reason = 'download_error'
                            OR starts_with(skip_reason, 'http_')) AS errors_24h,
           count(*) FILTER (WHERE skip_reason = 'empty_extraction') AS empty_24h
    FROM pages WHERE fetched_at >= now() - INTERVAL 24 HOUR GROUP BY outlet
)
SELECT n.outlet,
       lr.run_id AS last_run_id, lr.started_at AS last_run_at, lr.finished_at AS last_run_finished_at,
       lr.status AS last_run_status, lr.requests AS last_run_requests,
       lr.articles_new AS last_run_new, lr.articles_updated AS last_run_updated,
       lr.errors AS last_run_errors,
       round(epoch(lr.finished_at - lr.started_at), 2) AS last_run_seconds,
       s.next_run_at, s.interval_seconds, s.delay_seconds,
       coalesce(s.consecutive_failures, 0) AS consecutive_failures,
       s.healthy, s.health_reason,
       coalesce(r.runs_24h, 0) AS runs_24h, coalesce(r.failed_runs_24h, 0) AS failed_runs_24h,
       round(r.failed_runs_24h / nullif(r.runs_24h, 0), 4) AS run_failure_rate_24h,
       coalesce(a.articles_24h, 0) AS articles_24h, coalesce(a.articles_total, 0) AS articles_total,
       coalesce(pg.pages_24h, 0) AS pages_24h,
       round(pg.errors_24h / nullif(pg.pages_24h, 0), 4) AS error_rate_24h,
       round(pg.empty_24h / nullif(pg.pages_24h - pg.errors_24h, 0), 4) AS empty_extraction_rate_24h,
       a.last_article_at,
       round(epoch(now() - a.last_article_at) / 86400, 3) AS days_since_new_article,
       run_failed(lr.status, lr.errors, lr.articles_new, lr.articles_updated) AS last_run_failed,
       CASE WHEN run_failed(lr.status, lr.errors, lr.articles_new, lr.articles_updated)
            THEN coalesce(lr.failure, CASE WHEN lr.status <> 'ok' THEN lr.message END,
                          lr.errors || ' errors, nothing new') END AS last_run_failure
FROM names n
LEFT JOIN last_run lr ON lr.outlet = n.outlet
LEFT JOIN outlet_state s ON s.outlet = n.outlet
LEFT JOIN runs r ON r.outlet = n.outlet
LEFT JOIN arts a ON a.outlet = n.outlet
LEFT JOIN pg ON pg.outlet = n.outlet;
-- migration: 0011_search_macro
-- Ranked search from SQL: `SELECT * FROM search_articles('"élections municipales" -paris trum*')`,
-- the same syntax and BM25 scores as `mediawatch search` (archive/search.py), so a question
-- like hits per day is one statement. Needs the fts extension's stem() (mediawatch query
-- loads it when the statement names search_articles). Syntax: words are OR-ed and ranked;
-- "a phrase" must appear as written (accents and case aside); +word and `a AND b` are
-- required; -word is excluded; pre* requires a word starting with pre; OR is the default.
CREATE OR REPLACE MACRO search_articles(q) AS TABLE
WITH src AS (
    SELECT regexp_extract_all(coalesce(q, ''), '"([^"]*)"', 1) AS phrases,
           list_filter(string_split_regex(trim(regexp_replace(coalesce(q, ''), '"[^"]*"?', ' ', 'g')), '\s+'),
                       x -> x <> '') AS toks
),
items AS (
    SELECT unnest(list_transform(toks, (x, i) -> {'tok': x, 'role':
        CASE WHEN x IN ('AND', 'OR') THEN 'op'
             WHEN starts_with(x, '-') AND length(x) > 1 THEN 'excluded'
             WHEN ends_with(x, '*') AND length(x) > 1 THEN 'prefix'
             WHEN starts_with(x, '+') OR coalesce(list_extract(toks, i - 1), '') = 'AND'
                  OR coalesce(list_extract(toks, i + 1), '') = 'AND' THEN 'required'
             ELSE 'optional' END})) AS it
    FROM src
    UNION ALL
    SELECT {'tok': unnest(phrases), 'role': 'phrase'} FROM src
),
words AS (
    SELECT w, bool_or(role IN ('required', 'phrase')) AS req, bool_or(role = 'excluded') AS excl,
           bool_or(role IN ('optional', 'required', 'phrase')) AS pos
    FROM (SELECT it.role AS role,
                 unnest(regexp_split_to_array(lower(regexp_replace(it.tok, '^[+-]+|[*]+$', '', 'g')),
                                              '[^\p{L}\p{N}]+')) AS w
          FROM items WHERE it.role NOT IN ('op', 'prefix'))
    WHERE length(w) BETWEEN 2 AND 40
    GROUP BY w
),
prefixes AS (
    SELECT list(DISTINCT strip_accents(lower(regexp_replace(it.tok, '[^\p{L}\p{N}]', '', 'g')))) AS l
    FROM items WHERE it.role = 'prefix' AND length(regexp_replace(it.tok, '[^\p{L}\p{N}]', '', 'g')) > 0
),
phrase_res AS (
    SELECT list('(^|[^\p{L}\p{N}])' || array_to_string(ws, '[^\p{L}\p{N}]+') || '($|[^\p{L}\p{N}])') AS l
    FROM (SELECT list_filter(regexp_split_to_array(strip_accents(lower(ph)), '[^\p{L}\p{N}]+'), x -> x <> '') AS ws
          FROM (SELECT unnest(phrases) AS ph FROM src))
    WHERE len(ws) > 0
),
stemmers AS (
    SELECT stemmer, docs AS n, total_len / docs AS avgdl FROM search_stats WHERE docs > 0
),
qt AS (
    SELECT DISTINCT CAST(md5_number(s.stemmer || ':' || strip_accents(stem(w.w, s.stemmer))) >> 64 AS UBIGINT)
               AS term_key, w.w, w.req, w.excl, w.pos
    FROM words w CROSS JOIN stemmers s
),
p AS MATERIALIZED (
    SELECT qt.term_key, qt.w, qt.req, d.article_id, d.stemmer, sp.tf, sp.doc_len
    FROM qt JOIN search_postings sp ON sp.term_key = qt.term_key
    JOIN search_docs d ON d.doc_id = sp.doc_id
    WHERE qt.pos
),
df AS (SELECT term_key, count(*) AS df FROM p GROUP BY term_key),
scored AS (
    SELECT p.article_id,
           sum(ln(1 + (st.n - df.df + 0.5) / (df.df + 0.5)) * p.tf * (1.2 + 1)
               / (p.tf + 1.2 * (1 - 0.75 + 0.75 * p.doc_len / st.avgdl))) AS score,
           count(DISTINCT p.w) FILTER (WHERE p.req) AS req_hits
    FROM p JOIN df USING (term_key) JOIN stemmers st USING (stemmer)
    GROUP BY p.article_id
),
cand AS (
    SELECT article_id, score, req_hits FROM scored
    UNION ALL  -- only prefixes (trum*): every article is a candidate, ranked by how often it matches
    SELECT id, NULL, 0 FROM articles
    WHERE NOT EXISTS (SELECT 1 FROM words WHERE pos) AND EXISTS (SELECT 1 FROM prefixes WHERE len(l) > 0)
),
excluded AS (
    SELECT DISTINCT d.article_id FROM qt JOIN search_postings sp ON sp.term_key = qt.term_key
    JOIN search_docs d ON d.doc_id = sp.doc_id WHERE qt.excl
)
SELECT c.article_id, a.outlet, a.published_at, a.language, a.title, a.url,
       round(coalesce(c.score, len(regexp_extract_all(strip_accents(lower(coalesce(a.title, '') || ' ' || coalesce(a.text, ''))),
                                   '(^|[^\p{L}\p{N}])(' || array_to_string((SELECT l FROM prefixes), '|') || ')'))), 4) AS score
FROM cand c JOIN articles a ON a.id = c.article_id
WHERE c.req_hits = (SELECT count(*) FROM words WHERE req)
  AND c.article_id NOT IN (SELECT article_id FROM excluded)
  AND list_bool_and(list_transform(coalesce((SELECT l FROM phrase_res), []), r ->
        regexp_matches(strip_accents(lower(coalesce(a.title, '') || ' ' || coalesce(a.text, ''))), r)) || [true])
  AND list_bool_and(list_transform(coalesce((SELECT l FROM prefixes), []), x ->
        regexp_matches(strip_accents(lower(coalesce(a.title, '') || ' ' || coalesce(a.text, ''))),
                       '(^|[^\p{L}\p{N}])' || x)) || [true]);

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

-- What `mediawatch status` shows of it: per outlet, how many and the latest reason.
CREATE VIEW quarantine_per_outlet AS
SELECT outlet, count(*) AS records, arg_max(reason, quarantined_at) AS last_reason,
       max(quarantined_at) AS last_at
FROM spool_quarantine
GROUP BY outlet;

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
