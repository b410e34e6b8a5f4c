"""Scrapy settings for mediawatch: constants, and one knob from the environment. Per-outlet
values (delay, concurrency, user agent) are applied by the spider's from_crawler from the
outlet config."""

import os

from archive.db import DEFAULT_ARCHIVE

BOT_NAME = "mediawatch"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

# An honest user agent with a contact URL; operators override it with `user_agent` in the config.
USER_AGENT = "mediawatch/0.1 (press-monitoring archive; +https://pypi.org/project/mediawatch/)"

ROBOTSTXT_OBEY = True
ROBOTSTXT_PARSER = "scrapy.robotstxt.ProtegoRobotParser"

# Politeness: AutoThrottle adapts the delay to the server's latency; it ignores 429,
# which crawler.middlewares.RetryAfterMiddleware handles.
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
CONCURRENT_REQUESTS = 32
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 1.0

DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 10 * 1024 * 1024  # a page over 10 MB is recorded as too_large, not archived
DOWNLOAD_WARNSIZE = 4 * 1024 * 1024
REDIRECT_MAX_TIMES = 10
RETRY_ENABLED = True
RETRY_TIMES = 2
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408]
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = (
    False  # Scrapy 2.19 opens a control port by default: not on a monitoring daemon
)
DNS_TIMEOUT = 20
# Scrapy starts CONCURRENT_ITEMS asyncio tasks for every response (default 100); an article
# response yields one item and cleaning is bounded by the pool's slots anyway, so 100 tasks
# a page were pure reactor overhead (about 1 ms of the crawl process's CPU a page).
CONCURRENT_ITEMS = 4
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
LOG_LEVEL = "INFO"

# Scrapy's HTTP/1.1 handler plus what it lacks: bounded response headers (DOWNLOAD_MAXSIZE
# covers bodies only) and a check of the connected address before anything is sent.
DOWNLOAD_HANDLERS = {
    "http": "crawler.nethandler.GuardedHTTP11DownloadHandler",
    "https": "crawler.nethandler.GuardedHTTP11DownloadHandler",
}
MEDIAWATCH_MAX_HEADER_BYTES = 256 * 1024  # status line + header lines of one response
MEDIAWATCH_MAX_HEADERS = 200  # header lines of one response
# Loopback, private, link-local and multicast peers are refused unless the outlet's own
# configured URLs resolve there or its allow_networks lists them (crawler/netpolicy.py).
MEDIAWATCH_REFUSE_PRIVATE_ADDRESSES = True

# The crawl's memory as a whole: over the budget, Scrapy's MemoryUsage extension closes the
# spider with finish_reason "memusage_exceeded", which the run record (crawl_runs.message)
# keeps; the daemon goes on with its other outlets.
MEMUSAGE_ENABLED = True
MEMUSAGE_LIMIT_MB = 2048
MEMUSAGE_CHECK_INTERVAL_SECONDS = 2.0

DOWNLOADER_MIDDLEWARES = {
    # robots.txt over DOWNLOAD_MAXSIZE is "Disallow: /" for the run, not "allow all".
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawler.middlewares.BoundedRobotsTxtMiddleware": 100,
    # First of all (before robots.txt and Scrapy's offsite filter, which lets dont_filter
    # requests and meta refreshes through): nothing leaves the outlet's domains.
    "crawler.middlewares.OffsiteGuardMiddleware": 40,
    # Above RetryMiddleware (550): responses travel from high numbers to low, so a 429 or a
    # 503 with Retry-After reaches us first and waits instead of burning immediate retries.
    "crawler.middlewares.RetryAfterMiddleware": 560,
    # Records redirects that leave the outlet's domains instead of following them silently.
    "crawler.middlewares.OffsiteRedirectMiddleware": 650,
    "crawler.failures.FailureMiddleware": 900,  # nearest the downloader: sees every failed attempt, in words
}

EXTENSIONS = {
    "crawler.progress.ProgressExtension": 500
}  # figures for `mediawatch crawl`'s progress line

ITEM_PIPELINES = {
    # 1. extract text + metadata, strip promotions, fingerprint (pure functions, pipelines/)
    "pipelines.scrapy_pipelines.CleanPipeline": 300,
    # 2. durable hand-off to the archive writer (spool files); ingests on close when free
    "pipelines.scrapy_pipelines.SpoolPipeline": 900,
}

# Where the archive and its spool live; set by the CLI, the daemon or -s on the command line.
# `scrapy crawl outlet` reads them from the environment like the mediawatch command does.
MEDIAWATCH_CONFIG = os.environ.get("MEDIAWATCH_CONFIG") or "outlets.toml"
MEDIAWATCH_DB = os.environ.get("MEDIAWATCH_DB") or DEFAULT_ARCHIVE
# Ingest the spool into the archive when the spider closes (off when the daemon ingests).
MEDIAWATCH_INGEST_ON_CLOSE = True
MEDIAWATCH_RUN_ID = ""
# Longest Retry-After we wait for; beyond it the URL is recorded as rate-limited.
MEDIAWATCH_MAX_RETRY_AFTER = 120
# Cleaning worker processes: "auto" = one per core, N, or 0 = in-process. The environment
# variable reaches crawls started by the CLI and the daemon; -s MEDIAWATCH_WORKERS=N wins over it.
MEDIAWATCH_WORKERS = os.environ.get("MEDIAWATCH_WORKERS", "auto")
# Seconds one page may take in a cleaning worker; past it the worker is killed and the page
# recorded as extraction_error (a pathological page must not stall the crawl).
MEDIAWATCH_CLEAN_TIMEOUT = 120
# Where each spider writes its progress figures (crawler/progress.py); set by `mediawatch crawl`.
MEDIAWATCH_PROGRESS_DIR = os.environ.get("MEDIAWATCH_PROGRESS_DIR", "")
