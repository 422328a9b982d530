"""``TokenManager``: a valid access token per user, refreshed ahead of expiry, once across processes."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, Dict, List, NamedTuple, Optional, Union, overload

from kenar_api_client.api_client import ApiClient
from kenar_api_client.exceptions import ApiException, ApiTimeoutError, ApiValueError
from kenar_api_client.oauth.client import ROTATION_GRACE, Clock, OAuthClient
from kenar_api_client.oauth.errors import ConsentRequiredError, InvalidGrantError
from kenar_api_client.oauth.store import MemoryTokenStore, TokenStore
from kenar_api_client.oauth.token import OAuthToken

if TYPE_CHECKING:
    from kenar_api_client.async_api_client import AsyncApiClient
    from kenar_api_client.oauth.managed import ManagedApiClient
    from kenar_api_client.oauth.managed_async import AsyncManagedApiClient

logger: logging.Logger = logging.getLogger(__name__)

TOKEN_KEY_PREFIX = "token:"  # noqa: S105 - a key prefix
REFRESH_LEASE_PREFIX = "refresh:"
#: Refresh this long before expiry by default: every process sees the same moment.
DEFAULT_LEEWAY = 300.0
#: How long one process may hold a user's refresh lease. Shorter than the rotation grace,
#: so that if it dies mid-refresh the next one still refreshes with the old refresh token.
DEFAULT_LEASE_TTL = 90.0

RefreshListener = Callable[[str, OAuthToken], None]


class _Entry(NamedTuple):
    token: OAuthToken
    version: int
    divar_user_id: Optional[str]


class TokenManager:
    """Hands out a valid access token for each user of the app, refreshing it by itself.

    Tokens live in ``store`` (default: this process's memory; a :class:`SQLiteTokenStore`
    or :class:`RedisTokenStore` to share them between processes and machines). A token is
    refreshed when less than ``leeway`` seconds of it are left; however many threads and
    processes ask at that moment, one of them refreshes (holding a lease in the store)
    and the others wait for and use its result, so Kenar sees one refresh request and the
    rotated refresh token is never used twice.

    ``user_key`` is the app's name for a user (a Divar user id is a good choice).
    """

    def __init__(
        self,
        oauth: OAuthClient,
        store: Optional[TokenStore] = None,
        *,
        leeway: float = DEFAULT_LEEWAY,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        clock: Optional[Clock] = None,
    ) -> None:
        if not isinstance(oauth, OAuthClient):
            raise ApiValueError(f"oauth must be an OAuthClient, not {type(oauth).__name__}")
        for name, value in (("leeway", leeway), ("lease_ttl", lease_ttl)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 86400:
                raise ApiValueError(f"{name} must be a number of seconds from 0 to 86400, got {value!r}")
        if not 0 < lease_ttl < ROTATION_GRACE:
            raise ApiValueError(
                f"lease_ttl must be under the {ROTATION_GRACE:g} s rotation grace, got {lease_ttl}"
            )
        self.oauth = oauth
        self.store: TokenStore = store if store is not None else MemoryTokenStore()
        self.leeway: float = float(leeway)
        self.lease_ttl: float = float(lease_ttl)
        self.clock: Clock = clock if clock is not None else oauth.clock
        self._cache: Dict[str, _Entry] = {}
        self._locks: Dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._listeners: List[RefreshListener] = []

    def __repr__(self) -> str:
        return f"TokenManager(oauth={self.oauth!r}, store={self.store!r}, leeway={self.leeway:g})"

    # -- getting tokens in --------------------------------------------------------------------

    def save(self, user_key: str, token: OAuthToken, *, divar_user_id: Optional[str] = None) -> None:
        """Store ``token`` as ``user_key``'s (after a consent), replacing what was there."""
        _check_user_key(user_key)
        if not isinstance(token, OAuthToken):
            raise ApiValueError(f"token must be an OAuthToken, not {type(token).__name__}")
        version = self.store.put(_token_key(user_key), _encode(token, divar_user_id))
        self._cache[user_key] = _Entry(token, version or 0, divar_user_id)
        self._notify(user_key, token)

    def exchange_code(self, user_key: str, code: str, *, divar_user_id: Optional[str] = None) -> OAuthToken:
        """Exchange an authorization code and store the tokens as ``user_key``'s."""
        _check_user_key(user_key)
        token = self.oauth.exchange_code(code)
        self.save(user_key, token, divar_user_id=divar_user_id)
        return token

    def complete_authorization(
        self, user_key: str, redirect: str, expected_state: str, *, divar_user_id: Optional[str] = None
    ) -> OAuthToken:
        """Check the redirect back, exchange its code and store the tokens as ``user_key``'s."""
        _check_user_key(user_key)
        return self.exchange_code(
            user_key, self.oauth.parse_redirect(redirect, expected_state), divar_user_id=divar_user_id
        )

    # -- handing tokens out -------------------------------------------------------------------

    def ready_token(self, user_key: str) -> Optional[OAuthToken]:
        """``user_key``'s token if this process holds one usable now, without any I/O; else None.

        What an async client asks first: only when this is None does it run :meth:`token`
        (which may read the store or refresh) in a worker thread.
        """
        entry = self._cache.get(user_key)
        if entry is not None and entry.token.expires_at - self.leeway > self.clock():
            return entry.token
        return None

    def token(self, user_key: str, *, reload: bool = False) -> OAuthToken:
        """``user_key``'s token, valid for more than ``leeway`` seconds (refreshed if need be).

        ``reload=True`` reads the store first instead of this process's copy. Raises
        :class:`ConsentRequiredError` when there is no token or Kenar refused to refresh it.
        """
        entry = self._cache.get(user_key)
        if not reload and entry is not None and entry.token.expires_at - self.leeway > self.clock():
            return entry.token
        return self._obtain(user_key, self._is_due, may_keep_valid=True)

    def access_token(self, user_key: str) -> str:
        """``token(user_key).access_token``: the string for ``Configuration(access_token=...)``."""
        return self.token(user_key).access_token

    def refresh(self, user_key: str, *, stale: Optional[OAuthToken] = None) -> OAuthToken:
        """Refresh ``user_key``'s token now, once across processes.

        With ``stale`` (a token Kenar just refused), nothing is refreshed if the store
        already holds a newer one: another thread or process got there first.
        """
        _check_user_key(user_key)
        if stale is None:
            current = self._obtain(user_key, lambda token: False, may_keep_valid=False)
            stale = current
        stale_token = stale.access_token
        return self._obtain(user_key, lambda token: token.access_token == stale_token, may_keep_valid=False)

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
        _check_user_key(user_key)
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
        try:
            return self._load(user_key).token
        except ConsentRequiredError:
            return None

    def divar_user_id(self, user_key: str) -> Optional[str]:
        """The Divar user id saved with ``user_key``'s token, if one was."""
        stored = self.store.get(_token_key(user_key))
        if stored is None:
            return None
        value = _decode(stored.value).get("divar_user_id")
        return value if isinstance(value, str) else None

    def forget(self, user_key: str) -> None:
        """Delete ``user_key``'s tokens (after the user revoked the app's access)."""
        self.store.delete(_token_key(user_key))
        self._cache.pop(user_key, None)

    def on_refresh(self, listener: RefreshListener) -> None:
        """Call ``listener(user_key, token)`` whenever this manager stores a new token."""
        self._listeners.append(listener)

    # -- the single-flight refresh ----------------------------------------------------------

    def _is_due(self, token: OAuthToken) -> bool:
        return token.expires_at - self.leeway <= self.clock()

    def _obtain(
        self, user_key: str, must_refresh: Callable[[OAuthToken], bool], *, may_keep_valid: bool
    ) -> OAuthToken:
        """The stored token, refreshed first if ``must_refresh`` says so, by one process at a time."""
        with self._lock_for(user_key):
            deadline = time.monotonic() + self.lease_ttl + 10.0
            pause = 0.005
            while True:
                entry = self._load(user_key)
                if not must_refresh(entry.token):
                    return entry.token
                owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
                lease = REFRESH_LEASE_PREFIX + user_key
                if self.store.acquire_lease(lease, owner, self.lease_ttl):
                    try:
                        entry = self._load(user_key)
                        if not must_refresh(entry.token):
                            return entry.token
                        return self._refresh_now(user_key, entry, may_keep_valid)
                    finally:
                        self.store.release_lease(lease, owner)
                # Another process is refreshing: wait for its result in the store.
                if time.monotonic() > deadline:
                    raise ApiTimeoutError(
                        f"gave up waiting for another process to refresh the token of user {user_key!r}"
                    )
                time.sleep(pause)
                pause = min(0.1, pause * 2)

    def _refresh_now(self, user_key: str, entry: _Entry, may_keep_valid: bool) -> OAuthToken:
        if entry.token.refresh_token is None:
            raise ConsentRequiredError(
                user_key, "the token has no refresh token (offline_access was not granted)"
            )
        try:
            token = self.oauth.refresh(entry.token)
        except InvalidGrantError as error:
            self._record_refusal(user_key, entry, error)
            raise ConsentRequiredError(
                user_key, "Kenar refused to refresh the token (invalid_grant)"
            ) from error
        except ApiException as error:
            if may_keep_valid and not entry.token.is_expired(now=self.clock()):
                logger.warning(
                    "could not refresh the token of user %r (%s); it stays valid for %.0f s more",
                    user_key,
                    " ".join(str(error).split())[:200],
                    entry.token.expires_in(self.clock()),
                )
                return entry.token
            raise
        version = self.store.put(_token_key(user_key), _encode(token, entry.divar_user_id), entry.version)
        if version is None:
            # Our lease ran out and another process stored a newer pair: keep theirs.
            logger.warning("the token of user %r changed while refreshing it; using the stored one", user_key)
            return self._load(user_key).token
        self._cache[user_key] = _Entry(token, version, entry.divar_user_id)
        logger.info(
            "refreshed the token of user %r; valid for %.0f s", user_key, token.expires_in(self.clock())
        )
        self._notify(user_key, token)
        return token

    def _record_refusal(self, user_key: str, entry: _Entry, error: InvalidGrantError) -> None:
        """Keep the refusal in the store so no process tries the dead refresh token again."""
        record = {"token": None, "divar_user_id": entry.divar_user_id, "consent_required": str(error)[:300]}
        self.store.put(_token_key(user_key), json.dumps(record), entry.version)
        self._cache.pop(user_key, None)

    def _load(self, user_key: str) -> _Entry:
        stored = self.store.get(_token_key(user_key))
        if stored is None:
            raise ConsentRequiredError(user_key, "no token is stored for this user")
        record = _decode(stored.value)
        divar_user_id = record.get("divar_user_id")
        if not isinstance(record.get("token"), dict):
            why = record.get("consent_required") or "the stored record holds no token"
            raise ConsentRequiredError(user_key, str(why))
        try:
            token = OAuthToken.from_dict(record["token"])
        except ApiValueError as exc:
            raise ConsentRequiredError(user_key, f"the stored token is unreadable ({exc})") from None
        entry = _Entry(token, stored.version, divar_user_id if isinstance(divar_user_id, str) else None)
        self._cache[user_key] = entry
        return entry

    def _lock_for(self, user_key: str) -> threading.Lock:
        lock = self._locks.get(user_key)
        if lock is None:
            with self._locks_lock:
                lock = self._locks.setdefault(user_key, threading.Lock())
        return lock

    def _notify(self, user_key: str, token: OAuthToken) -> None:
        for listener in list(self._listeners):
            try:
                listener(user_key, token)
            except Exception:
                logger.exception("a token refresh listener failed")


def _token_key(user_key: str) -> str:
    return TOKEN_KEY_PREFIX + user_key


def _check_user_key(user_key: Any) -> None:
    if not isinstance(user_key, str) or not user_key or not user_key.isprintable() or len(user_key) > 200:
        raise ApiValueError("user_key must be a non-empty printable string of at most 200 characters")


def _encode(token: OAuthToken, divar_user_id: Optional[str]) -> str:
    return json.dumps({"token": token.to_dict(), "divar_user_id": divar_user_id, "consent_required": None})


def _decode(value: str) -> Dict[str, Any]:
    try:
        record = json.loads(value)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}
