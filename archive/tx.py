"""Transactions for the archive's writer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

import duckdb


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT, rolled back on any error. A COMMIT that fails (a full disk) has
    already ended the transaction: the ROLLBACK then must not hide the real error."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.TransactionException):  # nothing left to roll back
            con.execute("ROLLBACK")
        raise  # the original error
