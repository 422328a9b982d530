"""What the pipeline needs of a transport (sync or async) and of the answers it returns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional, Union

from typing_extensions import Protocol

if TYPE_CHECKING:
    import aiohttp
    import httpx

    from kenar_api_client._request import Request
    from kenar_api_client._transport_settings import TransportSettings

#: What an async ``x_without_preload_content`` returns: the transport's own answer, unread.
UnreadAsyncResponse = Union["httpx.Response", "aiohttp.ClientResponse"]

#: Connections an async client keeps open at most, by default: enough for hundreds of calls
#: in flight at once.
DEFAULT_MAX_CONNECTIONS = 256


class Answer(Protocol):
    """An HTTP answer as the pipeline reads it, whichever library received it.

    ``data`` is the body once read (None before); ``response`` is the library's own object
    (what the ``*_without_preload_content`` methods return); ``request_headers`` are the
    headers the request went out with, whose credentials every error is scrubbed of.
    """

    @property
    def status(self) -> int:
        """The HTTP status."""

    @property
    def reason(self) -> Optional[str]:
        """The reason phrase."""

    @property
    def data(self) -> Optional[bytes]:
        """The body, once read."""

    @property
    def request_headers(self) -> Optional[Mapping[str, str]]:
        """The headers the request was sent with."""

    @property
    def response(self) -> Any:
        """The HTTP library's own answer object."""

    def getheaders(self) -> Mapping[str, str]:
        """All answer headers, looked up without regard to case."""

    def getheader(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """One answer header, or ``default``."""


class SyncTransport(Protocol):
    """Sends one request, once; raises ``ApiConnectionError``/``ApiTimeoutError`` for no answer."""

    def send(self, request: Request) -> Answer:
        """The answer to ``request``, body read when ``request.preload`` (within the size cap)."""

    def release(self, answer: Any) -> None:
        """Drop an answer that will not be used, keeping its connection reusable if possible."""

    def close(self) -> None:
        """Close the pooled connections."""


class AsyncTransport(Protocol):
    """The async twin of :class:`SyncTransport` (httpx's or aiohttp's)."""

    #: The HTTP library: ``"httpx"`` or ``"aiohttp"``.
    name: str
    settings: TransportSettings
    max_connections: int

    @property
    def closed(self) -> bool:
        """Whether ``aclose()`` was called."""

    async def send(self, request: Request) -> Answer:
        """The answer to ``request``, body read when ``request.preload`` (within the size cap)."""

    async def release(self, answer: Any) -> None:
        """Drop an answer that will not be used."""

    async def aclose(self) -> None:
        """Close the pooled connections."""
