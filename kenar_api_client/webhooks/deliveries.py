"""Delivery logs: which deliveries were handled, so a receiver runs its handler once per event.

Kenar delivers at least once: a delivery can arrive again (a retry, a subscription registered
twice, a receiver restarted mid-handler). A receiver given a log claims each verified
delivery's :attr:`~kenar_api_client.webhooks.WebhookEvent.delivery_key` before calling its
handler: a key handled within ``ttl`` is answered 200 without the handler, a key another
copy holds is answered 503, and a handler that raises frees the key for the next copy.

:class:`MemoryDeliveryLog` is here; ``SQLiteDeliveryLog`` (one host) and
``RedisDeliveryLog`` (any number of machines) have their own modules.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from typing import Dict, Tuple

from typing_extensions import Literal, Protocol, runtime_checkable

__all__ = [
    "DEFAULT_CLAIM_LEASE",
    "DEFAULT_DELIVERY_TTL",
    "BaseDeliveryLog",
    "Claim",
    "ClaimState",
    "DeliveryLog",
    "MemoryDeliveryLog",
]

#: Seconds a handled delivery is remembered by default: three days. Kenar does not document
#: how long it keeps redelivering; this is meant to outlast any retry schedule, a receiver
#: that was down for a day included.
DEFAULT_DELIVERY_TTL = 3 * 24 * 3600.0
#: Seconds a claim holds a key by default while its handler runs. A copy arriving meanwhile
#: gets 503; a claim whose process died frees the key once this much time has passed.
DEFAULT_CLAIM_LEASE = 60.0

#: ``claimed``: run the handler now; ``handled``: done before; ``busy``: another copy holds it.
ClaimState = Literal["claimed", "handled", "busy"]


class Claim:
    """The answer of :meth:`DeliveryLog.claim` for one delivery key."""

    __slots__ = ("key", "retry_after", "state", "token")

    def __init__(self, key: str, state: ClaimState, token: str = "", retry_after: float = 0.0) -> None:
        #: The delivery key.
        self.key: str = key
        #: What the log says about it.
        self.state: ClaimState = state
        #: Tells this claim from a later one of the same key (``claimed`` only).
        self.token: str = token
        #: For ``busy``: seconds until the other copy's lease ends at the latest.
        self.retry_after: float = retry_after

    def __repr__(self) -> str:
        return f"Claim(key={self.key!r}, state={self.state!r}, retry_after={self.retry_after:.3f})"


@runtime_checkable
class DeliveryLog(Protocol):
    """What a receiver needs of a delivery log; every method raises only ``DeliveryLogError``."""

    @property
    def ttl(self) -> float:
        """Seconds a handled delivery is remembered."""
        ...

    @property
    def lease(self) -> float:
        """Seconds a claim holds its key unless marked handled or released first."""
        ...

    def claim(self, key: str) -> Claim:
        """Take ``key`` for this delivery if nobody handled or holds it."""
        ...

    def mark_handled(self, claim: Claim) -> None:
        """The handler returned: remember the key as handled for ``ttl`` seconds."""
        ...

    def release(self, claim: Claim) -> None:
        """The handler raised: free the key, unless the claim was lost meanwhile."""
        ...


def checked_seconds(name: str, value: float) -> float:
    """``value`` as a float of seconds above zero; ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a number of seconds above 0, got {value!r}")
    if value == float("inf"):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


class BaseDeliveryLog:
    """The two durations every delivery log has, checked once."""

    def __init__(self, ttl: float = DEFAULT_DELIVERY_TTL, lease: float = DEFAULT_CLAIM_LEASE) -> None:
        self._ttl = checked_seconds("ttl", ttl)
        self._lease = checked_seconds("lease", lease)

    @property
    def ttl(self) -> float:
        """Seconds a handled delivery is remembered."""
        return self._ttl

    @property
    def lease(self) -> float:
        """Seconds a claim holds its key unless marked handled or released first."""
        return self._lease

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._describe()}ttl={self._ttl}, lease={self._lease})"

    def _describe(self) -> str:
        """What ``repr`` shows before the durations (never a secret), ending in ``", "``."""
        return ""


class MemoryDeliveryLog(BaseDeliveryLog):
    """A delivery log in this process's memory: for one process, and for tests.

    Threads of the process share it; other processes do not see it, and a restart forgets
    it. At most ``max_entries`` keys are kept: past that the oldest are forgotten first.
    """

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_DELIVERY_TTL,
        lease: float = DEFAULT_CLAIM_LEASE,
        max_entries: int = 100_000,
    ) -> None:
        super().__init__(ttl, lease)
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be a whole number of at least 1, got {max_entries!r}")
        self.max_entries: int = max_entries
        # key -> (state, token, expires_at on the monotonic clock); oldest write first.
        self._entries: OrderedDict[str, Tuple[ClaimState, str, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._tokens = itertools.count(1)

    def _describe(self) -> str:
        return f"entries={len(self)}, "

    def __len__(self) -> int:
        """How many keys it holds (handled or claimed), expired ones included until swept."""
        return len(self._entries)

    def claim(self, key: str) -> Claim:
        """Take ``key`` if nobody handled or holds it (within their time)."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[2] > now:
                if entry[0] == "handled":
                    return Claim(key, "handled")
                return Claim(key, "busy", retry_after=entry[2] - now)
            token = str(next(self._tokens))
            self._write(key, ("claimed", token, now + self._lease), now)
            return Claim(key, "claimed", token)

    def mark_handled(self, claim: Claim) -> None:
        """Remember ``claim.key`` as handled for ``ttl`` seconds."""
        now = time.monotonic()
        with self._lock:
            self._write(claim.key, ("handled", "", now + self._ttl), now)

    def release(self, claim: Claim) -> None:
        """Free ``claim.key`` if this claim still holds it."""
        with self._lock:
            entry = self._entries.get(claim.key)
            if entry is not None and entry[0] == "claimed" and entry[1] == claim.token:
                del self._entries[claim.key]

    def _write(self, key: str, entry: Tuple[ClaimState, str, float], now: float) -> None:
        entries = self._entries
        entries[key] = entry
        entries.move_to_end(key)
        # Drop what expired at the old end, then the oldest keys beyond the bound.
        while entries:
            oldest_key, oldest = next(iter(entries.items()))
            if oldest[2] > now and len(entries) <= self.max_entries:
                break
            del entries[oldest_key]

    def snapshot(self) -> Dict[str, ClaimState]:
        """Each live key's state, for tests and debugging."""
        now = time.monotonic()
        with self._lock:
            return {key: entry[0] for key, entry in self._entries.items() if entry[2] > now}
