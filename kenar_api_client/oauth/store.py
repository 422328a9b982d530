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

Implementing the seven methods below over an app's own database is enough to use it
(docs/Subscriptions.md shows one over PostgreSQL).
"""

from __future__ import annotations

import functools
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


class MemoryTokenStore:
    """A store in this process's memory: for scripts and tests; lost when the process ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: Dict[str, Versioned] = {}
        self._leases: Dict[str, Tuple[str, float]] = {}

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
