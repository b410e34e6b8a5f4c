"""Running crawls: when (policy, daemon), how (supervisor, the one way to start and stop a
crawl process), and the archive's single writer while they run (writer).

Rooms: policy.py (pure scheduling rules), supervisor.py (start, watch, time out, kill a crawl
process), run_once.py (`mediawatch crawl`), writer.py (the daemon's archive writer thread),
daemon.py (APScheduler, config reload, jobs), lock.py (one daemon per archive), status.py
(`mediawatch status`), logs.py (where the logs go). The click commands are in crawler/cli_daemon.py.
"""
