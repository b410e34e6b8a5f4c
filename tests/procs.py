"""Processes seen through /proc, for the tests and benchmarks that kill, freeze and count
them (Linux only, as the daemon's PR_SET_PDEATHSIG is)."""

from __future__ import annotations

import os
from pathlib import Path


def children(pid: int) -> list[int]:
    """Children of every thread of pid: the daemon starts its crawls from worker threads,
    and /proc/PID/task/PID/children lists only the main thread's."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out.extend(int(p) for p in fh.read().split())
        except OSError:
            continue  # the thread ended meanwhile
    return out


def descendants(pid: int) -> list[int]:
    """Children, their children and so on, parents first."""
    out: list[int] = []
    for child in children(pid):
        out.append(child)
        out.extend(descendants(child))
    return out


def alive(pid: int) -> bool:
    """Running or sleeping: a zombie has exited, only its parent has not reaped it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :][:1] != b"Z"


def processes_naming(text: str) -> list[int]:
    """Pids whose command line holds `text` (a crawl names its archive in --db)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_bytes().decode(
                errors="replace"
            ):
                found.append(int(entry.name))
        except OSError:
            continue  # gone meanwhile
    return found
