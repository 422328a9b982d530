"""Delivering an event body to a webhook URL as Kenar does, with retries, and recording it."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Tuple, Union
from urllib.parse import urlsplit

from kenar_api_client._printable import printable
from kenar_api_client._version import __version__

logger = logging.getLogger("kenar_api_client.sandbox")

USER_AGENT = f"kenar-sandbox/{__version__}"
#: The most of a receiver's answer body a delivery reads: only the status counts, and an
#: endless or trickling body must neither grow memory nor hold the delivery up.
MAX_ANSWER_BYTES = 64 * 1024
_READ_SIZE = 8192


@dataclass(frozen=True)
class DeliveryAttempt:
    """One try: the HTTP status the receiver answered, or why no answer came."""

    number: int
    status: Optional[int]
    error: Optional[str]
    duration: float

    @property
    def ok(self) -> bool:
        """Whether the receiver answered 2xx."""
        return self.status is not None and 200 <= self.status < 300

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "number": self.number,
            "status": self.status,
            "error": self.error,
            "duration": round(self.duration, 6),
        }


@dataclass(frozen=True)
class Delivery:
    """A webhook delivery and its outcome: ``"delivered"`` (a 2xx answer) or ``"failed"``.

    ``body`` is the JSON object that was posted (``{}`` if the posted bytes were none);
    ``raw`` the bytes posted when they were given as bytes (None for a JSON object);
    ``attempts`` lists every try in order.
    """

    event_type: str
    url: str
    body: Dict[str, Any]
    attempts: List[DeliveryAttempt]
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    raw: Optional[bytes] = field(default=None, repr=False)

    @property
    def delivered(self) -> bool:
        """Whether one of the attempts got a 2xx answer."""
        return bool(self.attempts) and self.attempts[-1].ok

    @property
    def outcome(self) -> str:
        """``"delivered"`` or ``"failed"``."""
        return "delivered" if self.delivered else "failed"

    @property
    def status(self) -> Optional[int]:
        """The last HTTP status received, or None if the receiver never answered."""
        return self.attempts[-1].status if self.attempts else None

    @property
    def error(self) -> Optional[str]:
        """Why the last attempt failed, or None if it succeeded."""
        if not self.attempts or self.attempts[-1].ok:
            return None
        last = self.attempts[-1]
        return last.error or f"the receiver answered {last.status}"

    @property
    def metadata(self) -> Dict[str, Any]:
        """The ``metadata`` the body carried."""
        value = self.body.get("metadata")
        return value if isinstance(value, dict) else {}

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict (the identification key is not part of it)."""
        return {
            "event_type": self.event_type,
            "url": self.url,
            "outcome": self.outcome,
            "status": self.status,
            "error": self.error,
            "attempts": [a.to_dict() for a in self.attempts],
            "body": self.body,
            "raw_body": None if self.raw is None else self.raw.decode("utf-8", "replace"),
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to deliver: ``attempts`` tries, ``backoff`` doubling."""

    attempts: int = 3
    backoff: float = 0.05
    timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("delivery_attempts must be at least 1")
        if self.backoff < 0 or self.timeout <= 0:
            raise ValueError("delivery_backoff must be >= 0 and delivery_timeout > 0")

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (the first is 1)."""
        return 0.0 if attempt <= 1 else self.backoff * 2 ** (attempt - 2)


def encode_body(body: Dict[str, Any]) -> bytes:
    """The body as compact UTF-8 JSON (non-ASCII text as is, as Kenar's servers send it)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def deliver(
    url: str,
    identification_key: str,
    body: Union[Dict[str, Any], bytes],
    policy: RetryPolicy,
    at: datetime,
) -> Delivery:
    """POST ``body`` to ``url`` until a 2xx answer or ``policy.attempts`` tries; never raises.

    ``body`` is a JSON object (sent as compact UTF-8 JSON) or the bytes to send as they are.
    ``at`` is when it was triggered, on the sandbox's clock.
    """
    if isinstance(body, (bytes, bytearray)):
        raw: Optional[bytes] = bytes(body)
        payload, document = bytes(body), _json_object_of(bytes(body))
    else:
        raw, payload, document = None, encode_body(body), body
    event_type = str(document.get("type"))
    attempts: List[DeliveryAttempt] = []
    for number in range(1, policy.attempts + 1):
        time.sleep(policy.delay_before(number))
        started = time.monotonic()
        status, error = post(url, kenar_headers(identification_key), payload, policy.timeout)
        attempt = DeliveryAttempt(number, status, error, time.monotonic() - started)
        attempts.append(attempt)
        _log_attempt(event_type, url, attempt, policy.attempts)
        if attempt.ok:
            break
    return Delivery(event_type=event_type, url=url, body=document, attempts=attempts, at=at, raw=raw)


def _json_object_of(payload: bytes) -> Dict[str, Any]:
    """The JSON object ``payload`` holds, or ``{}`` (for a malformed body sent on purpose)."""
    try:
        document = json.loads(payload.decode("utf-8"))
    except (ValueError, RecursionError):
        return {}
    return document if isinstance(document, dict) else {}


def kenar_headers(identification_key: str) -> Dict[str, str]:
    """The headers of a delivery, as Kenar sends them."""
    return {
        "Content-Type": "application/json",
        "Authorization": identification_key,
        "User-Agent": USER_AGENT,
    }


def post(
    url: str, headers: Dict[str, str], payload: bytes, timeout: float
) -> Tuple[Optional[int], Optional[str]]:
    """One POST; the answer's status, or None and a short reason. Never raises.

    Of the answer's body at most ``MAX_ANSWER_BYTES`` are read, within ``timeout`` seconds
    of the start; then the connection is closed.
    """
    deadline = time.monotonic() + timeout
    parts = urlsplit(url)
    host = parts.hostname or ""
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            host, parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    try:
        connection.request("POST", path, body=payload, headers=headers)
        response = connection.getresponse()
    except (OSError, http.client.HTTPException, ValueError) as exc:  # ValueError: a URL http.client refuses
        connection.close()
        return None, _describe(exc)
    try:
        _read_some(response, deadline)
    except (OSError, http.client.HTTPException, ValueError):
        pass  # the status arrived: what the body does after it changes nothing
    finally:
        connection.close()
    return response.status, None


def _read_some(response: http.client.HTTPResponse, deadline: float) -> None:
    """Read the answer's body, up to ``MAX_ANSWER_BYTES`` and until ``deadline``."""
    read = 0
    while read < MAX_ANSWER_BYTES and time.monotonic() < deadline:
        chunk = response.read1(min(_READ_SIZE, MAX_ANSWER_BYTES - read))
        if not chunk:
            return
        read += len(chunk)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, socket.timeout)):  # the same class from Python 3.10
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _log_attempt(event_type: str, url: str, attempt: DeliveryAttempt, of: int) -> None:
    outcome = f"status {attempt.status}" if attempt.status is not None else attempt.error
    level = logging.INFO if attempt.ok else logging.WARNING
    logger.log(
        level,
        "delivery of %s to %s, attempt %d/%d: %s",
        printable(event_type),
        printable(url),
        attempt.number,
        of,
        printable(str(outcome)),
    )
