"""An ASGI application that verifies deliveries and hands their typed events to a handler.

Pure ASGI 3 on the standard library: it runs under any ASGI server (uvicorn, hypercorn,
daphne) and mounts in any ASGI framework, with the statuses, limits and log lines of
:func:`~kenar_api_client.webhooks.make_wsgi_app`: both leave every decision to the
receivers' shared core (``_receiver``) and only move bytes.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Awaitable, Callable, List, MutableMapping, Optional, Tuple, Union

from kenar_api_client.webhooks._receiver import Answer, ReceiverCore, Stopped
from kenar_api_client.webhooks.deliveries import DeliveryLog
from kenar_api_client.webhooks.events import WebhookEvent
from kenar_api_client.webhooks.verify import DEFAULT_MAX_BODY_BYTES

__all__ = ["ASGIApp", "AsyncWebhookHandler", "make_asgi_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: A plain function or an ``async def`` one; its return value is ignored.
AsyncWebhookHandler = Callable[[WebhookEvent], Union[object, Awaitable[object]]]


def make_asgi_app(
    identification_key: str,
    handler: AsyncWebhookHandler,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    logger: Optional[logging.Logger] = None,
    deliveries: Optional[DeliveryLog] = None,
) -> ASGIApp:
    """An ASGI app receiving Kenar webhook deliveries at any path.

    The same answers as :func:`~kenar_api_client.webhooks.make_wsgi_app`: 405 for a
    method other than POST, 401 (body not read) for a wrong ``Authorization``, 413 (not
    read either) for a ``Content-Length`` over ``max_body_bytes``, 400 for a body that is no
    valid event, 408 for one that did not arrive whole (the client went away), 200 once
    ``handler(event)`` returned, 500 if it raised; with ``deliveries``, once per delivery key
    (200 for one handled before, 503 while another copy is being handled). ``handler`` may
    be ``async def`` (awaited) or a plain function, which runs on the event loop: keep it
    short, or hand slow work to a queue. The delivery log's calls run on the event loop
    too (a local SQLite write or one Redis round trip each). Each request is logged once,
    as by the WSGI app. Lifespan events are acknowledged, so it can be the whole application.
    """
    core = ReceiverCore(identification_key, max_body_bytes, deliveries, logger)
    awaits = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - an object whose __call__ is async def
    )

    async def kenar_webhook_app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "http":
            answer = await _serve(scope, receive, core, handler, awaits)
            await send(
                {"type": "http.response.start", "status": answer.status, "headers": answer.asgi_headers}
            )
            await send({"type": "http.response.body", "body": answer.body})
        elif kind == "lifespan":
            await _lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # deliveries are plain POSTs

    return kenar_webhook_app


async def _serve(
    scope: Scope, receive: Receive, core: ReceiverCore, handler: AsyncWebhookHandler, awaits: bool
) -> Answer:
    """Handle one request; the answer to send."""
    client = scope.get("client")
    remote = client[0] if client else None
    authorization: List[bytes] = []
    lengths: List[bytes] = []
    for name, value in scope.get("headers") or ():
        lowered = bytes(name).lower()
        if lowered == b"authorization":
            authorization.append(bytes(value))
        elif lowered == b"content-length":
            lengths.append(bytes(value))
    refusal, length = core.head(str(scope.get("method") or ""), authorization, lengths, remote)
    limit = core.max_body_bytes
    if refusal is not None:
        if refusal.drain and length != 0:
            await _receive_up_to(receive, limit)  # bounded: what the sender already sent
        return refusal
    try:
        body, stopped = await _receive_up_to(receive, limit)
    except Exception:
        return core.read_failed(remote)
    outcome = core.received(body, length, remote, stopped)
    if isinstance(outcome, Answer):
        return outcome
    try:
        result = handler(outcome.event)
        if awaits or (result is not None and inspect.isawaitable(result)):
            await result  # type: ignore[misc]
    except Exception:
        return core.failed(outcome)
    return core.handled(outcome)


async def _receive_up_to(receive: Receive, limit: int) -> Tuple[bytes, Optional[str]]:
    """The body's messages put together (reading stops once over ``limit`` bytes), and why it ended early."""
    message = await receive()
    if message.get("type") == "http.disconnect":
        return b"", Stopped.DISCONNECTED
    body = message.get("body") or b""
    if not message.get("more_body"):
        return bytes(body), None
    chunks: List[bytes] = [bytes(body)]
    size = len(body)
    while size <= limit:
        message = await receive()
        if message.get("type") == "http.disconnect":
            return b"".join(chunks), Stopped.DISCONNECTED
        chunk = bytes(message.get("body") or b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks), None


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message.get("type") == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message.get("type") == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
