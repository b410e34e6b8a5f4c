"""Leases on a real PostgreSQL: daemons racing for outlets never share one, a lease that is not
renewed is taken over after its time, and the old holder's fence is refused afterwards."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import psycopg

from archive.lake.leases import held, holds, release, take
from archive.lake.schema import ensure_schema
from archive.target import LakeTarget, parse_target
from tests import pg

OUTLETS = [f"outlet{n:02d}" for n in range(12)]


def _target(server: pg.Server, dbname: str, tmp: Path) -> LakeTarget:
    target = parse_target(server.url(dbname, tmp / "lake"))
    assert isinstance(target, LakeTarget)
    ensure_schema(target)
    return target


def test_racing_daemons_never_hold_the_same_outlet(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    target = _target(pg_server, pg_database, tmp_path)

    def daemon(name: str) -> dict[str, int]:
        with psycopg.connect(target.libpq()) as con:
            got: dict[str, int] = {}
            for _ in range(5):
                got.update(take(con, name, OUTLETS, timedelta(seconds=30)))
            return got

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(daemon, ["a", "b", "c"]))
    taken = [o for r in results for o in r]
    assert sorted(taken) == OUTLETS, "every outlet has exactly one holder"
    with psycopg.connect(target.libpq()) as con:
        assert {o: h for o, h, _f, _e in held(con)} == {
            o: n for n, r in zip("abc", results, strict=True) for o in r
        }


def test_an_expired_lease_is_taken_over_and_the_old_fence_refused(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    target = _target(pg_server, pg_database, tmp_path)
    with psycopg.connect(target.libpq()) as a, psycopg.connect(target.libpq()) as b:
        fence_a = take(a, "a", ["lemonde"], timedelta(seconds=1))["lemonde"]
        assert take(b, "b", ["lemonde"], timedelta(seconds=1)) == {}, "held: not taken"
        assert take(a, "a", ["lemonde"], timedelta(seconds=1)) == {"lemonde": fence_a}, (
            "a renewal keeps the fence"
        )
        time.sleep(1.3)  # a freezes (SIGSTOP) past its lease
        started = time.monotonic()
        fence_b = take(b, "b", ["lemonde"], timedelta(seconds=30))["lemonde"]
        assert time.monotonic() - started < 1 and fence_b == fence_a + 1
        assert not holds(a, "a", "lemonde", fence_a), "the woken holder's run is refused"
        assert take(a, "a", ["lemonde"], timedelta(seconds=30)) == {}, "and it cannot take it back"
        with b.transaction():
            assert holds(b, "b", "lemonde", fence_b, lock=True)
        assert not release(a, "a", "lemonde", fence_a) and release(b, "b", "lemonde", fence_b)
        assert take(a, "a", ["lemonde"], timedelta(seconds=30)) == {"lemonde": fence_b + 1}, (
            "free again"
        )


def test_a_keeper_wakes_when_a_dead_daemons_lease_expires(
    pg_server: pg.Server, pg_database: str, tmp_path: Path
) -> None:
    """Take-over waits for the lease to run out, not for the next tick after that: a daemon
    that died leaving a lease with 1 s to go loses it after 1 s, though the survivors tick
    every 2 s (a third of their 6 s lease)."""
    from crawler.scheduler.leasing import LeaseKeeper

    target = _target(pg_server, pg_database, tmp_path)
    with psycopg.connect(target.libpq(), autocommit=True) as con:
        take(con, "dead", ["lemonde"], timedelta(seconds=1))
    taken: list[float] = []
    keeper = LeaseKeeper(
        target,
        str(tmp_path),
        6.0,
        lambda: ["lemonde"],
        set,
        lambda _o: taken.append(time.monotonic()),
    )
    started = time.monotonic()
    keeper.start()
    try:
        deadline = started + 5
        while not taken and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        keeper.stop()
    assert taken, "the expired lease was never taken"
    assert taken[0] - started < 1.6, f"taken {taken[0] - started:.2f}s after the start"
