"""What every API class shares: the client it calls through."""

from __future__ import annotations

from typing import Optional

from kenar_api_client.api_client import ApiClient


class ApiBase:
    """Holds the ``ApiClient`` an API class sends its calls through (the default one if none)."""

    api_client: ApiClient

    def __init__(self, api_client: Optional[ApiClient] = None) -> None:
        self.api_client = api_client if api_client is not None else ApiClient.get_default()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_client={self.api_client!r})"
