"""``Sandbox``: a local Kenar Events and OAuth server with configurable credentials and webhook deliveries."""

from __future__ import annotations

import threading
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from kenar_api_client.sandbox._clients import RegisteredClient
from kenar_api_client.sandbox._clock import SandboxClock, check_time
from kenar_api_client.sandbox._delivery import Delivery, RetryPolicy, deliver
from kenar_api_client.sandbox._demo import (
    DEMO_ACCESS_TOKEN,
    DEMO_API_KEY,
    DEMO_API_KEY_PERMISSIONS,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_IDENTIFICATION_KEY,
    DEMO_POST_TOKEN,
    DEMO_REDIRECT_URI,
    DEMO_SCOPES,
    DEMO_USER_ID,
)
from kenar_api_client.sandbox._errors import SandboxError, SubscriptionRequiredError
from kenar_api_client.sandbox._events import build_body, post_token_of
from kenar_api_client.sandbox._faults import FaultPlan, FaultRule, InjectedFault
from kenar_api_client.sandbox._scopes import OFFLINE_ACCESS, check_scope, parse_scope
from kenar_api_client.sandbox._state import (
    SUBSCRIBABLE_EVENT_TYPES,
    Consent,
    RequestRecord,
    SandboxState,
    SentEvent,
    Subscription,
    TokenRequestRecord,
    subscription_needed,
)
from kenar_api_client.sandbox._tokens import ACCESS_TOKEN_LIFETIME, AccessToken, TokenReuse


class SandboxCore:
    """What a sandbox knows and does, whether or not it is served: see :class:`Sandbox`."""

    def __init__(
        self,
        *,
        api_keys: Optional[Mapping[str, Iterable[str]]] = None,
        access_tokens: Optional[Mapping[str, AccessToken]] = None,
        webhook_url: Optional[str] = None,
        identification_key: str = DEMO_IDENTIFICATION_KEY,
        delivery_attempts: int = 3,
        delivery_backoff: float = 0.05,
        delivery_timeout: float = 5.0,
        clock: Optional[SandboxClock] = None,
        oauth_clients: Optional[Mapping[str, RegisteredClient]] = None,
    ) -> None:
        self._state = SandboxState(clock if clock is not None else SandboxClock())
        self._policy = RetryPolicy(delivery_attempts, delivery_backoff, delivery_timeout)
        self._webhook_lock = threading.Lock()
        self._webhook_url: Optional[str] = None
        self._identification_key = DEMO_IDENTIFICATION_KEY
        self._faults = FaultPlan()

        if api_keys is None:
            api_keys = {DEMO_API_KEY: DEMO_API_KEY_PERMISSIONS}
        if access_tokens is None:
            access_tokens = {DEMO_ACCESS_TOKEN: AccessToken(DEMO_USER_ID, DEMO_SCOPES, [DEMO_POST_TOKEN])}
        for key, permissions in api_keys.items():
            self.add_api_key(key, permissions)
        for token, grant in access_tokens.items():
            self._state.tokens.add_access_token(token, grant)
        if oauth_clients is None:
            oauth_clients = {
                DEMO_CLIENT_ID: RegisteredClient(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, [DEMO_REDIRECT_URI])
            }
        for client_id, client in oauth_clients.items():
            if client_id != client.client_id:
                raise SandboxError(f"oauth_clients maps {client_id!r} to the client {client.client_id!r}")
            self._state.add_oauth_client(client)
        self.set_webhook(webhook_url, identification_key)

    @property
    def clock(self) -> SandboxClock:
        """The clock of every expiry check; ``clock.advance(3600)`` makes an hour pass."""
        return self._state.clock

    # -- credentials --------------------------------------------------------------------

    def add_api_key(self, key: str, permissions: Iterable[str]) -> None:
        """Accept API key ``key`` with ``permissions`` (e.g. ``["EVENTS_SEND"]``)."""
        _check_secret(key, "API key")
        self._state.add_api_key(key, permissions)

    def remove_api_key(self, key: str) -> None:
        """Stop accepting API key ``key``: calls with it get 401."""
        self._state.remove_api_key(key)

    def add_access_token(
        self,
        token: str,
        user_id: str,
        scopes: Iterable[str] = (),
        posts: Iterable[str] = (),
        *,
        expires_at: Optional[float] = None,
    ) -> AccessToken:
        """Accept access token ``token`` for user ``user_id`` with OAuth ``scopes``.

        ``posts`` are the tokens of the posts the user owns: the posts a ``POST`` target
        or a subscription's ``event_resource_id`` may name. The token is valid until
        ``expires_at`` (epoch seconds on :attr:`clock`), or forever if None.
        """
        _check_secret(token, "access token")
        if expires_at is not None:
            try:
                check_time(expires_at, "expires_at")
            except ValueError as exc:
                raise SandboxError(str(exc)) from exc
        grant = AccessToken(user_id, scopes, posts)
        self._state.tokens.add_access_token(token, grant, expires_at)
        return grant

    def revoke_access_token(self, token: str) -> None:
        """Stop accepting ``token`` (calls get 401) and drop the subscriptions made with it."""
        self._state.revoke_access_token(token)

    # -- OAuth --------------------------------------------------------------------------

    def add_oauth_client(
        self, client_id: str, client_secret: str, redirect_uris: Iterable[str]
    ) -> RegisteredClient:
        """Register an OAuth client (replacing one with the same ``client_id``); returns it."""
        client = RegisteredClient(client_id, client_secret, redirect_uris)
        self._state.add_oauth_client(client)
        return client

    def set_consent(
        self, user_id: str = DEMO_USER_ID, posts: Iterable[str] = (DEMO_POST_TOKEN,), *, refuse: bool = False
    ) -> None:
        """Who consents at ``/oauth2/auth`` from now on, owning which ``posts``.

        ``refuse=True``: the user refuses, and ``/oauth2/auth`` redirects back with
        ``error=access_denied`` and no code.
        """
        if not isinstance(user_id, str) or not user_id:
            raise SandboxError("the user_id must be a non-empty string")
        if isinstance(posts, str):
            raise SandboxError("posts must be a collection of post tokens, not one string")
        self._state.set_consent(Consent(user_id, frozenset(posts), bool(refuse)))

    def issue_tokens(
        self,
        *,
        user_id: str = DEMO_USER_ID,
        scopes: Iterable[str] = (*DEMO_SCOPES, OFFLINE_ACCESS),
        posts: Iterable[str] = (DEMO_POST_TOKEN,),
        client_id: str = DEMO_CLIENT_ID,
        redirect_uri: str = DEMO_REDIRECT_URI,
        expires_in: int = ACCESS_TOKEN_LIFETIME,
    ) -> Dict[str, Any]:
        """Skip the browser step: the JSON object ``/oauth2/token`` would answer for a code.

        The tokens behave exactly like ones from the flow: refreshable by ``client_id``
        with ``redirect_uri``; ``refresh_token`` only when ``offline_access`` is in ``scopes``.
        """
        if isinstance(scopes, str) or isinstance(posts, str):
            raise SandboxError("scopes and posts must be collections of strings, not one string")
        try:
            requested = list(scopes)
            for scope in requested:
                check_scope(scope)
            granted = parse_scope(" ".join(requested))
        except ValueError as exc:
            raise SandboxError(str(exc)) from exc
        client = self._state.oauth_client(client_id)
        if client is None:
            raise SandboxError(f"no OAuth client {client_id!r} is registered: call add_oauth_client() first")
        if not client.accepts_redirect_uri(redirect_uri):
            raise SandboxError(f"{redirect_uri!r} is not a redirect URI registered for {client_id!r}")
        if (
            isinstance(expires_in, bool)
            or not isinstance(expires_in, int)
            or not 0 < expires_in <= 10 * 365 * 86400
        ):
            raise SandboxError("expires_in must be a positive number of seconds, at most ten years")
        grant = AccessToken(user_id, granted, posts)
        return self._state.tokens.issue(client_id, redirect_uri, granted, grant, expires_in)

    def revoke_consent(self, user_id: str) -> Optional[Delivery]:
        """The user revokes the app: every access and refresh token of ``user_id`` stops working.

        Their subscriptions are dropped. If a webhook URL is set and a revoked token carried
        the scopes ``NOTIFICATION_ACCESS_REVOCATION`` and ``USER_ID``, one
        ``USER_ACCESS_REVOCATION`` delivery is made and returned; else None.
        """
        revoked = self._state.tokens.revoke_user(user_id)
        self._state.drop_revoked_subscriptions()
        notified = any({"NOTIFICATION_ACCESS_REVOCATION", "USER_ID"} <= grant.scopes for grant in revoked)
        if not notified or self.webhook_url is None:
            return None
        return self._trigger("USER_ACCESS_REVOCATION", {"user_id": user_id}, None, False)

    # -- records ------------------------------------------------------------------------

    @property
    def state(self) -> SandboxState:
        """The underlying credentials and records (used by the HTTP handler)."""
        return self._state

    @property
    def subscriptions(self) -> List[Subscription]:
        """Live subscriptions (their access token still valid), oldest first, with ``expires_at``."""
        return self._state.subscriptions()

    @property
    def all_subscriptions(self) -> List[Subscription]:
        """Every subscription not dropped by a revocation, dead ones (token expired) included."""
        return self._state.all_subscriptions()

    @property
    def sent_events(self) -> List[SentEvent]:
        """Events sent successfully, oldest first (a copy)."""
        return self._state.sent_events()

    @property
    def deliveries(self) -> List[Delivery]:
        """Webhook deliveries, successful or not, oldest first (a copy)."""
        return self._state.deliveries()

    @property
    def requests(self) -> List[RequestRecord]:
        """Every API request with its status, failed ones included, oldest first (a copy)."""
        return self._state.requests()

    @property
    def token_requests(self) -> List[TokenRequestRecord]:
        """Every ``POST /oauth2/token`` with its outcome, failed ones included, oldest first (a copy)."""
        return self._state.token_requests()

    @property
    def token_reuses(self) -> List[TokenReuse]:
        """Every spent refresh token or code sent again, oldest first, with whether it was within
        the rotation grace or revoked the user's whole chain (a copy)."""
        return self._state.tokens.reuses()

    @property
    def rotation_grace(self) -> float:
        """Seconds a rotated refresh token (and the access token beside it) keeps working: 120,
        as on Kenar; set it shorter to rehearse the grace period's end in real time."""
        return self._state.tokens.rotation_grace

    @rotation_grace.setter
    def rotation_grace(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= 86400:
            raise SandboxError(f"rotation_grace must be a number of seconds from 0 to 86400, got {seconds!r}")
        self._state.tokens.rotation_grace = float(seconds)

    def reset(self) -> None:
        """Forget all records (subscriptions, sent events, deliveries, requests, token requests,
        token reuses, injected faults) and drop the fault rules that have not fired."""
        self._state.clear_records()
        self._state.tokens.clear_reuses()
        self._faults.clear()

    def snapshot(self) -> Dict[str, Any]:
        """Records and webhook URL as JSON-ready data, as ``GET /_sandbox/state`` answers."""
        return {
            "webhook_url": self.webhook_url,
            **self._state.snapshot(),
            **self.faults_snapshot(),
        }

    # -- fault injection ----------------------------------------------------------------

    def inject_fault(
        self,
        operation: str,
        fault: Union[str, int],
        *,
        times: Optional[int] = None,
        fraction: Optional[float] = None,
        seed: Optional[int] = None,
        retry_after: Optional[int] = None,
        retry_after_as_date: bool = False,
        delay: Optional[float] = None,
        takes_effect: Optional[bool] = None,
    ) -> FaultRule:
        """Make calls of ``operation`` fail with ``fault``; returns the rule.

        ``operation`` is an SDK method name (``events_send_event``), ``oauth2_auth`` or
        ``oauth2_token``, or a pattern (``"*"``, ``"events_*"``). ``fault`` is ``429``,
        ``500``, ``502``, ``503``, ``504``, ``"slow"`` (``delay`` seconds late, 1 by default),
        ``"trickle"`` (the body a byte at a time over ``delay`` seconds),
        ``"drop-before-read"``, ``"drop-after-read"`` or ``"malformed"``; a ``delay`` given to
        the others holds their answer that long. At ``oauth2_token`` the status faults answer
        RFC 6749 errors (``server_error``, ``temporarily_unavailable``). It fails the
        next ``times`` matching calls (1 if neither ``times`` nor ``fraction`` is given),
        or each with probability ``fraction`` (``seed`` makes the draw repeatable).
        ``retry_after``: a ``Retry-After`` header, in seconds or, with
        ``retry_after_as_date``, as an HTTP date that many seconds ahead. ``takes_effect``
        overrides whether the operation runs (default: not for 429, 503 and
        drop-before-read; yes for the others). Each fault that fires is recorded in
        :attr:`injected_faults`.
        """
        rule = FaultRule(
            operation,
            fault,
            times=times,
            fraction=fraction,
            seed=seed,
            retry_after=retry_after,
            retry_after_as_date=retry_after_as_date,
            delay=delay,
            takes_effect=takes_effect,
        )
        return self._faults.add(rule)

    def clear_faults(self) -> None:
        """Drop the fault rules that have not fired (:attr:`injected_faults` is kept)."""
        self._faults.clear_rules()

    @property
    def fault_rules(self) -> List[FaultRule]:
        """The fault rules that can still fire, in the order they were added (a copy)."""
        return self._faults.rules()

    @property
    def injected_faults(self) -> List[InjectedFault]:
        """Every fault that fired, oldest first, with whether the operation took effect (a copy)."""
        return self._faults.injected()

    @property
    def fault_plan(self) -> FaultPlan:
        """The fault rules and records (used by the HTTP handler)."""
        return self._faults

    def faults_snapshot(self) -> Dict[str, Any]:
        """The fault rules and injected faults as JSON-ready data."""
        return {
            "fault_rules": [rule.to_dict() for rule in self._faults.rules()],
            "injected_faults": [fault.to_dict() for fault in self._faults.injected()],
        }

    # -- webhook deliveries -------------------------------------------------------------

    @property
    def webhook_url(self) -> Optional[str]:
        """Where deliveries go, or None."""
        return self._webhook_url

    @property
    def identification_key(self) -> str:
        """The key deliveries carry in their ``Authorization`` header."""
        return self._identification_key

    def set_webhook(self, url: Optional[str], identification_key: Optional[str] = None) -> None:
        """Deliver to ``url`` (None: nowhere) with ``identification_key`` (None: keep the current one)."""
        if url is not None and not url.lower().startswith(("http://", "https://")):
            raise SandboxError(f"the webhook URL must be an http:// or https:// URL, got {url!r}")
        if identification_key is not None:
            _check_secret(identification_key, "identification key")
        with self._webhook_lock:
            self._webhook_url = url
            if identification_key is not None:
                self._identification_key = identification_key

    def trigger(
        self,
        event_type: str,
        *,
        metadata: Optional[Mapping[str, Any]] = None,
        require_subscription: bool = True,
        **fields: Any,
    ) -> Delivery:
        """Deliver one ``event_type`` event to the webhook, synchronously, and return the record.

        The body is a realistic payload for the type (about the first configured user and
        their post, or the post of the newest matching subscription) with ``fields``
        merged into it; an unknown type gets ``fields`` as its payload. ``NEW_MESSAGE`` and
        ``POST_UPDATE`` need a matching subscription, whose ``metadata`` the body carries,
        else :class:`SubscriptionRequiredError` (unless ``require_subscription=False``).
        ``metadata`` overrides the body's metadata. A receiver that fails or is down does
        not raise: the returned :class:`Delivery` says ``outcome == "failed"``. Raises
        :class:`SandboxError` if no webhook URL is set.
        """
        return self._trigger(event_type, fields, metadata, require_subscription)

    def deliver(self, body: Mapping[str, Any]) -> Delivery:
        """Deliver ``body`` exactly as given (no subscription check), e.g. a malformed one."""
        url, key = self._webhook()
        delivery = deliver(url, key, dict(body), self._policy, self._state.now())
        self._state.add_delivery(delivery)
        return delivery

    def _trigger(
        self,
        event_type: str,
        fields: Mapping[str, Any],
        metadata: Optional[Mapping[str, Any]],
        require_subscription: bool,
    ) -> Delivery:
        self._webhook()
        user_id, post_token = self._default_subject(event_type)
        body = build_body(event_type, fields, metadata={}, post_token=post_token, user_id=user_id)
        subscription = None
        if subscription_needed(event_type):
            post = post_token_of(body)
            subscription = self._state.matching_subscription(event_type, post)
            if subscription is None and require_subscription:
                raise SubscriptionRequiredError(_no_subscription_message(event_type, post))
        if metadata is not None:
            body["metadata"] = dict(metadata)
        elif subscription is not None:
            body["metadata"] = dict(subscription.metadata)
        return self.deliver(body)

    def _webhook(self) -> Tuple[str, str]:
        with self._webhook_lock:
            url, key = self._webhook_url, self._identification_key
        if url is None:
            raise SandboxError(
                "no webhook URL: pass webhook_url= to Sandbox(), call set_webhook(), "
                "or POST /_sandbox/webhook"
            )
        return url, key

    def _default_subject(self, event_type: str) -> Tuple[str, str]:
        """The user and post a triggered event is about unless its fields say otherwise."""
        grant = self._state.tokens.first_grant()
        user_id = grant.user_id if grant is not None else DEMO_USER_ID
        post_token = min(grant.posts) if grant is not None and grant.posts else DEMO_POST_TOKEN
        subscribed_type = next((s for s, d in SUBSCRIBABLE_EVENT_TYPES.items() if d == event_type), None)
        newest = [s for s in self._state.subscriptions() if s.event_type == subscribed_type]
        if newest and newest[-1].event_resource_id:
            post_token = newest[-1].event_resource_id
        elif newest:
            owner = self._state.tokens.status(newest[-1].access_token).grant
            if owner is not None and owner.posts:
                post_token = min(owner.posts)
        return user_id, post_token


def _no_subscription_message(event_type: str, post_token: Optional[str]) -> str:
    subscribed_type = next(s for s, d in SUBSCRIBABLE_EVENT_TYPES.items() if d == event_type)
    about = f" for post {post_token!r}" if post_token else ""
    return (
        f"no subscription matches {event_type}{about}: Kenar delivers {event_type} only to apps "
        f"subscribed to {subscribed_type}, so register that subscription first "
        "(or deliver anyway: require_subscription=False, kenar-events trigger --no-subscription-check)"
    )


def _check_secret(value: str, what: str) -> None:
    """Reject values an HTTP header could not carry unchanged; never echo the value."""
    if not isinstance(value, str) or not value:
        raise SandboxError(f"the {what} must be a non-empty string")
    if value != value.strip() or any(c in value for c in "\r\n\0"):
        raise SandboxError(f"the {what} must not contain line breaks or surrounding whitespace")
