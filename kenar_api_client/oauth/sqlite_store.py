"""``SQLiteTokenStore``: tokens in one SQLite file, shared safely by the processes of one host."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from typing import ClassVar, Iterator, List, Optional, Tuple, Type, Union

from kenar_api_client.exceptions import ApiValueError
from kenar_api_client.oauth.store import Due, DueSummary, ThreadConnections, Versioned, translated

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kenar_store ("
    " key TEXT PRIMARY KEY, value TEXT NOT NULL, version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS kenar_leases ("
    " name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL)",
    # The due index: a claim moves due_at to the claim's end and names its owner;
    # requested_at is a due time asked for while claimed, applied at release.
    "CREATE TABLE IF NOT EXISTS kenar_due ("
    " name TEXT PRIMARY KEY, due_at REAL NOT NULL, owner TEXT, requested_at REAL)",
    "CREATE INDEX IF NOT EXISTS kenar_due_by_time ON kenar_due (due_at)",
)
# Seconds a writer waits for another process's write transaction to end.
_BUSY_TIMEOUT = 30.0


class SQLiteTokenStore:
    """A store in a SQLite file: the default for an app on one machine.

    The file is created readable by its owner only (mode 0600): it holds refresh tokens.
    Writes are compare-and-set inside ``BEGIN IMMEDIATE`` transactions and leases are
    rows with an expiry, so any number of threads and processes can share the file. The
    due index is a table with an index on the due time, claimed in one transaction.
    Each thread (and each process after a fork) gets its own connection. A write waits up
    to ``busy_timeout`` seconds for another process's write to end, then raises
    ``TokenStoreError``.
    """

    backend_errors: ClassVar[Tuple[Type[BaseException], ...]] = (sqlite3.Error,)

    def __init__(self, path: Union[str, os.PathLike[str]], *, busy_timeout: float = _BUSY_TIMEOUT) -> None:
        self.path: str = os.fspath(path)
        self.busy_timeout: float = busy_timeout
        if not self.path or self.path == ":memory:":
            raise ApiValueError("SQLiteTokenStore needs a file path (use MemoryTokenStore for memory)")
        if not os.path.exists(self.path):
            # Create it with owner-only permissions before SQLite opens it with the umask's.
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        self._connections = ThreadConnections(self._open, lambda connection: True)
        connection = self._connection()
        for statement in _SCHEMA:
            connection.execute(statement)

    def __repr__(self) -> str:
        return f"SQLiteTokenStore({self.path!r})"

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection = self._connections.get()
        return connection

    @translated
    def get(self, key: str) -> Optional[Versioned]:
        row = (
            self._connection()
            .execute("SELECT value, version FROM kenar_store WHERE key = ?", (key,))
            .fetchone()
        )
        return None if row is None else Versioned(str(row[0]), int(row[1]))

    @contextlib.contextmanager
    def _write_transaction(self) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction: committed if the block ends normally, else rolled back."""
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    @translated
    def put(self, key: str, value: str, expected_version: Optional[int] = None) -> Optional[int]:
        # A compare-and-set is one statement (its own transaction): the version it writes is known.
        if expected_version == 0:
            cursor = self._connection().execute(
                "INSERT INTO kenar_store (key, value, version) VALUES (?, ?, 1) ON CONFLICT(key) DO NOTHING",
                (key, value),
            )
            return 1 if cursor.rowcount == 1 else None
        if expected_version is not None:
            cursor = self._connection().execute(
                "UPDATE kenar_store SET value = ?, version = version + 1 WHERE key = ? AND version = ?",
                (value, key, int(expected_version)),
            )
            return int(expected_version) + 1 if cursor.rowcount == 1 else None
        with self._write_transaction() as connection:
            row = connection.execute("SELECT version FROM kenar_store WHERE key = ?", (key,)).fetchone()
            version = 0 if row is None else int(row[0])
            connection.execute(
                "INSERT INTO kenar_store (key, value, version) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, version = excluded.version",
                (key, value, version + 1),
            )
            return version + 1

    @translated
    def delete(self, key: str) -> None:
        self._connection().execute("DELETE FROM kenar_store WHERE key = ?", (key,))

    @translated
    def keys(self, prefix: str) -> List[str]:
        rows = self._connection().execute(
            "SELECT key FROM kenar_store WHERE substr(key, 1, ?) = ? ORDER BY key", (len(prefix), prefix)
        )
        return [str(row[0]) for row in rows]

    @translated
    def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        now = time.time()
        cursor = self._connection().execute(
            "INSERT INTO kenar_leases (name, owner, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at "
            "WHERE kenar_leases.expires_at <= ? OR kenar_leases.owner = excluded.owner",
            (name, owner, now + ttl, now),
        )
        return cursor.rowcount == 1

    @translated
    def release_lease(self, name: str, owner: str) -> None:
        self._connection().execute("DELETE FROM kenar_leases WHERE name = ? AND owner = ?", (name, owner))

    @translated
    def renew_lease(self, name: str, owner: str, ttl: float) -> bool:
        now = time.time()
        cursor = self._connection().execute(
            "UPDATE kenar_leases SET expires_at = ? WHERE name = ? AND owner = ? AND expires_at > ?",
            (now + ttl, name, owner, now),
        )
        return cursor.rowcount == 1

    # -- the due index ------------------------------------------------------------------------

    @translated
    def schedule(self, name: str, due_at: float) -> None:
        self._connection().execute(
            "INSERT INTO kenar_due (name, due_at) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET "
            "due_at = CASE WHEN owner IS NULL THEN min(due_at, excluded.due_at) ELSE due_at END, "
            "requested_at = CASE WHEN owner IS NULL THEN requested_at "
            "ELSE min(coalesce(requested_at, excluded.due_at), excluded.due_at) END",
            (name, float(due_at)),
        )

    @translated
    def unschedule(self, name: str) -> None:
        self._connection().execute("DELETE FROM kenar_due WHERE name = ?", (name,))

    @translated
    def claim_due(self, now: float, owner: str, ttl: float, limit: int) -> List[Due]:
        with self._write_transaction() as connection:
            rows = connection.execute(
                "SELECT name, due_at FROM kenar_due WHERE due_at <= ? ORDER BY due_at LIMIT ?",
                (float(now), max(0, int(limit))),
            ).fetchall()
            connection.executemany(
                "UPDATE kenar_due SET due_at = ?, owner = ? WHERE name = ?",
                [(float(now) + ttl, owner, row[0]) for row in rows],
            )
        return [Due(str(row[0]), float(row[1])) for row in rows]

    @translated
    def claim(self, name: str, owner: str, now: float, ttl: float) -> bool:
        cursor = self._connection().execute(
            "INSERT INTO kenar_due (name, due_at, owner) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE "
            "SET due_at = excluded.due_at, owner = excluded.owner "
            "WHERE kenar_due.owner IS NULL OR kenar_due.owner = excluded.owner OR kenar_due.due_at <= ?",
            (name, float(now) + ttl, owner, float(now)),
        )
        return cursor.rowcount == 1

    @translated
    def release(self, name: str, owner: str, due_at: Optional[float]) -> bool:
        connection = self._connection()
        if due_at is not None:
            cursor = connection.execute(
                "UPDATE kenar_due SET due_at = min(?, coalesce(requested_at, ?)), owner = NULL, "
                "requested_at = NULL WHERE name = ? AND owner = ?",
                (float(due_at), float(due_at), name, owner),
            )
            return cursor.rowcount == 1
        cursor = connection.execute(
            "DELETE FROM kenar_due WHERE name = ? AND owner = ? AND requested_at IS NULL", (name, owner)
        )
        if cursor.rowcount == 1:
            return True
        cursor = connection.execute(
            "UPDATE kenar_due SET due_at = requested_at, owner = NULL, requested_at = NULL "
            "WHERE name = ? AND owner = ? AND requested_at IS NOT NULL",
            (name, owner),
        )
        return cursor.rowcount == 1

    @translated
    def due_summary(self, now: float) -> DueSummary:
        summary = "SELECT count(*), sum(due_at <= ?), min(due_at) FROM kenar_due"
        return DueSummary.from_row(self._connection().execute(summary, (float(now),)).fetchone())

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        self._connections.close()
