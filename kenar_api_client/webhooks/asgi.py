"""An ASGI application that verifies deliveries and hands their typed events to a handler.

Pure ASGI 3 on the standard library: it runs under any ASGI server (uvicorn, hypercorn,
daphne) and mounts in any ASGI framework, with the statuses, limits and log lines of
:func:`~kenar_api_client.webhooks.make_wsgi_app`.
"""

from __future__ import annotations

import inspect
import json
import logging
from typing import Any, Awaitable, Callable, List, MutableMapping, Optional, Tuple, Union

from kenar_api_client._content_length import parse_content_length
from kenar_api_client.webhooks._errors import (
    WebhookError,
    WebhookPayloadError,
    WebhookPayloadTooLarge,
    WebhookVerificationError,
)
from kenar_api_client.webhooks.events import WebhookEvent
from kenar_api_client.webhooks.verify import DEFAULT_MAX_BODY_BYTES, WebhookVerifier
from kenar_api_client.webhooks.wsgi import _RESPONSE_BODIES, LOGGER_NAME, _log, _log_extra

__all__ = ["ASGIApp", "AsyncWebhookHandler", "make_asgi_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: A plain function or an ``async def`` one; its return value is ignored.
AsyncWebhookHandler = Callable[[WebhookEvent], Union[object, Awaitable[object]]]
_Headers = List[Tuple[bytes, bytes]]


class _Disconnected(Exception):
    """The client went away before the whole body arrived."""


def make_asgi_app(
    identification_key: str,
    handler: AsyncWebhookHandler,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    logger: Optional[logging.Logger] = None,
) -> ASGIApp:
    """An ASGI app receiving Kenar webhook deliveries at any path.

    The same answers as :func:`~kenar_api_client.webhooks.make_wsgi_app`: 405 for a
    method other than POST, 401 (body not read) for a wrong ``Authorization``, 413 (not
    read either) for a ``Content-Length`` over ``max_body_bytes``, 400 for a body that is no
    valid event or is cut short, 200 once ``handler(event)`` returned, 500 if it raised.
    ``handler`` may be ``async def`` (awaited) or a plain function, which runs on the event
    loop: keep it short, or hand slow work to a queue. Each request is logged once, as by the
    WSGI app. Lifespan events are acknowledged, so it can be the whole application.
    """
    verifier = WebhookVerifier(identification_key, max_body_bytes)
    log = logger if logger is not None else logging.getLogger(LOGGER_NAME)

    async def kenar_webhook_app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await _lifespan(receive, send)
        elif kind == "http":
            status, extra_headers = await _serve(scope, receive, verifier, handler, log)
            await _respond(send, status, extra_headers)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # deliveries are plain POSTs

    return kenar_webhook_app


async def _serve(
    scope: Scope,
    receive: Receive,
    verifier: WebhookVerifier,
    handler: AsyncWebhookHandler,
    log: logging.Logger,
) -> Tuple[int, _Headers]:
    """Handle one request; return its status and any extra response headers."""
    client = scope.get("client")
    remote = str(client[0]) if client else "-"
    method = str(scope.get("method") or "")
    headers: _Headers = [(bytes(name), bytes(value)) for name, value in scope.get("headers") or []]
    limit = verifier.max_body_bytes
    if method != "POST":
        await _discard_body(receive, headers, limit)
        _log(log, logging.WARNING, "refused", 405, None, remote, f"method {method!r}")
        return 405, [(b"allow", b"POST")]
    try:
        verifier.verify(headers)
    except WebhookVerificationError as exc:
        # Read (bounded) what the sender already sent, so it gets the 401 and not a reset.
        await _discard_body(receive, headers, limit)
        _log(log, logging.WARNING, "rejected", exc.http_status, None, remote, str(exc))
        return exc.http_status, []
    try:
        event = verifier.parse_event(await _read_body(receive, headers, limit), headers)
    except WebhookError as exc:
        _log(log, logging.WARNING, "rejected", exc.http_status, None, remote, str(exc))
        return exc.http_status, []
    except Exception:
        log.exception(
            "webhook delivery failed: status=500 event_type=- remote=%s (reading the request)",
            remote,
            extra=_log_extra("failed", 500, None),
        )
        return 500, []
    try:
        result = handler(event)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception(
            "webhook delivery failed: status=500 event_type=%r remote=%s (the handler raised)",
            event.type,
            remote,
            extra=_log_extra("failed", 500, event.type),
        )
        return 500, []
    _log(log, logging.INFO, "handled", 200, event.type, remote, None)
    return 200, []


# Any length above every body limit: longer numbers are not converted at all.
_LENGTH_CAP = 10**18


def _declared_length(headers: _Headers) -> Optional[int]:
    """The ``Content-Length`` header as an int, ``None`` if absent; a bad one is a payload error."""
    values = [value for name, value in headers if name.lower() == b"content-length"]
    if not values:
        return None
    length = parse_content_length(values[0].decode("latin-1"), _LENGTH_CAP) if len(values) == 1 else None
    if length is None:
        raise WebhookPayloadError("webhook request has an invalid Content-Length")
    return length


async def _read_body(receive: Receive, headers: _Headers, limit: int) -> bytes:
    """The whole body, never holding more than ``limit`` bytes of it."""
    length = _declared_length(headers)
    if length is not None and length > limit:
        raise WebhookPayloadTooLarge(f"webhook body is larger than {limit} bytes")
    try:
        body = await _receive_up_to(receive, limit)
    except _Disconnected as exc:
        raise WebhookPayloadError("webhook body was cut short: the client disconnected") from exc
    if length is not None and len(body) != length:
        raise WebhookPayloadError("webhook body does not have the length its Content-Length announced")
    return body


async def _receive_up_to(receive: Receive, limit: int) -> bytes:
    chunks: List[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            raise _Disconnected
        chunk = bytes(message.get("body") or b"")
        size += len(chunk)
        if size > limit:
            raise WebhookPayloadTooLarge(f"webhook body is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _discard_body(receive: Receive, headers: _Headers, limit: int) -> None:
    """Read and drop a body of at most ``limit`` bytes; a larger one is left unread."""
    try:
        length = _declared_length(headers)
        if length is None or length <= limit:
            await _receive_up_to(receive, limit)
    except (WebhookError, _Disconnected):
        pass


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message.get("type") == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message.get("type") == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _respond(send: Send, status: int, extra_headers: _Headers) -> None:
    body = json.dumps(_RESPONSE_BODIES[status]).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + extra_headers})
    await send({"type": "http.response.body", "body": body})
