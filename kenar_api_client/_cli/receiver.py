"""``kenar-events listen``: a verifying webhook receiver, and one-line summaries of events."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional

from kenar_api_client._cli.forward import forwarding
from kenar_api_client._cli.output import (
    ENV_IDENTIFICATION_KEY,
    EXIT_FAILED,
    EXIT_OK,
    Output,
    UsageError,
    reachable_url,
    url_host,
)

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from _typeshed.wsgi import WSGIApplication

    from kenar_api_client.webhooks import WebhookEvent

WEBHOOKS_LOGGER = "kenar_api_client.webhooks"


def describe_event(event: WebhookEvent) -> str:
    """A one-line human summary of a verified event's payload."""
    from kenar_api_client.webhooks import (
        NewChatbotMessageEvent,
        NewMessageEvent,
        PaymentTransactionEvent,
        PostUpdateEvent,
        UnknownEvent,
        UserAccessRevocationEvent,
    )

    if isinstance(event, (NewMessageEvent, NewChatbotMessageEvent)):
        message = event.payload
        post = message.conversation.post_token if message.conversation else None
        where = f" on post {post}" if post else ""
        text = f": {message.text!r}" if message.text is not None else ""
        return f"{message.type} message{where}{text}"
    if isinstance(event, PostUpdateEvent):
        post_token = event.post_update.post.token if event.post_update.post else None
        return f"post {post_token}: {event.post_update.type}"
    if isinstance(event, PaymentTransactionEvent):
        transaction = event.transaction
        return f"transaction {transaction.id}: {transaction.state}, {transaction.cost_rials} rials"
    if isinstance(event, UserAccessRevocationEvent):
        return f"user {event.user_access_revocation.user_id} revoked the app's access"
    if isinstance(event, UnknownEvent):
        return f"a type this SDK does not know, payload {event.payload!r}"
    return "an event"


def event_line(event: WebhookEvent) -> str:
    """``TYPE  summary  metadata={...}``."""
    metadata = f"  metadata={json.dumps(event.metadata, ensure_ascii=False)}" if event.metadata else ""
    return f"{event.type}  {describe_event(event)}{metadata}"


def event_document(event: WebhookEvent) -> Dict[str, Any]:
    """The JSON form of a verified event."""
    return {"event_type": event.type, "class": type(event).__name__, "event": event.to_dict()}


def make_receiver(
    host: str,
    port: int,
    identification_key: str,
    handler: Callable[[WebhookEvent], object],
    wrap: Optional[Callable[[WSGIApplication], WSGIApplication]] = None,
) -> WSGIServer:
    """A wsgiref server running the webhooks package's verifying WSGI app (``wrap``-ped)."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from kenar_api_client.webhooks import make_wsgi_app

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Silent: the webhooks logger already reports every delivery."""

    app = make_wsgi_app(identification_key, handler)
    return make_server(host, port, wrap(app) if wrap else app, handler_class=QuietHandler)


def listen(args: argparse.Namespace, out: Output) -> int:
    """Receive deliveries, verify them and print each event until Ctrl+C or ``--count``."""
    key = args.identification_key or os.environ.get(ENV_IDENTIFICATION_KEY, "").strip()
    if not key:
        raise UsageError(
            f"listen needs the identification key: set {ENV_IDENTIFICATION_KEY} or pass --identification-key"
        )
    forward_to = check_forward_url(args.forward_to) if args.forward_to else None
    received: List[WebhookEvent] = []

    def handle(event: WebhookEvent) -> None:
        received.append(event)
        out.line(event_line(event))
        out.document(event_document(event))

    try:
        wrap = (lambda app: forwarding(app, forward_to, out)) if forward_to else None
        server = make_receiver(args.host, args.port, key, handle, wrap)
    except (OSError, ValueError) as exc:
        out.error(f"cannot listen on {args.host}:{args.port}: {exc}")
        return EXIT_FAILED
    url = reachable_url(args.host, server.server_port)
    everywhere = " (on every address)" if url_host(args.host) != args.host else ""
    onward = f", forwarding verified ones to {forward_to}" if forward_to else ""
    out.line(f"listening for Kenar webhook deliveries on {url}{everywhere}{onward} (Ctrl+C to stop)")
    out.document({"listening": url, **({"forward_to": forward_to} if forward_to else {})})
    with stderr_logging(WEBHOOKS_LOGGER, logging.WARNING), contextlib.suppress(KeyboardInterrupt):
        try:
            with terminate_as_interrupt():
                while args.count is None or len(received) < args.count:
                    server.handle_request()
        finally:
            server.server_close()
    return EXIT_OK


def check_forward_url(url: str) -> str:
    """``url`` if it is an http(s) URL with a host and a valid port; else a usage error."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port that is no number
    except ValueError:
        valid = False
    if not valid:
        raise UsageError(
            f"--forward-to must be an http:// or https:// URL (http://127.0.0.1:5000/kenar), got {url!r}"
        )
    return url


@contextlib.contextmanager
def stderr_logging(name: str, level: int) -> Iterator[None]:
    """Within the block, show logger ``name``'s records from ``level`` up on stderr."""
    logger = logging.getLogger(name)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(message)s"))
    previous_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM stops a foreground command like Ctrl+C (main thread only)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: Optional[FrameType]) -> None:
    raise KeyboardInterrupt
