"""``SQLiteDeliveryLog``: the delivery log in one SQLite file, shared by the processes of one host."""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from typing import Callable, TypeVar, Union

from kenar_api_client._sqlite_connections import ThreadConnections
from kenar_api_client.webhooks._errors import DeliveryLogError
from kenar_api_client.webhooks.deliveries import (
    DEFAULT_CLAIM_LEASE,
    DEFAULT_DELIVERY_TTL,
    BaseDeliveryLog,
    Claim,
    checked_seconds,
)

__all__ = ["SQLiteDeliveryLog"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kenar_deliveries ("
    " key TEXT PRIMARY KEY, state TEXT NOT NULL, token TEXT NOT NULL, expires_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS kenar_deliveries_expiry ON kenar_deliveries (expires_at)",
)
# A new claim, or taking over an expired row (a claim whose process died, an old handled key).
_CLAIM = (
    "INSERT INTO kenar_deliveries (key, state, token, expires_at) VALUES (?, 'claimed', ?, ?) "
    "ON CONFLICT(key) DO UPDATE SET state = 'claimed', token = excluded.token, "
    "expires_at = excluded.expires_at WHERE kenar_deliveries.expires_at <= ?"
)
_HANDLED = (
    "INSERT INTO kenar_deliveries (key, state, token, expires_at) VALUES (?, 'handled', '', ?) "
    "ON CONFLICT(key) DO UPDATE SET state = 'handled', token = '', expires_at = excluded.expires_at"
)
_PURGE = (
    "DELETE FROM kenar_deliveries WHERE rowid IN "
    "(SELECT rowid FROM kenar_deliveries WHERE expires_at <= ? LIMIT 1000)"
)
_PURGE_EVERY = 60.0  # seconds between two sweeps of expired rows by one log object
_BUSY_TIMEOUT = 30.0

_Result = TypeVar("_Result")


class SQLiteDeliveryLog(BaseDeliveryLog):
    """A delivery log in a SQLite file: every thread and process on this host that opens it shares it.

    What was handled survives a restart. Each write is one statement in autocommit mode
    (WAL journal, ``synchronous=NORMAL``); expired rows are swept now and then, 1,000 at a
    time. Each thread (and each process after a fork) gets its own connection; a write
    waits up to ``busy_timeout`` seconds for another process's write, then raises
    ``DeliveryLogError``. Times are the wall clock (``time.time()``), which processes share.
    """

    def __init__(
        self,
        path: Union[str, os.PathLike[str]],
        *,
        ttl: float = DEFAULT_DELIVERY_TTL,
        lease: float = DEFAULT_CLAIM_LEASE,
        busy_timeout: float = _BUSY_TIMEOUT,
    ) -> None:
        self.path: str = os.fspath(path)
        if not self.path or self.path == ":memory:":
            raise ValueError("SQLiteDeliveryLog needs a file path (use MemoryDeliveryLog for memory)")
        super().__init__(ttl, lease)
        self.busy_timeout: float = checked_seconds("busy_timeout", busy_timeout)
        self._connections = ThreadConnections(self.path, self.busy_timeout)
        self._next_purge = 0.0
        self._run(self._create)

    def _describe(self) -> str:
        return f"{self.path!r}, "

    def claim(self, key: str) -> Claim:
        """Take ``key`` if no process handled or holds it (within their time)."""
        return self._run(lambda connection: self._claim(connection, key))

    def mark_handled(self, claim: Claim) -> None:
        """Remember ``claim.key`` as handled for ``ttl`` seconds."""
        self._run(lambda connection: connection.execute(_HANDLED, (claim.key, time.time() + self._ttl)))

    def release(self, claim: Claim) -> None:
        """Free ``claim.key`` if this claim still holds it."""
        self._run(
            lambda connection: connection.execute(
                "DELETE FROM kenar_deliveries WHERE key = ? AND state = 'claimed' AND token = ?",
                (claim.key, claim.token),
            )
        )

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        self._connections.close()

    def _claim(self, connection: sqlite3.Connection, key: str) -> Claim:
        now = time.time()
        if now >= self._next_purge:
            self._next_purge = now + _PURGE_EVERY
            connection.execute(_PURGE, (now,))
        token = secrets.token_hex(16)
        if connection.execute(_CLAIM, (key, token, now + self._lease, now)).rowcount == 1:
            return Claim(key, "claimed", token)
        row = connection.execute(
            "SELECT state, expires_at FROM kenar_deliveries WHERE key = ?", (key,)
        ).fetchone()
        if row is not None and row[0] == "handled":
            return Claim(key, "handled")
        # Held by another copy (or, if the row just went, free again: the sender retries soon).
        return Claim(key, "busy", retry_after=max(0.0, float(row[1]) - now) if row is not None else 0.0)

    def _create(self, connection: sqlite3.Connection) -> None:
        for statement in _SCHEMA:
            connection.execute(statement)

    def _run(self, action: Callable[[sqlite3.Connection], _Result]) -> _Result:
        try:
            return action(self._connections.get())
        except sqlite3.Error as exc:
            raise DeliveryLogError(f"the delivery log {self!r} failed: {type(exc).__name__}: {exc}") from exc
