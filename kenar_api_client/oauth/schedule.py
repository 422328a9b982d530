"""The keeper's view of a store's due index, and a stand-in over stores that have none.

The built-in stores keep a due index (:class:`~kenar_api_client.oauth.store.DueIndex`). An
app's own store may implement only the six ``TokenStore`` methods; :class:`LeaseSchedule`
then plays the index over them as the keeper always did: every user with kept subscriptions
is looked at every round, one lease per user. That costs a pass over every user per round;
implement ``DueIndex`` to avoid it.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Deque, List, Optional

from kenar_api_client.oauth.store import Due, DueIndex, DueSummary, TokenStore

RENEW_LEASE_PREFIX = "renew:"


class LeaseSchedule:
    """A due index over a plain store for one round: every user is due, leases keep them apart."""

    def __init__(self, store: TokenStore, users: Callable[[], List[str]]) -> None:
        self._store = store
        self._users = users
        self._queue: Optional[Deque[str]] = None

    def schedule(self, name: str, due_at: float) -> None:
        """Nothing to do: every user is due every round."""

    def unschedule(self, name: str) -> None:
        """Nothing to do: a user without kept subscriptions is not listed."""

    def claim_due(self, now: float, owner: str, ttl: float, limit: int) -> List[Due]:
        if self._queue is None:
            self._queue = deque(self._users())
        claimed: List[Due] = []
        while self._queue and len(claimed) < limit:
            name = self._queue.popleft()
            if self._store.acquire_lease(RENEW_LEASE_PREFIX + name, owner, ttl):
                claimed.append(Due(name, now))
        return claimed

    def claim(self, name: str, owner: str, now: float, ttl: float) -> bool:
        return self._store.acquire_lease(RENEW_LEASE_PREFIX + name, owner, ttl)

    def release(self, name: str, owner: str, due_at: Optional[float]) -> bool:
        self._store.release_lease(RENEW_LEASE_PREFIX + name, owner)
        return True

    def due_summary(self, now: float) -> DueSummary:
        users = len(self._users())
        return DueSummary(users, users, None)


def due_index(store: TokenStore, users: Callable[[], List[str]]) -> DueIndex:
    """The store itself when it keeps a due index, else a fresh :class:`LeaseSchedule` over it."""
    if isinstance(store, DueIndex):
        return store
    return LeaseSchedule(store, users)
