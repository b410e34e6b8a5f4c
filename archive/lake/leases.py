"""Who crawls an outlet when daemons on several machines share a lake: a lease per outlet in
PostgreSQL (mediawatch.leases). APScheduler 3's job stores are not safe for several
schedulers, so each daemon keeps its own scheduler for timing and asks here whether it may
run an outlet. A lease is taken with FOR UPDATE SKIP LOCKED (two daemons never wait on each
other), expires unless renewed (the take-over timer after a crash or a freeze), and every
new taking bumps its fence: a daemon that wakes up with an old fence is refused when it
records its run (`holds`).

The daemon (crawler/scheduler/leasing.py) renews its leases every third of their time, takes
free or expired ones up to its fair share (outlets / daemons seen lately), gives back the
excess, and starts a run only under a lease it holds (`start_run`, the run's fence stored).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import psycopg

from archive.target import LakeTarget


def connect(target: LakeTarget, holder: str) -> psycopg.Connection:
    """A session for the lease calls, named after the daemon (autocommit: each call is short)."""
    return psycopg.connect(target.libpq(application_name=holder), autocommit=True)


def take(
    con: psycopg.Connection, holder: str, outlets: Iterable[str], ttl: timedelta
) -> dict[str, int]:
    """Take or renew the leases of `outlets` that are free, expired or already ours; return
    outlet -> fence for those we hold now. Sorted, so concurrent takers never deadlock."""
    names = sorted(set(outlets))
    if not names:
        return {}
    with con.transaction():
        con.execute(
            "INSERT INTO mediawatch.leases (outlet) SELECT unnest(%s::text[]) ORDER BY 1 "
            "ON CONFLICT DO NOTHING",
            [names],
        )
    with con.transaction():
        rows = con.execute(
            """WITH free AS (
                   SELECT outlet, holder IS DISTINCT FROM %(h)s OR expires_at <= now() AS new_taking
                   FROM mediawatch.leases
                   WHERE outlet = ANY(%(o)s) AND (holder IS NULL OR expires_at <= now() OR holder = %(h)s)
                   ORDER BY outlet FOR UPDATE SKIP LOCKED)
               UPDATE mediawatch.leases l
               SET holder = %(h)s, expires_at = now() + %(ttl)s,
                   fence = l.fence + CASE WHEN f.new_taking THEN 1 ELSE 0 END
               FROM free f WHERE l.outlet = f.outlet
               RETURNING l.outlet, l.fence""",
            {"h": holder, "o": names, "ttl": ttl},
        ).fetchall()
    return {str(outlet): int(fence) for outlet, fence in rows}


def holds(
    con: psycopg.Connection, holder: str, outlet: str, fence: int, *, lock: bool = False
) -> bool:
    """Is the lease still ours at this fence and unexpired? With `lock`, the row stays shared-
    locked until the caller's transaction ends, so no take-over slips between the check and
    the run's write in that transaction."""
    sql = (
        "SELECT 1 FROM mediawatch.leases WHERE outlet = %s AND holder = %s AND fence = %s "
        "AND expires_at > now()" + (" FOR SHARE" if lock else "")
    )
    return con.execute(sql, [outlet, holder, fence]).fetchone() is not None


def release(con: psycopg.Connection, holder: str, outlet: str, fence: int) -> bool:
    """Give a lease back at the end of a run (only at our fence): another daemon may take it at once."""
    with con.transaction():
        row = con.execute(
            "UPDATE mediawatch.leases SET holder = NULL, expires_at = NULL "
            "WHERE outlet = %s AND holder = %s AND fence = %s RETURNING outlet",
            [outlet, holder, fence],
        ).fetchone()
    return row is not None


def held(con: psycopg.Connection) -> list[tuple[str, str, int, object]]:
    """(outlet, holder, fence, expires_at) of the unexpired leases: what `status` will show."""
    rows = con.execute(
        "SELECT outlet, holder, fence, expires_at FROM mediawatch.leases "
        "WHERE holder IS NOT NULL AND expires_at > now() ORDER BY outlet"
    ).fetchall()
    return [(str(o), str(h), int(f), e) for o, h, f, e in rows]


def free(con: psycopg.Connection, outlets: Iterable[str]) -> list[str]:
    """Of `outlets`, those nobody holds (free, expired, or never leased), sorted."""
    names = sorted(set(outlets))
    held_now = {
        str(r[0])
        for r in con.execute(
            "SELECT outlet FROM mediawatch.leases WHERE outlet = ANY(%s) "
            "AND holder IS NOT NULL AND expires_at > now()",
            [names],
        )
    }
    return [n for n in names if n not in held_now]


def next_expiry(con: psycopg.Connection, holder: str, outlets: Iterable[str]) -> float | None:
    """Seconds until the first lease of another holder on `outlets` runs out (None: none held):
    a daemon waits that long, not a whole tick, to take over from one that died."""
    row = con.execute(
        "SELECT extract(epoch FROM min(expires_at) - now()) FROM mediawatch.leases "
        "WHERE outlet = ANY(%s) AND holder IS DISTINCT FROM %s AND expires_at > now()",
        [sorted(set(outlets)), holder],
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def heartbeat(con: psycopg.Connection, holder: str, home: str | None, ttl: timedelta) -> int:
    """Say this daemon is alive; return how many daemons were seen within `ttl` (itself included)."""
    con.execute(
        "INSERT INTO mediawatch.daemons (holder, home, seen_at) VALUES (%s, %s, now()) "
        "ON CONFLICT (holder) DO UPDATE SET seen_at = now()",
        [holder, home],
    )
    row = con.execute(
        "SELECT count(*) FROM mediawatch.daemons WHERE seen_at > now() - %s", [ttl]
    ).fetchone()
    return int(row[0]) if row else 1


def leave(con: psycopg.Connection, holder: str) -> None:
    """A daemon stopping: its leases and its heartbeat go, so others take over at once."""
    with con.transaction():
        con.execute(
            "UPDATE mediawatch.leases SET holder = NULL, expires_at = NULL WHERE holder = %s",
            [holder],
        )
        con.execute("DELETE FROM mediawatch.daemons WHERE holder = %s", [holder])


def start_run(
    con: psycopg.Connection,
    holder: str,
    outlet: str,
    fence: int,
    run_id: str,
    home: str | None,
) -> bool:
    """Record a run as started under our lease at `fence`, in the transaction that checks the
    lease (held FOR SHARE: no take-over slips in between); False when the lease is gone."""
    with con.transaction():
        if not holds(con, holder, outlet, fence, lock=True):
            return False
        con.execute(
            "INSERT INTO mediawatch.crawl_runs (run_id, outlet, started_at, status, fence, home) "
            "VALUES (%s, %s, now(), 'running', %s, %s) ON CONFLICT DO NOTHING",
            [run_id, outlet, fence, home],
        )
    return True


def holders(target: LakeTarget) -> dict[str, tuple[str, int, object]]:
    """outlet -> (holder, fence, expires_at) of the unexpired leases, read-only: `status`."""
    with psycopg.connect(target.libpq(read_only=True)) as con:
        return {o: (h, f, e) for o, h, f, e in held(con)}
