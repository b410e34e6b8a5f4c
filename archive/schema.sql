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
