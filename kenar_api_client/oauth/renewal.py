"""One user's renewal round, as decisions without I/O: what to read, refresh, register and record.

:func:`user_round` is a generator. It yields the I/O it needs as steps (:class:`ReadSubscriptions`,
:class:`ReadToken`, :class:`RefreshToken`, :class:`Register`, :class:`Record`) and is sent each
step's result, or has the step's exception thrown into it; it returns a :class:`UserRound`.
A driver performs the steps: :class:`~kenar_api_client.oauth.keeper.SubscriptionKeeper` with
threads and the sync client, an async keeper with ``await`` (see :func:`drive`), both with the
same decisions. The order is fixed: the token first (refreshed when due), then the user's
due registrations one by one, each outcome recorded as soon as it is known, so a process
killed mid-round leaves no registration done but unrecorded behind it, bar the one in flight.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable, Dict, Generator, Iterable, List, NamedTuple, Optional, Union

from kenar_api_client.exceptions import ApiException, ApiValueError
from kenar_api_client.oauth.errors import ConsentRequiredError
from kenar_api_client.oauth.kept import (
    CONSENT_REQUIRED,
    FAILED,
    PENDING,
    REGISTERED,
    KeptSubscription,
    all_in,
    logger,
    message,
    one_line,
)
from kenar_api_client.oauth.token import OAuthToken

# Statuses that say "do not send this again as it is": the request or the grant is wrong.
PERMANENT_STATUSES = frozenset({400, 403, 404, 409, 422})
#: A token's lifetime when it does not say (Kenar's is an hour).
_DEFAULT_LIFETIME = 3600.0


class ReadSubscriptions(NamedTuple):
    """Step: the user's kept subscriptions, by key (empty if none)."""

    user_key: str


class ReadToken(NamedTuple):
    """Step: the user's stored token; raises ``ConsentRequiredError`` when there is none."""

    user_key: str


class RefreshToken(NamedTuple):
    """Step: refresh ``stale`` once across processes; the token now current (maybe another's refresh)."""

    user_key: str
    stale: OAuthToken


class Register(NamedTuple):
    """Step: register ``subscription`` with the user's token; the token the request was sent with."""

    subscription: KeptSubscription
    token: OAuthToken


class Record(NamedTuple):
    """Step: store these outcomes in the user's kept subscriptions (compare-and-set)."""

    user_key: str
    outcomes: Dict[str, KeptSubscription]


Step = Union[ReadSubscriptions, ReadToken, RefreshToken, Register, Record]


class ClaimLost(Exception):
    """The driver no longer holds the user (its claim ran out and another keeper took it): stop."""


@dataclass
class UserRound:
    """What one user's round did: the subscriptions acted on, when the user is next due.

    ``busy``: another keeper held the user, nothing was done; ``error``: why the round broke
    off (the store failed, or a bug), if it did.
    """

    user_key: str
    outcomes: List[KeptSubscription] = field(default_factory=list)
    next_due: Optional[float] = None
    busy: bool = False
    error: Optional[str] = None


@dataclass(frozen=True)
class RenewalPolicy:
    """When a user is due: the rules every keeper process applies alike.

    ``leeway``: a token is refreshed at the latest this long before it expires (the token
    manager's). ``jitter``: up to this fraction of a token's lifetime earlier still, by a
    fixed hash of user and token, so tokens issued together spread out instead of falling
    due in the same second. ``retry_delay``: a pending registration or failed refresh is
    tried again after this, doubling with each failure up to ``max_retry_delay``.
    ``revisit``: users waiting for consent or with refused subscriptions are looked at
    again this often (a new consent in a process without a keeper is noticed then).
    """

    leeway: float
    jitter: float = 0.1
    retry_delay: float = 30.0
    max_retry_delay: float = 900.0
    revisit: float = 900.0

    def __post_init__(self) -> None:
        if not 0 <= self.jitter < 0.5:
            raise ApiValueError(f"jitter must be a fraction from 0 to 0.5, got {self.jitter!r}")
        for name in ("retry_delay", "max_retry_delay", "revisit"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 86400:
                raise ApiValueError(f"{name} must be a number of seconds from 0 to 86400, got {value!r}")

    def refresh_at(self, user_key: str, token: OAuthToken) -> float:
        """When the keeper refreshes ``token``: ``leeway`` before expiry, minus the user's jitter."""
        lifetime = token.expires_at - token.obtained_at if token.obtained_at else _DEFAULT_LIFETIME
        spread = max(0.0, min(lifetime, _DEFAULT_LIFETIME * 24)) * self.jitter
        share = zlib.crc32(f"{user_key}\n{token.fingerprint}".encode("utf-8", "surrogatepass")) / 2**32
        return token.expires_at - self.leeway - spread * share

    def retry_at(self, now: float, retries: int) -> float:
        """When something that failed ``retries`` times in a row is tried again."""
        delay = self.retry_delay * 2.0 ** max(0, min(retries - 1, 16))
        return now + min(self.max_retry_delay, delay)

    def next_due(
        self,
        user_key: str,
        token: Optional[OAuthToken],
        subscriptions: Iterable[KeptSubscription],
        now: float,
        *,
        refresh_failures: int = 0,
    ) -> Optional[float]:
        """When the user is due next: always after ``now``; None if nothing is kept (unschedule)."""
        kept = list(subscriptions)
        if not kept:
            return None
        times: List[float] = []
        for subscription in kept:
            if subscription.state == PENDING:
                times.append(self.retry_at(now, subscription.retries))
            elif subscription.state in (FAILED, CONSENT_REQUIRED):
                times.append(now + self.revisit)
        if token is not None:
            refresh = self.refresh_at(user_key, token)
            times.append(refresh if refresh > now else self.retry_at(now, max(1, refresh_failures)))
        elif not times:  # registered with a token that could not be read just now
            times.append(self.retry_at(now, 1))
        return min(times)


def user_round(user_key: str, policy: RenewalPolicy, now: float) -> Generator[Step, Any, UserRound]:
    """One user's round at ``now``: refresh the token when due, then register what is due.

    Failures are isolated: a subscription Kenar refuses is ``failed``, one that could not be
    sent (a transport error, a 5xx, a declaration this process cannot send) ``pending`` and
    retried later; neither stops the others. Only the store failing or the claim being lost
    ends the round early (the exception leaves the generator).
    """
    subscriptions: Dict[str, KeptSubscription] = yield ReadSubscriptions(user_key)
    if not subscriptions:
        return UserRound(user_key)
    try:
        token: OAuthToken = yield ReadToken(user_key)
    except ConsentRequiredError as error:
        return (yield from _without_token(user_key, subscriptions, policy, now, error))
    except ApiException as error:
        return (yield from _without_token(user_key, subscriptions, policy, now, error))

    refresh_failures = 0
    if policy.refresh_at(user_key, token) <= now:
        try:
            token = yield RefreshToken(user_key, token)
        except ConsentRequiredError as error:
            return (yield from _without_token(user_key, subscriptions, policy, now, error))
        except ApiException as error:
            if token.is_expired(now=now):
                return (yield from _without_token(user_key, subscriptions, policy, now, error))
            refresh_failures = 1
            logger.warning(
                "could not refresh the token of user %r ahead of expiry (%s); retrying later",
                user_key,
                message(error),
            )

    acted: Dict[str, KeptSubscription] = {}
    for subscription in [s for s in subscriptions.values() if s.is_due(token)]:
        outcome = yield from _register(subscription, token, now)
        outcomes = {outcome.key: outcome}
        if outcome.state == CONSENT_REQUIRED:  # the grant is gone: the rest waits for consent too
            rest = {k: s for k, s in subscriptions.items() if k not in acted and k != outcome.key}
            outcomes.update(all_in(rest, CONSENT_REQUIRED, outcome.error, only_changed=True))
        yield Record(user_key, outcomes)
        acted.update(outcomes)
        if outcome.state == CONSENT_REQUIRED:
            break
    final = {**subscriptions, **acted}
    next_due = policy.next_due(user_key, token, final.values(), now, refresh_failures=refresh_failures)
    return UserRound(user_key, list(acted.values()), next_due)


def _without_token(
    user_key: str,
    subscriptions: Dict[str, KeptSubscription],
    policy: RenewalPolicy,
    now: float,
    error: ApiException,
) -> Generator[Step, Any, UserRound]:
    """No usable token: every subscription waits for consent, or stays pending on a transient error."""
    if isinstance(error, ConsentRequiredError):
        outcomes = all_in(subscriptions, CONSENT_REQUIRED, error.why, only_changed=True)
    else:
        outcomes = all_in(subscriptions, PENDING, message(error), only_changed=False)
    if outcomes:
        yield Record(user_key, outcomes)
    final = {**subscriptions, **outcomes}
    return UserRound(user_key, list(outcomes.values()), policy.next_due(user_key, None, final.values(), now))


def _register(
    subscription: KeptSubscription, token: OAuthToken, now: float
) -> Generator[Step, Any, KeptSubscription]:
    """Register one subscription; its new state, whatever happened (bar a lost claim)."""
    where = f"subscription {subscription.key} of user {subscription.user_key!r}"
    try:
        used: OAuthToken = yield Register(subscription, token)
    except ClaimLost:
        raise
    except ConsentRequiredError as error:
        logger.warning("%s: %s", where, error)
        return replace(subscription, state=CONSENT_REQUIRED, error=error.why, retries=0)
    except ApiException as error:
        permanent = error.status in PERMANENT_STATUSES
        text = message(error)
        if permanent:
            logger.warning("%s refused: %s", where, text)
            return replace(
                subscription, state=FAILED, error=text, failed_scopes=list(token.scopes), retries=0
            )
        logger.warning("%s not registered, retrying later: %s", where, text)
        return replace(subscription, state=PENDING, error=text, retries=subscription.retries + 1)
    except Exception as error:  # e.g. a declaration this version cannot send (a newer event type)
        text = one_line(f"this process could not send it: {type(error).__name__}: {error}")
        logger.warning("%s %s", where, text)
        return replace(subscription, state=PENDING, error=text, retries=subscription.retries + 1)
    logger.info("registered %s", where)
    return replace(
        subscription,
        state=REGISTERED,
        registered_at=now,
        valid_until=used.expires_at,
        token_fingerprint=used.fingerprint,
        error=None,
        failed_scopes=None,
        retries=0,
    )


def drive(round_: Generator[Step, Any, UserRound], perform: Callable[[Step], Any]) -> UserRound:
    """Run a round with ``perform(step)`` doing each step's I/O (an async driver awaits instead)."""
    try:
        step = next(round_)
        while True:
            try:
                result = perform(step)
            except Exception as error:  # the round decides what a failed step means
                step = round_.throw(error)
            else:
                step = round_.send(result)
    except StopIteration as stop:
        done: UserRound = stop.value
        return done
    finally:
        round_.close()  # interrupted or cancelled: the round's own clean-up runs now


async def drive_async(
    round_: Generator[Step, Any, UserRound], perform: Callable[[Step], Awaitable[Any]]
) -> UserRound:
    """``drive`` on an event loop: ``await perform(step)`` does each step's I/O."""
    try:
        step = next(round_)
        while True:
            try:
                result = await perform(step)
            except Exception as error:  # the round decides what a failed step means
                step = round_.throw(error)
            else:
                step = round_.send(result)
    except StopIteration as stop:
        done: UserRound = stop.value
        return done
    finally:
        round_.close()  # interrupted or cancelled: the round's own clean-up runs now
