"""``AsyncManagedApiClient``: an ``AsyncApiClient`` for one user, sending their managed token."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from kenar_api_client.async_api_client import AsyncApiClient
from kenar_api_client.oauth.managed import TokenAuth

if TYPE_CHECKING:
    from kenar_api_client.oauth.manager import TokenManager
    from kenar_api_client.oauth.token import OAuthToken


class AsyncManagedApiClient(AsyncApiClient):
    """``ManagedApiClient`` for the async API classes; made by :meth:`TokenManager.api_client_for`.

    The token store and the OAuth server are only reached in a worker thread, once per user
    at a time however many tasks ask; a call holding a fresh token in memory does no I/O
    for it. Closing it does nothing: close the client it was made from.
    """

    def __init__(self, base: AsyncApiClient, tokens: TokenManager, user_key: str) -> None:
        super().__init__(
            base.configuration,
            cookie=base.cookie,
            auth=TokenAuth(tokens, user_key),
            transport=base.transport,
        )
        self.default_headers = dict(base.default_headers)
        self.tokens = tokens
        self.user_key = user_key

    def __repr__(self) -> str:
        return f"AsyncManagedApiClient(user_key={self.user_key!r}, host={self.configuration.host!r})"

    async def close(self) -> None:
        """Nothing to do: the connection pool belongs to the client this one was made from."""

    @property
    def last_token(self) -> Optional[OAuthToken]:
        """The token the last call through this client (in this thread) was sent with."""
        auth: Any = self.auth
        token: Optional[OAuthToken] = auth.last_token
        return token
