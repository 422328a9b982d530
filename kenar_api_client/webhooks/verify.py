"""Checking a delivery's Authorization header and size, then decoding its body into an event."""

from __future__ import annotations

import hmac
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from kenar_api_client.webhooks._errors import (
    WebhookPayloadError,
    WebhookPayloadTooLarge,
    WebhookVerificationError,
    too_large,
)
from kenar_api_client.webhooks.decoding import event_from_body
from kenar_api_client.webhooks.events import WebhookEvent

__all__ = ["DEFAULT_MAX_BODY_BYTES", "Body", "Headers", "WebhookVerifier", "parse_event"]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024

Body = Union[bytes, bytearray, memoryview, str]
_HeaderText = Union[str, bytes]
# A mapping of header names to values (dict, Django/Starlette/requests headers), anything
# else with items() (Werkzeug headers, multidicts, http.client.HTTPMessage), or a list of
# (name, value) pairs (an ASGI scope's headers).
Headers = Union[Mapping[Any, Any], Iterable[Tuple[_HeaderText, _HeaderText]]]

_AUTHORIZATION = "authorization"


def _header_name(name: object) -> str:
    if isinstance(name, (bytes, bytearray)):
        return bytes(name).decode("latin-1")
    return str(name)


def _header_pairs(headers: Headers) -> Iterable[Tuple[Any, Any]]:
    """(name, value) pairs of ``headers``, keeping repeated headers of multidicts."""
    items = getattr(headers, "items", None)
    if callable(items):
        pairs: Iterable[Tuple[Any, Any]] = items()
        return pairs
    return headers


def _authorization_values(headers: Headers) -> List[Any]:
    """Every value sent as ``Authorization``, whatever the case of the header name."""
    return [value for name, value in _header_pairs(headers) if _header_name(name).lower() == _AUTHORIZATION]


def _header_bytes(value: object) -> Optional[bytes]:
    """A received header value as bytes; ``None`` if it cannot be one (then it cannot match)."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates
            return None
    return None


class WebhookVerifier:
    """Verifies and parses webhook deliveries for one identification key.

    Build it once at start-up and call :meth:`parse_event` for every request. The key is
    compared in constant time and never appears in a message, log line or ``repr``.
    """

    __slots__ = ("_key", "_max_body_bytes")

    def __init__(self, identification_key: str, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        """Raise ``ValueError`` for an empty key, one HTTP cannot carry, or a bad limit."""
        if not isinstance(identification_key, str):
            raise TypeError("the identification key must be a str")
        if not identification_key:
            raise ValueError("the identification key must not be empty")
        if identification_key != identification_key.strip():
            # Servers strip such whitespace from header values, so no delivery could match.
            raise ValueError("the identification key must not start or end with whitespace")
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int):
            raise TypeError("max_body_bytes must be an int")
        if max_body_bytes < 1:
            raise ValueError("max_body_bytes must be at least 1")
        self._key = identification_key.encode("utf-8")
        self._max_body_bytes = max_body_bytes

    @property
    def max_body_bytes(self) -> int:
        """The largest body, in bytes, that :meth:`parse_event` accepts."""
        return self._max_body_bytes

    def __repr__(self) -> str:
        return f"{type(self).__name__}(identification_key=***, max_body_bytes={self.max_body_bytes})"

    def verify(self, headers: Headers) -> None:
        """Raise :class:`WebhookVerificationError` unless ``Authorization`` is exactly the key.

        Header names are matched case-insensitively; a value given as ``bytes`` is compared
        as is, a ``str`` as its UTF-8 encoding. Several ``Authorization`` headers are
        rejected, since it would be unclear which one to trust.
        """
        self.verify_authorization(_authorization_values(headers))

    def verify_authorization(self, values: Sequence[object]) -> None:
        """:meth:`verify` for the values of every ``Authorization`` header received, in a list.

        For a server that has found the header already: a WSGI environ's
        ``HTTP_AUTHORIZATION`` (as its latin-1 bytes), an ASGI scope's values.
        """
        if not values:
            raise WebhookVerificationError("webhook Authorization header is missing")
        if len(values) > 1:
            raise WebhookVerificationError("webhook has more than one Authorization header")
        received = _header_bytes(values[0])
        if received is None or not hmac.compare_digest(received, self._key):
            raise WebhookVerificationError(
                "webhook Authorization header does not match the identification key"
            )

    def parse_event(self, body: Body, headers: Headers) -> WebhookEvent:
        """Verify ``headers``, then check the size of ``body`` and decode it into an event.

        Raises :class:`WebhookVerificationError` (before looking at the body at all),
        :class:`WebhookPayloadTooLarge` or :class:`WebhookPayloadError`; all three are
        :class:`WebhookError`.
        """
        self.verify(headers)
        return event_from_body(self._limited_bytes(body))

    def _limited_bytes(self, body: Body) -> bytes:
        if isinstance(body, str):
            # Every character takes at least one byte: skip encoding a body already too long.
            if len(body) > self.max_body_bytes:
                raise self._too_large()
            try:
                raw = body.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise WebhookPayloadError("webhook body is not valid text") from exc
        elif isinstance(body, (bytes, bytearray, memoryview)):
            if memoryview(body).nbytes > self.max_body_bytes:
                raise self._too_large()
            raw = bytes(body)
        else:
            raise TypeError("the webhook body must be bytes or str")
        if len(raw) > self.max_body_bytes:
            raise self._too_large()
        return raw

    def _too_large(self) -> WebhookPayloadTooLarge:
        return too_large(self.max_body_bytes)


def parse_event(
    body: Body,
    headers: Headers,
    identification_key: str,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> WebhookEvent:
    """Verify one delivery and return its typed event; see :meth:`WebhookVerifier.parse_event`."""
    return WebhookVerifier(identification_key, max_body_bytes).parse_event(body, headers)
