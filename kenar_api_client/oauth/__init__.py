"""Kenar OAuth: get a user's consent, keep their tokens valid and their subscriptions alive.

::

    from kenar_api_client import ApiClient, EventsApi
    from kenar_api_client.oauth import OAuthClient, Scope, SQLiteTokenStore, SubscriptionKeeper, TokenManager

    oauth = OAuthClient()  # KENAR_APP_SLUG, KENAR_CLIENT_SECRET, KENAR_REDIRECT_URI
    tokens = TokenManager(oauth, SQLiteTokenStore("kenar-tokens.sqlite3"))
    url, state = oauth.authorization_url([Scope.SEND_EVENT, Scope.USER_POSTS_GET])
    ...  # send the user to url; Divar sends them back to the redirect URI
    tokens.complete_authorization("user-42", redirect_url, state)

    with ApiClient() as api_client:
        events = EventsApi(tokens.api_client_for("user-42", api_client))  # refreshed by itself
        SubscriptionKeeper(tokens, api_client).keep("user-42", {"event_type": "POST_UPDATE"})

See docs/OAuth.md and docs/Subscriptions.md. No new dependency: ``RedisTokenStore``
alone needs the ``redis`` extra, ``PostgresTokenStore`` the ``postgres`` extra.
``authorize_on_loopback`` (the whole flow for a script) loads ``http.server`` on first use only.
"""

from typing import TYPE_CHECKING

from kenar_api_client import _log  # noqa: F401 - silent loggers unless the app configures logging
from kenar_api_client._lazy import lazy_exports
from kenar_api_client.oauth.client import (
    DEFAULT_OAUTH_URL,
    ROTATION_GRACE,
    AuthorizationRequest,
    OAuthClient,
)
from kenar_api_client.oauth.errors import (
    AccessDeniedError,
    ConsentRequiredError,
    InvalidClientError,
    InvalidGrantError,
    OAuthError,
    OAuthRedirectError,
    StateMismatchError,
    TokenStoreError,
)
from kenar_api_client.oauth.keeper import KeeperStatus, KeptSubscription, RenewalReport, SubscriptionKeeper
from kenar_api_client.oauth.log_filter import OAuthCodeFilter
from kenar_api_client.oauth.managed import ManagedApiClient, TokenAuth
from kenar_api_client.oauth.manager import TokenManager
from kenar_api_client.oauth.postgres_store import PostgresTokenStore
from kenar_api_client.oauth.redis_store import RedisTokenStore
from kenar_api_client.oauth.scopes import RESOURCE_SCOPES, Scope, scope, subscription_scopes
from kenar_api_client.oauth.sqlite_store import SQLiteTokenStore
from kenar_api_client.oauth.store import (
    DueIndex,
    DueSummary,
    MemoryTokenStore,
    TokenStore,
    Versioned,
    VolatileStoreWarning,
)
from kenar_api_client.oauth.token import OAuthToken

# Loaded on first use: the loopback flow serves HTTP and may start a browser; the async
# client needs httpx (the "async" extra).
_LAZY_EXPORTS = {"authorize_on_loopback": ".loopback", "AsyncManagedApiClient": ".managed_async"}

if TYPE_CHECKING:
    from kenar_api_client.oauth.loopback import authorize_on_loopback as authorize_on_loopback
    from kenar_api_client.oauth.managed_async import AsyncManagedApiClient as AsyncManagedApiClient
else:
    __getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY_EXPORTS)

__all__ = [
    "DEFAULT_OAUTH_URL",
    "RESOURCE_SCOPES",
    "ROTATION_GRACE",
    "AccessDeniedError",
    "AsyncManagedApiClient",
    "AuthorizationRequest",
    "ConsentRequiredError",
    "DueIndex",
    "DueSummary",
    "InvalidClientError",
    "InvalidGrantError",
    "KeeperStatus",
    "KeptSubscription",
    "ManagedApiClient",
    "MemoryTokenStore",
    "OAuthClient",
    "OAuthCodeFilter",
    "OAuthError",
    "OAuthRedirectError",
    "OAuthToken",
    "PostgresTokenStore",
    "RedisTokenStore",
    "RenewalReport",
    "SQLiteTokenStore",
    "Scope",
    "StateMismatchError",
    "SubscriptionKeeper",
    "TokenAuth",
    "TokenManager",
    "TokenStore",
    "TokenStoreError",
    "Versioned",
    "VolatileStoreWarning",
    "authorize_on_loopback",
    "scope",
    "subscription_scopes",
]
