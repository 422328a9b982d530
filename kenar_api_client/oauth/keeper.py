"""``SubscriptionKeeper``: keeps each user's Events subscriptions registered across token refreshes.

A Kenar subscription lives only as long as the access token it was registered with. The
keeper remembers the subscriptions the app wants for each user (in the token store) and
registers each again whenever that user's token changed (after every refresh, which the
token manager does ahead of expiry), so deliveries never stop.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from kenar_api_client.api_client import ApiClient
from kenar_api_client.exceptions import ApiException, ApiValueError
from kenar_api_client.oauth.errors import ConsentRequiredError
from kenar_api_client.oauth.managed import ManagedApiClient
from kenar_api_client.oauth.manager import TokenManager
from kenar_api_client.oauth.token import OAuthToken
from kenar_api_client.oauth.user_keys import check_user_key

logger: logging.Logger = logging.getLogger(__name__)

SUBSCRIPTIONS_KEY_PREFIX = "subscriptions:"
RENEW_LEASE_PREFIX = "renew:"
DEFAULT_INTERVAL = 60.0

PENDING, REGISTERED, FAILED, CONSENT_REQUIRED = "pending", "registered", "failed", "consent_required"
# Statuses that say "do not send this again as it is": the request or the grant is wrong.
_PERMANENT_STATUSES = frozenset({400, 403, 404, 409, 422})


@dataclass(frozen=True)
class KeptSubscription:
    """A subscription the keeper keeps for a user, and where it stands.

    ``state`` is ``"pending"`` (to be registered; ``error`` says why the last try failed,
    it is retried next round), ``"registered"``, ``"failed"`` (Kenar refused it, e.g. a
    scope is missing: ``error`` is Kenar's message; retried once the user's scopes
    change) or ``"consent_required"`` (the user's token is gone: retried after they
    authorize the app again). ``valid_until`` is when the token it was registered with
    expires.
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


@dataclass
class RenewalReport:
    """What one round of :meth:`SubscriptionKeeper.renew_due` did."""

    registered: List[KeptSubscription] = field(default_factory=list)
    failed: List[KeptSubscription] = field(default_factory=list)
    pending: List[KeptSubscription] = field(default_factory=list)
    consent_required: List[KeptSubscription] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing failed or was left pending."""
        return not (self.failed or self.pending or self.consent_required)

    def add(self, subscription: KeptSubscription) -> None:
        """File a subscription under its new state."""
        {
            REGISTERED: self.registered,
            FAILED: self.failed,
            PENDING: self.pending,
            CONSENT_REQUIRED: self.consent_required,
        }[subscription.state].append(subscription)

    def __str__(self) -> str:
        return (
            f"{len(self.registered)} registered, {len(self.failed)} failed, "
            f"{len(self.pending)} pending, {len(self.consent_required)} waiting for consent"
        )


class SubscriptionKeeper:
    """Registers the subscriptions an app wants for each user, and again after every token refresh.

    Declare what you want with :meth:`keep`; then either call :meth:`renew_due` from cron
    (every minute) or :meth:`start` a background thread. Several processes and machines
    may run keepers on the same store: a lease per user makes one of them do each round.
    ``api_client`` carries the API key and host (its access token is not used).
    """

    def __init__(self, tokens: TokenManager, api_client: Optional[ApiClient] = None) -> None:
        if not isinstance(tokens, TokenManager):
            raise ApiValueError(f"tokens must be a TokenManager, not {type(tokens).__name__}")
        self.tokens = tokens
        self.api_client: ApiClient = api_client if api_client is not None else ApiClient.get_default()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        tokens.on_refresh(lambda user_key, token: self._wake.set())

    def __repr__(self) -> str:
        running = "running" if self.running else "stopped"
        return f"SubscriptionKeeper({running}, tokens={self.tokens!r})"

    # -- what to keep ---------------------------------------------------------------------

    def keep(self, user_key: str, request: Union[Mapping[str, Any], Any]) -> KeptSubscription:
        """Keep ``request`` (an ``EventsRegisterEventSubscriptionRequest`` or its dict) registered.

        Declaring the same event type and resource again replaces the metadata. It is
        registered at the next round (at once when the background thread runs).
        """
        wanted = _declaration(user_key, request)

        def change(subscriptions: Dict[str, KeptSubscription]) -> None:
            current = subscriptions.get(wanted.key)
            if current is None or current.metadata != wanted.metadata or current.state == FAILED:
                subscriptions[wanted.key] = wanted

        kept = self._update(user_key, change)[wanted.key]
        self._wake.set()
        return kept

    def drop(self, user_key: str, event_type: str, event_resource_id: str = "") -> None:
        """Stop keeping a subscription; Kenar's lapses when the token it was made with expires."""
        check_user_key(user_key)
        self._update(
            user_key, lambda subscriptions: subscriptions.pop(f"{event_type}|{event_resource_id}", None)
        )

    def status(self, user_key: Optional[str] = None) -> List[KeptSubscription]:
        """The kept subscriptions of ``user_key`` (default: of every user) and their states."""
        users = [check_user_key(user_key)] if user_key is not None else self.users()
        return [s for user in users for s in self._load(user)[0].values()]

    def users(self) -> List[str]:
        """Every user with kept subscriptions."""
        prefix = SUBSCRIPTIONS_KEY_PREFIX
        return sorted(key[len(prefix) :] for key in self.tokens.store.keys(prefix))

    def forget_user(self, user_key: str) -> None:
        """Forget ``user_key``'s tokens and subscriptions (they revoked the app's access)."""
        self.tokens.forget(user_key)
        self.tokens.store.delete(SUBSCRIPTIONS_KEY_PREFIX + user_key)
        logger.info("forgot the tokens and subscriptions of user %r", user_key)

    def handle_event(self, event: Any) -> List[str]:
        """Act on a webhook event: ``USER_ACCESS_REVOCATION`` forgets that user.

        The user is found by key (when Divar user ids are the keys) or by the
        ``divar_user_id`` saved with their token. Returns the user keys forgotten; other
        event types are ignored.
        """
        if getattr(event, "type", None) != "USER_ACCESS_REVOCATION":
            return []
        revocation = getattr(event, "user_access_revocation", None)
        divar_user_id = getattr(revocation, "user_id", None)
        if not isinstance(divar_user_id, str) or not divar_user_id:
            return []
        known = set(self.users()) | set(self.tokens.users())
        forgotten = sorted(
            key for key in known if key == divar_user_id or self.tokens.divar_user_id(key) == divar_user_id
        )
        for user_key in forgotten:
            self.forget_user(user_key)
        return forgotten

    # -- renewing ---------------------------------------------------------------------------

    def renew_due(self) -> RenewalReport:
        """Register every kept subscription that is due, for every user; one round, for cron."""
        report = RenewalReport()
        for user_key in self.users():
            for subscription in self.renew_user(user_key):
                report.add(subscription)
        return report

    def renew_user(self, user_key: str) -> List[KeptSubscription]:
        """Register ``user_key``'s due subscriptions; returns those it acted on, in their new states."""
        check_user_key(user_key)
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        lease = RENEW_LEASE_PREFIX + user_key
        if not self.tokens.store.acquire_lease(lease, owner, self.tokens.lease_ttl):
            return []  # another process is renewing this user right now
        try:
            outcomes = self._renew(user_key)
        finally:
            self.tokens.store.release_lease(lease, owner)
        if outcomes:
            self._update(user_key, lambda subscriptions: _apply(subscriptions, outcomes))
        return list(outcomes.values())

    def _renew(self, user_key: str) -> Dict[str, KeptSubscription]:
        subscriptions = self._load(user_key)[0]
        if not subscriptions:
            return {}
        try:
            token = self.tokens.token(user_key, reload=True)
        except ConsentRequiredError as error:
            return _all_in(subscriptions, CONSENT_REQUIRED, error.why, only_changed=True)
        except ApiException as error:
            return _all_in(subscriptions, PENDING, _message(error), only_changed=False)
        due = [s for s in subscriptions.values() if s.is_due(token)]
        if not due:
            return {}
        from kenar_api_client.api.events_api import EventsApi

        client = self.tokens.api_client_for(user_key, self.api_client)
        events = EventsApi(client)
        outcomes: Dict[str, KeptSubscription] = {}
        for subscription in due:
            outcome = self._register(events, client, subscription, token)
            outcomes[subscription.key] = outcome
            if outcome.state == CONSENT_REQUIRED:
                outcomes.update(_all_in(subscriptions, CONSENT_REQUIRED, outcome.error, only_changed=True))
                break
        return outcomes

    def _register(
        self, events: Any, client: ManagedApiClient, subscription: KeptSubscription, token: OAuthToken
    ) -> KeptSubscription:
        try:
            events.events_register_event_subscription(subscription.request())
        except ConsentRequiredError as error:
            logger.warning("subscription %s of user %r: %s", subscription.key, subscription.user_key, error)
            return replace(subscription, state=CONSENT_REQUIRED, error=error.why)
        except ApiException as error:
            permanent = error.status in _PERMANENT_STATUSES
            logger.warning(
                "subscription %s of user %r %s: %s",
                subscription.key,
                subscription.user_key,
                "refused" if permanent else "not registered, retrying next round",
                _message(error),
            )
            if permanent:
                return replace(
                    subscription, state=FAILED, error=_message(error), failed_scopes=list(token.scopes)
                )
            return replace(subscription, state=PENDING, error=_message(error))
        used = client.last_token or token
        logger.info("registered subscription %s of user %r", subscription.key, subscription.user_key)
        return replace(
            subscription,
            state=REGISTERED,
            registered_at=self.tokens.clock(),
            valid_until=used.expires_at,
            token_fingerprint=used.fingerprint,
            error=None,
            failed_scopes=None,
        )

    # -- in the background ------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the background thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, interval: float = DEFAULT_INTERVAL) -> SubscriptionKeeper:
        """Run :meth:`renew_due` every ``interval`` seconds in a daemon thread, and at once
        after a token refresh in this process. ``interval`` must be shorter than both the
        token manager's leeway and the two-minute rotation grace, so a refresh made by
        another process is noticed before the old subscriptions lapse.
        """
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
            raise ApiValueError(f"interval must be a positive number of seconds, got {interval!r}")
        if interval >= min(self.tokens.leeway, 110.0):
            raise ApiValueError(
                f"interval must be shorter than the token manager's leeway ({self.tokens.leeway:g} s) "
                f"and than the rotation grace (120 s), got {interval:g}"
            )
        if self.running:
            raise ApiValueError("the keeper is already running")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(float(interval),), name="kenar-subscription-keeper", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: Optional[float] = None) -> None:
        """Stop the background thread and wait for its current round to end."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        self._wake.set()
        thread.join(timeout)
        self._thread = None

    def __enter__(self) -> SubscriptionKeeper:
        return self if self.running else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                report = self.renew_due()
                if not report.ok:
                    logger.warning("subscription renewal: %s", report)
            except Exception:
                logger.exception("subscription renewal failed; retrying in %g s", interval)
            self._wake.wait(interval)

    # -- the stored document ----------------------------------------------------------------

    def _load(self, user_key: str) -> Tuple[Dict[str, KeptSubscription], int]:
        stored = self.tokens.store.get(SUBSCRIPTIONS_KEY_PREFIX + user_key)
        if stored is None:
            return {}, 0
        try:
            document = json.loads(stored.value)
            items = [KeptSubscription(**item) for item in document.get("subscriptions", [])]
        except (ValueError, TypeError, AttributeError):
            logger.error("the kept subscriptions of user %r are unreadable; starting afresh", user_key)
            return {}, stored.version
        return {item.key: item for item in items}, stored.version

    def _update(self, user_key: str, change: Any) -> Dict[str, KeptSubscription]:
        """Apply ``change`` to the user's subscriptions with compare-and-set, retrying on a race."""
        for _ in range(20):
            subscriptions, version = self._load(user_key)
            change(subscriptions)
            document = json.dumps({"subscriptions": [asdict(s) for s in subscriptions.values()]})
            key = SUBSCRIPTIONS_KEY_PREFIX + user_key
            if not subscriptions:
                self.tokens.store.delete(key)
                return subscriptions
            if self.tokens.store.put(key, document, version) is not None:
                return subscriptions
        raise ApiValueError(f"the kept subscriptions of user {user_key!r} keep changing under us; try again")


def _declaration(user_key: str, request: Any) -> KeptSubscription:
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


def _all_in(
    subscriptions: Mapping[str, KeptSubscription], state: str, error: Optional[str], *, only_changed: bool
) -> Dict[str, KeptSubscription]:
    return {
        key: replace(s, state=state, error=error)
        for key, s in subscriptions.items()
        if not (only_changed and s.state == state)
    }


def _apply(subscriptions: Dict[str, KeptSubscription], outcomes: Mapping[str, KeptSubscription]) -> None:
    """Store outcomes, unless the declaration changed meanwhile (then it stays due)."""
    for key, outcome in outcomes.items():
        current = subscriptions.get(key)
        if current is not None and current.metadata == outcome.metadata:
            subscriptions[key] = outcome


def _message(error: ApiException) -> str:
    message = getattr(error.data, "message", None)
    text = f"{error.status} {message}" if message else str(error)
    return " ".join(text.split())[:300]
