"""``kenar-events listen``: a verifying webhook receiver, and one-line summaries of events."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, Optional

from kenar_api_client._hosts import connect_host
from kenar_api_client.cli.foreground import Foreground
from kenar_api_client.cli.forward import forwarding
from kenar_api_client.cli.output import (
    ENV_IDENTIFICATION_KEY,
    EXIT_FAILED,
    Output,
    UsageError,
    reachable_url,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from kenar_api_client.webhooks import WebhookEvent, WebhookServer

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
) -> WebhookServer:
    """The webhooks package's verifying WSGI app (``wrap``-ped) on its threaded server (not serving yet)."""
    from kenar_api_client.webhooks import make_server, make_wsgi_app

    app = make_wsgi_app(identification_key, handler)
    return make_server(host, port, wrap(app) if wrap else app)


class _EventPrinter:
    """The handler of ``listen``: prints each verified event, from any number of threads."""

    def __init__(self, out: Output, count: Optional[int]) -> None:
        self._out = out
        self._count = count
        self._lock = threading.Lock()
        self._printed = 0
        self._closed = False

    def __call__(self, event: WebhookEvent) -> None:
        line, document = event_line(event), event_document(event)
        with self._lock:
            if self._closed:  # stopping: its connection is shut down, the sender will retry
                return
            self._printed += 1
            self._out.line(line)
            self._out.document(document)

    @property
    def done(self) -> bool:
        """Whether ``count`` events were printed."""
        return self._count is not None and self._printed >= self._count

    def close(self) -> None:
        """Wait for an event being printed, then print no more.

        A handler thread still writing to stdout when the interpreter exits makes it abort.
        """
        with self._lock:
            self._closed = True


def _stop_when_done(app: WSGIApplication, printer: _EventPrinter, foreground: Foreground) -> WSGIApplication:
    def app_then_check(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        yield from app(environ, start_response)
        if printer.done:  # only now: the answer to the last delivery has been sent
            foreground.stop()

    return app_then_check


def listen(args: argparse.Namespace, out: Output) -> int:
    """Receive deliveries, verify them and print each event until Ctrl+C, SIGTERM or ``--count``."""
    from kenar_api_client.webhooks import make_server, make_wsgi_app

    key = args.identification_key or os.environ.get(ENV_IDENTIFICATION_KEY, "").strip()
    if not key:
        raise UsageError(
            f"listen needs the identification key: set {ENV_IDENTIFICATION_KEY} or pass --identification-key"
        )
    forward_to = check_forward_url(args.forward_to) if args.forward_to else None
    printer = _EventPrinter(out, args.count)
    with Foreground() as foreground:
        try:
            app = make_wsgi_app(key, printer)
            if forward_to:
                app = forwarding(app, forward_to, out)
            server = make_server(args.host, args.port, _stop_when_done(app, printer, foreground))
        except (OSError, ValueError) as exc:
            out.error(f"cannot listen on {args.host}:{args.port}: {exc}")
            return EXIT_FAILED
        with stderr_logging(WEBHOOKS_LOGGER, logging.WARNING), server:
            # The port is bound: connections wait in its backlog until start(), so the ready
            # line comes before any event.
            url = reachable_url(args.host, server.server_port)
            everywhere = " (on every address)" if connect_host(args.host) != args.host else ""
            onward = f", forwarding verified ones to {forward_to}" if forward_to else ""
            out.line(f"listening for Kenar webhook deliveries on {url}{everywhere}{onward} (Ctrl+C to stop)")
            out.document({"listening": url, **({"forward_to": forward_to} if forward_to else {})})
            server.start()
            status = foreground.wait()
        printer.close()
    return status


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
