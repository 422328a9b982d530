"""What a sandbox knows (API keys, access tokens) and records (calls, sends, subscriptions)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, FrozenSet, Iterable, List, Optional

from kenar_api_client.sandbox._delivery import Delivery

#: The event types a subscription can name, and the delivery types they lead to.
SUBSCRIBABLE_EVENT_TYPES: Dict[str, str] = {
    "NEW_MESSAGE_ON_POST": "NEW_MESSAGE",
    "POST_UPDATE": "POST_UPDATE",
}


def utc_now() -> datetime:
    """The current time, aware and in UTC."""
    return datetime.now(timezone.utc)


class AccessToken:
    """What an access token stands for: its user, the OAuth scopes granted, the user's posts."""

    __slots__ = ("posts", "scopes", "user_id")

    def __init__(self, user_id: str, scopes: Iterable[str] = (), posts: Iterable[str] = ()) -> None:
        if isinstance(scopes, str) or isinstance(posts, str):
            raise TypeError("scopes and posts must be collections of strings, not one string")
        self.user_id = user_id
        self.scopes: FrozenSet[str] = frozenset(scopes)
        self.posts: FrozenSet[str] = frozenset(posts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AccessToken):
            return NotImplemented
        return (self.user_id, self.scopes, self.posts) == (other.user_id, other.scopes, other.posts)

    def __hash__(self) -> int:
        return hash((self.user_id, self.scopes, self.posts))

    def __repr__(self) -> str:
        return (
            f"AccessToken(user_id={self.user_id!r}, scopes={sorted(self.scopes)}, posts={sorted(self.posts)})"
        )


@dataclass(frozen=True)
class RequestRecord:
    """One request to an Events endpoint (or an unknown path), whatever its outcome."""

    method: str
    path: str
    status: int
    code: Optional[int]
    message: Optional[str]
    at: datetime = field(default_factory=utc_now)

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class SentEvent:
    """A successful ``events_send_event`` call."""

    message: str
    target_type: str
    target_resource_id: str
    api_key: str = field(repr=False)
    user_id: str
    at: datetime = field(default_factory=utc_now)

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict, without the API key."""
        return {
            "message": self.message,
            "target_type": self.target_type,
            "target_resource_id": self.target_resource_id,
            "user_id": self.user_id,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class Subscription:
    """A successful ``events_register_event_subscription`` call.

    ``event_resource_id`` is ``""`` for "all of the user's posts".
    """

    event_type: str
    event_resource_id: str
    metadata: Dict[str, Any]
    access_token: str = field(repr=False)
    user_id: str
    api_key: str = field(repr=False)
    at: datetime = field(default_factory=utc_now)

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict, without the API key or the access token."""
        return {
            "event_type": self.event_type,
            "event_resource_id": self.event_resource_id,
            "metadata": self.metadata,
            "user_id": self.user_id,
            "at": self.at.isoformat(),
        }


class SandboxState:
    """The sandbox's credentials and records, safe to use from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._api_keys: Dict[str, FrozenSet[str]] = {}
        self._access_tokens: Dict[str, AccessToken] = {}
        self._subscriptions: List[Subscription] = []
        self._sent_events: List[SentEvent] = []
        self._deliveries: List[Delivery] = []
        self._requests: List[RequestRecord] = []

    # -- credentials --------------------------------------------------------------------

    def add_api_key(self, key: str, permissions: Iterable[str]) -> None:
        """Accept ``key`` with ``permissions`` (replacing what it had)."""
        if isinstance(permissions, str):
            raise TypeError("permissions must be a collection of strings, not one string")
        with self._lock:
            self._api_keys[key] = frozenset(permissions)

    def remove_api_key(self, key: str) -> None:
        """Stop accepting ``key``."""
        with self._lock:
            self._api_keys.pop(key, None)

    def add_access_token(self, token: str, grant: AccessToken) -> None:
        """Accept ``token`` for ``grant`` (replacing what it stood for)."""
        with self._lock:
            self._access_tokens[token] = grant

    def revoke_access_token(self, token: str) -> None:
        """Stop accepting ``token`` and drop its subscriptions, which live only as long as it."""
        with self._lock:
            self._access_tokens.pop(token, None)
            self._subscriptions = [s for s in self._subscriptions if s.access_token != token]

    def permissions(self, key: str) -> Optional[FrozenSet[str]]:
        """The permissions of ``key``, or None if it is unknown."""
        with self._lock:
            return self._api_keys.get(key)

    def access_token(self, token: str) -> Optional[AccessToken]:
        """What ``token`` stands for, or None if it is unknown."""
        with self._lock:
            return self._access_tokens.get(token)

    def first_access_token(self) -> Optional[AccessToken]:
        """The access token configured first, if any (the default subject of triggers)."""
        with self._lock:
            return next(iter(self._access_tokens.values()), None)

    # -- records ------------------------------------------------------------------------

    def add_subscription(self, subscription: Subscription) -> None:
        """Record a subscription; one for the same token, type and resource replaces it."""
        key = (subscription.access_token, subscription.event_type, subscription.event_resource_id)
        with self._lock:
            self._subscriptions = [
                s for s in self._subscriptions if (s.access_token, s.event_type, s.event_resource_id) != key
            ]
            self._subscriptions.append(subscription)

    def add_sent_event(self, event: SentEvent) -> None:
        """Record a sent event."""
        with self._lock:
            self._sent_events.append(event)

    def add_delivery(self, delivery: Delivery) -> None:
        """Record a webhook delivery (successful or not)."""
        with self._lock:
            self._deliveries.append(delivery)

    def add_request(self, record: RequestRecord) -> None:
        """Record an API request and its outcome."""
        with self._lock:
            self._requests.append(record)

    def subscriptions(self) -> List[Subscription]:
        """A copy of the current subscriptions, oldest first."""
        with self._lock:
            return list(self._subscriptions)

    def sent_events(self) -> List[SentEvent]:
        """A copy of the sent events, oldest first."""
        with self._lock:
            return list(self._sent_events)

    def deliveries(self) -> List[Delivery]:
        """A copy of the deliveries, oldest first."""
        with self._lock:
            return list(self._deliveries)

    def requests(self) -> List[RequestRecord]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_records(self) -> None:
        """Forget subscriptions, sent events, deliveries and requests; keep the credentials."""
        with self._lock:
            self._subscriptions.clear()
            self._sent_events.clear()
            self._deliveries.clear()
            self._requests.clear()

    def matching_subscription(self, event_type: str, post_token: Optional[str]) -> Optional[Subscription]:
        """The subscription a delivery of ``event_type`` about ``post_token`` belongs to.

        One naming the post wins over one for all of the user's posts; among equals the
        newest wins.
        """
        subscribed_type = _subscription_type_for(event_type)
        with self._lock:
            candidates = [s for s in reversed(self._subscriptions) if s.event_type == subscribed_type]
            for subscription in candidates:
                if post_token is not None and subscription.event_resource_id == post_token:
                    return subscription
            for subscription in candidates:
                if subscription.event_resource_id == "" and self._owns(subscription, post_token):
                    return subscription
        return None

    def _owns(self, subscription: Subscription, post_token: Optional[str]) -> bool:
        grant = self._access_tokens.get(subscription.access_token)
        return grant is not None and (post_token is None or post_token in grant.posts)

    def snapshot(self) -> Dict[str, Any]:
        """Every record as JSON-ready dicts (no keys or tokens)."""
        return {
            "subscriptions": [s.to_dict() for s in self.subscriptions()],
            "sent_events": [e.to_dict() for e in self.sent_events()],
            "deliveries": [d.to_dict() for d in self.deliveries()],
            "requests": [r.to_dict() for r in self.requests()],
        }


def _subscription_type_for(delivery_type: str) -> Optional[str]:
    for subscribed, delivered in SUBSCRIBABLE_EVENT_TYPES.items():
        if delivered == delivery_type:
            return subscribed
    return None


def subscription_needed(event_type: str) -> bool:
    """Whether Kenar delivers ``event_type`` only to apps subscribed to it."""
    return _subscription_type_for(event_type) is not None
