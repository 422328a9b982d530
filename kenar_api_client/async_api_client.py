"""``AsyncApiClient``: runs calls through the request pipeline on the running event loop.

Needs the ``async`` extra (httpx; ``pip install "kenar-api-client[async]"``), or the
``aiohttp`` one for ``transport="aiohttp"``. The same pipeline as ``ApiClient``: the same
validation, retry rule, timeouts, redaction and typed exceptions; only the driver
(``await``) and the transport differ. Blocking work a call may need (a token store, a
token refresh) runs in a worker thread, once per user at a time.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, ClassVar, Dict, Mapping, Optional, Union

from kenar_api_client._async_libraries import EXTRA_OF, AsyncLibrary
from kenar_api_client._client_core import ClientCore, Result
from kenar_api_client._drive_async import arun
from kenar_api_client._transport import DEFAULT_MAX_CONNECTIONS, AsyncTransport
from kenar_api_client.exceptions import ApiValueError

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Type

    from kenar_api_client._operation import Operation
    from kenar_api_client.auth import Auth
    from kenar_api_client.configuration import Configuration

__all__ = ["DEFAULT_MAX_CONNECTIONS", "AsyncApiClient"]


class AsyncApiClient(ClientCore):
    """The client every async API class (``AsyncEventsApi``...) awaits its calls through.

    Use it as ``async with AsyncApiClient(configuration) as api_client:``, or ``await
    api_client.close()`` when done; a call after ``close()`` raises ``ClientClosedError``.
    Nothing happens at garbage collection. ``transport`` is the HTTP library,
    ``"httpx"`` (the default) or ``"aiohttp"`` (less CPU per call; the ``aiohttp``
    extra), or another async client's ``transport`` to share its connection pool.
    ``max_connections`` bounds the connections open at once (default 256): more calls in
    flight wait for a free one, up to the timeout. ``keepalive=False`` closes each
    connection after its call, for event loops too short-lived to close the client on (a
    test's). ``auth`` decides per-call credentials beyond the configured ones.
    """

    _default: ClassVar[Optional[AsyncApiClient]] = None
    _default_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        configuration: Optional[Configuration] = None,
        header_name: Optional[str] = None,
        header_value: Optional[str] = None,
        cookie: Optional[str] = None,
        *,
        transport: Union[AsyncLibrary, AsyncTransport] = "httpx",
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        keepalive: bool = True,
        auth: Optional[Auth] = None,
    ) -> None:
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1:
            raise ApiValueError(f"max_connections must be an int of at least 1, not {max_connections!r}")
        super().__init__(
            configuration,
            header_name,
            header_value,
            cookie,
            auth=auth,
            settings=None if isinstance(transport, str) else transport.settings,
        )
        #: The transport (connection pools); shared by the clients made from this one.
        self.transport: AsyncTransport = (
            _new_transport(transport, self, max_connections, keepalive)
            if isinstance(transport, str)
            else transport
        )

    async def __aenter__(self) -> AsyncApiClient:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the pooled connections; later calls raise ``ClientClosedError``."""
        await self.transport.aclose()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self.transport.closed

    def __repr__(self) -> str:
        return f"AsyncApiClient(host={self.configuration.host!r})"

    @classmethod
    def get_default(cls) -> AsyncApiClient:
        """The client async API classes use when given none (created on first use, once)."""
        default = cls._default
        if default is None:
            with cls._default_lock:
                if cls._default is None:
                    cls._default = cls()
                default = cls._default
        return default

    @classmethod
    def set_default(cls, default: Optional[AsyncApiClient]) -> None:
        """Make ``default`` the client async API classes use when given none."""
        cls._default = default

    async def invoke(
        self, operation: Operation, args: Dict[str, Any], options: Mapping[str, Any], result: Result = "data"
    ) -> Any:
        """One call of ``operation``: its data, its ``ApiResponse`` or its unread ``httpx.Response``."""
        request = self.build_request(operation, args, options, preload=result != "unread")
        return await arun(self.pipeline(request, operation.response_types, result), self.transport)


def _new_transport(library: str, client: ClientCore, max_connections: int, keepalive: bool) -> AsyncTransport:
    """The transport over ``library``, imported now (so a missing extra is named where it is needed)."""
    if library not in EXTRA_OF:
        raise ApiValueError(
            f"transport must be 'httpx' or 'aiohttp' (or a client's transport), not {library!r}"
        )
    try:
        if library == "aiohttp":
            from kenar_api_client._aiohttp_transport import AiohttpTransport as Transport
        else:
            from kenar_api_client._httpx_transport import HttpxTransport as Transport  # type: ignore[assignment]
    except ImportError as missing:
        extra = EXTRA_OF[library]
        raise ImportError(
            f'AsyncApiClient(transport="{library}") needs {library}: pip install "kenar-api-client[{extra}]"'
        ) from missing
    return Transport(
        client.configuration, client.settings, max_connections=max_connections, keepalive=keepalive
    )
