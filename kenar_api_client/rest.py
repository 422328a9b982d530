"""The sync transport: a urllib3 pool per host, timeouts, bounded reads, transport errors typed."""

from __future__ import annotations

import http.client
import logging
import os
import queue
import socket
import threading
import warnings
import weakref
from typing import Any, Dict, List, Mapping, Optional, Tuple, Type, Union

import urllib3
from urllib3.connection import port_by_scheme
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    EmptyPoolError,
    InsecureRequestWarning,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util import Retry, Timeout, parse_url

from kenar_api_client import _retrying
from kenar_api_client._answers import too_large
from kenar_api_client._drive import run
from kenar_api_client._redact import SecretHeaders, call_secrets
from kenar_api_client._request import Request
from kenar_api_client._transport_settings import TransportSettings, to_timeout, warn_if_credentials_in_clear
from kenar_api_client.configuration import Configuration
from kenar_api_client.exceptions import ApiConnectionError, ApiException, ApiTimeoutError, ApiValueError

# Re-exported: generated examples import ``ApiException`` from ``kenar_api_client.rest``.
__all__ = ["ApiException", "RESTClientObject", "RESTResponse"]

logger: logging.Logger = logging.getLogger(__name__)

RequestTimeout = Union[None, float, Tuple[float, float], Timeout]

# Bodies larger than a limit, or of unknown size once decoded, are read this much at a time.
_READ_CHUNK = 64 * 1024

# Anything urllib3, http.client or the socket layer may raise once a request is under way.
_TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


class RESTResponse:
    """An HTTP answer: status, reason, headers, and the body once read.

    ``request_headers`` are the headers the request was sent with: an error built from this
    answer is scrubbed of the credentials among them, whatever the configuration says now.
    """

    __slots__ = ("_client", "_sent", "data", "reason", "request_headers", "response", "status")

    def __init__(
        self,
        response: urllib3.BaseHTTPResponse,
        request_headers: Optional[Dict[str, str]] = None,
        client: Optional[RESTClientObject] = None,
        sent: Tuple[str, str] = ("reading the answer of", ""),
    ) -> None:
        self.response: urllib3.BaseHTTPResponse = response
        self.status: int = response.status
        self.reason: Optional[str] = response.reason
        self.data: Optional[bytes] = None
        self.request_headers: Optional[Dict[str, str]] = request_headers
        self._client = client
        self._sent = sent  # (method, url) of the request, for naming it in errors

    def read(self) -> bytes:
        """The whole body (read once, then cached), within ``Configuration.max_response_bytes``.

        A connection that breaks while the body comes in raises ``ApiConnectionError``.
        """
        if self.data is None:
            try:
                self.data = self.response.data if self._client is None else self._client.read_body(self)
            except _TRANSPORT_ERRORS as error:
                raise transport_exception(error, *self._sent) from error
        return self.data

    def getheaders(self) -> urllib3.HTTPHeaderDict:
        """All response headers (a case-insensitive mapping)."""
        return self.response.headers

    def getheader(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """One response header, or ``default``."""
        return self.response.headers.get(name, default)


class _PoolQueue(queue.LifoQueue):  # type: ignore[type-arg]
    """A pool's free connections, which can let every caller waiting for one through at once."""

    def release_waiters(self) -> None:
        """Give each waiting caller a ``None``: urllib3 then opens it a new connection.

        No more callers can be waiting than there are threads; what is left over is drained
        by urllib3 when the pool goes away.
        """
        with self.mutex:
            self.queue.extend([None] * threading.active_count())
            self.not_empty.notify_all()


class _HTTPConnectionPool(HTTPConnectionPool):
    """urllib3's pool, whose ``close()`` also releases the callers waiting for a connection."""

    QueueCls = _PoolQueue

    def close(self) -> None:
        waiting = self.pool
        super().close()
        if isinstance(waiting, _PoolQueue):
            waiting.release_waiters()


class _HTTPSConnectionPool(_HTTPConnectionPool, HTTPSConnectionPool):
    """The https:// pool, releasing its waiters on close like the http:// one."""


class _UnverifiedHTTPSConnectionPool(_HTTPSConnectionPool):
    """The pool for ``verify_ssl=False``.

    The client has already warned once when it was created; urllib3 would warn again on
    every single request.
    """

    def _validate_conn(self, conn: Any) -> None:
        if conn.is_closed:
            conn.connect()


class RESTClientObject:
    """The sync transport: pooled keep-alive connections over urllib3; safe to share between threads.

    One pool per scheme+host+port is created on first use and reused by every later call,
    so a call costs no URL parsing and no pool lookup beyond a dict access. It sends each
    request once: retries are the pipeline's (``_retrying``), the same for both clients.
    A process forked from one using it starts with no pooled connections (the parent's
    sockets are never shared).
    """

    #: Whether debug lines show bodies; off for OAuth, whose bodies are all secrets.
    log_bodies = True

    def __init__(self, configuration: Configuration, settings: Optional[TransportSettings] = None) -> None:
        # Every transport setting is checked here, once: a bad one fails now, naming itself,
        # not on some later call (or never, as a pool that waits forever).
        self._configuration = configuration
        self.settings: TransportSettings = (
            settings if settings is not None else TransportSettings(configuration)
        )
        self.retries: Retry = self.settings.retry
        self._retry_policy = _retrying.RetryPolicy(self.retries)
        self.timeout: Timeout = self.settings.timeout
        self.pool_timeout: Optional[float] = self.settings.pool_timeout
        self.max_response_bytes: Optional[int] = self.settings.max_response_bytes
        self._proxy_secrets = self.settings.proxy_secrets
        self._pools: Dict[str, HTTPConnectionPool] = {}
        self._lock = threading.Lock()

        pool_kwargs: Dict[str, Any] = {
            "maxsize": self.settings.pool_maxsize,
            "block": True,  # never open more connections than maxsize; callers wait instead
            "timeout": self.timeout,
            "retries": _SEND_ONCE,
        }
        if self.settings.socket_options is not None:
            pool_kwargs["socket_options"] = self.settings.socket_options
        tls_kwargs: Dict[str, Any] = {
            "cert_reqs": "CERT_REQUIRED" if self.settings.verify_ssl else "CERT_NONE",
            "ca_certs": self.settings.ssl_ca_cert,
            "ca_cert_data": self.settings.ca_cert_data,
            "cert_file": self.settings.cert_file,
            "key_file": self.settings.key_file,
        }
        if self.settings.assert_hostname is not None:
            tls_kwargs["assert_hostname"] = self.settings.assert_hostname
        if self.settings.tls_server_name is not None:
            tls_kwargs["server_hostname"] = self.settings.tls_server_name
        self._pool_kwargs = pool_kwargs
        self._tls_kwargs = tls_kwargs

        self._proxy_manager: Optional[urllib3.ProxyManager] = None
        if self.settings.proxy_url:
            self._proxy_manager = urllib3.ProxyManager(
                self.settings.proxy_url,
                proxy_headers=self.settings.proxy_headers,
                **pool_kwargs,
                **tls_kwargs,
            )
            self._proxy_manager.pool_classes_by_scheme = {
                "http": _HTTPConnectionPool,
                "https": self._https_pool_class(),
            }
        if not self.settings.verify_ssl:
            warnings.warn(
                "TLS certificate verification is disabled (verify_ssl=False): anyone between "
                "this client and the server can read and change the traffic, credentials "
                "included.",
                InsecureRequestWarning,
                stacklevel=3,
            )
        _after_fork.add(self)

    # -- pools ------------------------------------------------------------------------------

    def _pool_for(self, origin: str) -> HTTPConnectionPool:
        pool = self._pools.get(origin)
        if pool is not None:
            return pool
        with self._lock:
            pool = self._pools.get(origin)
            if pool is None:
                pool = self._pools[origin] = self._new_pool(origin)
        return pool

    def _new_pool(self, origin: str) -> HTTPConnectionPool:
        parsed = parse_url(origin)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ApiValueError(f"cannot send to {origin!r}: not an http(s) URL")
        warn_if_credentials_in_clear(parsed.scheme, parsed.host, self._configuration)
        # The port is always given: left to http.client, a bracket-less IPv6 host such as
        # "::1" would be read as host ":" and port 1.
        port = parsed.port or port_by_scheme[parsed.scheme]
        if parsed.scheme == "http":
            return _HTTPConnectionPool(parsed.host, port, **self._pool_kwargs)
        return self._https_pool_class()(parsed.host, port, **self._pool_kwargs, **self._tls_kwargs)

    def _https_pool_class(self) -> Type[_HTTPSConnectionPool]:
        return _HTTPSConnectionPool if self.settings.verify_ssl else _UnverifiedHTTPSConnectionPool

    def secrets(self, request_headers: Optional[Mapping[str, Any]]) -> List[str]:
        """What an exception or a debug line must not show: see ``_redact.call_secrets``."""
        return call_secrets(self._configuration, self._proxy_secrets, request_headers)

    def read_body(self, result: RESTResponse) -> bytes:
        """The whole body of ``result``, or ``ApiException`` once it exceeds the limit.

        An answer that says its size up front and is within the limit is read in one go;
        any other is read a chunk at a time (decompressed chunk by chunk), so that a gzip
        bomb or an endless stream stops at the limit, not when the memory runs out.
        """
        response = result.response
        limit = self.max_response_bytes
        length = response.length_remaining
        if limit is None or (
            length is not None and length <= limit and "content-encoding" not in response.headers
        ):
            return response.data
        chunks: List[bytes] = []
        size = 0
        while True:
            chunk = response.read(min(_READ_CHUNK, limit + 1 - size))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                # The rest is never read: the connection is closed, not put back half-read.
                response.close()
                response.release_conn()
                raise too_large(
                    result.status,
                    result.reason,
                    response.headers,
                    limit,
                    self.secrets(result.request_headers),
                )

    def close(self) -> None:
        """Close every pooled connection; calls waiting for one go on with a new one."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
        if self._proxy_manager is not None:
            self._proxy_manager.clear()

    def forget_connections(self) -> None:
        """Drop the pools without closing them: in a forked child, whose sockets are the parent's."""
        self._lock = threading.Lock()
        self._pools = {}
        if self._proxy_manager is not None:
            self._proxy_manager.pools.clear()

    # -- requests ---------------------------------------------------------------------------

    def send(self, request: Request) -> RESTResponse:
        """Send ``request`` once and return the answer, whatever its status.

        Raises ``ApiConnectionError``/``ApiTimeoutError`` when no answer came, with
        ``request_sent`` False where the request certainly never left.
        """
        url = request.url
        try:
            opener: Any
            if self._proxy_manager is not None:
                opener, target = self._proxy_manager.urlopen, url
            else:
                path_start = url.find("/", url.find("://") + 3)
                origin, target = (url, "/") if path_start < 0 else (url[:path_start], url[path_start:])
                opener = self._pool_for(origin).urlopen
            response = opener(
                request.method,
                target,
                body=request.body,
                headers=request.headers,
                retries=_SEND_ONCE,
                redirect=False,
                assert_same_host=False,
                timeout=request.timeout,
                pool_timeout=request.pool_timeout,
                preload_content=False,  # read below, within max_response_bytes
            )
            result = RESTResponse(response, request.headers, self, (request.method, url))
            if request.preload:
                result.read()
        except _TRANSPORT_ERRORS as error:
            # MaxRetryError only wraps what went wrong (and repeats the URL, query included):
            # chain that failure itself.
            cause = error.reason if isinstance(error, MaxRetryError) and error.reason else error
            raise transport_exception(error, request.method, url) from cause
        return result

    def release(self, answer: Any) -> None:
        """Drain and release an answer that will not be used, so its connection is reused."""
        raw = answer.response if isinstance(answer, RESTResponse) else answer
        try:
            raw.drain_conn()
            raw.release_conn()
        except Exception:  # noqa: S110 - a connection that cannot be reused is simply dropped
            pass

    def request(
        self,
        method: str,
        url: str,
        headers: Optional[Dict[str, str]] = None,
        body: Union[bytes, str, None] = None,
        _request_timeout: RequestTimeout = None,
        _preload_content: bool = True,
    ) -> RESTResponse:
        """Send one request (with the retries the policy allows) and return the answer.

        Raises ``ApiConnectionError``/``ApiTimeoutError`` when no answer could be had; an
        HTTP error status is returned, not raised: turning it into an exception is the
        ``ApiClient``'s job.
        """
        if _request_timeout is None:
            timeout, pool_timeout = self.timeout, self.pool_timeout
        else:
            timeout, pool_timeout = to_timeout(_request_timeout, "_request_timeout")
        prepared = Request(
            method, url, SecretHeaders(headers or {}), body, timeout, pool_timeout, preload=_preload_content
        )
        answer: Any = run(_retrying.send(prepared, self._retry_policy, self.secrets, self.log_bodies), self)
        result: RESTResponse = answer
        return result


#: What urllib3 is told: send once, raise what went wrong as it is (no MaxRetryError wrapper).
_SEND_ONCE = Retry(total=False, redirect=False, raise_on_redirect=False, raise_on_status=False)


class _ForkSafety:
    """Every live transport, so that a forked child forgets the parent's connections."""

    def __init__(self) -> None:
        self._transports: weakref.WeakSet[RESTClientObject] = weakref.WeakSet()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget)

    def add(self, transport: RESTClientObject) -> None:
        self._transports.add(transport)

    def _forget(self) -> None:
        for transport in list(self._transports):
            transport.forget_connections()


_after_fork = _ForkSafety()


def transport_exception(error: BaseException, method: str, url: str) -> ApiConnectionError:
    """The SDK exception for a failure that left no HTTP answer (``request_sent`` says if it left)."""
    where = f"{method} {url.split('?', 1)[0]}"
    if isinstance(error, MaxRetryError) and error.reason is not None:
        error = error.reason
    if isinstance(error, ProxyError) and error.original_error is not None:
        return ApiConnectionError(f"{where}: proxy failed: {_detail(error.original_error)}", stage="connect")
    if isinstance(error, ClosedPoolError):
        return ApiConnectionError(
            f"{where}: the ApiClient was closed while this call was under way", stage="pool"
        )
    if isinstance(error, EmptyPoolError):
        return ApiTimeoutError(
            f"{where}: no pooled connection became free in time; "
            "raise Configuration.connection_pool_maxsize or the timeout",
            stage="pool",
        )
    if isinstance(error, NameResolutionError):
        return ApiConnectionError(
            f"{where}: could not resolve the host name ({_detail(error)})", stage="connect"
        )
    if isinstance(error, NewConnectionError):
        return ApiConnectionError(f"{where}: could not connect ({_detail(error)})", stage="connect")
    if isinstance(error, ConnectTimeoutError):
        return ApiTimeoutError(f"{where}: timed out ({_detail(error)})", stage="connect")
    if isinstance(error, (ReadTimeoutError, TimeoutError, socket.timeout)):
        return ApiTimeoutError(f"{where}: timed out ({_detail(error)})")
    if isinstance(error, SSLError):
        return ApiConnectionError(f"{where}: TLS failed ({_detail(error)})", stage="tls")
    if isinstance(error, ProtocolError):
        return ApiConnectionError(f"{where}: connection broken ({_detail(error)})")
    return ApiConnectionError(f"{where}: {type(error).__name__} ({_detail(error)})")


def _detail(error: BaseException) -> str:
    """The most telling part of a (possibly nested) transport error's message."""
    while error.__cause__ is not None and not str(error).strip():
        error = error.__cause__
    cause = error.__cause__
    if isinstance(error, NewConnectionError) and isinstance(cause, OSError):
        return str(cause)
    if len(error.args) == 2 and isinstance(error.args[1], str) and not isinstance(error.args[0], str):
        # ConnectTimeoutError(connection, message) would print as a tuple with an object repr.
        return error.args[1]
    text = str(error)
    # urllib3 prefixes messages with the pool or connection object: drop it.
    for marker in ("): ", ">: "):
        head, sep, tail = text.partition(marker)
        if sep and ("ConnectionPool(" in head or head.startswith("<urllib3")):
            text = tail
            break
    return text or type(error).__name__
