"""A WSGI application that verifies deliveries and hands their typed events to a handler."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from kenar_api_client._content_length import parse_content_length
from kenar_api_client._printable import printable
from kenar_api_client.webhooks._errors import (
    WebhookError,
    WebhookPayloadError,
    WebhookPayloadTooLarge,
    WebhookVerificationError,
)
from kenar_api_client.webhooks.events import WebhookEvent
from kenar_api_client.webhooks.verify import DEFAULT_MAX_BODY_BYTES, WebhookVerifier

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["LOGGER_NAME", "WebhookHandler", "make_wsgi_app"]

LOGGER_NAME = "kenar_api_client.webhooks"

WebhookHandler = Callable[[WebhookEvent], object]

_CHUNK_BYTES = 64 * 1024
_RESPONSE_BODIES: Dict[int, Dict[str, str]] = {
    200: {"status": "ok"},
    400: {"error": "bad payload"},
    401: {"error": "unauthorized"},
    405: {"error": "method not allowed"},
    408: {"error": "request timeout"},
    413: {"error": "payload too large"},
    500: {"error": "internal error"},
}


def make_wsgi_app(
    identification_key: str,
    handler: WebhookHandler,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    logger: Optional[logging.Logger] = None,
) -> WSGIApplication:
    """A WSGI app receiving Kenar webhook deliveries at any path.

    For a POST it checks ``Authorization`` first (401, the body is not read), then the
    declared ``Content-Length`` (413, not read either), reads at most ``max_body_bytes``,
    decodes the event (400 if it cannot; 408 if the server's read timeout cut the body short)
    and calls ``handler(event)``: 200 once it returned, 500 without details if it raised.
    Other methods get 405 with ``Allow: POST``.

    Every request is logged once on ``logger`` (default: the ``kenar_api_client.webhooks``
    logger) with its outcome, status and event type; never with the key or the received
    ``Authorization`` value. A handler's exception is logged with its traceback.
    """
    verifier = WebhookVerifier(identification_key, max_body_bytes)
    log = logger if logger is not None else logging.getLogger(LOGGER_NAME)

    def kenar_webhook_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        status, extra_headers = _serve(environ, verifier, handler, log)
        return _respond(start_response, status, extra_headers)

    return kenar_webhook_app


def _serve(
    environ: WSGIEnvironment,
    verifier: WebhookVerifier,
    handler: WebhookHandler,
    log: logging.Logger,
) -> Tuple[int, List[Tuple[str, str]]]:
    """Handle one request; return its status and any extra response headers."""
    remote = str(environ.get("REMOTE_ADDR") or "-")
    method = str(environ.get("REQUEST_METHOD") or "")
    if method != "POST":
        _discard_body(environ, verifier.max_body_bytes)
        _log(log, logging.WARNING, "refused", 405, None, remote, f"method {method!r}")
        return 405, [("Allow", "POST")]

    headers = _authorization_header(environ)
    try:
        verifier.verify(headers)
    except WebhookVerificationError as exc:
        # Read (bounded) what the sender already sent, so it gets the 401 and not a reset.
        _discard_body(environ, verifier.max_body_bytes)
        _log(log, logging.WARNING, "rejected", exc.http_status, None, remote, str(exc))
        return exc.http_status, []
    return _deliver(environ, headers, verifier, handler, log, remote), []


def _deliver(
    environ: WSGIEnvironment,
    headers: List[Tuple[str, Union[str, bytes]]],
    verifier: WebhookVerifier,
    handler: WebhookHandler,
    log: logging.Logger,
    remote: str,
) -> int:
    """Read and parse a delivery whose header is verified, run the handler; the status."""
    try:
        event = verifier.parse_event(_read_body(environ, verifier.max_body_bytes), headers)
    except WebhookError as exc:
        _log(log, logging.WARNING, "rejected", exc.http_status, None, remote, str(exc))
        return exc.http_status
    except socket.timeout:  # TimeoutError from Python 3.10: the server's read timeout
        _log(log, logging.WARNING, "rejected", 408, None, remote, "the body did not arrive in time")
        return 408
    except Exception:
        log.exception(
            "webhook delivery failed: status=500 event_type=- remote=%s (reading the request)",
            printable(remote),
            extra=_log_extra("failed", 500, None),
        )
        return 500

    try:
        handler(event)
    except Exception:
        log.exception(
            "webhook delivery failed: status=500 event_type=%r remote=%s (the handler raised)",
            event.type,
            printable(remote),
            extra=_log_extra("failed", 500, event.type),
        )
        return 500
    _log(log, logging.INFO, "handled", 200, event.type, remote, None)
    return 200


def _authorization_header(environ: WSGIEnvironment) -> List[Tuple[str, Union[str, bytes]]]:
    """The ``Authorization`` header as (name, value) pairs, in its original bytes if possible."""
    value = environ.get("HTTP_AUTHORIZATION")
    if value is None:
        return []
    if isinstance(value, str):
        # PEP 3333 passes header bytes as latin-1 text; compare the bytes that were sent.
        with contextlib.suppress(UnicodeEncodeError):
            return [("Authorization", value.encode("latin-1"))]
    return [("Authorization", value)]


def _declared_length(environ: WSGIEnvironment, limit: int) -> Optional[int]:
    """``CONTENT_LENGTH`` as an int, ``None`` if absent; raise if it is invalid or over ``limit``."""
    raw = str(environ.get("CONTENT_LENGTH") or "").strip()
    if not raw:
        return None
    length = parse_content_length(raw, limit)
    if length is None:
        raise WebhookPayloadError("webhook request has an invalid Content-Length")
    if length > limit:
        raise WebhookPayloadTooLarge(f"webhook body is larger than {limit} bytes")
    return length


def _read_body(environ: WSGIEnvironment, limit: int) -> bytes:
    """Read the body, never more than ``limit + 1`` bytes (one more shows it is too large)."""
    length = _declared_length(environ, limit)
    if length is None:
        # Without a length, only a server that marks the input as terminated lets us read it.
        if not environ.get("wsgi.input_terminated"):
            return b""
        return _read_up_to(environ["wsgi.input"], limit + 1)
    return _read_up_to(environ["wsgi.input"], length)


def _read_up_to(stream: Any, size: int) -> bytes:
    chunks: List[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(min(remaining, _CHUNK_BYTES))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _discard_body(environ: WSGIEnvironment, limit: int) -> None:
    """Read and drop a body of at most ``limit`` bytes; a larger one is left unread."""
    with contextlib.suppress(Exception):
        _read_body(environ, limit)


def _log_extra(outcome: str, status: int, event_type: Optional[str]) -> Dict[str, Any]:
    return {
        "webhook_outcome": outcome,
        "webhook_status": status,
        "webhook_event_type": event_type,
    }


def _log(
    log: logging.Logger,
    level: int,
    outcome: str,
    status: int,
    event_type: Optional[str],
    remote: str,
    reason: Optional[str],
) -> None:
    """One line per request; ``reason`` is one of our own secret-free messages."""
    log.log(
        level,
        "webhook delivery %s: status=%d event_type=%s remote=%s%s",
        outcome,
        status,
        "-" if event_type is None else repr(event_type),
        printable(remote),
        "" if reason is None else f" reason={printable(reason)}",
        extra=_log_extra(outcome, status, event_type),
    )


def _respond(start_response: StartResponse, status: int, extra_headers: List[Tuple[str, str]]) -> List[bytes]:
    body = json.dumps(_RESPONSE_BODIES[status]).encode("utf-8")
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        *extra_headers,
    ]
    start_response(f"{status} {HTTPStatus(status).phrase}", headers)
    return [body]
