"""FastAPI without boilerplate: the lifespan, a per-user async client, and the OAuth login routes.

::

    from fastapi import Depends, FastAPI
    from kenar_api_client.fastapi import KenarFastAPI

    kenar = KenarFastAPI(TokenManager(OAuthClient(), SQLiteTokenStore("tokens.sqlite3")))
    app = FastAPI(lifespan=kenar.lifespan)
    app.include_router(kenar.login_router([Scope.USER_ID, Scope.CHAT_BOT_USER_MESSAGE_SEND]))

Needs FastAPI and the ``async`` extra (``pip install "kenar-api-client[fastapi]"``);
``import kenar_api_client`` never imports this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
from typing import TYPE_CHECKING, Any, AsyncGenerator, Awaitable, Callable, Iterable, Optional, Union
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from kenar_api_client.api_client import ApiClient
from kenar_api_client.async_api_client import AsyncApiClient
from kenar_api_client.auth import Auth, SendFlow
from kenar_api_client.oauth.errors import (
    AccessDeniedError,
    OAuthError,
    OAuthRedirectError,
    StateMismatchError,
)
from kenar_api_client.oauth.keeper import SubscriptionKeeper
from kenar_api_client.oauth.keeper_async import DEFAULT_INTERVAL, AsyncSubscriptionKeeper
from kenar_api_client.oauth.scopes import Scope

if TYPE_CHECKING:
    from kenar_api_client._request import Request as KenarRequest
    from kenar_api_client._steps import Flow
    from kenar_api_client._transport import Answer
    from kenar_api_client.oauth.managed_async import AsyncManagedApiClient
    from kenar_api_client.oauth.manager import TokenManager
    from kenar_api_client.oauth.token import OAuthToken

__all__ = ["KenarFastAPI", "LoginHandler", "UserKeyResolver"]

#: The cookie that carries the authorization's ``state`` from ``/login`` to the callback.
STATE_COOKIE = "kenar_oauth_state"
_STATE_LIFETIME = 600  # seconds: as long as Kenar's authorization codes live

#: ``(request, token) -> user_key``: whose tokens these are, in the app's words.
UserKeyResolver = Callable[[Request, "OAuthToken"], Union[str, Awaitable[str]]]
#: ``(request, user_key) -> response``: what the browser gets once the user is connected.
LoginHandler = Callable[[Request, str], Union[Response, Awaitable[Response]]]


class KenarFastAPI:
    """One app's Kenar side in FastAPI: the async client, the token manager, the keeper.

    ``api_client`` (default: an ``AsyncApiClient()`` from the ``KENAR_*`` variables) is
    shared by every user's client; ``keeper`` (default: a ``SubscriptionKeeper`` over the
    same configuration) renews kept subscriptions every ``renew_every`` seconds while the
    app runs (``None``: no keeper task).
    """

    def __init__(
        self,
        tokens: TokenManager,
        api_client: Optional[AsyncApiClient] = None,
        *,
        keeper: Optional[SubscriptionKeeper] = None,
        renew_every: Optional[float] = DEFAULT_INTERVAL,
    ) -> None:
        self.tokens = tokens
        self.api_client: AsyncApiClient = api_client if api_client is not None else AsyncApiClient()
        self._sync_client: Optional[ApiClient] = None
        if keeper is None and renew_every is not None:
            self._sync_client = ApiClient(self.api_client.configuration)
            keeper = SubscriptionKeeper(tokens, self._sync_client)
        self.keeper: Optional[SubscriptionKeeper] = keeper
        self.renew_every = renew_every

    def __repr__(self) -> str:
        return f"KenarFastAPI(tokens={self.tokens!r})"

    # -- the app's life ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncGenerator[None, None]:
        """``FastAPI(lifespan=kenar.lifespan)``: runs the keeper, closes the clients at shutdown."""
        rounds = None
        if self.keeper is not None and self.renew_every is not None:
            rounds = AsyncSubscriptionKeeper(self.keeper)
            rounds.start(self.renew_every)
        try:
            yield
        finally:
            if rounds is not None:
                await rounds.stop()
            await self.api_client.close()
            if self._sync_client is not None:
                self._sync_client.close()

    # -- per-user clients -------------------------------------------------------------------

    def client_for(self, user_key: str) -> AsyncManagedApiClient:
        """An async client sending ``user_key``'s managed token (free to make per request)."""
        return self.tokens.api_client_for(user_key, self.api_client)

    def user_client(self, user_key: Callable[..., Any]) -> Callable[..., AsyncManagedApiClient]:
        """A dependency giving the client of the user ``user_key`` (itself a dependency) names.

        ::

            def current_user(request: Request) -> str: ...  # the app's session

            @app.post("/reply")
            async def reply(client=Depends(kenar.user_client(current_user))):
                await AsyncChatAPIApi(client).chat_api_conversation_send_message(...)
        """

        def dependency(key: str = Depends(user_key)) -> AsyncManagedApiClient:
            return self.client_for(key)

        return dependency

    # -- logging a user in ------------------------------------------------------------------

    def login_router(
        self,
        scopes: Iterable[Union[Scope, str]],
        *,
        login_path: str = "/kenar/login",
        callback_path: Optional[str] = None,
        user_key: Optional[UserKeyResolver] = None,
        on_login: Optional[LoginHandler] = None,
    ) -> APIRouter:
        """The routes that connect a Divar user: ``GET login_path`` and the OAuth callback.

        ``login_path`` sends the browser to Divar's consent page for ``scopes`` (plus
        ``offline_access``), with a fresh ``state`` kept in an HttpOnly cookie; the callback
        (default: the path of the OAuth client's redirect URI) checks that state, exchanges
        the code and stores the tokens under ``user_key(request, token)`` (default: the Divar
        user id Kenar gives for the token, which needs the ``USER_ID`` scope and the
        ``USER_RETRIEVE`` permission). Then ``on_login(request, user_key)`` answers the
        browser (default: a redirect to ``/``). A refused consent or a forged state gets a
        plain 403 or 400 page; nothing is stored.
        """
        requested = list(scopes)
        oauth = self.tokens.oauth
        if callback_path is None:
            if oauth.redirect_uri is None:
                raise ValueError(
                    "the OAuthClient has no redirect_uri: pass callback_path or set KENAR_REDIRECT_URI"
                )
            callback_path = urlsplit(oauth.redirect_uri).path or "/"
        router = APIRouter()
        secure = (oauth.redirect_uri or "").startswith("https://")
        resolve = user_key if user_key is not None else self._divar_user_id
        respond: LoginHandler = on_login if on_login is not None else _home

        @router.get(login_path, include_in_schema=False)
        def login() -> Response:
            url, state = oauth.authorization_url(requested)
            response = RedirectResponse(url, status_code=302)
            response.set_cookie(
                STATE_COOKIE,
                state,
                max_age=_STATE_LIFETIME,
                path=callback_path,
                httponly=True,
                secure=secure,
                samesite="lax",
            )
            return response

        @router.get(callback_path, include_in_schema=False)
        async def callback(request: Request) -> Response:
            expected = request.cookies.get(STATE_COOKIE, "")
            given = request.query_params.get("state", "")
            if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
                return _page(400, "This sign-in link is not the one this browser started: start again.")
            try:
                code = oauth.parse_redirect(str(request.url), expected)
            except AccessDeniedError:
                return _page(403, "Divar access was not granted.")
            except (StateMismatchError, OAuthRedirectError):
                return _page(400, "Divar answered the sign-in with an error: start again.")
            try:
                token = await asyncio.to_thread(oauth.exchange_code, code)
            except OAuthError:
                return _page(400, "The sign-in expired or was already used: start again.")
            key = await _maybe_await(resolve(request, token))
            await asyncio.to_thread(self.tokens.save, key, token)
            response: Response = await _maybe_await(respond(request, key))
            response.delete_cookie(STATE_COOKIE, path=callback_path)
            return response

        return router

    async def _divar_user_id(self, request: Request, token: OAuthToken) -> str:
        """The Divar user id of ``token``'s user, asked of Kenar with that token."""
        from kenar_api_client.api.finder_api import AsyncFinderApi

        client = AsyncApiClient(
            self.api_client.configuration, auth=_GivenToken(token), transport=self.api_client.transport
        )
        user = await AsyncFinderApi(client).finder_get_user2()
        if not user.user_id:
            raise OAuthError("no_user_id", "Kenar gave no user id: ask for the USER_ID scope")
        return user.user_id


class _GivenToken(Auth):
    """Sends one given access token (a user's, just obtained) on the operations that take one."""

    def __init__(self, token: OAuthToken) -> None:
        self._token = token

    def auth_flow(self, request: KenarRequest, send: SendFlow) -> Flow[Answer]:
        if request.oauth:
            request = request.with_header("Authorization", f"Bearer {self._token.access_token}")
        return (yield from send(request))


def _home(request: Request, user_key: str) -> Response:
    return RedirectResponse("/", status_code=303)


def _page(status: int, text: str) -> Response:
    return PlainTextResponse(text, status_code=status)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
