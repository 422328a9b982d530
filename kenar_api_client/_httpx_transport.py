"""The default async transport: httpx connection pools, bounded reads, typed errors.

Imported only by an ``AsyncApiClient`` that uses it: ``import kenar_api_client`` never
loads httpx.
"""

from __future__ import annotations

import contextlib
import ssl
from typing import Any, Dict, List, Mapping, Optional, Tuple

import httpx

from kenar_api_client._answers import too_large
from kenar_api_client._async_transport_base import AsyncTransportBase
from kenar_api_client._request import Request
from kenar_api_client.exceptions import ApiConnectionError, ApiTimeoutError


class HttpxAnswer:
    """An answer received by httpx, read as the pipeline reads every answer."""

    __slots__ = ("data", "reason", "request_headers", "response", "status")

    def __init__(self, response: httpx.Response, request_headers: Mapping[str, str]) -> None:
        self.response: httpx.Response = response
        self.status: int = response.status_code
        self.reason: Optional[str] = response.reason_phrase
        self.data: Optional[bytes] = None
        self.request_headers: Optional[Mapping[str, str]] = request_headers

    def getheaders(self) -> httpx.Headers:
        """All answer headers (case-insensitive)."""
        return self.response.headers

    def getheader(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """One answer header, or ``default``."""
        value: Optional[str] = self.response.headers.get(name, default)
        return value


#: How many httpcore pools share one client's connections. httpcore's pool looks at every
#: waiting request and every connection each time one finishes (quadratic in the calls in
#: flight: 200 at once took 1.8 s of CPU in benchmarks/bench_async.py); split over this many
#: pools, each sees a sixteenth of them.
_SHARDS = 16


class _ShardedPool:
    """Several httpx transports, each with a share of the connections; a request goes to the least busy."""

    def __init__(self, pools: List[httpx.AsyncHTTPTransport]) -> None:
        self._pools = pools
        self._busy = [0] * len(pools)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        busy = self._busy
        index = busy.index(min(busy))
        busy[index] += 1
        try:
            return await self._pools[index].handle_async_request(request)
        finally:
            busy[index] -= 1

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


class HttpxTransport(AsyncTransportBase[_ShardedPool]):
    """Sends each request once through httpx; safe for any number of concurrent tasks.

    Each running event loop (and each process, after a fork) gets its own pool (see
    ``_loop_pools``).
    """

    name = "httpx"

    def _new_pool(self) -> _ShardedPool:
        settings = self.settings
        proxy = None
        if settings.proxy_url:
            proxy = httpx.Proxy(settings.proxy_url, headers=settings.proxy_headers)
        shards = min(_SHARDS, self.max_connections)
        sizes = [
            self.max_connections // shards + (1 if i < self.max_connections % shards else 0)
            for i in range(shards)
        ]
        return _ShardedPool(
            [
                httpx.AsyncHTTPTransport(
                    verify=self._ssl_context,
                    trust_env=False,
                    limits=httpx.Limits(
                        max_connections=size, max_keepalive_connections=size if self.keepalive else 0
                    ),
                    proxy=proxy,
                    socket_options=settings.socket_options,
                )
                for size in sizes
            ]
        )

    async def send(self, request: Request) -> HttpxAnswer:
        """Send ``request`` once; the answer (body read within the cap when ``request.preload``)."""
        pool = self._pools.current()
        connect, read = request.timeouts()
        extensions: Dict[str, Any] = {
            "timeout": {"connect": connect, "read": read, "write": read, "pool": request.pool_timeout}
        }
        if self._sni is not None:
            extensions["sni_hostname"] = self._sni
        outgoing = httpx.Request(
            request.method, request.url, headers=request.headers, content=request.body, extensions=extensions
        )
        origin = f"{outgoing.url.scheme}://{outgoing.url.netloc.decode('ascii')}"
        self._first_use_of(outgoing.url.scheme, outgoing.url.host, origin)
        try:
            response = await pool.handle_async_request(outgoing)
        except httpx.HTTPError as error:
            raise _transport_exception(error, request) from error
        except OSError as error:
            raise ApiConnectionError(f"{request.where}: {type(error).__name__} ({error})") from error
        answer = HttpxAnswer(response, request.headers)
        if request.preload:
            answer.data = await self._read(answer, request)
        return answer

    async def _read(self, answer: HttpxAnswer, request: Request) -> bytes:
        response = answer.response
        limit = self.settings.max_response_bytes
        chunks: List[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if limit is not None and size > limit:
                    raise too_large(
                        answer.status, answer.reason, response.headers, limit, self.secrets(request.headers)
                    )
                chunks.append(chunk)
        except httpx.HTTPError as error:
            raise _transport_exception(error, request) from error
        finally:
            # Read to the end: the connection goes back to the pool; cut short (over the cap,
            # broken, cancelled): it is closed.
            await response.aclose()
        return b"".join(chunks)

    async def release(self, answer: Any) -> None:
        """Close an answer that will not be used."""
        response = answer.response if isinstance(answer, HttpxAnswer) else answer
        with contextlib.suppress(httpx.HTTPError):  # a connection that cannot be reused is dropped
            await response.aclose()

    async def aclose(self) -> None:
        """Close the running loop's pool and refuse later calls; other loops' pools are dropped."""
        here, _ = self._pools.close()
        if here is not None:
            await here.aclose()


def _transport_exception(error: httpx.HTTPError, request: Request) -> ApiConnectionError:
    """The SDK exception for what httpx raised (``request_sent`` False where it never left)."""
    where = request.where
    detail = _detail(error)
    if isinstance(error, httpx.PoolTimeout):
        return ApiTimeoutError(
            f"{where}: no pooled connection became free in time; "
            "raise AsyncApiClient(max_connections=...) or the timeout",
            stage="pool",
        )
    if isinstance(error, httpx.ConnectTimeout):
        return ApiTimeoutError(f"{where}: timed out ({detail})", stage="connect")
    if isinstance(error, httpx.ProxyError):
        return ApiConnectionError(f"{where}: proxy failed: {detail}", stage="connect")
    if isinstance(error, httpx.ConnectError):
        if _caused_by(error, ssl.SSLError):
            return ApiConnectionError(f"{where}: TLS failed ({detail})", stage="tls")
        return ApiConnectionError(f"{where}: could not connect ({detail})", stage="connect")
    if isinstance(error, httpx.TimeoutException):
        return ApiTimeoutError(f"{where}: timed out ({detail})")
    if isinstance(error, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return ApiConnectionError(f"{where}: connection broken ({detail})")
    return ApiConnectionError(f"{where}: {type(error).__name__} ({detail})")


def _caused_by(error: BaseException, kind: type) -> bool:
    seen: Tuple[BaseException, ...] = ()
    current: Optional[BaseException] = error
    while current is not None and current not in seen:
        if isinstance(current, kind):
            return True
        seen = (*seen, current)
        current = current.__cause__ or current.__context__
    return False


def _detail(error: BaseException) -> str:
    return str(error) or type(error).__name__
