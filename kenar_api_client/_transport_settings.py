"""Checking a Configuration's transport settings once, when an ApiClient is built from it.

Each check raises ``ApiValueError`` naming the setting. None quotes a value that may hold a
secret (a proxy URL with a password, a proxy header).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import unquote

from urllib3.exceptions import LocationParseError
from urllib3.util import make_headers, parse_url

from kenar_api_client._http_values import checked_header, merge_headers
from kenar_api_client._redact import credentials_in
from kenar_api_client.exceptions import ApiTypeError, ApiValueError


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
