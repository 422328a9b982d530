"""What every API class shares: the client it calls through (sync or async)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from kenar_api_client.api_client import ApiClient

if TYPE_CHECKING:
    from kenar_api_client.async_api_client import AsyncApiClient


class ApiBase:
    """Holds the ``ApiClient`` an API class sends its calls through (the default one if none)."""

    api_client: ApiClient

    def __init__(self, api_client: Optional[ApiClient] = None) -> None:
        self.api_client = api_client if api_client is not None else ApiClient.get_default()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_client={self.api_client!r})"


class AsyncApiBase:
    """Holds the ``AsyncApiClient`` an async API class awaits its calls through (the default one if none)."""

    api_client: AsyncApiClient

    def __init__(self, api_client: Optional[AsyncApiClient] = None) -> None:
        if api_client is None:
            from kenar_api_client.async_api_client import AsyncApiClient

            api_client = AsyncApiClient.get_default()
        self.api_client = api_client

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_client={self.api_client!r})"
