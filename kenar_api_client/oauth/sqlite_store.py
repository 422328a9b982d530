"""``SQLiteTokenStore``: tokens in one SQLite file, shared safely by the processes of one host."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from typing import ClassVar, List, Optional, Tuple, Type, Union

from kenar_api_client.exceptions import ApiValueError
from kenar_api_client.oauth.store import Versioned, translated

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kenar_store ("
    " key TEXT PRIMARY KEY, value TEXT NOT NULL, version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS kenar_leases ("
    " name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL)",
)
# Seconds a writer waits for another process's write transaction to end.
_BUSY_TIMEOUT = 30.0


class SQLiteTokenStore:
    """A store in a SQLite file: the default for an app on one machine.

    The file is created readable by its owner only (mode 0600): it holds refresh tokens.
    Writes are compare-and-set inside ``BEGIN IMMEDIATE`` transactions and leases are
    rows with an expiry, so any number of threads and processes can share the file.
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
        self._local = threading.local()
        connection = self._connection()
        for statement in _SCHEMA:
            connection.execute(statement)

    def __repr__(self) -> str:
        return f"SQLiteTokenStore({self.path!r})"

    def _connection(self) -> sqlite3.Connection:
        connection: Optional[sqlite3.Connection] = getattr(self._local, "connection", None)
        if connection is None or self._local.pid != os.getpid():
            connection = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection, self._local.pid = connection, os.getpid()
        return connection

    @translated
    def get(self, key: str) -> Optional[Versioned]:
        row = (
            self._connection()
            .execute("SELECT value, version FROM kenar_store WHERE key = ?", (key,))
            .fetchone()
        )
        return None if row is None else Versioned(str(row[0]), int(row[1]))

    @translated
    def put(self, key: str, value: str, expected_version: Optional[int] = None) -> Optional[int]:
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            row = connection.execute("SELECT version FROM kenar_store WHERE key = ?", (key,)).fetchone()
            version = 0 if row is None else int(row[0])
            if expected_version is not None and expected_version != version:
                connection.execute("ROLLBACK")
                return None
            connection.execute(
                "INSERT INTO kenar_store (key, value, version) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, version = excluded.version",
                (key, value, version + 1),
            )
            connection.execute("COMMIT")
            return version + 1
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

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

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
