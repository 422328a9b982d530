"""``TokenAuth`` and ``ManagedApiClient``: calls that send a user's managed token, refreshed on a 401 once.

``TokenAuth`` is an :class:`~kenar_api_client.auth.Auth`: the same flow serves the sync
client (``ManagedApiClient``) and the async one (``AsyncManagedApiClient``), which runs
the token's store and OAuth I/O in a worker thread.
"""

from __future__ import annotations

import functools
import re
import threading
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Optional

from kenar_api_client._answers import error_for
from kenar_api_client._redact import credentials_in, secret_list
from kenar_api_client.api_client import ApiClient
from kenar_api_client.auth import Auth, Blocking, Release, SendFlow
from kenar_api_client.exceptions import InvalidApiKeyError

if TYPE_CHECKING:
    from kenar_api_client._request import Request
    from kenar_api_client._steps import Flow
    from kenar_api_client._transport import Answer
    from kenar_api_client.oauth.manager import TokenManager
    from kenar_api_client.oauth.token import OAuthToken

#: A 401 whose message names the API key is about the key, not the token: refreshing the
#: token cannot fix it (and would rotate the user's token, killing their subscriptions).
_ABOUT_THE_API_KEY = re.compile(r"api[ _-]?key", re.IGNORECASE)


class TokenAuth(Auth):
    """Sends ``user_key``'s access token from ``tokens`` on the operations that take one.

    A 401 to that token is answered by one refresh (which takes a newer stored token
    instead, if another process refreshed) and one more try. If Kenar refuses the fresh
    token too, the refusal is not about the token: later 401s to it are returned without
    refreshing again, so N calls with a bad API key cost at most one refresh, not N. A 401
    that names the API key raises ``InvalidApiKeyError`` at once, with no refresh.
    """

    def __init__(self, tokens: TokenManager, user_key: str) -> None:
        self.tokens = tokens
        self.user_key = user_key
        self._sent = threading.local()

    def __repr__(self) -> str:
        return f"TokenAuth(user_key={self.user_key!r})"

    @property
    def last_token(self) -> Optional[OAuthToken]:
        """The token this thread's last call through this auth was sent with."""
        token: Optional[OAuthToken] = getattr(self._sent, "token", None)
        return token

    def auth_flow(self, request: Request, send: SendFlow) -> Flow[Answer]:
        if not request.oauth:
            return (yield from send(request))
        token = self.tokens.ready_token(self.user_key)
        if token is None:
            token = yield Blocking(
                self.tokens.token, self.user_key, flight=("token", id(self.tokens), self.user_key)
            )
        self._sent.token = token
        answer = yield from send(request.with_header("Authorization", f"Bearer {token.access_token}"))
        if answer.status != 401:
            return answer
        if _names_the_api_key(answer):
            yield Release(answer)
            raise _invalid_api_key(answer)
        refused = _refused_after_refresh(self.tokens)
        if token.access_token in refused:
            return answer  # a refresh already failed to help this token: not the token's fault
        # A 401 means Kenar did not act on the call, so sending it again is safe.
        yield Release(answer)
        fresh = yield Blocking(
            functools.partial(self.tokens.refresh, self.user_key, stale=token),
            flight=("refresh", id(self.tokens), self.user_key, token.access_token),
        )
        self._sent.token = fresh
        answer = yield from send(request.with_header("Authorization", f"Bearer {fresh.access_token}"))
        if answer.status == 401:
            # Refused with a fresh token too: the API key, or the user's consent. Later 401s to
            # this token go back to the caller without another refresh (and another rotation).
            refused[fresh.access_token] = None
            while len(refused) > _REFUSED_MEMORY:
                refused.popitem(last=False)
        return answer


class ManagedApiClient(ApiClient):
    """An ``ApiClient`` for one user: sends their managed access token, shares a pool.

    Made by :meth:`TokenManager.api_client_for`. Closing it does nothing: close the
    client it was made from.
    """

    def __init__(self, base: ApiClient, tokens: TokenManager, user_key: str) -> None:
        super().__init__(
            base.configuration,
            cookie=base.cookie,
            auth=TokenAuth(tokens, user_key),
            transport=base.rest_client,
        )
        self.default_headers = dict(base.default_headers)
        self.tokens = tokens
        self.user_key = user_key

    def __repr__(self) -> str:
        return f"ManagedApiClient(user_key={self.user_key!r}, host={self.configuration.host!r})"

    def close(self) -> None:
        """Nothing to do: the connection pool belongs to the client this one was made from."""

    @property
    def last_token(self) -> Optional[OAuthToken]:
        """The token this thread's last call through this client was sent with."""
        auth: Any = self.auth
        token: Optional[OAuthToken] = auth.last_token
        return token


# Per TokenManager, the tokens Kenar still refused right after a refresh: a 401 to one of
# them is not answered by yet another refresh.
_REFUSED_MEMORY = 10_000
_refused: weakref.WeakKeyDictionary[Any, OrderedDict[str, None]] = weakref.WeakKeyDictionary()
_refused_lock = threading.Lock()


def _refused_after_refresh(tokens: TokenManager) -> OrderedDict[str, None]:
    with _refused_lock:
        found = _refused.get(tokens)
        if found is None:
            found = _refused[tokens] = OrderedDict()
        return found


def _names_the_api_key(answer: Answer) -> bool:
    body = answer.data
    return body is not None and _ABOUT_THE_API_KEY.search(body.decode("utf-8", "replace")) is not None


def _invalid_api_key(answer: Answer) -> InvalidApiKeyError:
    secrets = secret_list(credentials_in(answer.request_headers))
    error = error_for(answer, answer.data or b"", secrets, exception_class=InvalidApiKeyError)
    assert isinstance(error, InvalidApiKeyError)  # noqa: S101 - the class asked for
    return error
