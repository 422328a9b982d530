"""A small threaded WSGI server for a webhook receiver: a thread per connection, read timeouts.

``wsgiref.simple_server.make_server`` serves one request at a time with no timeout, so one idle
connection, or one request that announces a body and never sends it, holds up every delivery.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Optional, Tuple, Type, cast
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from kenar_api_client._threaded_server import ThreadedServer
from kenar_api_client.webhooks.wsgi import LOGGER_NAME

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import WSGIApplication

__all__ = ["DEFAULT_READ_TIMEOUT", "WebhookServer", "make_server"]

#: Seconds a connection may stay silent while its request is awaited or read.
DEFAULT_READ_TIMEOUT = 10.0

_MAX_REQUEST_LINE = 65536
logger: logging.Logger = logging.getLogger(LOGGER_NAME)


class _ServerHandler(ServerHandler):
    """wsgiref's handler, reporting an application failure on the logger instead of stderr."""

    request_handler: WSGIRequestHandler  # wsgiref's back-pointer, for its access log

    def log_exception(self, exc_info: OptExcInfo) -> None:
        if not isinstance(exc_info[1], OSError):  # a client that stalled or left is no news
            logger.error("the WSGI application failed", exc_info=exc_info)


class _RequestHandler(WSGIRequestHandler):
    server: WebhookServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.read_timeout)

    def handle(self) -> None:
        """One request, as wsgiref handles it, telling the application it runs in threads."""
        self.raw_requestline = self.rfile.readline(_MAX_REQUEST_LINE + 1)
        if len(self.raw_requestline) > _MAX_REQUEST_LINE:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = _ServerHandler(
            cast("IO[bytes]", self.rfile),
            cast("IO[bytes]", self.wfile),
            self.get_stderr(),
            self.get_environ(),
            multithread=True,
        )
        handler.request_handler = self
        handler.run(self.server.get_app())

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the application logs each request (``make_wsgi_app`` does, with its outcome)."""


class WebhookServer(ThreadedServer, WSGIServer):
    """A WSGI server with a daemon thread per connection and a read timeout on each.

    Serve it with :meth:`serve_forever` (Ctrl+C ends it) or in the background with
    :meth:`start`; :meth:`stop` (also on leaving a ``with`` block) ends the serving loop,
    shuts down open connections and closes the socket. Build it with :func:`make_server`.
    """

    def __init__(self, address: Tuple[str, int], app: WSGIApplication, read_timeout: float) -> None:
        if isinstance(read_timeout, bool) or not isinstance(read_timeout, (int, float)) or read_timeout <= 0:
            raise ValueError("read_timeout must be a number of seconds above 0")
        self.read_timeout: float = float(read_timeout)
        self._thread: Optional[threading.Thread] = None
        self._serving = threading.Event()
        self._app = app
        super().__init__(address, _RequestHandler)

    def get_app(self) -> WSGIApplication:
        """The WSGI application it serves."""
        return self._app

    @property
    def url(self) -> str:
        """``http://<host>:<port>/``, where it serves (through 127.0.0.1 when bound to all addresses)."""
        return f"http://{self.connect_host}:{self.server_port}/"

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._serving.set()
        try:
            super().serve_forever(poll_interval)
        finally:
            self._serving.clear()

    def start(self) -> WebhookServer:
        """Serve from a background (daemon) thread; returns the server itself."""
        if self._thread is not None:
            raise RuntimeError("the server is already started")
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"kenar-webhook-server-{self.server_port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, shut down open connections, close the socket; safe to call twice."""
        thread, self._thread = self._thread, None
        if thread is not None or self._serving.is_set():
            super().stop()
        else:
            self.close_connections()
            self.server_close()
        if thread is not None:
            thread.join()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.stop()


def make_server(
    host: str, port: int, app: WSGIApplication, *, read_timeout: float = DEFAULT_READ_TIMEOUT
) -> WebhookServer:
    """A :class:`WebhookServer` for ``app`` on ``host``:``port`` (0 picks a free port).

    Use it like ``wsgiref.simple_server.make_server``, for example with
    ``make_wsgi_app(key, handler)``. ``read_timeout`` bounds how long a connection may stay
    silent while its request is awaited or read; then it is dropped (a body cut short gets
    ``408`` from ``make_wsgi_app``).
    """
    return WebhookServer((host, port), app, read_timeout)
