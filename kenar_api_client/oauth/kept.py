"""What the subscription keeper keeps: ``KeptSubscription``, its states, and a round's ``RenewalReport``.

Plain data and their stored form, no I/O: the keeper, its renewal rules and the CLI share them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, fields, replace
from typing import Any, Dict, List, Mapping, Optional

from kenar_api_client.exceptions import ApiException, ApiValueError
from kenar_api_client.oauth.token import OAuthToken
from kenar_api_client.oauth.user_keys import check_user_key

logger: logging.Logger = logging.getLogger("kenar_api_client.oauth.keeper")

SUBSCRIPTIONS_KEY_PREFIX = "subscriptions:"

PENDING, REGISTERED, FAILED, CONSENT_REQUIRED = "pending", "registered", "failed", "consent_required"
STATES = (REGISTERED, PENDING, FAILED, CONSENT_REQUIRED)


@dataclass(frozen=True)
class KeptSubscription:
    """A subscription the keeper keeps for a user, and where it stands.

    ``state`` is ``"pending"`` (to be registered; ``error`` says why the last try failed,
    it is retried after a delay that doubles with each of the ``retries`` so far),
    ``"registered"``, ``"failed"`` (Kenar refused it, e.g. a scope is missing: ``error``
    is Kenar's message; retried once the user's scopes change) or ``"consent_required"``
    (the user's token is gone: retried after they authorize the app again).
    ``valid_until`` is when the token it was registered with expires.
    """

    user_key: str
    event_type: str
    event_resource_id: str = ""
    metadata: Dict[str, Any] = field(default_factory=dict)
    state: str = PENDING
    registered_at: Optional[float] = None
    valid_until: Optional[float] = None
    token_fingerprint: Optional[str] = None
    error: Optional[str] = None
    failed_scopes: Optional[List[str]] = None
    retries: int = 0

    @property
    def key(self) -> str:
        """What identifies it for its user: event type and resource."""
        return f"{self.event_type}|{self.event_resource_id}"

    def request(self) -> Dict[str, Any]:
        """The body of ``events_register_event_subscription``."""
        body: Dict[str, Any] = {"event_type": self.event_type, "metadata": self.metadata}
        if self.event_resource_id:
            body["event_resource_id"] = self.event_resource_id
        return body

    def is_due(self, token: OAuthToken) -> bool:
        """Whether it must be registered (again) for a user whose current token is ``token``."""
        if self.state == REGISTERED:
            return self.token_fingerprint != token.fingerprint
        if self.state == FAILED:
            return sorted(self.failed_scopes or []) != sorted(token.scopes)
        return True

    def to_dict(self) -> Dict[str, Any]:
        """Its stored form (JSON-ready)."""
        return {name: getattr(self, name) for name in _FIELDS}


_FIELDS = tuple(f.name for f in fields(KeptSubscription))


@dataclass
class RenewalReport:
    """What a round of :meth:`SubscriptionKeeper.renew_due` (or one ``renew_user``) did.

    The subscriptions it acted on, by their new state; ``busy``, the users it left alone
    because another keeper (thread or process) was renewing them; ``errors``, users whose
    round broke off (the store failed, or a bug), with why, retried later; ``users``, how
    many users it renewed; ``lag``, how late (seconds) the most overdue of them was when
    the round took it up; ``duration``, how long the round took (seconds).
    """

    registered: List[KeptSubscription] = field(default_factory=list)
    failed: List[KeptSubscription] = field(default_factory=list)
    pending: List[KeptSubscription] = field(default_factory=list)
    consent_required: List[KeptSubscription] = field(default_factory=list)
    busy: List[str] = field(default_factory=list)
    errors: Dict[str, str] = field(default_factory=dict)
    users: int = 0
    lag: float = 0.0
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether nothing failed, was left pending or broke off (busy users are another's work)."""
        return not (self.failed or self.pending or self.consent_required or self.errors)

    def add(self, subscription: KeptSubscription) -> None:
        """File a subscription under its new state."""
        {
            REGISTERED: self.registered,
            FAILED: self.failed,
            PENDING: self.pending,
            CONSENT_REQUIRED: self.consent_required,
        }[subscription.state].append(subscription)

    def counts(self) -> Dict[str, Any]:
        """The figures an operator watches: counts per outcome, users, lag and duration."""
        return {
            "users": self.users,
            "registered": len(self.registered),
            "failed": len(self.failed),
            "pending": len(self.pending),
            "consent_required": len(self.consent_required),
            "busy": len(self.busy),
            "errors": len(self.errors),
            "lag": round(self.lag, 3),
            "duration": round(self.duration, 3),
        }

    def __str__(self) -> str:
        text = (
            f"{len(self.registered)} registered, {len(self.failed)} failed, "
            f"{len(self.pending)} pending, {len(self.consent_required)} waiting for consent"
        )
        if self.busy:
            text += f", {len(self.busy)} busy elsewhere"
        if self.errors:
            text += f", {len(self.errors)} users broke off"
        return text


def declaration(user_key: str, request: Any) -> KeptSubscription:
    """The subscription ``keep()`` is asked to keep, checked (the request model or its dict)."""
    from kenar_api_client.models import EventsRegisterEventSubscriptionRequest

    if isinstance(request, Mapping):
        request = EventsRegisterEventSubscriptionRequest(**request)
    if not isinstance(request, EventsRegisterEventSubscriptionRequest):
        raise ApiValueError(
            "keep() needs an EventsRegisterEventSubscriptionRequest or its dict, "
            f"not {type(request).__name__}"
        )
    if request.event_type is None:
        raise ApiValueError("a kept subscription needs an event_type (NEW_MESSAGE_ON_POST or POST_UPDATE)")
    check_user_key(user_key)
    body = request.model_dump(mode="json", by_alias=True, exclude_unset=True)  # JSON values, not enum members
    return KeptSubscription(
        user_key=user_key,
        event_type=str(body["event_type"]),
        event_resource_id=str(body.get("event_resource_id") or ""),
        metadata=dict(body.get("metadata") or {}),
    )


def encode(subscriptions: Mapping[str, KeptSubscription]) -> str:
    """The stored document of a user's kept subscriptions."""
    return json.dumps({"subscriptions": [s.to_dict() for s in subscriptions.values()]})


def decode(user_key: str, value: str) -> Dict[str, KeptSubscription]:
    """A user's kept subscriptions from their stored document (empty if it is unreadable)."""
    try:
        document = json.loads(value)
        known = set(_FIELDS)
        items = [
            KeptSubscription(**{name: v for name, v in item.items() if name in known})
            for item in document.get("subscriptions", [])
        ]
    except (ValueError, TypeError, AttributeError):
        logger.error("the kept subscriptions of user %r are unreadable; starting afresh", user_key)
        return {}
    return {item.key: item for item in items}


def all_in(
    subscriptions: Mapping[str, KeptSubscription], state: str, error: Optional[str], *, only_changed: bool
) -> Dict[str, KeptSubscription]:
    """Every subscription moved to ``state`` (those already in it left out if ``only_changed``)."""
    return {
        key: replace(s, state=state, error=error, retries=s.retries + 1 if state == PENDING else 0)
        for key, s in subscriptions.items()
        if not (only_changed and s.state == state)
    }


def apply(subscriptions: Dict[str, KeptSubscription], outcomes: Mapping[str, KeptSubscription]) -> None:
    """Store outcomes, unless the declaration changed meanwhile (then it stays due)."""
    for key, outcome in outcomes.items():
        current = subscriptions.get(key)
        if current is not None and current.metadata == outcome.metadata:
            subscriptions[key] = outcome


def message(error: ApiException) -> str:
    """An API error in one short line: status and Kenar's message."""
    text_message = getattr(error.data, "message", None)
    text = f"{error.status} {text_message}" if text_message else str(error)
    return one_line(text)


def one_line(text: str) -> str:
    """``text`` on one line, at most 300 characters."""
    return " ".join(text.split())[:300]
