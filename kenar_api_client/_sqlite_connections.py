"""SQLite connections for files that threads and processes share: one per thread and process, WAL journal."""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Optional


class ThreadConnections:
    """Hands each thread (and each process after a fork) its own autocommit connection to ``path``.

    A connection waits up to ``busy_timeout`` seconds for another process's write. The WAL
    journal lets readers go on while one process writes; ``synchronous=NORMAL`` makes a
    commit cost no fsync (a power cut may lose the last commits, never corrupt the file).
    """

    def __init__(self, path: str, busy_timeout: float) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        connection: Optional[sqlite3.Connection] = getattr(self._local, "connection", None)
        if connection is None or self._local.pid != os.getpid():
            connection = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection, self._local.pid = connection, os.getpid()
        return connection

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            self._local.connection = None
            connection.close()
