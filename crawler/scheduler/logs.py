"""Where the daemon's and the crawls' logs go."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

LOGS_KEPT_PER_OUTLET = 20


def setup_logging(logs: Path | None, level: str) -> None:
    """Our loggers (the daemon's, the supervisor's, and the archive's: a quarantined record, a
    failed checkpoint) to stderr and, given a directory, to its rotating daemon.log."""
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logs is not None:
        try:
            logs.mkdir(parents=True, exist_ok=True)
            handlers.append(
                logging.handlers.RotatingFileHandler(
                    logs / "daemon.log", maxBytes=10_000_000, backupCount=3, encoding="utf-8"
                )
            )
        except OSError as exc:
            print(f"warning: no daemon log file in {logs}: {exc.strerror}", file=sys.stderr)
    for handler in handlers:
        handler.setFormatter(fmt)
    for name, lvl in (("mediawatch", level), ("archive", level), ("apscheduler", "WARNING")):
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(lvl)
        logger.propagate = False


def prune_logs(logs: Path, outlet: str) -> None:
    """Keep the newest LOGS_KEPT_PER_OUTLET crawl logs of an outlet (<outlet>.<run_id>.log)."""
    files = sorted(logs.glob(f"{outlet}.*.log"))
    for old in files[:-LOGS_KEPT_PER_OUTLET]:
        old.unlink(missing_ok=True)
