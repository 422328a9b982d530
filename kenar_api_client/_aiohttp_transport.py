"""The second async transport: aiohttp connection pools, bounded reads, typed errors.

``AsyncApiClient(transport="aiohttp")`` (the ``aiohttp`` extra). Measured in
benchmarks/bench_async.py, it spends several times less client CPU per call than httpx;
httpx stays the default, as the HTTP library of the major Python API SDKs.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any, Callable, List, Mapping, Optional, Tuple

import aiohttp
from yarl import URL

from kenar_api_client._answers import too_large
from kenar_api_client._async_transport_base import AsyncTransportBase
from kenar_api_client._request import Request
from kenar_api_client.exceptions import ApiConnectionError, ApiTimeoutError

_READ_CHUNK = 64 * 1024
#: Headers aiohttp would add that the other transports do not send.
_SKIPPED_HEADERS = ("Accept-Encoding", "User-Agent", "Content-Type")


class AiohttpAnswer:
    """An answer received by aiohttp, read as the pipeline reads every answer."""

    __slots__ = ("data", "reason", "request_headers", "response", "status")

    def __init__(self, response: aiohttp.ClientResponse, request_headers: Mapping[str, str]) -> None:
        self.response: aiohttp.ClientResponse = response
        self.status: int = response.status
        self.reason: Optional[str] = response.reason
        self.data: Optional[bytes] = None
        self.request_headers: Optional[Mapping[str, str]] = request_headers

    def getheaders(self) -> Mapping[str, str]:
        """All answer headers (case-insensitive)."""
        return self.response.headers

    def getheader(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """One answer header, or ``default``."""
        value: Optional[str] = self.response.headers.get(name, default)
        return value


class AiohttpTransport(AsyncTransportBase[aiohttp.ClientSession]):
    """Sends each request once through aiohttp; safe for any number of concurrent tasks.

    Each running event loop (and each process, after a fork) gets its own session (see
    ``_loop_pools``). Cookies are not kept: Kenar's API sets none an app should send back.
    """

    name = "aiohttp"

    def _new_pool(self) -> aiohttp.ClientSession:
        options = self.settings.socket_options
        connector = aiohttp.TCPConnector(
            limit=self.max_connections,
            force_close=not self.keepalive,
            ssl=self._ssl_context,
            socket_factory=_socket_factory(options) if options else None,
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_SKIPPED_HEADERS,
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None),
        )

    async def send(self, request: Request) -> AiohttpAnswer:
        """Send ``request`` once; the answer (body read within the cap when ``request.preload``)."""
        session = self._pools.current()
        connect, read = request.timeouts()
        # ``connect`` bounds the wait for a pooled connection too; ``sock_connect`` the TCP connect.
        timeout = aiohttp.ClientTimeout(
            total=None, connect=request.pool_timeout, sock_connect=connect, sock_read=read
        )
        url = URL(request.url, encoded=True)  # sent as built: already percent-encoded
        origin = f"{url.scheme}://{url.raw_authority}"
        self._first_use_of(url.scheme, url.host or "", origin)
        settings = self.settings
        try:
            response = await session.request(
                request.method,
                url,
                headers=request.headers,
                data=request.body,
                allow_redirects=False,
                timeout=timeout,
                proxy=settings.proxy_url,
                proxy_headers=settings.proxy_headers,
                server_hostname=self._sni,
            )
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            raise _transport_exception(error, request) from error
        answer = AiohttpAnswer(response, request.headers)
        if request.preload:
            answer.data = await self._read(answer, request)
        return answer

    async def _read(self, answer: AiohttpAnswer, request: Request) -> bytes:
        response = answer.response
        limit = self.settings.max_response_bytes
        chunks: List[bytes] = []
        size = 0
        finished = False
        try:
            async for chunk in response.content.iter_chunked(_READ_CHUNK):
                size += len(chunk)
                if limit is not None and size > limit:
                    raise too_large(
                        answer.status, answer.reason, response.headers, limit, self.secrets(request.headers)
                    )
                chunks.append(chunk)
            finished = True
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            raise _transport_exception(error, request) from error
        finally:
            # Read to the end: the connection goes back to the pool; cut short (over the cap,
            # broken, cancelled): it is closed.
            if finished:
                response.release()
            else:
                response.close()
        return b"".join(chunks)

    async def release(self, answer: Any) -> None:
        """Close an answer that will not be used."""
        response = answer.response if isinstance(answer, AiohttpAnswer) else answer
        with contextlib.suppress(aiohttp.ClientError, OSError):
            response.close()

    async def aclose(self) -> None:
        """Close the running loop's session and refuse later calls; other loops' sessions are dropped."""
        here, _ = self._pools.close()
        if here is not None:
            await here.close()


def _socket_factory(options: List[Tuple[int, int, Any]]) -> Callable[[Any], socket.socket]:
    """A socket factory for aiohttp that applies ``Configuration.socket_options``."""

    def make(address_info: Any) -> socket.socket:
        family, kind, proto = address_info[0], address_info[1], address_info[2]
        made = socket.socket(family, kind, proto)
        made.setblocking(False)
        for level, option, value in options:
            made.setsockopt(level, option, value)
        return made

    return make


def _transport_exception(error: BaseException, request: Request) -> ApiConnectionError:
    """The SDK exception for what aiohttp raised (``request_sent`` False where it never left)."""
    where = request.where
    detail = str(error) or type(error).__name__
    if isinstance(error, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError)):
        return ApiConnectionError(f"{where}: TLS failed ({detail})", stage="tls")
    if isinstance(error, (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError)):
        return ApiConnectionError(f"{where}: proxy failed: {detail}", stage="connect")
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return ApiConnectionError(f"{where}: could not resolve the host name ({detail})", stage="connect")
    if isinstance(error, aiohttp.ClientConnectorError):
        return ApiConnectionError(f"{where}: could not connect ({detail})", stage="connect")
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        # Connecting, or waiting for a free pooled connection: aiohttp tells them apart no further.
        return ApiTimeoutError(f"{where}: timed out connecting ({detail})", stage="connect")
    if isinstance(error, (aiohttp.ServerTimeoutError, asyncio.TimeoutError)):
        return ApiTimeoutError(f"{where}: timed out ({detail})")
    if isinstance(
        error, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientOSError)
    ):
        return ApiConnectionError(f"{where}: connection broken ({detail})")
    return ApiConnectionError(f"{where}: {type(error).__name__} ({detail})")
