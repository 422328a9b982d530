"""``kenar-events listen``: a verifying webhook receiver, and one-line summaries of events."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, FrozenSet, Iterator, Optional

from kenar_api_client._hosts import connect_host
from kenar_api_client.cli.foreground import Foreground
from kenar_api_client.cli.forward import RequestInThread, forwarded_headers, forwarding, relaying, tracking
from kenar_api_client.cli.output import (
    ENV_IDENTIFICATION_KEY,
    EXIT_FAILED,
    Output,
    UsageError,
    reachable_url,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from kenar_api_client.webhooks import DeliveryLog, WebhookEvent, WebhookServer

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
    """The handler of ``listen``: prints each event it takes, from any number of threads.

    It takes an event whose type is in ``types`` (all when ``None``), notes that in
    ``request`` (so the forwarder passes it on) and prints its headers too if asked to.
    """

    def __init__(
        self,
        out: Output,
        count: Optional[int],
        types: Optional[FrozenSet[str]] = None,
        request: Optional[RequestInThread] = None,
        headers: bool = False,
        note: str = "",
    ) -> None:
        self._out = out
        self._count = count
        self._types = types
        self._request = request if request is not None else RequestInThread()
        self._headers = headers
        self._note = note
        self._lock = threading.Lock()
        self._printed = 0
        self._answered = 0
        self._closed = False

    def __call__(self, event: WebhookEvent) -> None:
        if self._types is not None and event.type not in self._types:
            return  # answered 200, neither printed nor forwarded
        line, document = event_line(event) + self._note, event_document(event)
        headers = delivery_headers(self._request.environ) if self._headers else None
        if headers is not None:
            document["headers"] = headers
        with self._lock:
            if self._closed:  # stopping: its connection is shut down, the sender will retry
                return
            self._printed += 1
            self._request.taken = True
            self._out.line(line)
            for name, value in (headers or {}).items():
                self._out.line(f"  {name}: {value}")
            self._out.document(document)

    def answered(self) -> bool:
        """Note that a request whose event was printed has been answered; whether ``count`` have been."""
        with self._lock:
            self._answered += 1
            return self._count is not None and self._answered >= self._count

    def close(self) -> None:
        """Wait for an event being printed, then print no more.

        A handler thread still writing to stdout when the interpreter exits makes it abort.
        """
        with self._lock:
            self._closed = True


def delivery_headers(environ: Optional[WSGIEnvironment]) -> Dict[str, str]:
    """A delivery's end-to-end headers for printing: ``Authorization`` masked, the length added."""
    if environ is None:
        return {}
    headers = forwarded_headers(environ)
    if environ.get("CONTENT_LENGTH"):
        headers["Content-Length"] = str(environ["CONTENT_LENGTH"])
    if "Authorization" in headers:
        headers["Authorization"] = "[REDACTED]"  # the identification key (or a guess at it)
    return headers


def _stop_when_done(
    app: WSGIApplication, printer: _EventPrinter, request: RequestInThread, foreground: Foreground
) -> WSGIApplication:
    def app_then_check(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        yield from app(environ, start_response)
        # Only once every printed event's answer is sent (requests are answered in parallel:
        # one may still be forwarding an earlier event while another prints the last).
        if request.taken and printer.answered():
            foreground.stop()

    return app_then_check


def listen(args: argparse.Namespace, out: Output) -> int:
    """Receive deliveries, verify them and print each event until Ctrl+C, SIGTERM or ``--count``."""
    from kenar_api_client.webhooks import DeliveryLogError, make_server

    key = args.identification_key or os.environ.get(ENV_IDENTIFICATION_KEY, "").strip()
    forward_to = check_forward_url(args.forward_to) if args.forward_to else None
    if args.skip_verify:
        if not forward_to:
            raise UsageError("--skip-verify needs --forward-to: without it nothing would check the key")
        if args.deliveries:
            raise UsageError("--deliveries needs verified deliveries: leave out --skip-verify")
    elif not key:
        raise UsageError(
            f"listen needs the identification key: set {ENV_IDENTIFICATION_KEY} or pass --identification-key"
        )
    out.hide(key)
    try:
        log = open_delivery_log(args.deliveries) if args.deliveries else None
    except (DeliveryLogError, ValueError) as exc:
        out.error(f"cannot use the delivery log {args.deliveries!r}: {exc}")
        return EXIT_FAILED
    types = frozenset(args.events) if args.events else None
    request = RequestInThread()
    note = "  (not verified)" if args.skip_verify else ""
    printer = _EventPrinter(out, args.count, types, request, args.headers, note)
    with Foreground() as foreground:
        try:
            if args.skip_verify:
                app = _unverified_app(str(forward_to), out, printer, request)
            else:
                app = _verifying_app(key, printer, log, forward_to, out, request)
            server = make_server(
                args.host, args.port, tracking(_stop_when_done(app, printer, request, foreground), request)
            )
        except (OSError, ValueError) as exc:
            out.error(f"cannot listen on {args.host}:{args.port}: {exc}")
            return EXIT_FAILED
        with stderr_logging(WEBHOOKS_LOGGER, logging.WARNING), server:
            # The port is bound: connections wait in its backlog until start(), so the ready
            # line comes before any event.
            url = reachable_url(args.host, server.server_port)
            everywhere = " (on every address)" if connect_host(args.host) != args.host else ""
            onward = f", forwarding verified ones to {forward_to}" if forward_to else ""
            if args.skip_verify:
                onward = f", forwarding every request UNVERIFIED to {forward_to}"
            out.line(f"listening for Kenar webhook deliveries on {url}{everywhere}{onward} (Ctrl+C to stop)")
            out.document({"listening": url, **({"forward_to": forward_to} if forward_to else {})})
            server.start()
            status = foreground.wait()
        printer.close()
    return status


def _verifying_app(
    key: str,
    printer: _EventPrinter,
    log: Optional[DeliveryLog],
    forward_to: Optional[str],
    out: Output,
    request: RequestInThread,
) -> WSGIApplication:
    from kenar_api_client.webhooks import make_wsgi_app

    app = make_wsgi_app(key, printer, deliveries=log)
    return forwarding(app, forward_to, out, request) if forward_to else app


def _unverified_app(
    forward_to: str, out: Output, printer: _EventPrinter, request: RequestInThread
) -> WSGIApplication:
    from kenar_api_client.webhooks import DEFAULT_MAX_BODY_BYTES, WebhookError
    from kenar_api_client.webhooks.decoding import event_from_body
    from kenar_api_client.webhooks.wsgi import read_body

    def print_and_select(body: bytes) -> bool:
        try:
            event = event_from_body(body)
        except WebhookError as exc:
            out.line(f"a body that is no event ({exc}): forwarded for the app to judge")
            out.document({"unparsed": str(exc)})
            return True
        printer(event)
        return request.taken

    return relaying(forward_to, out, DEFAULT_MAX_BODY_BYTES, print_and_select, read_body)


def open_delivery_log(where: str) -> DeliveryLog:
    """``--deliveries``: ``memory``, a ``redis://`` (or ``rediss://``) URL, or a SQLite file path."""
    from kenar_api_client.webhooks import MemoryDeliveryLog, RedisDeliveryLog, SQLiteDeliveryLog

    if where == "memory":
        return MemoryDeliveryLog()
    if where.lower().startswith(("redis://", "rediss://", "unix://")):
        return RedisDeliveryLog(url=where)
    if "://" in where:
        raise UsageError(f"--deliveries takes memory, a redis:// URL or a file path, got {where!r}")
    return SQLiteDeliveryLog(where)


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
    """Within the block, show logger ``name``'s records from ``level`` up on stderr.

    A webhook redelivery answered from the delivery log (an INFO record) is shown too.
    """
    logger = logging.getLogger(name)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(
        lambda record: record.levelno >= level or getattr(record, "webhook_outcome", None) == "duplicate"
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    previous_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > min(level, logging.INFO):
        logger.setLevel(min(level, logging.INFO))
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
