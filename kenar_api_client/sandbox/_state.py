"""What a sandbox knows (API keys, tokens, OAuth clients) and records (calls, sends, subscriptions)."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Tuple

from kenar_api_client.sandbox._chat_book import ChatBook
from kenar_api_client.sandbox._clients import RegisteredClient
from kenar_api_client.sandbox._clock import SandboxClock, as_utc
from kenar_api_client.sandbox._delivery import Delivery
from kenar_api_client.sandbox._demo import DEMO_POST_TOKEN, DEMO_USER_ID
from kenar_api_client.sandbox._tokens import TokenBook

#: The event types a subscription can name, and the delivery types they lead to.
SUBSCRIBABLE_EVENT_TYPES: Dict[str, str] = {
    "NEW_MESSAGE_ON_POST": "NEW_MESSAGE",
    "POST_UPDATE": "POST_UPDATE",
}


def utc_now() -> datetime:
    """The current time, aware and in UTC."""
    return datetime.now(timezone.utc)


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
class TokenRequestRecord:
    """One ``POST /oauth2/token``, whatever its outcome (no code, token or secret in it).

    ``grant_type`` is as sent (``""`` if missing; ``"other"`` for a value that is no grant
    type OAuth defines, so a token sent there by mistake is not kept), ``client_id`` as
    claimed (None if none), ``error`` the RFC 6749 error code (None on success).
    """

    grant_type: str
    client_id: Optional[str]
    status: int
    error: Optional[str]
    at: datetime = field(default_factory=utc_now)

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "grant_type": self.grant_type,
            "client_id": self.client_id,
            "status": self.status,
            "error": self.error,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class Subscription:
    """A successful ``events_register_event_subscription`` call.

    ``event_resource_id`` is ``""`` for "all of the user's posts". A subscription lives as
    long as the access token it was registered with: ``expires_at`` is when that token stops
    being valid as far as known now (None: a token that never expires), filled in when the
    sandbox lists its subscriptions.
    """

    event_type: str
    event_resource_id: str
    metadata: Dict[str, Any]
    access_token: str = field(repr=False)
    user_id: str
    api_key: str = field(repr=False)
    at: datetime = field(default_factory=utc_now)
    expires_at: Optional[datetime] = None

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict, without the API key or the access token."""
        return {
            "event_type": self.event_type,
            "event_resource_id": self.event_resource_id,
            "metadata": self.metadata,
            "user_id": self.user_id,
            "at": self.at.isoformat(),
            "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
        }


@dataclass(frozen=True)
class Consent:
    """What happens at ``/oauth2/auth``: which user consents (or refuses), owning which posts."""

    user_id: str = DEMO_USER_ID
    posts: FrozenSet[str] = frozenset((DEMO_POST_TOKEN,))
    refuse: bool = False


class SandboxState:
    """The sandbox's credentials and records, safe to use from several threads.

    ``clock`` is the time of every expiry check; ``tokens`` the access, refresh and code book;
    ``chat`` the conversations and the messages sent into them.
    """

    def __init__(self, clock: SandboxClock) -> None:
        self.clock = clock
        self.tokens: TokenBook = TokenBook(clock)
        self.chat: ChatBook = ChatBook()
        self._lock = threading.Lock()
        self._api_keys: Dict[str, FrozenSet[str]] = {}
        self._oauth_clients: Dict[str, RegisteredClient] = {}
        self._consent = Consent()
        self._subscriptions: List[Subscription] = []
        self._sent_events: List[SentEvent] = []
        self._deliveries: List[Delivery] = []
        self._requests: List[RequestRecord] = []
        self._token_requests: List[TokenRequestRecord] = []

    def now(self) -> datetime:
        """The clock's time as an aware UTC ``datetime``: the ``at`` of new records."""
        return self.clock.utc()

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

    def permissions(self, key: str) -> Optional[FrozenSet[str]]:
        """The permissions of ``key``, or None if it is unknown."""
        with self._lock:
            return self._api_keys.get(key)

    def revoke_access_token(self, token: str) -> None:
        """Stop accepting ``token`` and drop its subscriptions, which live only as long as it."""
        self.tokens.revoke_access_token(token)
        with self._lock:
            self._subscriptions = [s for s in self._subscriptions if s.access_token != token]

    def drop_revoked_subscriptions(self) -> None:
        """Forget the subscriptions made with revoked tokens (a revocation ends them for good)."""
        with self._lock:
            subscriptions = list(self._subscriptions)
        revoked = {s.access_token for s in subscriptions if self.tokens.status(s.access_token).revoked}
        with self._lock:
            self._subscriptions = [s for s in self._subscriptions if s.access_token not in revoked]

    def add_oauth_client(self, client: RegisteredClient) -> None:
        """Register ``client`` (replacing one with the same ``client_id``)."""
        with self._lock:
            self._oauth_clients[client.client_id] = client

    def oauth_client(self, client_id: str) -> Optional[RegisteredClient]:
        """The client registered as ``client_id``, or None."""
        with self._lock:
            return self._oauth_clients.get(client_id)

    def set_consent(self, consent: Consent) -> None:
        """Set what the next visits of ``/oauth2/auth`` answer."""
        with self._lock:
            self._consent = consent

    def consent(self) -> Consent:
        """What a visit of ``/oauth2/auth`` answers."""
        with self._lock:
            return self._consent

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

    def add_token_request(self, record: TokenRequestRecord) -> None:
        """Record a token request and its outcome."""
        with self._lock:
            self._token_requests.append(record)

    def subscriptions(self) -> List[Subscription]:
        """The live subscriptions (their token still valid), oldest first, with ``expires_at``."""
        return [subscription for subscription, live in self._subscriptions_with_liveness() if live]

    def all_subscriptions(self) -> List[Subscription]:
        """Every subscription not dropped by a revocation, live or not, oldest first."""
        return [subscription for subscription, _ in self._subscriptions_with_liveness()]

    def _subscriptions_with_liveness(self) -> List[Tuple[Subscription, bool]]:
        with self._lock:
            subscriptions = list(self._subscriptions)
        listed: List[Tuple[Subscription, bool]] = []
        for subscription in subscriptions:
            status = self.tokens.status(subscription.access_token)
            if status.revoked:
                continue
            until = None if status.valid_until is None else as_utc(status.valid_until)
            listed.append((dataclasses.replace(subscription, expires_at=until), status.grant is not None))
        return listed

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

    def token_requests(self) -> List[TokenRequestRecord]:
        """A copy of the token request log, oldest first."""
        with self._lock:
            return list(self._token_requests)

    def clear_records(self) -> None:
        """Forget subscriptions, sent events and messages, conversations, deliveries and
        requests; keep the credentials."""
        with self._lock:
            self._subscriptions.clear()
            self._sent_events.clear()
            self._deliveries.clear()
            self._requests.clear()
            self._token_requests.clear()
        self.chat.clear()

    def matching_subscription(self, event_type: str, post_token: Optional[str]) -> Optional[Subscription]:
        """The live subscription a delivery of ``event_type`` about ``post_token`` belongs to.

        One naming the post wins over one for all of the user's posts; among equals the
        newest wins.
        """
        subscribed_type = _subscription_type_for(event_type)
        candidates = [s for s in reversed(self.subscriptions()) if s.event_type == subscribed_type]
        for subscription in candidates:
            if post_token is not None and subscription.event_resource_id == post_token:
                return subscription
        for subscription in candidates:
            if subscription.event_resource_id == "" and self._owns(subscription, post_token):
                return subscription
        return None

    def _owns(self, subscription: Subscription, post_token: Optional[str]) -> bool:
        grant = self.tokens.status(subscription.access_token).grant
        return grant is not None and (post_token is None or post_token in grant.posts)

    def snapshot(self) -> Dict[str, Any]:
        """Every record as JSON-ready dicts (no keys, tokens, codes or secrets); live subscriptions only."""
        return {
            "subscriptions": [s.to_dict() for s in self.subscriptions()],
            "sent_events": [e.to_dict() for e in self.sent_events()],
            "conversations": [c.to_dict() for c in self.chat.conversations()],
            "sent_messages": [m.to_dict() for m in self.chat.sent()],
            "deliveries": [d.to_dict() for d in self.deliveries()],
            "requests": [r.to_dict() for r in self.requests()],
            "token_requests": [r.to_dict() for r in self.token_requests()],
        }


def _subscription_type_for(delivery_type: str) -> Optional[str]:
    for subscribed, delivered in SUBSCRIBABLE_EVENT_TYPES.items():
        if delivered == delivery_type:
            return subscribed
    return None


def subscription_needed(event_type: str) -> bool:
    """Whether Kenar delivers ``event_type`` only to apps subscribed to it."""
    return _subscription_type_for(event_type) is not None
