"""``PostgresTokenStore``: tokens in PostgreSQL, for apps that already run it (Django, FastAPI...).

Needs psycopg 3: ``pip install "kenar-api-client[postgres]"`` (and libpq, or
``psycopg[binary]`` which ships its own). Every operation is one atomic statement in
autocommit mode: compare-and-set is a conditional ``UPDATE``, a lease an upsert with an
expiry on the server's clock, and due work is claimed with ``FOR UPDATE SKIP LOCKED``, so
keepers on any number of machines split it without waiting on each other.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional, Tuple, Type

from kenar_api_client.exceptions import ApiValueError
from kenar_api_client.oauth.store import Due, DueSummary, ThreadConnections, Versioned, translated

_TABLE_PREFIX = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
# The server's clock for leases: one clock for every machine.
_NOW = "extract(epoch from clock_timestamp())"


def _statements(prefix: str) -> Dict[str, str]:
    """The store's SQL for tables named after ``prefix`` (checked against ``_TABLE_PREFIX`` first)."""
    if not _TABLE_PREFIX.match(prefix):
        raise ApiValueError(f"not a table prefix: {prefix!r}")
    tables = {"store": f"{prefix}store", "leases": f"{prefix}leases", "due": f"{prefix}due", "now": _NOW}
    return {name: template.format(**tables) for name, template in _TEMPLATES.items()}


# {store}, {leases}, {due}: the tables; {now}: the server's clock. Table names are
# identifiers made only of the checked prefix, so formatting them in is safe.
_TEMPLATES = {
    "create": (
        "CREATE TABLE IF NOT EXISTS {store} ("
        " key text PRIMARY KEY, value text NOT NULL, version bigint NOT NULL);"
        " CREATE TABLE IF NOT EXISTS {leases} ("
        " name text PRIMARY KEY, owner text NOT NULL, expires_at double precision NOT NULL);"
        " CREATE TABLE IF NOT EXISTS {due} ("
        " name text PRIMARY KEY, due_at double precision NOT NULL, owner text,"
        " requested_at double precision);"
        " CREATE INDEX IF NOT EXISTS {due}_by_time ON {due} (due_at)"
    ),
    "get": "SELECT value, version FROM {store} WHERE key = %s",
    "put": (
        "INSERT INTO {store} AS s (key, value, version) VALUES (%s, %s, 1) ON CONFLICT (key) "
        "DO UPDATE SET value = excluded.value, version = s.version + 1 RETURNING version"
    ),
    "insert": (
        "INSERT INTO {store} (key, value, version) VALUES (%s, %s, 1) ON CONFLICT (key) DO NOTHING "
        "RETURNING version"
    ),
    "update": (
        "UPDATE {store} SET value = %s, version = version + 1 WHERE key = %s AND version = %s "
        "RETURNING version"
    ),
    "delete": "DELETE FROM {store} WHERE key = %s",
    "keys": "SELECT key FROM {store} WHERE starts_with(key, %s) ORDER BY key",
    "acquire": (
        "INSERT INTO {leases} AS l (name, owner, expires_at) VALUES (%s, %s, {now} + %s) "
        "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at "
        "WHERE l.expires_at <= {now} OR l.owner = excluded.owner RETURNING name"
    ),
    "release_lease": "DELETE FROM {leases} WHERE name = %s AND owner = %s",
    "renew_lease": (
        "UPDATE {leases} SET expires_at = {now} + %s WHERE name = %s AND owner = %s "
        "AND expires_at > {now} RETURNING name"
    ),
    "schedule": (
        "INSERT INTO {due} AS d (name, due_at) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET "
        "due_at = CASE WHEN d.owner IS NULL THEN LEAST(d.due_at, excluded.due_at) ELSE d.due_at END, "
        "requested_at = CASE WHEN d.owner IS NULL THEN d.requested_at "
        "ELSE LEAST(d.requested_at, excluded.due_at) END"
    ),
    "unschedule": "DELETE FROM {due} WHERE name = %s",
    "claim_due": (
        "WITH found AS (SELECT name, due_at FROM {due} WHERE due_at <= %s ORDER BY due_at LIMIT %s "
        "FOR UPDATE SKIP LOCKED) UPDATE {due} AS d SET due_at = %s, owner = %s FROM found "
        "WHERE d.name = found.name RETURNING d.name, found.due_at"
    ),
    "claim": (
        "INSERT INTO {due} AS d (name, due_at, owner) VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE "
        "SET due_at = excluded.due_at, owner = excluded.owner "
        "WHERE d.owner IS NULL OR d.owner = excluded.owner OR d.due_at <= %s RETURNING name"
    ),
    "release": (
        "UPDATE {due} SET due_at = LEAST(%s, requested_at), owner = NULL, requested_at = NULL "
        "WHERE name = %s AND owner = %s RETURNING name"
    ),
    "release_unscheduled": (
        "DELETE FROM {due} WHERE name = %s AND owner = %s AND requested_at IS NULL RETURNING name"
    ),
    "release_to_requested": (
        "UPDATE {due} SET due_at = requested_at, owner = NULL, requested_at = NULL "
        "WHERE name = %s AND owner = %s AND requested_at IS NOT NULL RETURNING name"
    ),
    "summary": "SELECT count(*), count(*) FILTER (WHERE due_at <= %s), min(due_at) FROM {due}",
}


class PostgresTokenStore:
    """A store in PostgreSQL: three tables (``<table_prefix>store``, ``leases``, ``due``).

    Pass a libpq connection string or URL (``postgresql://app@db.internal/app``), or
    ``connect``, a function returning a new psycopg connection (to reuse the app's own
    settings). Each thread (and each process after a fork) gets its own connection, in
    autocommit mode. The tables are created if missing unless ``create_tables=False``
    (then create them with the SQL of ``PostgresTokenStore.schema()``). Grant the app's role
    access to these tables only: they hold refresh tokens.
    """

    def __init__(
        self,
        conninfo: Optional[str] = None,
        *,
        connect: Optional[Callable[[], Any]] = None,
        table_prefix: str = "kenar_",
        create_tables: bool = True,
        connect_timeout: float = 10.0,
    ) -> None:
        if (conninfo is None) == (connect is None):
            raise ApiValueError("PostgresTokenStore needs either a connection string or connect=, not both")
        if not isinstance(table_prefix, str) or not _TABLE_PREFIX.match(table_prefix):
            raise ApiValueError(
                "table_prefix must be lower-case letters, digits and underscores, starting with a letter "
                f"or underscore, got {table_prefix!r}"
            )
        psycopg = _import_psycopg()
        self.backend_errors: Tuple[Type[BaseException], ...] = (psycopg.Error,)
        self.table_prefix = table_prefix
        self._sql = _statements(table_prefix)
        if conninfo is not None:
            if not isinstance(conninfo, str):
                raise ApiValueError(f"the connection string must be a string, not {type(conninfo).__name__}")
            self._where = _describe(psycopg, conninfo)
            self._connect: Callable[[], Any] = _connector(psycopg, conninfo, connect_timeout)
        elif callable(connect):
            self._where = "connect=" + _name(connect)
            self._connect = connect
        else:
            raise ApiValueError(f"connect must be a function returning a connection, not {connect!r}")
        self._connections = ThreadConnections(self._open, lambda c: not (c.closed or c.broken))
        if create_tables:
            self._create_tables()

    def __repr__(self) -> str:
        return f"PostgresTokenStore({self._where}, table_prefix={self.table_prefix!r})"

    @classmethod
    def schema(cls, table_prefix: str = "kenar_") -> str:
        """The SQL that creates the store's tables (for migrations managed by the app)."""
        return _statements(table_prefix)["create"].replace("; ", ";\n") + ";"

    @translated
    def _create_tables(self) -> None:
        # A transaction-scoped advisory lock: two processes starting at once do not race
        # on CREATE TABLE IF NOT EXISTS (which is not atomic against itself in PostgreSQL).
        connection = self._connection()
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._sql["create"],))
            connection.execute(self._sql["create"])

    def _open(self) -> Any:
        connection = self._connect()
        connection.autocommit = True
        return connection

    def _connection(self) -> Any:
        return self._connections.get()

    def _one(self, name: str, params: Tuple[Any, ...]) -> Optional[Tuple[Any, ...]]:
        row: Optional[Tuple[Any, ...]] = self._connection().execute(self._sql[name], params).fetchone()
        return row

    @translated
    def get(self, key: str) -> Optional[Versioned]:
        row = self._one("get", (key,))
        return None if row is None else Versioned(str(row[0]), int(row[1]))

    @translated
    def put(self, key: str, value: str, expected_version: Optional[int] = None) -> Optional[int]:
        if expected_version is None:
            row = self._one("put", (key, value))
        elif expected_version == 0:
            row = self._one("insert", (key, value))
        else:
            row = self._one("update", (value, key, int(expected_version)))
        return None if row is None else int(row[0])

    @translated
    def delete(self, key: str) -> None:
        self._connection().execute(self._sql["delete"], (key,))

    @translated
    def keys(self, prefix: str) -> List[str]:
        rows = self._connection().execute(self._sql["keys"], (prefix,)).fetchall()
        return [str(row[0]) for row in rows]

    @translated
    def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        return self._one("acquire", (name, owner, float(ttl))) is not None

    @translated
    def release_lease(self, name: str, owner: str) -> None:
        self._connection().execute(self._sql["release_lease"], (name, owner))

    @translated
    def renew_lease(self, name: str, owner: str, ttl: float) -> bool:
        return self._one("renew_lease", (float(ttl), name, owner)) is not None

    # -- the due index ------------------------------------------------------------------------

    @translated
    def schedule(self, name: str, due_at: float) -> None:
        self._connection().execute(self._sql["schedule"], (name, float(due_at)))

    @translated
    def unschedule(self, name: str) -> None:
        self._connection().execute(self._sql["unschedule"], (name,))

    @translated
    def claim_due(self, now: float, owner: str, ttl: float, limit: int) -> List[Due]:
        if limit <= 0:
            return []
        params = (float(now), int(limit), float(now) + ttl, owner)
        rows = self._connection().execute(self._sql["claim_due"], params).fetchall()
        return sorted((Due(str(row[0]), float(row[1])) for row in rows), key=lambda due: due.due_at)

    @translated
    def claim(self, name: str, owner: str, now: float, ttl: float) -> bool:
        return self._one("claim", (name, float(now) + ttl, owner, float(now))) is not None

    @translated
    def release(self, name: str, owner: str, due_at: Optional[float]) -> bool:
        if due_at is not None:
            return self._one("release", (float(due_at), name, owner)) is not None
        if self._one("release_unscheduled", (name, owner)) is not None:
            return True
        return self._one("release_to_requested", (name, owner)) is not None

    @translated
    def due_summary(self, now: float) -> DueSummary:
        return DueSummary.from_row(self._one("summary", (float(now),)) or (0, 0, None))

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        self._connections.close()


def _import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise ApiValueError(
            'PostgresTokenStore needs psycopg 3: pip install "kenar-api-client[postgres]" '
            f"(or psycopg[binary] where libpq is not installed; the import said: {exc})"
        ) from None
    return psycopg


def _connector(psycopg: Any, conninfo: str, connect_timeout: float) -> Callable[[], Any]:
    """A function opening a connection; the string stays in its closure (it may hold a password)."""
    timeout = max(1, int(connect_timeout))

    def connect() -> Any:
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=timeout)

    return connect


def _describe(psycopg: Any, conninfo: str) -> str:
    """Where the store is, without the password: ``host=... port=... dbname=...``."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.Error:
        raise ApiValueError("not a PostgreSQL connection string or URL (postgresql://user@host/db)") from None
    shown = [f"{name}={parts[name]}" for name in ("host", "port", "dbname", "user") if parts.get(name)]
    return repr(" ".join(shown) or "default connection")


def _name(function: Any) -> str:
    return str(getattr(function, "__qualname__", None) or type(function).__name__)
