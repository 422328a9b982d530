"""A small WSGI server for a webhook receiver: HTTP/1.1 keep-alive, a bounded worker pool, read timeouts.

``wsgiref.simple_server.make_server`` serves one request at a time with no timeout, so one idle
connection, or one request that announces a body and never sends it, holds up every delivery.
Here one thread watches the listening socket and every idle connection; a request that starts
to arrive is handed to one of ``workers`` threads, which answers it and hands the connection
back, so idle keep-alive connections cost no thread.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import selectors
import socket
import threading
import time
from types import TracebackType
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    BinaryIO,
    Callable,
    Dict,
    Iterator,
    List,
    Optional,
    Set,
    Tuple,
    Type,
    cast,
)
from wsgiref.headers import Headers
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler

from kenar_api_client._hosts import connect_host
from kenar_api_client.webhooks._receiver import LOGGER_NAME

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import WSGIApplication

__all__ = ["DEFAULT_READ_TIMEOUT", "DEFAULT_WORKERS", "WebhookServer", "make_server"]

#: Seconds a connection may stay silent while its request is awaited or read.
DEFAULT_READ_TIMEOUT = 10.0
#: Threads that answer requests: at most this many requests are handled at once.
DEFAULT_WORKERS = 16

_MAX_REQUEST_LINE = 65536
_MAX_CONNECTIONS = 1024  # open connections; past that, new ones wait in the listen backlog
logger: logging.Logger = logging.getLogger(LOGGER_NAME)


class _BodyInput:
    """``wsgi.input`` that ends where the request's body ends, so the next request stays unread."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        self._stream = stream
        self.remaining = length

    def read(self, size: Optional[int] = -1) -> bytes:
        return self._take(self._stream.read, size)

    def readline(self, size: Optional[int] = -1) -> bytes:
        return self._take(self._stream.readline, size)

    def _take(self, reader: Callable[[int], bytes], size: Optional[int]) -> bytes:
        if self.remaining <= 0:
            return b""
        data = reader(self.remaining if size is None or size < 0 else min(size, self.remaining))
        self.remaining -= len(data)
        return data

    def readlines(self, hint: int = -1) -> List[bytes]:
        lines: List[bytes] = []
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


class _ServerHandler(ServerHandler):
    """wsgiref's handler: failures on the logger instead of stderr, and the keep-alive decision."""

    request_handler: WSGIRequestHandler  # wsgiref's back-pointer, for its access log
    headers: Optional[Headers]  # set by start_response; None again after close()
    body: _BodyInput
    wants_close = False
    keep_alive = False  # decided when the headers go out

    def cleanup_headers(self) -> None:
        super().cleanup_headers()
        # Only a response of known length after a body read to its end leaves the connection
        # in a state where the next request can follow.
        self.keep_alive = (
            not self.wants_close
            and self.body.remaining == 0
            and self.headers is not None
            and "Content-Length" in self.headers
        )
        if not self.keep_alive and self.headers is not None and self.http_version == "1.1":
            self.headers["Connection"] = "close"

    def handle_error(self) -> None:
        self.wants_close = True  # the 500 that may follow closes the connection
        super().handle_error()
        self.keep_alive = False

    def log_exception(self, exc_info: OptExcInfo) -> None:
        if not isinstance(exc_info[1], OSError):  # a client that stalled or left is no news
            logger.error("the WSGI application failed", exc_info=exc_info)


class _RequestHandler(WSGIRequestHandler):
    """http.server's request parsing, for one connection, one request at a time."""

    protocol_version = "HTTP/1.1"
    server: WebhookServer  # type: ignore[assignment]

    def __init__(self, connection: socket.socket, client_address: Any, server: WebhookServer) -> None:
        # Not socketserver's life cycle (which handles the connection in its constructor).
        self.connection = self.request = connection
        self.client_address = client_address
        self.server = server
        self.rfile = connection.makefile("rb")
        self.wfile = connection.makefile("wb")

    def serve_one(self) -> bool:
        """Read and answer one request; whether the connection may carry another."""
        try:
            return self._serve_one()
        finally:
            with contextlib.suppress(OSError, ValueError):
                self.wfile.flush()

    def _serve_one(self) -> bool:
        self.close_connection = True
        self.raw_requestline = self.rfile.readline(_MAX_REQUEST_LINE + 1)
        if not self.raw_requestline:
            return False  # the client closed the connection
        if len(self.raw_requestline) > _MAX_REQUEST_LINE:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return False
        if not self.parse_request():
            return False  # the error was answered
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        length_text = (self.headers.get("Content-Length") or "0").strip()
        length = int(length_text) if length_text.isdigit() else 0
        body = _BodyInput(cast(BinaryIO, self.rfile), length)
        handler = _ServerHandler(
            cast("IO[bytes]", body),
            cast("IO[bytes]", self.wfile),
            self.get_stderr(),
            self.get_environ(),
            multithread=True,
        )
        handler.body = body
        handler.http_version = "1.1" if self.request_version == "HTTP/1.1" else "1.0"
        handler.wants_close = (
            self.close_connection or chunked or not length_text.isdigit() or handler.http_version != "1.1"
        )
        handler.request_handler = self
        handler.run(self.server.get_app())
        return handler.keep_alive and not self.server.stopping

    def handle_expect_100(self) -> bool:
        """Say ``100 Continue`` at once (the writer is buffered), so the client sends its body."""
        answered = super().handle_expect_100()
        self.wfile.flush()
        return answered

    def has_buffered_input(self) -> bool:
        """Whether the next request already sits in the read buffer (a pipelining client)."""
        try:
            self.connection.setblocking(False)
            try:
                return bool(self.rfile.peek(1))  # type: ignore[attr-defined]
            finally:
                self.connection.settimeout(self.server.read_timeout)
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        for closing in (self.wfile.close, self.rfile.close):
            with contextlib.suppress(OSError, ValueError):
                closing()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the application logs each request (``make_wsgi_app`` does, with its outcome)."""


class WebhookServer:
    """A WSGI server: HTTP/1.1 keep-alive, ``workers`` threads answering, a read timeout on each connection.

    Serve it with :meth:`serve_forever` (Ctrl+C ends it) or in the background with
    :meth:`start`; :meth:`stop` (also on leaving a ``with`` block) ends the serving loop,
    shuts down open connections and closes the socket. Build it with :func:`make_server`.
    """

    def __init__(
        self,
        address: Tuple[str, int],
        app: WSGIApplication,
        read_timeout: float,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        if isinstance(read_timeout, bool) or not isinstance(read_timeout, (int, float)) or read_timeout <= 0:
            raise ValueError("read_timeout must be a number of seconds above 0")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError("workers must be a whole number of at least 1")
        self.read_timeout: float = float(read_timeout)
        self.workers: int = workers
        #: Set once stop() or shutdown() is called.
        self.stopping: bool = False
        self._app = app
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._socket = socket.create_server(address, family=family, backlog=128)
        self.server_address: Tuple[Any, ...] = self._socket.getsockname()
        self.server_port: int = int(self.server_address[1])
        self.base_environ: Dict[str, str] = {
            "SERVER_NAME": socket.getfqdn(str(self.server_address[0])),
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PORT": str(self.server_port),
            "REMOTE_HOST": "",
            "CONTENT_LENGTH": "",
            "SCRIPT_NAME": "",
        }
        self._ready: queue.SimpleQueue[Optional[_RequestHandler]] = queue.SimpleQueue()
        self._returned: queue.SimpleQueue[_RequestHandler] = queue.SimpleQueue()
        self._waker, self._wake_end = socket.socketpair()
        self._connections: Set[_RequestHandler] = set()
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._serving = threading.Event()
        self._serving_thread: Optional[int] = None
        self._stopped = threading.Event()

    def get_app(self) -> WSGIApplication:
        """The WSGI application it serves."""
        return self._app

    @property
    def connect_host(self) -> str:
        """The address to reach it at: 127.0.0.1 when bound to all addresses."""
        return connect_host(str(self.server_address[0]))

    @property
    def url(self) -> str:
        """``http://<host>:<port>/``, where it serves (through 127.0.0.1 when bound to all addresses)."""
        return f"http://{self.connect_host}:{self.server_port}/"

    # -- life cycle -------------------------------------------------------------------------

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Accept and serve connections until :meth:`stop` (or Ctrl+C in this thread)."""
        workers = self._start_workers()
        self._serving_thread = threading.get_ident()
        self._serving.set()
        try:
            self._watch(poll_interval)
        finally:
            for _ in workers:
                self._ready.put(None)  # each ends after the request it may be answering
            self._serving.clear()
            self._stopped.set()
            if self.stopping:  # stop() was called from this thread (a signal handler, say)
                self._close_everything()

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
        """Stop serving, shut down open connections, close the socket; safe to call twice.

        Workers still answering a request see their connection shut down: reads end,
        writes fail. A handler blocked in the application's own code is not interrupted:
        its thread is a daemon, so it does not keep the process alive.
        """
        self.stopping = True
        self._wake()
        if self._serving.is_set() and threading.get_ident() == self._serving_thread:
            return  # called inside serve_forever: it closes everything as it returns
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        elif self._serving.is_set():
            self._stopped.wait()  # serve_forever in another thread of the caller's
        self._close_everything()

    def shutdown(self) -> None:
        """Make :meth:`serve_forever` return and wait until it has, as ``socketserver``'s does.

        The socket stays open until :meth:`server_close`; :meth:`stop` does both.
        """
        self.stopping = True
        self._wake()
        if self._serving.is_set() and threading.get_ident() != self._serving_thread:
            self._stopped.wait()

    def server_close(self) -> None:
        """Shut down open connections and close the socket, as ``socketserver``'s does."""
        self._close_everything()

    def __enter__(self) -> WebhookServer:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.stop()

    # -- the watching thread ------------------------------------------------------------

    def _watch(self, poll_interval: float) -> None:
        idle: Dict[_RequestHandler, float] = {}  # connection -> when it is dropped
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_end, selectors.EVENT_READ, None)
            accepting = False
            while not self.stopping:
                want_accept = len(self._connections) < _MAX_CONNECTIONS
                if want_accept != accepting:
                    if want_accept:
                        selector.register(self._socket, selectors.EVENT_READ, self._socket)
                    else:
                        selector.unregister(self._socket)
                    accepting = want_accept
                timeout = min(poll_interval, self.read_timeout / 2)
                for key, _ in selector.select(timeout):
                    if key.data is None:
                        self._drain_waker()
                    elif key.data is self._socket:
                        self._accept(selector, idle)
                    else:
                        # A request starts to arrive: a worker answers it.
                        selector.unregister(key.fileobj)
                        del idle[key.data]
                        self._ready.put(key.data)
                self._take_back(selector, idle)
                self._drop_expired(selector, idle)
            for connection in idle:
                self._forget(connection)

    def _accept(self, selector: selectors.BaseSelector, idle: Dict[_RequestHandler, float]) -> None:
        try:
            sock, client_address = self._socket.accept()
        except OSError:
            return
        sock.settimeout(self.read_timeout)
        connection = _RequestHandler(sock, client_address, self)
        with self._lock:
            self._connections.add(connection)
        self._idle(selector, idle, connection)

    def _idle(
        self,
        selector: selectors.BaseSelector,
        idle: Dict[_RequestHandler, float],
        connection: _RequestHandler,
    ) -> None:
        idle[connection] = time.monotonic() + self.read_timeout
        selector.register(connection.connection, selectors.EVENT_READ, connection)

    def _take_back(self, selector: selectors.BaseSelector, idle: Dict[_RequestHandler, float]) -> None:
        while True:
            try:
                connection = self._returned.get_nowait()
            except queue.Empty:
                return
            self._idle(selector, idle, connection)

    def _drop_expired(self, selector: selectors.BaseSelector, idle: Dict[_RequestHandler, float]) -> None:
        now = time.monotonic()
        for connection in [c for c, deadline in idle.items() if deadline <= now]:
            selector.unregister(connection.connection)
            del idle[connection]
            self._forget(connection)  # silent for read_timeout: dropped without a word

    # -- the workers --------------------------------------------------------------------

    def _start_workers(self) -> List[threading.Thread]:
        workers = [
            threading.Thread(
                target=self._work, name=f"kenar-webhook-worker-{self.server_port}-{number}", daemon=True
            )
            for number in range(self.workers)
        ]
        for worker in workers:
            worker.start()
        return workers

    def _work(self) -> None:
        while True:
            connection = self._ready.get()
            if connection is None:
                return
            try:
                keep = connection.serve_one()
                while keep and connection.has_buffered_input():
                    keep = connection.serve_one()
            except Exception as exc:
                keep = False
                if not isinstance(exc, OSError):  # a client that stalled or left is no news
                    logger.error("the webhook server failed to serve a connection", exc_info=True)
            if keep and not self.stopping:
                self._returned.put(connection)
                self._wake()
            else:
                self._forget(connection)

    def _forget(self, connection: _RequestHandler) -> None:
        with self._lock:
            self._connections.discard(connection)
        connection.close()
        if not self.stopping:
            self._wake()  # the watcher may accept again

    # -- helpers ----------------------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._waker.send(b"\0")

    def _drain_waker(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_end.recv(4096)

    def _close_everything(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.connection.shutdown(socket.SHUT_RDWR)
        for closing in (self._socket, self._waker, self._wake_end):
            with contextlib.suppress(OSError):
                closing.close()


def make_server(
    host: str,
    port: int,
    app: WSGIApplication,
    *,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    workers: int = DEFAULT_WORKERS,
) -> WebhookServer:
    """A :class:`WebhookServer` for ``app`` on ``host``:``port`` (0 picks a free port).

    Use it like ``wsgiref.simple_server.make_server``, for example with
    ``make_wsgi_app(key, handler)``. ``read_timeout`` bounds how long a connection may stay
    silent while its request is awaited or read; then it is dropped (a body cut short gets
    ``408`` from ``make_wsgi_app``). ``workers`` threads answer requests, so at most that
    many handlers run at once; idle keep-alive connections wait without a thread.
    """
    return WebhookServer((host, port), app, read_timeout, workers)
