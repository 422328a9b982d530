"""The HTTP transport: a urllib3 pool per host, timeouts, retries, transport errors as SDK exceptions."""

from __future__ import annotations

import http.client
import logging
import queue
import socket
import threading
import time
import warnings
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

from kenar_api_client import _transport_settings
from kenar_api_client._hosts import is_loopback
from kenar_api_client._redact import credentials_in, redact_headers, scrub, scrub_headers, secret_list
from kenar_api_client.configuration import Configuration
from kenar_api_client.exceptions import (
    ApiConnectionError,
    ApiException,
    ApiTimeoutError,
    ApiValueError,
    exception_class_for_status,
)
from kenar_api_client.retry import build_retry

# Re-exported: generated examples import ``ApiException`` from ``kenar_api_client.rest``.
__all__ = ["ApiException", "RESTClientObject", "RESTResponse"]

logger: logging.Logger = logging.getLogger(__name__)

RequestTimeout = Union[None, float, Tuple[float, float], Timeout]

_BODY_LOG_PREVIEW = 1000

# Bodies larger than a limit, or of unknown size once decoded, are read this much at a time.
_READ_CHUNK = 64 * 1024

# Anything urllib3, http.client or the socket layer may raise once a request is under way.
_TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


class RESTResponse:
    """An HTTP answer: status, reason, headers, and the body once read.

    ``request_headers`` are the headers the request was sent with: an error built from this
    answer is scrubbed of the credentials among them, whatever the configuration says now.
    """

    __slots__ = ("_client", "data", "reason", "request_headers", "response", "status")

    def __init__(
        self,
        response: urllib3.BaseHTTPResponse,
        request_headers: Optional[Dict[str, str]] = None,
        client: Optional[RESTClientObject] = None,
    ) -> None:
        self.response: urllib3.BaseHTTPResponse = response
        self.status: int = response.status
        self.reason: Optional[str] = response.reason
        self.data: Optional[bytes] = None
        self.request_headers: Optional[Dict[str, str]] = request_headers
        self._client = client

    def read(self) -> bytes:
        """The whole body (read once, then cached), within ``Configuration.max_response_bytes``."""
        if self.data is None:
            self.data = self.response.data if self._client is None else self._client.read_body(self)
        return self.data

    def getheaders(self) -> urllib3.HTTPHeaderDict:
        """All response headers (a case-insensitive mapping)."""
        return self.response.headers

    def getheader(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """One response header, or ``default``."""
        return self.response.headers.get(name, default)


def to_timeout(value: Any, name: str = "timeout") -> Tuple[Timeout, Optional[float]]:
    """A urllib3 ``Timeout`` and the longest wait for a free pooled connection.

    A number bounds each of connecting and every read; a (connect, read) pair sets them apart.
    """
    if isinstance(value, Timeout):
        parts = [t for t in (value.total, value.connect_timeout, value.read_timeout)]
        numbers = [t for t in parts if isinstance(t, (int, float))]
        return value, (sum(numbers) if numbers else None)
    if _is_positive_number(value):
        return Timeout(total=value), float(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(map(_is_positive_number, value)):
        connect, read = value
        return Timeout(connect=connect, read=read), float(connect + read)
    raise ApiValueError(
        f"{name} must be a positive number of seconds or a (connect, read) pair of them, not {value!r}"
    )


# The longest timeout the socket and lock layers accept; connect + read must fit in it too.
_MAX_TIMEOUT = threading.TIMEOUT_MAX / 2


def _is_positive_number(value: Any) -> bool:
    # inf or 1e20 would pass "> 0" and then make urllib3 fail with a raw OverflowError.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= _MAX_TIMEOUT


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
    """Sends requests through pooled, keep-alive connections; safe to share between threads.

    One pool per scheme+host+port is created on first use and reused by every later call,
    so a call costs no URL parsing and no pool lookup beyond a dict access.
    """

    #: Whether debug lines show bodies; off for OAuth, whose bodies are all secrets.
    log_bodies = True

    def __init__(self, configuration: Configuration) -> None:
        # Every transport setting is checked here, once: a bad one fails now, naming itself,
        # not on some later call (or never, as a pool that waits forever).
        self._configuration = configuration
        self.retries: Retry = build_retry(configuration.retries, configuration.retry_after_max)
        self.timeout: Timeout
        self.pool_timeout: Optional[float]
        self.timeout, self.pool_timeout = to_timeout(configuration.timeout)
        self.max_response_bytes: Optional[int] = _transport_settings.max_response_bytes(
            configuration.max_response_bytes
        )
        proxy_url, proxy_headers, self._proxy_secrets = _transport_settings.proxy(
            configuration.proxy, configuration.proxy_headers
        )
        self._pools: Dict[str, HTTPConnectionPool] = {}
        self._lock = threading.Lock()

        pool_kwargs: Dict[str, Any] = {
            "maxsize": _transport_settings.pool_maxsize(configuration.connection_pool_maxsize),
            "block": True,  # never open more connections than maxsize; callers wait instead
            "timeout": self.timeout,
            "retries": self.retries,
        }
        socket_options = _transport_settings.socket_options(configuration.socket_options)
        if socket_options is not None:
            pool_kwargs["socket_options"] = socket_options
        tls_kwargs: Dict[str, Any] = {
            "cert_reqs": "CERT_REQUIRED" if configuration.verify_ssl else "CERT_NONE",
            "ca_certs": configuration.ssl_ca_cert,
            "ca_cert_data": configuration.ca_cert_data,
            "cert_file": configuration.cert_file,
            "key_file": configuration.key_file,
        }
        if configuration.assert_hostname is not None:
            tls_kwargs["assert_hostname"] = configuration.assert_hostname
        if configuration.tls_server_name is not None:
            tls_kwargs["server_hostname"] = configuration.tls_server_name
        self._pool_kwargs = pool_kwargs
        self._tls_kwargs = tls_kwargs

        self._proxy_manager: Optional[urllib3.ProxyManager] = None
        if proxy_url:
            self._proxy_manager = urllib3.ProxyManager(
                proxy_url, proxy_headers=proxy_headers, **pool_kwargs, **tls_kwargs
            )
            self._proxy_manager.pool_classes_by_scheme = {
                "http": _HTTPConnectionPool,
                "https": self._https_pool_class(),
            }
        if not configuration.verify_ssl:
            warnings.warn(
                "TLS certificate verification is disabled (verify_ssl=False): anyone between "
                "this client and the server can read and change the traffic, credentials "
                "included.",
                InsecureRequestWarning,
                stacklevel=3,
            )

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
        if parsed.scheme == "http" and not is_loopback(parsed.host) and self._has_credentials():
            logger.warning(
                "Credentials are sent over plain http:// to %s, where anyone on the network "
                "can read them; use https://",
                parsed.host,
            )
        # The port is always given: left to http.client, a bracket-less IPv6 host such as
        # "::1" would be read as host ":" and port 1.
        port = parsed.port or port_by_scheme[parsed.scheme]
        if parsed.scheme == "http":
            return _HTTPConnectionPool(parsed.host, port, **self._pool_kwargs)
        return self._https_pool_class()(parsed.host, port, **self._pool_kwargs, **self._tls_kwargs)

    def _https_pool_class(self) -> Type[_HTTPSConnectionPool]:
        return _HTTPSConnectionPool if self._configuration.verify_ssl else _UnverifiedHTTPSConnectionPool

    def secrets(self, request_headers: Optional[Mapping[str, Any]]) -> List[str]:
        """What an exception or a debug line must not show, wherever it appears (a server
        may echo it back): the credentials the request was sent with, the configured ones
        (they may have changed since) and the proxy's."""
        config = self._configuration
        return secret_list(
            [
                *config.api_key.values(),
                config.access_token,
                *credentials_in(request_headers),
                *self._proxy_secrets,
            ]
        )

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
                raise self._too_large(result)

    def _too_large(self, result: RESTResponse) -> ApiException:
        exception_class = exception_class_for_status(result.status)
        secrets = self.secrets(result.request_headers)
        return exception_class(
            status=result.status,
            reason=scrub(
                f"{result.reason}, but the answer is larger than Configuration.max_response_bytes "
                f"({self.max_response_bytes} bytes); it was not read",
                secrets,
            ),
            headers=scrub_headers(result.response.headers, secrets),
        )

    def _has_credentials(self) -> bool:
        return bool(self._configuration.api_key or self._configuration.access_token)

    def close(self) -> None:
        """Close every pooled connection; calls waiting for one go on with a new one."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()
        if self._proxy_manager is not None:
            self._proxy_manager.clear()

    # -- requests ---------------------------------------------------------------------------

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
        # DEBUG: each request and answer in full, scrubbed; INFO: one line per call, no query.
        debug = logger.isEnabledFor(logging.DEBUG)
        info = debug or logger.isEnabledFor(logging.INFO)
        if info:
            started = time.perf_counter()
        if debug:
            secrets = self.secrets(headers)
            _log_request(method, url, headers, body, secrets, self.log_bodies)

        try:
            opener: Any
            if self._proxy_manager is not None:
                opener, target = self._proxy_manager.urlopen, url
            else:
                path_start = url.find("/", url.find("://") + 3)
                origin, target = (url, "/") if path_start < 0 else (url[:path_start], url[path_start:])
                opener = self._pool_for(origin).urlopen
            response = opener(
                method,
                target,
                body=body,
                headers=headers,
                retries=self.retries,
                redirect=False,
                assert_same_host=False,
                timeout=timeout,
                pool_timeout=pool_timeout,
                preload_content=False,  # read below, within max_response_bytes
            )
            result = RESTResponse(response, headers, self)
            if _preload_content:
                result.read()
        except _TRANSPORT_ERRORS as error:
            # MaxRetryError only wraps what went wrong on the last attempt (and repeats the
            # URL, query included): chain that failure itself.
            cause = error.reason if isinstance(error, MaxRetryError) and error.reason else error
            failure = transport_exception(error, method, url)
            if info:
                logger.info("%s", failure)
            raise failure from cause

        if info:
            elapsed_ms = (time.perf_counter() - started) * 1000
            if debug:
                _log_response(response, elapsed_ms, result.data if self.log_bodies else None, secrets)
            else:
                where = url.split("?", 1)[0]
                logger.info("%s %s -> %d in %.1f ms", method, where, response.status, elapsed_ms)
        return result


def transport_exception(error: BaseException, method: str, url: str) -> ApiConnectionError:
    """The SDK exception for a failure that left no HTTP answer."""
    where = f"{method} {url.split('?', 1)[0]}"
    if isinstance(error, MaxRetryError) and error.reason is not None:
        error = error.reason
    if isinstance(error, ProxyError) and error.original_error is not None:
        return ApiConnectionError(f"{where}: proxy failed: {_detail(error.original_error)}")
    if isinstance(error, ClosedPoolError):
        return ApiConnectionError(f"{where}: the ApiClient was closed while this call was under way")
    if isinstance(error, EmptyPoolError):
        return ApiTimeoutError(
            f"{where}: no pooled connection became free in time; "
            "raise Configuration.connection_pool_maxsize or the timeout"
        )
    if isinstance(error, NameResolutionError):
        return ApiConnectionError(f"{where}: could not resolve the host name ({_detail(error)})")
    if isinstance(error, NewConnectionError):
        return ApiConnectionError(f"{where}: could not connect ({_detail(error)})")
    if isinstance(error, (ConnectTimeoutError, ReadTimeoutError, TimeoutError, socket.timeout)):
        return ApiTimeoutError(f"{where}: timed out ({_detail(error)})")
    if isinstance(error, SSLError):
        return ApiConnectionError(f"{where}: TLS failed ({_detail(error)})")
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


# Debug lines are formatted here and scrubbed whole: credential headers are replaced by
# name, and a credential the server echoes back (in a body, another header, the reason)
# is replaced wherever it appears.


def _log_request(
    method: str,
    url: str,
    headers: Optional[Dict[str, str]],
    body: Union[bytes, str, None],
    secrets: List[str],
    show_body: bool,
) -> None:
    size = 0 if body is None else len(body)
    line = "request: {} {} headers={} body={} bytes{}".format(
        method, url, redact_headers(headers), size, f": {_preview(body)}" if body and show_body else ""
    )
    logger.debug("%s", scrub(line, secrets))


def _log_response(
    response: urllib3.BaseHTTPResponse, elapsed_ms: float, body: Optional[bytes], secrets: List[str]
) -> None:
    line = "response: {} {} in {:.1f} ms headers={}{}".format(
        response.status,
        response.reason,
        elapsed_ms,
        redact_headers(response.headers),
        f" body: {_preview(body)}" if body else "",
    )
    logger.debug("%s", scrub(line, secrets))


def _preview(body: Union[bytes, str]) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if len(text) > _BODY_LOG_PREVIEW:
        return text[:_BODY_LOG_PREVIEW] + f"... [{len(text) - _BODY_LOG_PREVIEW} more]"
    return text
