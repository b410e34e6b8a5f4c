"""The cleaning pool without Scrapy: how many workers, the forkserver they are forked from
(started as early as the crawl process can), and what runs in a worker, which so never
imports Scrapy (half a second and ~40 MB a worker).

The forkserver is a fresh interpreter that imports the cleaning stack once (about a second
of CPU); every pool worker is then a cheap fork of it. Started at the top of a crawl
process, that import runs on the other core while the crawl process imports Scrapy and
opens its spiders, instead of holding up the first pages in `open_spider`.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
from typing import TYPE_CHECKING, Any

from archive.records import Hints, PageItem, PageRecord

if TYPE_CHECKING:
    from pipelines.clean import Cleaned

# What the forkserver imports once, so each worker starts with trafilatura, lxml and the
# promo rules loaded (spawn would import them again in every worker). This module holds
# what runs in a worker, so a worker never imports Scrapy.
PRELOAD = ["pipelines.workers", "pipelines.clean"]


def default_workers() -> int:
    """One worker per core: the reactor thread only downloads and writes the spool."""
    return max(1, (os.cpu_count() or 1))


def parse_workers(setting: Any) -> int:
    """MEDIAWATCH_WORKERS: "auto" (one per core), or a count; 0 cleans in-process."""
    if setting in (None, "", "auto"):
        return default_workers()
    workers = int(setting)
    if workers < 0:
        raise ValueError(f"MEDIAWATCH_WORKERS must be 'auto' or >= 0, not {setting!r}")
    return workers


def forkserver_context() -> Any:
    """The forkserver context with our preload (forkserver, not fork: a forked Twisted
    reactor and its sockets must not live on in the workers)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def start_forkserver() -> int:
    """Start the forkserver now (a no-op when it runs already) and return its pid: the
    parent of every pool worker."""
    from multiprocessing import forkserver

    forkserver_context()
    forkserver.ensure_running()
    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    return int(pid) if pid else os.getpid()


def worker_init(parent: int) -> None:
    """Pool workers die with their crawl process, even when it is killed -9."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: when our parent (the forkserver) dies
    except OSError:
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    # The forkserver hands each worker the crawl's "alive" pipe and exits only when every
    # holder closed it: a worker keeping it would keep the forkserver, hence itself, alive
    # after the crawl is killed -9.
    from multiprocessing import forkserver

    alive = getattr(forkserver._forkserver, "_forkserver_alive_fd", None)
    if alive is not None:
        with contextlib.suppress(OSError):
            os.close(alive)
        forkserver._forkserver._forkserver_alive_fd = None  # type: ignore[attr-defined]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the crawl handles Ctrl-C, not its workers
    from pipelines.promo import load_rules

    load_rules()  # compile the phrase rules now, not on the first page


def clean_in_worker(
    item: PageItem,
    html: str,
    selectors: tuple[str, ...],
    patterns: tuple[str, ...],
    boilerplate: frozenset[str],
) -> tuple[PageRecord, int]:
    """Runs in a worker: the outlet rules travel as strings (compiled once per worker)."""
    from pipelines.clean import clean_page

    return clean_page(
        item, html, outlet_rules=outlet_rules(selectors, patterns), boilerplate=boilerplate
    ), os.getpid()


def clean_stored(
    html: str,
    url: str,
    hints: Hints | None,
    selectors: tuple[str, ...],
    patterns: tuple[str, ...],
    boilerplate: frozenset[str],
) -> Cleaned:
    """A stored page cleaned again (`mediawatch reprocess`, the boilerplate re-clean), in a
    worker or in-process: the outlet rules travel as strings, compiled once per process."""
    from pipelines.clean import clean_article

    return clean_article(
        html,
        url,
        hints,
        outlet_rules=outlet_rules(selectors, patterns),
        boilerplate=boilerplate,
    )


_RULES_CACHE: dict[tuple[tuple[str, ...], tuple[str, ...]], Any] = {}


def outlet_rules(selectors: tuple[str, ...], patterns: tuple[str, ...]) -> Any:
    """An outlet's compiled strip overrides, compiled once per process."""
    key = (selectors, patterns)
    if key not in _RULES_CACHE:
        from pipelines.promo import compile_outlet_rules

        _RULES_CACHE[key] = compile_outlet_rules(list(selectors), list(patterns))
    return _RULES_CACHE[key]


def warm() -> int:
    return os.getpid()
