"""One HTTP POST over ``http.client``, its answer read up to a bound: an endless answer cannot grow memory."""

from __future__ import annotations

import http.client
import socket
import ssl
from typing import Dict, NamedTuple, Optional
from urllib.parse import urlsplit

#: The most of an answer's body that is read; the rest is left unread and the connection closed.
MAX_ANSWER_BYTES = 64 * 1024


class PostResult(NamedTuple):
    """The answer's status and (bounded) body, or ``None`` and why no answer came."""

    status: Optional[int]
    body: bytes
    error: Optional[str]
    truncated: bool = False


def post(
    url: str,
    headers: Dict[str, str],
    payload: bytes,
    timeout: float,
    max_answer_bytes: int = MAX_ANSWER_BYTES,
) -> PostResult:
    """POST ``payload`` to ``url``; never raises, never reads more than ``max_answer_bytes`` of the answer."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection
    try:
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(
                host, parts.port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            connection = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    except ValueError as exc:  # a port http.client refuses
        return PostResult(None, b"", describe_error(exc))
    try:
        connection.request("POST", path, body=payload, headers=headers)
        response = connection.getresponse()
        body = response.read(max_answer_bytes + 1)
        truncated = len(body) > max_answer_bytes
        return PostResult(response.status, body[:max_answer_bytes], None, truncated)
    except (OSError, http.client.HTTPException, ValueError) as exc:  # ValueError: a URL http.client refuses
        return PostResult(None, b"", describe_error(exc))
    finally:
        connection.close()


def describe_error(exc: BaseException) -> str:
    """A short reason why a request got no answer."""
    if isinstance(exc, (TimeoutError, socket.timeout)):  # the same class from Python 3.10
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"
