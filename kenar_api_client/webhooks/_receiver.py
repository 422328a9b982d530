"""The receivers' decision flow, written once and without I/O: what to answer, and when to call the handler.

``make_wsgi_app`` and ``make_asgi_app`` only move bytes: they hand the request's method and
headers to :meth:`ReceiverCore.head`, read the body it allows, hand that to
:meth:`ReceiverCore.received`, call the handler of the :class:`Dispatch` it returns and
report how that went (:meth:`ReceiverCore.handled` / :meth:`ReceiverCore.failed`). Every
step returns the :class:`Answer` to send, and each request is logged exactly once, here.
"""

from __future__ import annotations

import logging
import math
from http import HTTPStatus
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from kenar_api_client._content_length import parse_content_length
from kenar_api_client._printable import printable
from kenar_api_client.webhooks._errors import (
    DeliveryLogError,
    WebhookError,
    WebhookPayloadError,
    WebhookVerificationError,
    too_large,
)
from kenar_api_client.webhooks.decoding import event_from_body
from kenar_api_client.webhooks.deliveries import Claim, DeliveryLog
from kenar_api_client.webhooks.events import WebhookEvent
from kenar_api_client.webhooks.verify import WebhookVerifier

__all__ = [
    "LOGGER_NAME",
    "NO_LENGTH",
    "Answer",
    "Dispatch",
    "ReceiverCore",
    "Stopped",
]

LOGGER_NAME = "kenar_api_client.webhooks"

#: The length :meth:`ReceiverCore.head` gives when the request declared none.
NO_LENGTH = -1


class Stopped:
    """Why reading a body stopped before its end (the values :meth:`ReceiverCore.received` takes)."""

    TIMED_OUT = "timed out"  # the server's read timeout expired
    DISCONNECTED = "disconnected"  # the client went away (an ASGI ``http.disconnect``)


class Answer:
    """A response: status, headers (both as text and as ASGI bytes) and body."""

    __slots__ = ("asgi_headers", "body", "drain", "headers", "status", "status_line")

    def __init__(self, status: int, body: bytes, extra: Sequence[Tuple[str, str]] = (), drain: bool = False):
        self.status = status
        self.status_line = f"{status} {HTTPStatus(status).phrase}"
        self.body = body
        self.headers: List[Tuple[str, str]] = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            *extra,
        ]
        self.asgi_headers: List[Tuple[bytes, bytes]] = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in self.headers
        ]
        #: Whether to read and drop the request's body (when small enough) before answering,
        #: so the sender gets the answer rather than a reset connection.
        self.drain = drain


def _answer(status: int, document: str, extra: Sequence[Tuple[str, str]] = (), drain: bool = False) -> Answer:
    return Answer(status, document.encode("utf-8"), extra, drain)


OK = _answer(200, '{"status": "ok"}')
BAD_PAYLOAD = _answer(400, '{"error": "bad payload"}')
UNAUTHORIZED = _answer(401, '{"error": "unauthorized"}', drain=True)
METHOD_NOT_ALLOWED = _answer(405, '{"error": "method not allowed"}', [("Allow", "POST")], drain=True)
REQUEST_TIMEOUT = _answer(408, '{"error": "request timeout"}')
TOO_LARGE = _answer(413, '{"error": "payload too large"}')
INTERNAL_ERROR = _answer(500, '{"error": "internal error"}')
_BUSY_BODY = '{"error": "this delivery is being handled"}'
_UNAVAILABLE_BODY = '{"error": "service unavailable"}'
_BY_STATUS = {answer.status: answer for answer in (BAD_PAYLOAD, UNAUTHORIZED, TOO_LARGE)}


class Dispatch:
    """A verified delivery whose handler is to run now: its event and its delivery log claim."""

    __slots__ = ("claim", "event", "remote")

    def __init__(self, event: WebhookEvent, claim: Optional[Claim], remote: object) -> None:
        self.event = event
        self.claim = claim
        self.remote = remote


class ReceiverCore:
    """The decisions of a receiver for one identification key, shared by its requests and threads."""

    def __init__(
        self,
        identification_key: str,
        max_body_bytes: int,
        deliveries: Optional[DeliveryLog],
        logger: Optional[logging.Logger],
    ) -> None:
        self.verifier = WebhookVerifier(identification_key, max_body_bytes)
        self.max_body_bytes = self.verifier.max_body_bytes
        self.deliveries = deliveries
        self.log = logger if logger is not None else logging.getLogger(LOGGER_NAME)

    # -- the request's head ---------------------------------------------------------------

    def head(
        self,
        method: str,
        authorization: Sequence[Union[str, bytes]],
        content_length: Sequence[Union[str, bytes]],
        remote: object,
    ) -> Tuple[Optional[Answer], int]:
        """Method, key, then declared length: an answer (or ``None``: read on) and the body's length.

        The length is the declared one, or :data:`NO_LENGTH`. With an answer whose ``drain``
        is set it is what to read and drop first (``NO_LENGTH``: up to ``max_body_bytes``
        if the stream ends by itself; 0 for a body too large or of unclear length, which is
        left unread); with an answer that has no ``drain``, read nothing.
        """
        if method != "POST":
            self._log(logging.WARNING, "refused", 405, None, remote, f"method {method!r}")
            return METHOD_NOT_ALLOWED, self._drainable(content_length)
        try:
            self.verifier.verify_authorization(authorization)
        except WebhookVerificationError as exc:
            self._log(logging.WARNING, "rejected", 401, None, remote, str(exc))
            return UNAUTHORIZED, self._drainable(content_length)
        try:
            return None, self._declared_length(content_length)
        except WebhookError as exc:
            self._log(logging.WARNING, "rejected", exc.http_status, None, remote, str(exc))
            return _BY_STATUS[exc.http_status], NO_LENGTH

    def _declared_length(self, values: Sequence[Union[str, bytes]]) -> int:
        if not values:
            return NO_LENGTH
        limit = self.max_body_bytes
        raw = values[0]
        text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
        length = parse_content_length(text, limit) if len(values) == 1 else None
        if length is None:
            raise WebhookPayloadError("webhook request has an invalid Content-Length")
        if length > limit:
            raise too_large(limit)
        return length

    def _drainable(self, values: Sequence[Union[str, bytes]]) -> int:
        """How much of a refused request's body to read and drop: none if too large or unclear."""
        try:
            return self._declared_length(values)
        except WebhookError:
            return 0

    # -- the body ---------------------------------------------------------------------------

    def received(
        self, body: bytes, length: int, remote: object, stopped: Optional[str] = None
    ) -> Union[Answer, Dispatch]:
        """The body as read (and why reading stopped early, if it did): an answer, or a handler to run.

        ``length`` is what :meth:`head` returned. A body that did not arrive whole, because
        the read timed out, the client went away or the stream ended early, is never
        decoded: it is 408, whatever the bytes that did arrive look like.
        """
        size = len(body)
        if stopped is not None or size < length:
            if stopped == Stopped.TIMED_OUT:
                reason = "the body did not arrive in time"
            elif length == NO_LENGTH:
                reason = f"the client went away after {size} body bytes"
            else:
                reason = f"the connection ended after {size} of {length} body bytes"
            self._log(logging.WARNING, "rejected", 408, None, remote, reason)
            return REQUEST_TIMEOUT
        try:
            if size > self.max_body_bytes:
                raise too_large(self.max_body_bytes)
            if length != NO_LENGTH and size != length:
                raise WebhookPayloadError(
                    "webhook body does not have the length its Content-Length announced"
                )
            event = event_from_body(body)
        except WebhookError as exc:
            self._log(logging.WARNING, "rejected", exc.http_status, None, remote, str(exc))
            return _BY_STATUS[exc.http_status]
        deliveries = self.deliveries
        if deliveries is None:
            return Dispatch(event, None, remote)
        return self._claim(deliveries, event, remote)

    def _claim(self, deliveries: DeliveryLog, event: WebhookEvent, remote: object) -> Union[Answer, Dispatch]:
        key = event.delivery_key
        try:
            claim = deliveries.claim(key)
        except DeliveryLogError as exc:
            self._log_exception("failed", 503, event.type, remote, f"the delivery log failed: {exc}", key)
            return _answer(503, _UNAVAILABLE_BODY, [("Retry-After", "1")])
        if claim.state == "handled":
            self._log(logging.INFO, "duplicate", 200, event.type, remote, "handled before", key)
            return OK
        if claim.state == "busy":
            retry_after = str(max(1, math.ceil(claim.retry_after)))
            self._log(
                logging.WARNING, "in progress", 503, event.type, remote, "another copy is being handled", key
            )
            return _answer(503, _BUSY_BODY, [("Retry-After", retry_after)])
        return Dispatch(event, claim, remote)

    def read_failed(self, remote: object) -> Answer:
        """Reading the body failed unexpectedly; call it inside the ``except`` block."""
        self._log_exception("failed", 500, None, remote, "reading the request")
        return INTERNAL_ERROR

    # -- the handler's outcome ------------------------------------------------------------

    def handled(self, dispatch: Dispatch) -> Answer:
        """The handler returned: record the delivery as handled and answer 200."""
        event, claim = dispatch.event, dispatch.claim
        if claim is not None and self.deliveries is not None:
            try:
                self.deliveries.mark_handled(claim)
            except DeliveryLogError as exc:
                # The handler ran: 200, or the sender would deliver again for certain.
                reason = f"handled, but the delivery log could not record it: {exc}"
                self._log_exception("handled", 200, event.type, dispatch.remote, reason, claim.key)
                return OK
        self._log(logging.INFO, "handled", 200, event.type, dispatch.remote, None, _key(claim))
        return OK

    def failed(self, dispatch: Dispatch) -> Answer:
        """The handler raised: free the delivery for the next copy, answer 500; call it inside ``except``."""
        event, claim = dispatch.event, dispatch.claim
        self._log_exception("failed", 500, event.type, dispatch.remote, "the handler raised", _key(claim))
        if claim is not None and self.deliveries is not None:
            try:
                self.deliveries.release(claim)
            except DeliveryLogError as exc:
                reason = f"the delivery log could not release it (held until its lease ends): {exc}"
                self._log(logging.ERROR, "failed", 500, event.type, dispatch.remote, reason, claim.key)
        return INTERNAL_ERROR

    # -- the log line -----------------------------------------------------------------------

    def _log(
        self,
        level: int,
        outcome: str,
        status: int,
        event_type: Optional[str],
        remote: object,
        reason: Optional[str],
        key: Optional[str] = None,
    ) -> None:
        """One line per request; ``reason`` is one of our own secret-free messages."""
        if self.log.isEnabledFor(level):
            message, args = _line(outcome, status, event_type, remote, reason, key)
            self.log.log(level, message, *args, extra=_extra(outcome, status, event_type, key))

    def _log_exception(
        self,
        outcome: str,
        status: int,
        event_type: Optional[str],
        remote: object,
        reason: str,
        key: Optional[str] = None,
    ) -> None:
        """The line of :meth:`_log` at ERROR, with the traceback of the exception being handled."""
        message, args = _line(outcome, status, event_type, remote, reason, key)
        self.log.exception(message, *args, extra=_extra(outcome, status, event_type, key))


def _key(claim: Optional[Claim]) -> Optional[str]:
    return None if claim is None else claim.key


def _line(
    outcome: str,
    status: int,
    event_type: Optional[str],
    remote: object,
    reason: Optional[str],
    key: Optional[str],
) -> Tuple[str, Tuple[Any, ...]]:
    """The log message and its arguments: everything that came from the request is escaped."""
    return (
        "webhook delivery %s: status=%d event_type=%s remote=%s%s%s",
        (
            outcome,
            status,
            "-" if event_type is None else printable(repr(event_type)),
            "-" if remote is None or remote == "" else printable(str(remote)),
            "" if key is None else f" delivery_key={printable(key)}",
            "" if reason is None else f" reason={printable(reason)}",
        ),
    )


def _extra(outcome: str, status: int, event_type: Optional[str], key: Optional[str]) -> Dict[str, Any]:
    return {
        "webhook_outcome": outcome,
        "webhook_status": status,
        "webhook_event_type": event_type,
        "webhook_delivery_key": key,
    }
