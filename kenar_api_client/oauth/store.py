"""The token store protocol, and the in-memory store for scripts and tests.

A store is a small versioned key-value table with leases. The token manager and the
subscription keeper keep JSON documents in it (``token:<user>``, ``subscriptions:<user>``)
and coordinate through it, so every process and machine that shares a store shares one
view of each user's tokens:

* ``put`` with ``expected_version`` is a compare-and-set: it writes only if the stored
  version is still the one read, so two writers can never overwrite each other blindly;
* ``acquire_lease`` lets one process at a time refresh a user's token; the lease expires
  by itself (``ttl``) if that process dies, and ``renew_lease`` tells its holder whether
  it still holds it (extending it if so).

Implementing the seven methods of ``TokenStore`` over an app's own database is enough to use
it (docs/Subscriptions.md shows one). The built-in stores also keep a due index
(``DueIndex``): when each user's renewal is next due, and batch claims on the due ones, so
a subscription keeper reads only what is due and several keepers split the work.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple, TypeVar, cast

from typing_extensions import Protocol, runtime_checkable

_Method = TypeVar("_Method", bound=Callable[..., Any])


def translated(method: _Method) -> _Method:
    """A store method whose backend errors (the store's ``backend_errors``) become ``TokenStoreError``.

    A Redis outage or a SQLite file locked too long then reaches the app as an
    ``ApiConnectionError``, like any other failure to reach a service.
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except self.backend_errors as error:
            from kenar_api_client.oauth.errors import TokenStoreError

            raise TokenStoreError(
                f"the token store {self!r} failed: {type(error).__name__}: {error}"
            ) from error

    return cast(_Method, wrapper)


class VolatileStoreWarning(RuntimeWarning):
    """A token store that loses its contents on a restart (e.g. a Redis server without persistence)."""


class Versioned(NamedTuple):
    """A stored value and its version (1 for the first write, +1 on every write)."""

    value: str
    version: int


@runtime_checkable
class TokenStore(Protocol):
    """Where tokens and kept subscriptions live; shared by every process that uses it.

    Implementations must be safe to call from several threads (and, where they claim so,
    processes) at once.
    """

    def get(self, key: str) -> Optional[Versioned]:
        """The value stored under ``key`` and its version, or None."""

    def put(self, key: str, value: str, expected_version: Optional[int] = None) -> Optional[int]:
        """Store ``value``; return its new version, or None if ``expected_version`` did not match.

        ``expected_version=None`` writes unconditionally; ``0`` only if ``key`` is absent;
        ``n`` only if the stored version is ``n``.
        """

    def delete(self, key: str) -> None:
        """Remove ``key`` (nothing happens if it is absent)."""

    def keys(self, prefix: str) -> List[str]:
        """Every stored key that starts with ``prefix``."""

    def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        """Take lease ``name`` for ``owner`` for ``ttl`` seconds, if nobody else holds it."""

    def release_lease(self, name: str, owner: str) -> None:
        """Give lease ``name`` back, if ``owner`` still holds it."""

    def renew_lease(self, name: str, owner: str, ttl: float) -> bool:
        """Extend lease ``name`` to ``ttl`` seconds from now if ``owner`` still holds it (and it has
        not run out); False if not: someone else may hold it now."""


class Due(NamedTuple):
    """A name :meth:`DueIndex.claim_due` claimed, and when it had fallen due."""

    name: str
    due_at: float


class DueSummary(NamedTuple):
    """The due index at a glance: names scheduled, how many are due, the oldest due time."""

    scheduled: int
    due: int
    oldest_due_at: Optional[float]

    @classmethod
    def from_row(cls, row: Any) -> DueSummary:
        """From a SQL row (count, due count, minimum due time)."""
        return cls(int(row[0]), int(row[1] or 0), None if row[2] is None else float(row[2]))


@runtime_checkable
class DueIndex(Protocol):
    """When each name (a user key) is next due, with claims that split due work between processes.

    Times are seconds since the epoch on the caller's clock. A claim moves the name's due
    time to the claim's end, so a claim left by a process that died falls due again by
    itself once it runs out, and is then claimed by another process. Claims are fenced by
    owner: only the owner's :meth:`release` counts. Every method is atomic in the store.
    """

    def schedule(self, name: str, due_at: float) -> None:
        """Make ``name`` due at ``due_at`` at the latest (an earlier due time stays).

        While ``name`` is claimed its due time is not touched (the claim keeps others away):
        ``due_at`` is remembered and applies when the claim is released.
        """

    def unschedule(self, name: str) -> None:
        """Remove ``name`` from the index, claimed or not."""

    def claim_due(self, now: float, owner: str, ttl: float, limit: int) -> List[Due]:
        """Claim up to ``limit`` names due at ``now``, the most overdue first, until ``now + ttl``.

        Names claimed by another owner whose claim has not run out are skipped.
        """

    def claim(self, name: str, owner: str, now: float, ttl: float) -> bool:
        """Claim ``name`` until ``now + ttl``, due or not (and extend ``owner``'s own claim).

        False if another owner's claim on it has not run out.
        """

    def release(self, name: str, owner: str, due_at: Optional[float]) -> bool:
        """End ``owner``'s claim on ``name``: next due at ``due_at`` (None: unscheduled).

        A due time given to :meth:`schedule` during the claim wins if earlier. False (and
        nothing changes) if ``owner`` no longer holds the claim.
        """

    def due_summary(self, now: float) -> DueSummary:
        """How many names are scheduled and due at ``now``, and the oldest due time."""


class _Held:
    """A thread's connection, closed when the thread ends (its thread-local slot is dropped).

    Left to the garbage collector instead, a psycopg connection warns that it was deleted
    while open (and Python 3.13's sqlite3 does too).
    """

    __slots__ = ("connection", "pid")

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.pid = os.getpid()

    def __del__(self) -> None:
        if self.pid != os.getpid():
            return  # a forked child's copy of the parent's connection: the parent's to close
        with contextlib.suppress(Exception):  # a thread ending: nothing to tell anyone
            self.connection.close()


class ThreadConnections:
    """One database connection per thread, and new ones in a forked child: for SQL stores.

    ``usable(connection)`` says whether a connection can still be used (else a new one is
    opened in its place). A thread's connection is closed when the thread ends.
    """

    def __init__(self, open_connection: Callable[[], Any], usable: Callable[[Any], bool]) -> None:
        self._open = open_connection
        self._usable = usable
        self._local = threading.local()

    def get(self) -> Any:
        """This thread's connection, opened if need be."""
        held: Optional[_Held] = getattr(self._local, "held", None)
        if held is None or held.pid != os.getpid() or not self._usable(held.connection):
            if held is not None and held.pid == os.getpid():
                self._local.held = None  # an unusable connection: closed now, not at thread end
            held = _Held(self._open())
            self._local.held = held
        return held.connection

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        held: Optional[_Held] = getattr(self._local, "held", None)
        if held is not None:
            self._local.held = None
            if held.pid == os.getpid():
                held.pid = -1  # closed here, not again by the collector
                held.connection.close()


def earliest(*times: Optional[float]) -> Optional[float]:
    """The earliest of the times given that are not None (None if none is)."""
    known = [t for t in times if t is not None]
    return min(known) if known else None


class MemoryTokenStore:
    """A store in this process's memory: for scripts and tests; lost when the process ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: Dict[str, Versioned] = {}
        self._leases: Dict[str, Tuple[str, float]] = {}
        # name -> [due_at, owner or None, due time asked for during the claim or None]
        self._due: Dict[str, List[Any]] = {}

    def __repr__(self) -> str:
        return f"MemoryTokenStore({len(self._values)} keys)"

    def get(self, key: str) -> Optional[Versioned]:
        with self._lock:
            return self._values.get(key)

    def put(self, key: str, value: str, expected_version: Optional[int] = None) -> Optional[int]:
        with self._lock:
            current = self._values.get(key)
            version = current.version if current is not None else 0
            if expected_version is not None and expected_version != version:
                return None
            self._values[key] = Versioned(value, version + 1)
            return version + 1

    def delete(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)

    def keys(self, prefix: str) -> List[str]:
        with self._lock:
            return [key for key in self._values if key.startswith(prefix)]

    def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        now = time.monotonic()
        with self._lock:
            held = self._leases.get(name)
            if held is not None and held[1] > now and held[0] != owner:
                return False
            self._leases[name] = (owner, now + ttl)
            return True

    def release_lease(self, name: str, owner: str) -> None:
        with self._lock:
            held = self._leases.get(name)
            if held is not None and held[0] == owner:
                del self._leases[name]

    def renew_lease(self, name: str, owner: str, ttl: float) -> bool:
        now = time.monotonic()
        with self._lock:
            held = self._leases.get(name)
            if held is None or held[0] != owner or held[1] <= now:
                return False
            self._leases[name] = (owner, now + ttl)
            return True

    # -- the due index (a scan: this store is for scripts and tests) -------------------------

    def schedule(self, name: str, due_at: float) -> None:
        with self._lock:
            entry = self._due.get(name)
            if entry is None:
                self._due[name] = [due_at, None, None]
            elif entry[1] is None:
                entry[0] = min(entry[0], due_at)
            else:
                entry[2] = earliest(entry[2], due_at)

    def unschedule(self, name: str) -> None:
        with self._lock:
            self._due.pop(name, None)

    def claim_due(self, now: float, owner: str, ttl: float, limit: int) -> List[Due]:
        with self._lock:
            due = sorted((entry[0], name) for name, entry in self._due.items() if entry[0] <= now)
            claimed = [Due(name, due_at) for due_at, name in due[: max(0, limit)]]
            for item in claimed:
                self._due[item.name][:2] = [now + ttl, owner]
            return claimed

    def claim(self, name: str, owner: str, now: float, ttl: float) -> bool:
        with self._lock:
            entry = self._due.setdefault(name, [now, None, None])
            if entry[1] not in (None, owner) and entry[0] > now:
                return False
            entry[:2] = [now + ttl, owner]
            return True

    def release(self, name: str, owner: str, due_at: Optional[float]) -> bool:
        with self._lock:
            entry = self._due.get(name)
            if entry is None or entry[1] != owner:
                return False
            following = earliest(due_at, entry[2])
            if following is None:
                del self._due[name]
            else:
                self._due[name] = [following, None, None]
            return True

    def due_summary(self, now: float) -> DueSummary:
        with self._lock:
            times = [entry[0] for entry in self._due.values()]
        return DueSummary(len(times), sum(1 for t in times if t <= now), min(times) if times else None)
