"""``TokenManager``: a valid access token per user, refreshed ahead of expiry, once across processes.

How a refresh stays safe when anything fails (docs/OAuth.md, "What can go wrong"):

* Calls never wait for a refresh while their token is valid: a token that falls due is
  refreshed by a background thread, and a failed refresh is retried there on a backoff
  schedule. Only a call whose token has expired waits (or fails at once while a retry is
  scheduled: ``TokenUnavailableError``).
* Before a refresh token is sent, the time is written beside it in the store
  (``refresh_sent_at``). Whoever refreshes later (this process, another one after a crash)
  sends it again only while Kenar's grace period for it lasts, less a margin
  (:func:`~kenar_api_client.oauth.client.resend_window`): a spent refresh token is never
  replayed after it, which would make Kenar revoke every token of the user.
* A refresh holds the user's lease and ends well inside it: its requests get half the lease;
  the rest is for storing the answer. The new pair is written with compare-and-set against
  the version read under the lease, so a refresher that lost its lease can never overwrite a
  newer pair.
* A new pair the store refuses to take is kept in memory and used, and the write is retried
  in the background; the spent pair is never fallen back to.
* An authorization code is marked as sent (a lease in the store, longer than a code lives)
  before it is sent: a second exchange of the same code, which would make Kenar revoke the
  tokens it gave for it, is refused before anything is sent.

Each step of a refresh and of a code exchange is logged at DEBUG level with a ``kenar_step``
attribute (``refresh-leased``, ``refresh-request``, ``refresh-answered``, ``refresh-stored``,
``refresh-released``, ``exchange-request``, ``exchange-answered``, ``exchange-stored``); the
OAuth client's INFO line for each token answer has ``kenar_step`` ``token-answer``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import random
import socket
import threading
import time
import uuid
from collections import OrderedDict
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Dict, List, NamedTuple, Optional, Union, overload

from kenar_api_client._steps import Sleep
from kenar_api_client.api_client import ApiClient
from kenar_api_client.exceptions import ApiException, ApiTimeoutError, ApiValueError
from kenar_api_client.oauth._background import BackgroundTasks
from kenar_api_client.oauth._hidden import Hidden
from kenar_api_client.oauth._keyed_locks import KeyedLocks
from kenar_api_client.oauth.answers import is_retryable_refresh_failure
from kenar_api_client.oauth.client import Clock, OAuthClient, TokenFlow, resend_window
from kenar_api_client.oauth.errors import (
    ConsentRequiredError,
    InvalidGrantError,
    RefreshTokenSpentError,
    TokenStoreError,
    TokenUnavailableError,
)
from kenar_api_client.oauth.store import MemoryTokenStore, TokenStore
from kenar_api_client.oauth.token import OAuthToken
from kenar_api_client.oauth.user_keys import check_user_key

if TYPE_CHECKING:
    from kenar_api_client._transport import AsyncTransport
    from kenar_api_client.async_api_client import AsyncApiClient
    from kenar_api_client.oauth.managed import ManagedApiClient
    from kenar_api_client.oauth.managed_async import AsyncManagedApiClient

logger: logging.Logger = logging.getLogger(__name__)

TOKEN_KEY_PREFIX = "token:"  # noqa: S105 - a key prefix
REFRESH_LEASE_PREFIX = "refresh:"
#: The lease that marks an authorization code as sent; it outlives the code (ten minutes).
CODE_LEASE_PREFIX = "code:"
CODE_MARK_TTL = 900.0
#: Refresh this long before expiry by default: every process sees the same moment.
DEFAULT_LEEWAY = 300.0
#: How long one process may hold a user's refresh lease. Well inside the rotation grace,
#: so that if it dies mid-refresh the next one still refreshes with the same refresh token.
DEFAULT_LEASE_TTL = 30.0
#: Users whose tokens this process keeps in memory at most (the least recently used go).
DEFAULT_CACHE_SIZE = 10_000
#: Seconds before a failed background refresh or store write is tried again; doubled on
#: every failure, up to eight times as long.
DEFAULT_RETRY_INTERVAL = 10.0
DEFAULT_BACKGROUND_THREADS = 4
#: A token with less than this left is not handed out: the call waits for its refresh.
SEND_MARGIN = 5.0
# Of a lease, the share a refresh's requests may take; the rest is for storing the answer.
_REQUEST_SHARE = 0.5

RefreshListener = Callable[[str, OAuthToken], None]


class _Entry(NamedTuple):
    """A user's token as this process knows it."""

    token: OAuthToken
    version: Optional[int]  # the store's version of the record it came with; None: write unconditionally
    divar_user_id: Optional[str]
    due_at: float  # when to refresh it ahead of expiry
    sent_at: Optional[float] = None  # when its refresh token was first sent to be rotated


class _Failure(NamedTuple):
    why: str
    attempts: int
    retry_at: float  # time.monotonic()


#: A refresh as steps: the store is used as it goes; the waits and the request are yielded.
RefreshFlow = TokenFlow[OAuthToken]


class _LeaseBusy(Exception):
    """Another process holds the user's refresh lease (a background job looks again later)."""


class TokenManager:
    """Hands out a valid access token for each user of the app, refreshing it by itself.

    Tokens live in ``store`` (default: this process's memory; a :class:`SQLiteTokenStore`
    or :class:`RedisTokenStore` to share them between processes and machines). A token is
    refreshed in the background when less than ``leeway`` seconds of it are left, while
    calls go on with it; however many threads and processes ask at that moment, one of
    them refreshes (holding a lease of ``lease_ttl`` seconds in the store) and the others
    use its result, so Kenar sees one refresh request and the rotated refresh token is
    never used twice outside Kenar's grace period.

    ``user_key`` is the app's name for a user (a Divar user id is a good choice). The
    tokens of the ``cache_size`` most recently used users are kept in memory: handing one
    out reads no store. ``clock`` (default: the OAuth client's) gives the
    time expiries are compared with. ``retry_interval``: seconds before a failed
    background refresh is tried again (doubling, up to 8x). ``background_threads``: how
    many refreshes run at once in the background.
    """

    def __init__(
        self,
        oauth: OAuthClient,
        store: Optional[TokenStore] = None,
        *,
        leeway: float = DEFAULT_LEEWAY,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        clock: Optional[Clock] = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        background_threads: int = DEFAULT_BACKGROUND_THREADS,
    ) -> None:
        if not isinstance(oauth, OAuthClient):
            raise ApiValueError(f"oauth must be an OAuthClient, not {type(oauth).__name__}")
        for name, value in (("leeway", leeway), ("lease_ttl", lease_ttl), ("retry_interval", retry_interval)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 86400:
                raise ApiValueError(f"{name} must be a number of seconds from 0 to 86400, got {value!r}")
        window = resend_window(oauth.rotation_grace)
        if not 0 < lease_ttl < window:
            raise ApiValueError(
                f"lease_ttl must be under {window:g} s (the {oauth.rotation_grace:g} s rotation grace "
                f"less a margin), got {lease_ttl}"
            )
        if retry_interval <= 0:
            raise ApiValueError(f"retry_interval must be more than 0 seconds, got {retry_interval!r}")
        for name, count, most in (
            ("cache_size", cache_size, 10**9),
            ("background_threads", background_threads, 64),
        ):
            if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= most:
                raise ApiValueError(f"{name} must be a whole number from 1 to {most}, got {count!r}")
        self.oauth = oauth
        self.store: TokenStore = store if store is not None else MemoryTokenStore()
        self.leeway: float = float(leeway)
        self.lease_ttl: float = float(lease_ttl)
        self.clock: Clock = clock if clock is not None else oauth.clock
        self.cache_size: int = cache_size
        self.retry_interval: float = float(retry_interval)
        # The least recently used user first; guarded by _cache_lock for writes.
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._unsaved: Dict[str, _Entry] = {}  # new pairs the store has not taken yet
        self._failures: Dict[str, _Failure] = {}  # users whose last refresh failed
        self._locks = KeyedLocks()
        self._tasks = BackgroundTasks(background_threads, "kenar-token-refresh")
        self._listeners: List[RefreshListener] = []

    def __repr__(self) -> str:
        return f"TokenManager(oauth={self.oauth!r}, store={self.store!r}, leeway={self.leeway:g})"

    def close(self) -> None:
        """Stop the background refreshes (new pairs not yet stored are tried once more first)."""
        for user_key in list(self._unsaved):
            self._flush(user_key, attempt=0)
        self._tasks.close()

    # -- getting tokens in --------------------------------------------------------------------

    def save(self, user_key: str, token: OAuthToken, *, divar_user_id: Optional[str] = None) -> None:
        """Store ``token`` as ``user_key``'s (after a consent), replacing what was there."""
        check_user_key(user_key)
        if not isinstance(token, OAuthToken):
            raise ApiValueError(f"token must be an OAuthToken, not {type(token).__name__}")
        self._store_consent(user_key, self._entry(token, None, divar_user_id), keep_unsaved=False)

    def exchange_code(
        self,
        user_key: str,
        code: str,
        *,
        divar_user_id: Optional[str] = None,
        redirect_uri: Optional[str] = None,
    ) -> OAuthToken:
        """Exchange an authorization code and store the tokens as ``user_key``'s.

        A code is sent once, across processes: a second exchange of the same code raises
        ``InvalidGrantError`` before anything is sent (Kenar would revoke the tokens it gave
        for it). If the store cannot take the tokens, they are kept in memory and used while
        the write is retried. ``redirect_uri``: the one the authorization URL was made with,
        if not the client's.
        """
        check_user_key(user_key)
        if not isinstance(code, str) or not code:
            raise ApiValueError("code must be the non-empty authorization code from the redirect")
        hidden = Hidden(code)
        del code  # held only as Hidden from here on
        return self._exchange(user_key, hidden, divar_user_id, redirect_uri)

    def complete_authorization(
        self,
        user_key: str,
        redirect: str,
        expected_state: str,
        *,
        divar_user_id: Optional[str] = None,
        redirect_uri: Optional[str] = None,
    ) -> OAuthToken:
        """Check the redirect back, exchange its code and store the tokens as ``user_key``'s.

        The code is sent with ``redirect_uri``, else the one the authorization URL of
        ``expected_state`` was made with, if this process's OAuth client made it, else the
        client's own.
        """
        check_user_key(user_key)
        code = Hidden(self.oauth.parse_redirect(redirect, expected_state))
        del redirect  # it carries the code
        chosen = redirect_uri if redirect_uri is not None else self.oauth.redirect_uri_for(expected_state)
        return self._exchange(user_key, code, divar_user_id, chosen)

    def _exchange(
        self, user_key: str, code: Hidden, divar_user_id: Optional[str], redirect_uri: Optional[str]
    ) -> OAuthToken:
        mark = CODE_LEASE_PREFIX + hashlib.sha256(code.reveal().encode("utf-8")).hexdigest()[:40]
        owner = _owner()
        if not self.store.acquire_lease(mark, owner, CODE_MARK_TTL):
            raise InvalidGrantError(
                "invalid_grant",
                "this authorization code was already sent to Kenar (by this or another process); a "
                "code works once, and sending it again would make Kenar revoke the tokens it gave for "
                "it: send the user through the authorization again",
            )
        _step("exchange-request", "exchanging an authorization code for user %r", user_key)
        try:
            token = self.oauth.exchange_code(code.reveal(), redirect_uri=redirect_uri)
        except ApiException as error:
            if _turned_away(error):  # Kenar did not take the code: it may be sent again
                with contextlib.suppress(TokenStoreError):  # else the mark runs out by itself
                    self.store.release_lease(mark, owner)
            raise
        _step("exchange-answered", "received the tokens of user %r; storing them", user_key)
        if self._store_consent(user_key, self._entry(token, None, divar_user_id), keep_unsaved=True):
            _step("exchange-stored", "stored the tokens of user %r", user_key)
        return token

    def _store_consent(self, user_key: str, entry: _Entry, *, keep_unsaved: bool) -> bool:
        """Store a new consent's tokens; whether the store took them (else they are kept in memory)."""
        stored = True
        try:
            version = self.store.put(_token_key(user_key), _encode(entry))
        except TokenStoreError as error:
            if not keep_unsaved:
                raise
            self._hold_unsaved(user_key, entry, error)
            stored = False
        else:
            self._unsaved.pop(user_key, None)
            self._remember(user_key, entry._replace(version=version))
        self._failures.pop(user_key, None)
        self._notify(user_key, entry.token)
        return stored

    # -- handing tokens out -------------------------------------------------------------------

    def ready_token(self, user_key: str) -> Optional[OAuthToken]:
        """``user_key``'s token if this process holds one usable now, without any I/O; else None.

        A token due for a refresh is returned too, while a background thread refreshes it
        (scheduling that is no I/O). What an async client asks first: only when this is None
        does it run :meth:`token` (which may read the store or refresh) in a worker thread.
        """
        entry = self._cache.get(user_key)
        if entry is None:
            return None
        now = self.clock()
        if now < entry.due_at:
            try:  # noqa: SIM105 - the hot path: a try is free, contextlib.suppress is not
                self._cache.move_to_end(user_key)  # the cache's least-recently-used order
            except KeyError:  # evicted by another thread meanwhile
                pass
            return entry.token
        if now < entry.token.expires_at - SEND_MARGIN:
            if not self._tasks.busy(_REFRESH_JOB + user_key):
                self._refresh_ahead(user_key)
            return entry.token
        return None

    def token(self, user_key: str, *, reload: bool = False) -> OAuthToken:
        """``user_key``'s token, valid for more than ``leeway`` seconds where it can be.

        A token due for a refresh (less than ``leeway`` left) is handed out at once while a
        background thread refreshes it; only an expired one is refreshed first. With the
        store down, the token in memory is used while it is valid. ``reload=True`` reads the
        store first instead of this process's copy and refreshes a due token now (waiting
        for it; on failure the valid token is returned). Raises
        :class:`ConsentRequiredError` when there is no token or Kenar refused to refresh it,
        :class:`TokenUnavailableError` when the token has expired and its refresh keeps failing.
        """
        if not reload:
            ready = self.ready_token(user_key)
            if ready is not None:
                return ready
        return self._token_slow(user_key, reload)

    def access_token(self, user_key: str) -> str:
        """``token(user_key).access_token``: the string for ``Configuration(access_token=...)``."""
        return self.token(user_key).access_token

    def refresh(self, user_key: str, *, stale: Optional[OAuthToken] = None) -> OAuthToken:
        """Refresh ``user_key``'s token now, once across threads and processes, and return the new one.

        With ``stale`` (a token Kenar just refused), nothing is refreshed unless ``stale`` is
        still the current token: a caller holding an older token, or the second of several
        callers holding the same one, gets the token already refreshed. So however many
        callers report the same token, it is refreshed at most once.
        """
        check_user_key(user_key)
        if stale is not None and not isinstance(stale, OAuthToken):
            raise ApiValueError(f"stale must be an OAuthToken, not {type(stale).__name__}")
        with self._locks.hold(user_key):
            token = self.oauth.run_steps(self._refresh_unless_newer(user_key, stale))
        self._failures.pop(user_key, None)
        return token

    async def refresh_async(
        self, user_key: str, *, transport: AsyncTransport, stale: Optional[OAuthToken] = None
    ) -> OAuthToken:
        """:meth:`refresh` on the running event loop, the request sent through ``transport``.

        For code that runs many users' refreshes on one loop (the subscription keeper's
        rounds): the store is called on the loop (a local store answers in microseconds),
        the OAuth request and every wait are awaited. Another thread refreshing the same
        user is waited for without blocking the loop.
        """
        import asyncio

        check_user_key(user_key)
        if stale is not None and not isinstance(stale, OAuthToken):
            raise ApiValueError(f"stale must be an OAuthToken, not {type(stale).__name__}")
        pause = 0.001
        while not self._locks.try_hold(user_key):
            await asyncio.sleep(pause)
            pause = min(0.05, pause * 2)
        try:
            token = await self.oauth.run_steps_async(self._refresh_unless_newer(user_key, stale), transport)
        finally:
            self._locks.release(user_key)
        self._failures.pop(user_key, None)
        return token

    def _refresh_unless_newer(self, user_key: str, stale: Optional[OAuthToken]) -> RefreshFlow:
        """Refresh ``stale`` (default: the current token) unless a newer one is already current."""
        if stale is None:
            stale = self._read(user_key, fallback=True).token
        stale_token = stale.access_token
        refreshed = yield from self._refresh_steps(
            user_key, lambda token: token.access_token == stale_token, wait=True
        )
        return refreshed

    @overload
    def api_client_for(self, user_key: str, api_client: Optional[ApiClient] = None) -> ManagedApiClient: ...

    @overload
    def api_client_for(self, user_key: str, api_client: AsyncApiClient) -> AsyncManagedApiClient: ...

    def api_client_for(
        self, user_key: str, api_client: Union[ApiClient, AsyncApiClient, None] = None
    ) -> Union[ManagedApiClient, AsyncManagedApiClient]:
        """A client that sends ``user_key``'s managed token, for any API class.

        Give it an ``ApiClient`` (default: ``ApiClient.get_default()``) for the sync API
        classes, or an ``AsyncApiClient`` for the async ones. It shares that client's
        configuration and connection pool, so a client per user costs nothing. A call
        Kenar answers 401 is sent once more after one refresh; never more.
        """
        check_user_key(user_key)
        from kenar_api_client.oauth.managed import ManagedApiClient

        if api_client is None:
            return ManagedApiClient(ApiClient.get_default(), self, user_key)
        if isinstance(api_client, ApiClient):
            return ManagedApiClient(api_client, self, user_key)
        from kenar_api_client.oauth.managed_async import AsyncManagedApiClient

        return AsyncManagedApiClient(api_client, self, user_key)

    # -- bookkeeping --------------------------------------------------------------------------

    def users(self) -> List[str]:
        """Every user key with a stored token record."""
        return sorted(key[len(TOKEN_KEY_PREFIX) :] for key in self.store.keys(TOKEN_KEY_PREFIX))

    def stored(self, user_key: str) -> Optional[OAuthToken]:
        """``user_key``'s token as stored, without refreshing it; None if there is none."""
        check_user_key(user_key)
        try:
            return self._load(user_key).token
        except ConsentRequiredError:
            return None

    def divar_user_id(self, user_key: str) -> Optional[str]:
        """The Divar user id saved with ``user_key``'s token, if one was."""
        check_user_key(user_key)
        stored = self.store.get(_token_key(user_key))
        if stored is None:
            return None
        value = _decode(stored.value).get("divar_user_id")
        return value if isinstance(value, str) else None

    def forget(self, user_key: str) -> None:
        """Delete ``user_key``'s tokens (after the user revoked the app's access)."""
        check_user_key(user_key)
        with self._locks.hold(user_key):
            self.store.delete(_token_key(user_key))
            self._tasks.cancel(_REFRESH_JOB + user_key)
            self._tasks.cancel(_WRITE_JOB + user_key)
            self._unsaved.pop(user_key, None)
            self._failures.pop(user_key, None)
            with self._cache_lock:
                self._cache.pop(user_key, None)

    def on_refresh(self, listener: RefreshListener) -> Callable[[], None]:
        """Call ``listener(user_key, token)`` whenever this manager has a new token for a user.

        It runs in the thread that got the token (a background refresh thread for a
        refresh ahead of expiry, the caller's thread for ``save``, a code exchange or a
        refresh it waited for), after the token was stored (or, if the store failed, kept
        in memory). An exception in a listener is logged and changes nothing else.
        Returns a function that removes the listener.
        """
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    # -- reading ----------------------------------------------------------------------------

    def _entry(
        self,
        token: OAuthToken,
        version: Optional[int],
        divar_user_id: Optional[str],
        sent_at: Optional[float] = None,
    ) -> _Entry:
        # Due ``leeway`` before expiry, but never before half its life: a token that lives
        # shorter than the leeway is not refreshed again and again.
        lifetime = token.expires_at - token.obtained_at
        due_at = max(token.expires_at - self.leeway, token.obtained_at + lifetime / 2)
        return _Entry(token, version, divar_user_id, due_at, sent_at)

    def _is_due(self, token: OAuthToken) -> bool:
        return self.clock() >= self._entry(token, None, None).due_at

    def _read(self, user_key: str, *, fallback: bool) -> _Entry:
        """The newest token known: a pair not yet stored, else the store's; with ``fallback``,
        the one in memory while it is valid if the store fails."""
        unsaved = self._unsaved.get(user_key)
        if unsaved is not None:
            return unsaved
        try:
            return self._load(user_key)
        except TokenStoreError as error:
            cached = self._cache.get(user_key)
            if not fallback or cached is None or self.clock() >= cached.token.expires_at - SEND_MARGIN:
                raise
            logger.warning(
                "the token store failed (%s); using the token of user %r in memory, valid for %.0f s more",
                _one_line(error),
                user_key,
                cached.token.expires_in(self.clock()),
            )
            return cached

    def _load(self, user_key: str) -> _Entry:
        stored = self.store.get(_token_key(user_key))
        if stored is None:
            self._forget_in_memory(user_key)
            raise ConsentRequiredError(user_key, "no token is stored for this user")
        record = _decode(stored.value)
        divar_user_id = record.get("divar_user_id")
        if not isinstance(record.get("token"), dict):
            self._forget_in_memory(user_key)
            why = record.get("consent_required") or "the stored record holds no token"
            raise ConsentRequiredError(user_key, str(why))
        try:
            token = OAuthToken.from_dict(record["token"])
        except ApiValueError as exc:
            raise ConsentRequiredError(user_key, f"the stored token is unreadable ({exc})") from None
        sent_at = record.get("refresh_sent_at")
        if isinstance(sent_at, bool) or not isinstance(sent_at, (int, float)) or not math.isfinite(sent_at):
            sent_at = None
        entry = self._entry(
            token, stored.version, divar_user_id if isinstance(divar_user_id, str) else None, sent_at
        )
        self._remember(user_key, entry)
        return entry

    def _remember(self, user_key: str, entry: _Entry) -> None:
        with self._cache_lock:
            self._cache[user_key] = entry
            self._cache.move_to_end(user_key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def _forget_in_memory(self, user_key: str) -> None:
        with self._cache_lock:
            self._cache.pop(user_key, None)

    # -- refreshing -------------------------------------------------------------------------

    def _token_slow(self, user_key: str, reload: bool) -> OAuthToken:
        """``token()`` when the copy in memory will not do: none, expired, or ``reload``."""
        check_user_key(user_key)
        with self._locks.hold(user_key):
            entry = self._read(user_key, fallback=True)
            now = self.clock()
            if now < entry.due_at:
                return entry.token
            valid = now < entry.token.expires_at - SEND_MARGIN
            failure = self._failures.get(user_key)
            backing_off = failure is not None and time.monotonic() < failure.retry_at
            if valid and (backing_off or not reload):
                self._refresh_ahead(user_key)
                return entry.token
            if failure is not None and backing_off:
                raise TokenUnavailableError(user_key, failure.why, failure.retry_at - time.monotonic())
            try:
                token = self._refresh(user_key, self._is_due, wait=True)
            except RefreshTokenSpentError as error:
                if not valid:
                    raise
                self._note_failure(user_key, error)
                return entry.token
            except ConsentRequiredError:
                raise
            except ApiException as error:
                self._note_failure(user_key, error)
                if valid:
                    return entry.token
                if isinstance(error, TokenStoreError) or not is_retryable_refresh_failure(error):
                    raise
                failure = self._failures[user_key]
                raise TokenUnavailableError(
                    user_key, failure.why, failure.retry_at - time.monotonic()
                ) from error
        self._failures.pop(user_key, None)
        return token

    def _refresh_ahead(self, user_key: str) -> None:
        """Have a background thread refresh ``user_key``'s token (after the backoff, if one failed)."""
        failure = self._failures.get(user_key)
        when = failure.retry_at if failure is not None else time.monotonic()
        self._tasks.schedule(_REFRESH_JOB + user_key, when, lambda: self._refresh_in_background(user_key))

    def _refresh_in_background(self, user_key: str) -> None:
        try:
            with self._locks.hold(user_key):
                self._refresh(user_key, self._is_due, wait=False)
        except _LeaseBusy:
            # Another process is refreshing: its new token will be in the store soon.
            when = time.monotonic() + min(1.0, self.lease_ttl / 4)
            self._tasks.schedule(_REFRESH_JOB + user_key, when, lambda: self._refresh_in_background(user_key))
            return
        except RefreshTokenSpentError as error:
            self._note_failure(user_key, error)
            return
        except ConsentRequiredError as error:
            logger.warning("the token of user %r cannot be refreshed: %s", user_key, error.why)
            return
        except ApiException as error:
            self._note_failure(user_key, error)
            return
        self._failures.pop(user_key, None)

    def _note_failure(self, user_key: str, error: ApiException) -> None:
        """Remember a failed refresh; while the token is valid, retry it after a backoff."""
        previous = self._failures.get(user_key)
        attempts = previous.attempts + 1 if previous is not None else 1
        delay = self._backoff(attempts)
        self._failures[user_key] = _Failure(_one_line(error), attempts, time.monotonic() + delay)
        entry = self._unsaved.get(user_key) or self._cache.get(user_key)
        left = entry.token.expires_in(self.clock()) if entry is not None else 0.0
        if left > SEND_MARGIN:
            logger.warning(
                "could not refresh the token of user %r (%s); it stays valid for %.0f s more, "
                "next attempt in %.0f s",
                user_key,
                _one_line(error),
                left,
                delay,
                extra={"kenar_step": "refresh-failed"},
            )
            self._refresh_ahead(user_key)
        else:
            logger.warning(
                "could not refresh the expired token of user %r (%s); next attempt in %.0f s",
                user_key,
                _one_line(error),
                delay,
                extra={"kenar_step": "refresh-failed"},
            )

    def _backoff(self, attempts: int) -> float:
        delay = self.retry_interval * min(8, 2 ** (attempts - 1))
        return float(delay * random.uniform(0.9, 1.1))  # noqa: S311 - jitter, so processes spread out

    def _refresh(
        self, user_key: str, must_refresh: Callable[[OAuthToken], bool], *, wait: bool
    ) -> OAuthToken:
        """The current token, refreshed first if ``must_refresh`` says so, by one process at a time.

        Called holding ``user_key``'s lock. Another process holding the lease is waited for
        (``wait``; at most one lease and one refresh long) or ``_LeaseBusy`` raised.
        """
        return self.oauth.run_steps(self._refresh_steps(user_key, must_refresh, wait=wait))

    def _refresh_steps(
        self, user_key: str, must_refresh: Callable[[OAuthToken], bool], *, wait: bool
    ) -> RefreshFlow:
        """``_refresh`` as steps: the store is used here, the waits and the request are yielded."""
        give_up = time.monotonic() + self.lease_ttl * (1 + _REQUEST_SHARE) + 5.0
        pause = 0.005
        lease = REFRESH_LEASE_PREFIX + user_key
        while True:
            entry = self._read(user_key, fallback=False)
            if not must_refresh(entry.token):
                return entry.token
            owner = _owner()
            if self.store.acquire_lease(lease, owner, self.lease_ttl):
                try:
                    refreshed = yield from self._refresh_holding(user_key, must_refresh, lease, owner)
                finally:
                    self._release(lease, owner, user_key)
                if refreshed is not None:
                    return refreshed
                continue  # the record changed between reading and marking it: read it again
            if not wait:
                raise _LeaseBusy()
            if time.monotonic() > give_up:
                raise ApiTimeoutError(
                    f"gave up waiting for another process to refresh the token of user {user_key!r}"
                )
            yield Sleep(pause)
            pause = min(0.1, pause * 2)

    def _refresh_holding(
        self, user_key: str, must_refresh: Callable[[OAuthToken], bool], lease: str, owner: str
    ) -> TokenFlow[Optional[OAuthToken]]:
        """Refresh, holding the lease; None if the record changed before anything was sent."""
        _step("refresh-leased", "took the refresh lease of user %r", user_key)
        entry = self._read(user_key, fallback=False)  # read again, now that no one else refreshes
        if not must_refresh(entry.token):
            return entry.token
        token = entry.token
        if token.refresh_token is None:
            raise ConsentRequiredError(
                user_key, "the token has no refresh token (offline_access was not granted)"
            )
        now = self.clock()
        sent_at = entry.sent_at
        if sent_at is None:
            # Mark the refresh token as about to be spent, before it is: whoever refreshes
            # later knows until when it may still be sent. (A pair not yet stored is stored now.)
            marked = entry._replace(sent_at=now)
            version = self.store.put(_token_key(user_key), _encode(marked), entry.version)
            if version is None:
                self._unsaved.pop(user_key, None)
                return None
            entry = marked._replace(version=version)
            self._unsaved.pop(user_key, None)
            self._remember(user_key, entry)
            sent_at = now
        window_left = sent_at + resend_window(self.oauth.rotation_grace) - now
        if window_left <= 0:
            raise RefreshTokenSpentError(user_key, _iso(sent_at))
        _step("refresh-request", "refreshing the token of user %r", user_key)
        try:
            new = yield from self.oauth.refresh_steps(
                token, timeout=min(self.lease_ttl * _REQUEST_SHARE, window_left)
            )
        except InvalidGrantError as error:
            self._record_refusal(user_key, entry, error)
            raise ConsentRequiredError(
                user_key, "Kenar refused to refresh the token (invalid_grant)"
            ) from error
        _step("refresh-answered", "received the new token of user %r; storing it", user_key)
        self._renew(lease, owner, user_key)
        return self._keep(user_key, entry, new)

    def _keep(self, user_key: str, entry: _Entry, new: OAuthToken) -> OAuthToken:
        """Store the new pair (compare-and-set against the marked record); keep it in memory if
        the store refuses it. Returns the token to use."""
        fresh = self._entry(new, entry.version, entry.divar_user_id)
        try:
            version = self.store.put(_token_key(user_key), _encode(fresh), entry.version)
        except TokenStoreError as error:
            self._hold_unsaved(user_key, fresh, error)
            self._notify(user_key, new)
            return new
        if version is None:
            # Our lease ran out and another process stored a newer pair: keep theirs.
            logger.warning("the token of user %r changed while refreshing it; using the stored one", user_key)
            try:
                return self._read(user_key, fallback=False).token
            except TokenStoreError as error:  # theirs cannot be read now: ours is as good
                self._hold_unsaved(user_key, fresh, error)
                return new
        self._remember(user_key, fresh._replace(version=version))
        _step("refresh-stored", "refreshed the token of user %r", user_key)
        logger.info(
            "refreshed the token of user %r; valid for %.0f s", user_key, new.expires_in(self.clock())
        )
        self._notify(user_key, new)
        return new

    def _hold_unsaved(self, user_key: str, entry: _Entry, error: TokenStoreError) -> None:
        """Keep a new pair the store refused in memory, use it, and retry the write in the background."""
        self._unsaved[user_key] = entry
        self._remember(user_key, entry)
        logger.error(
            "the new token of user %r could not be stored (%s); it is used from memory and the "
            "write is retried",
            user_key,
            _one_line(error),
            extra={"kenar_step": "store-write-failed"},
        )
        self._tasks.schedule(
            _WRITE_JOB + user_key, time.monotonic() + self._backoff(1), lambda: self._flush(user_key, 1)
        )

    def _flush(self, user_key: str, attempt: int) -> None:
        """Write a pair the store refused before; on failure try again after a longer wait."""
        with self._locks.hold(user_key):
            entry = self._unsaved.get(user_key)
            if entry is None:
                return
            try:
                version = self.store.put(_token_key(user_key), _encode(entry), entry.version)
            except TokenStoreError as error:
                logger.warning(
                    "storing the new token of user %r failed again (%s)", user_key, _one_line(error)
                )
                self._tasks.schedule(
                    _WRITE_JOB + user_key,
                    time.monotonic() + self._backoff(attempt + 1),
                    lambda: self._flush(user_key, attempt + 1),
                )
                return
            del self._unsaved[user_key]
            if version is None:
                # The store moved on meanwhile (another process stored a newer pair, a new
                # consent, or the user was forgotten): what it holds wins.
                logger.warning(
                    "the token of user %r changed in the store meanwhile; using the stored one", user_key
                )
                self._forget_in_memory(user_key)
                return
            self._remember(user_key, entry._replace(version=version))
            logger.info("stored the new token of user %r", user_key)

    def _record_refusal(self, user_key: str, entry: _Entry, error: InvalidGrantError) -> None:
        """Keep the refusal in the store so no process tries the dead refresh token again."""
        record = {"token": None, "divar_user_id": entry.divar_user_id, "consent_required": str(error)[:300]}
        self._unsaved.pop(user_key, None)
        self._forget_in_memory(user_key)
        try:
            self.store.put(_token_key(user_key), json.dumps(record), entry.version)
        except TokenStoreError as store_error:
            logger.warning(
                "could not record that user %r must consent again (%s)", user_key, _one_line(store_error)
            )

    def _renew(self, lease: str, owner: str, user_key: str) -> None:
        """Check (and extend) the lease before storing; the compare-and-set guards the write anyway."""
        try:
            held = self.store.renew_lease(lease, owner, self.lease_ttl)
        except TokenStoreError:
            return
        if not held:
            logger.warning(
                "the refresh lease of user %r ran out while refreshing; the new token is stored only "
                "if no other process stored one meanwhile",
                user_key,
            )

    def _release(self, lease: str, owner: str, user_key: str) -> None:
        try:
            self.store.release_lease(lease, owner)
        except TokenStoreError as error:
            logger.warning(
                "could not release the refresh lease of user %r (%s); it runs out by itself",
                user_key,
                _one_line(error),
                extra={"kenar_step": "release-failed"},
            )
        _step("refresh-released", "released the refresh lease of user %r", user_key)

    def _notify(self, user_key: str, token: OAuthToken) -> None:
        for listener in list(self._listeners):
            try:
                listener(user_key, token)
            except Exception:
                logger.exception("a token refresh listener failed")


_REFRESH_JOB = "refresh:"
_WRITE_JOB = "write:"


def _token_key(user_key: str) -> str:
    return TOKEN_KEY_PREFIX + user_key


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _step(step: str, message: str, user_key: str) -> None:
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(message, user_key, extra={"kenar_step": step, "kenar_user_key": user_key})


def _turned_away(error: ApiException) -> bool:
    """Whether the answer says the request was not processed (429, 503)."""
    return error.status in (429, 503)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:200]


def _encode(entry: _Entry) -> str:
    return json.dumps(
        {
            "token": entry.token.to_dict(),
            "divar_user_id": entry.divar_user_id,
            "consent_required": None,
            "refresh_sent_at": entry.sent_at,
        }
    )


def _decode(value: str) -> Dict[str, Any]:
    try:
        record = json.loads(value)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}
