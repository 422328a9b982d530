"""A WSGI application that verifies deliveries and hands their typed events to a handler.

Only the WSGI side is here: reading the environ and the body, calling the handler,
answering. What to answer is decided by the receivers' shared core (``_receiver``).
"""

from __future__ import annotations

import contextlib
import socket
from typing import TYPE_CHECKING, Any, Callable, Iterable, List, Optional, Union

from kenar_api_client.webhooks._receiver import LOGGER_NAME, NO_LENGTH, Answer, ReceiverCore, Stopped
from kenar_api_client.webhooks.deliveries import DeliveryLog
from kenar_api_client.webhooks.events import WebhookEvent
from kenar_api_client.webhooks.verify import DEFAULT_MAX_BODY_BYTES

if TYPE_CHECKING:
    import logging

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["LOGGER_NAME", "WebhookHandler", "make_wsgi_app"]

WebhookHandler = Callable[[WebhookEvent], object]

_CHUNK_BYTES = 64 * 1024


def make_wsgi_app(
    identification_key: str,
    handler: WebhookHandler,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    logger: Optional[logging.Logger] = None,
    deliveries: Optional[DeliveryLog] = None,
) -> WSGIApplication:
    """A WSGI app receiving Kenar webhook deliveries at any path.

    For a POST it checks ``Authorization`` first (401, the body is not read), then the
    declared ``Content-Length`` (413, not read either), reads at most ``max_body_bytes``,
    decodes the event (400 if it cannot; 408 if the body did not arrive whole: the server's
    read timeout expired or the connection ended) and calls ``handler(event)``: 200 once it
    returned, 500 without details if it raised. Other methods get 405 with ``Allow: POST``.

    With ``deliveries`` (a :class:`~kenar_api_client.webhooks.DeliveryLog`) the handler runs
    once per ``event.delivery_key``: a delivery handled before is answered 200 without it,
    one whose first copy is still being handled gets 503 with ``Retry-After``, and a handler
    that raised leaves the key free for the next copy.

    Every request is logged once on ``logger`` (default: the ``kenar_api_client.webhooks``
    logger) with its outcome, status and event type; never with the key or the received
    ``Authorization`` value. A handler's exception is logged with its traceback.
    """
    core = ReceiverCore(identification_key, max_body_bytes, deliveries, logger)

    def kenar_webhook_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        answer = _serve(environ, core, handler)
        start_response(answer.status_line, list(answer.headers))
        return [answer.body]

    return kenar_webhook_app


def _serve(environ: WSGIEnvironment, core: ReceiverCore, handler: WebhookHandler) -> Answer:
    """Handle one request; the answer to send."""
    remote = environ.get("REMOTE_ADDR")
    length_text = environ.get("CONTENT_LENGTH")
    lengths = [length_text] if length_text and length_text.strip() else []
    refusal, length = core.head(
        str(environ.get("REQUEST_METHOD") or ""), _authorization(environ), lengths, remote
    )
    if refusal is not None:
        if refusal.drain:
            _drain(environ, length, core.max_body_bytes)
        return refusal
    try:
        body = read_body(environ, length, core.max_body_bytes)
    except socket.timeout:  # TimeoutError from Python 3.10: the server's read timeout
        outcome = core.received(b"", length, remote, Stopped.TIMED_OUT)
    except Exception:
        return core.read_failed(remote)
    else:
        outcome = core.received(body, length, remote)
    if isinstance(outcome, Answer):
        return outcome
    try:
        handler(outcome.event)
    except Exception:
        return core.failed(outcome)
    return core.handled(outcome)


def _authorization(environ: WSGIEnvironment) -> List[Union[str, bytes]]:
    """The ``Authorization`` header, in the bytes that were sent where possible."""
    value = environ.get("HTTP_AUTHORIZATION")
    if value is None:
        return []
    if isinstance(value, str):
        # PEP 3333 passes header bytes as latin-1 text; compare the bytes that were sent.
        try:
            return [value.encode("latin-1")]
        except UnicodeEncodeError:
            pass
    return [value]


def read_body(environ: WSGIEnvironment, length: int, limit: int) -> bytes:
    """Read the body of ``length`` bytes (``NO_LENGTH``: unknown), never more than ``limit + 1`` bytes.

    One byte more than ``limit`` shows the body is too large.
    """
    if length == NO_LENGTH:
        # Without a length, only a server that marks the input as terminated lets us read it.
        if not environ.get("wsgi.input_terminated"):
            return b""
        return _read_up_to(environ["wsgi.input"], limit + 1)
    return _read_up_to(environ["wsgi.input"], length)


def _read_up_to(stream: Any, size: int) -> bytes:
    first = stream.read(min(size, _CHUNK_BYTES))
    if len(first) >= size or not first:
        return bytes(first)
    chunks: List[bytes] = [first]
    remaining = size - len(first)
    while remaining > 0:
        chunk = stream.read(min(remaining, _CHUNK_BYTES))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _drain(environ: WSGIEnvironment, length: int, limit: int) -> None:
    """Read and drop a refused request's body of at most ``limit`` bytes."""
    with contextlib.suppress(Exception):  # the answer is decided; a failing read changes nothing
        read_body(environ, length, limit)
