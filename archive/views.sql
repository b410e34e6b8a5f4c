-- The archive's views and macros, each defined once at its current definition (README
-- "Views"; days are UTC days). They hold no data, so they are not migrations: archive.migrations
-- re-creates all of them, in this order, whenever this file's text differs from what the
-- archive last applied (schema_views), after the migrations of archive/schema.sql. The lake
-- backend takes its user views from here too (archive/lake/schema.py).

-- One definition of a failed run, used by both outlet views and by anyone in SQL:
-- `SELECT * FROM crawl_runs WHERE run_failed(status, errors, articles_new, articles_updated)`.
-- A run fails when it did not end well, or had errors and brought nothing (every source down
-- ends 'ok' for Scrapy); crawler/scheduler's run_failed() is the same rule for the scheduler.
CREATE OR REPLACE MACRO run_failed(status, errors, articles_new, articles_updated) AS
    status IN ('failed', 'crashed', 'timeout')
    OR (status = 'ok' AND coalesce(errors, 0) > 0 AND coalesce(articles_new, 0) = 0
        AND coalesce(articles_updated, 0) = 0);

-- Every article at its current version, with when that text was fetched.
CREATE OR REPLACE VIEW article_latest AS
SELECT a.id AS article_id, a.outlet, a.url, a.canonical_url, a.title, a.authors,
       a.published_at, a.modified_at, a.date_source, a.language, a.section, a.tags,
       a.description, a.text, a.word_count, a.paywalled, a.version,
       a.version - 1 AS earlier_versions, a.cluster_id,
       coalesce(p.fetched_at, a.last_seen_at) AS text_fetched_at,
       a.first_seen_at, a.last_seen_at
FROM articles a
LEFT JOIN pages p ON p.id = a.page_id;

-- Every known text of every article: earlier versions and the current one.
CREATE OR REPLACE VIEW article_history AS
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
CREATE OR REPLACE VIEW articles_per_outlet_day AS
SELECT outlet,
       CAST(timezone('UTC', coalesce(published_at, first_seen_at)) AS DATE) AS day,
       count(*) AS articles,
       count(*) FILTER (WHERE published_at IS NULL) AS undated,
       count(*) FILTER (WHERE paywalled) AS paywalled,
       CAST(round(avg(word_count)) AS INTEGER) AS avg_words
FROM articles
GROUP BY ALL;

-- One row per near-duplicate cluster: who published first, who copied.
CREATE OR REPLACE VIEW syndication AS
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
CREATE OR REPLACE VIEW syndication_copies AS
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
CREATE OR REPLACE VIEW removed_promotions AS
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

-- Pages fetched per outlet in the last 24 hours, with how many failed (HTTP errors and
-- downloads that did not complete) and how many held no article text: one definition for
-- both outlet views below.
CREATE OR REPLACE VIEW outlet_pages_24h AS
SELECT outlet,
       count(*) AS pages_24h,
       count(*) FILTER (WHERE status >= 400 OR skip_reason = 'download_error'
                        OR starts_with(skip_reason, 'http_')) AS errors_24h,
       count(*) FILTER (WHERE skip_reason = 'empty_extraction') AS empty_24h
FROM pages WHERE fetched_at >= now() - INTERVAL 24 HOUR GROUP BY outlet;

-- Health of each outlet: runs, last success, last 24 hours of pages and articles.
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
LEFT JOIN outlet_pages_24h pg ON pg.outlet = o.outlet;

-- One row per outlet: last run and its figures, next run, 24-hour rates, health.
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
LEFT JOIN outlet_pages_24h pg ON pg.outlet = n.outlet;

-- What `mediawatch status` shows of it: per outlet, how many and the latest reason.
CREATE OR REPLACE VIEW quarantine_per_outlet AS
SELECT outlet, count(*) AS records, arg_max(reason, quarantined_at) AS last_reason,
       max(quarantined_at) AS last_at
FROM spool_quarantine
GROUP BY outlet;

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
