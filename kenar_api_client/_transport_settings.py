"""Checking a Configuration's transport settings once, when a client is built from it.

Each check raises ``ApiValueError`` naming the setting. None quotes a value that may hold a
secret (a proxy URL with a password, a proxy header). Both transports (urllib3 and httpx)
are built from the one :class:`TransportSettings` this gives.
"""

from __future__ import annotations

import logging
import ssl
import threading
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import unquote

from urllib3.exceptions import LocationParseError
from urllib3.util import Retry, Timeout, make_headers, parse_url

from kenar_api_client._hosts import is_loopback
from kenar_api_client._http_values import checked_header, merge_headers
from kenar_api_client._redact import credentials_in
from kenar_api_client.exceptions import ApiTypeError, ApiValueError
from kenar_api_client.retry import build_retry

if TYPE_CHECKING:
    from kenar_api_client.configuration import Configuration

#: The transport's logger (where the plain-http warning has always been logged).
_logger = logging.getLogger("kenar_api_client.rest")


def warn_if_credentials_in_clear(scheme: str, host: str, configuration: Configuration) -> None:
    """Warn once per new connection pool when credentials would go over plain http off this machine."""
    if scheme == "http" and not is_loopback(host) and (configuration.api_key or configuration.access_token):
        _logger.warning(
            "Credentials are sent over plain http:// to %s, where anyone on the network "
            "can read them; use https://",
            host,
        )


class TransportSettings:
    """A Configuration's transport settings, each checked: what a transport is built from.

    Taken when the client is built: changing the Configuration afterwards does not change
    a client already made from it.
    """

    def __init__(self, configuration: Configuration) -> None:
        self.retry: Retry = build_retry(configuration.retries, configuration.retry_after_max)
        self.timeout: Timeout
        self.pool_timeout: Optional[float]
        self.timeout, self.pool_timeout = to_timeout(configuration.timeout)
        self.max_response_bytes: Optional[int] = max_response_bytes(configuration.max_response_bytes)
        self.proxy_url: Optional[str]
        self.proxy_headers: Optional[Dict[str, str]]
        self.proxy_secrets: List[str]
        self.proxy_url, self.proxy_headers, self.proxy_secrets = proxy(
            configuration.proxy, configuration.proxy_headers
        )
        self.pool_maxsize: int = pool_maxsize(configuration.connection_pool_maxsize)
        self.socket_options: Optional[List[Tuple[int, int, Any]]] = socket_options(
            configuration.socket_options
        )
        self.verify_ssl: bool = bool(configuration.verify_ssl)
        self.ssl_ca_cert: Optional[str] = configuration.ssl_ca_cert
        self.ca_cert_data: Any = configuration.ca_cert_data
        self.cert_file: Optional[str] = configuration.cert_file
        self.key_file: Optional[str] = configuration.key_file
        self.assert_hostname: Any = configuration.assert_hostname
        self.tls_server_name: Optional[str] = configuration.tls_server_name

    def __repr__(self) -> str:
        return f"TransportSettings(timeout={self.timeout!r}, pool_maxsize={self.pool_maxsize})"


def ssl_context(settings: TransportSettings) -> ssl.SSLContext:
    """The Configuration's TLS settings as one context (for the async transports), as urllib3 applies them."""
    try:
        context = ssl.create_default_context(cafile=settings.ssl_ca_cert, cadata=settings.ca_cert_data)
    except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
        raise ApiValueError(f"ssl_ca_cert / ca_cert_data cannot be loaded: {error}") from None
    if settings.cert_file:
        try:
            context.load_cert_chain(settings.cert_file, settings.key_file)
        except (OSError, ValueError) as error:
            raise ApiValueError(f"cert_file / key_file cannot be loaded: {error}") from None
    if not settings.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif settings.assert_hostname is False:
        context.check_hostname = False
    return context


def server_name(settings: TransportSettings) -> Optional[str]:
    """The TLS server name to send and check instead of the URL's host, if one is configured."""
    if settings.tls_server_name:
        return settings.tls_server_name
    return settings.assert_hostname if isinstance(settings.assert_hostname, str) else None


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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def pool_maxsize(value: Any) -> int:
    """``connection_pool_maxsize``: a positive int (0 would make every call wait its timeout)."""
    if not _is_int(value) or value < 1:
        raise ApiValueError(f"connection_pool_maxsize must be an int of at least 1, not {value!r}")
    return int(value)


def max_response_bytes(value: Any) -> Optional[int]:
    """``max_response_bytes``: a positive int, or None for no limit."""
    if value is not None and (not _is_int(value) or value < 1):
        raise ApiValueError(f"max_response_bytes must be a positive int or None, not {value!r}")
    return None if value is None else int(value)


def socket_options(value: Any) -> Optional[List[Tuple[int, int, Any]]]:
    """``socket_options``: None, or a list of ``(level, option, value)`` for ``setsockopt``."""
    if value is None:
        return None
    options = list(value) if isinstance(value, (list, tuple)) else None
    if options is None or not all(
        isinstance(option, tuple)
        and len(option) == 3
        and _is_int(option[0])
        and _is_int(option[1])
        and isinstance(option[2], (int, bytes))
        for option in options
    ):
        raise ApiValueError(
            "socket_options must be None or a list of (level, option, value) tuples of ints "
            f"(value may be bytes), such as [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]; got {value!r}"
        )
    return options


def proxy(url: Any, headers: Any) -> Tuple[Optional[str], Optional[Dict[str, str]], List[str]]:
    """``proxy`` and ``proxy_headers``: the proxy URL without credentials, the headers to
    send it, and the credentials among them (to keep out of logs and exceptions).

    ``user:password@`` in the URL becomes a ``Proxy-Authorization: Basic`` header; an explicit
    ``Proxy-Authorization`` in ``proxy_headers`` wins over it.
    """
    if headers is not None and not isinstance(headers, Mapping):
        raise ApiValueError(
            f"proxy_headers must be a dict of header names to values, not {type(headers).__name__}"
        )
    try:
        checked = dict(checked_header(name, value) for name, value in (headers or {}).items())
    except (ApiTypeError, ApiValueError) as error:  # they name the header, never its value
        raise type(error)(f"proxy_headers: {error}") from None
    if not url:
        return None, None, []
    if not isinstance(url, str):
        raise ApiValueError(
            f"proxy must be a URL string such as 'http://proxy:3128', not {type(url).__name__}"
        )
    try:
        parsed = parse_url(url)
    except LocationParseError:  # its message quotes the URL, password included: not chained
        parsed = None
    if parsed is None:
        raise ApiValueError("proxy is not a valid URL such as 'http://user:password@proxy:3128'")
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ApiValueError(
            "proxy must be an http:// or https:// URL with a host, such as 'http://proxy:3128'"
        )
    secrets: List[str] = []
    if parsed.auth:
        user_password = unquote(parsed.auth)
        secrets += [user_password, user_password.partition(":")[2]]
        checked = merge_headers(make_headers(proxy_basic_auth=user_password), checked)
    secrets += credentials_in(checked)
    return parsed._replace(auth=None).url, checked or None, secrets
