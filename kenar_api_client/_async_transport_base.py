"""What the two async transports share: settings, TLS, per-loop pools, redaction, the plain-http warning."""

from __future__ import annotations

from typing import Any, Generic, List, Mapping, Optional, Set, TypeVar

from kenar_api_client._loop_pools import LoopPools
from kenar_api_client._redact import call_secrets
from kenar_api_client._transport import DEFAULT_MAX_CONNECTIONS
from kenar_api_client._transport_settings import (
    TransportSettings,
    server_name,
    ssl_context,
    warn_if_credentials_in_clear,
)
from kenar_api_client.configuration import Configuration

P = TypeVar("P")


class AsyncTransportBase(Generic[P]):
    """An async transport's state; subclasses say how a pool (``P``) is made and a request sent."""

    def __init__(
        self,
        configuration: Configuration,
        settings: TransportSettings,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        keepalive: bool = True,
    ) -> None:
        self._configuration = configuration
        self.settings = settings
        self.max_connections = max_connections
        self.keepalive = keepalive
        self._ssl_context = ssl_context(settings)
        self._sni = server_name(settings)
        self._pools: LoopPools[P] = LoopPools(self._new_pool)
        self._origins_seen: Set[str] = set()

    def _new_pool(self) -> P:
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        """Whether ``aclose()`` was called."""
        return self._pools.closed

    def secrets(self, request_headers: Optional[Mapping[str, Any]]) -> List[str]:
        """What an exception or a debug line must not show: see ``_redact.call_secrets``."""
        return call_secrets(self._configuration, self.settings.proxy_secrets, request_headers)

    def _first_use_of(self, scheme: str, host: str, origin: str) -> None:
        """Warn once per origin when credentials would go over plain http off this machine."""
        if origin not in self._origins_seen:
            self._origins_seen.add(origin)
            warn_if_credentials_in_clear(scheme, host, self._configuration)
