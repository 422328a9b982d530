"""Loopback HTTP servers the tests talk to, recording exactly what they received."""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import sys
import threading
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple, Union
from urllib.parse import parse_qs, urlsplit


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    raw_path: str
    headers: Message
    body: bytes
    connection_id: int

    @property
    def path(self) -> str:
        return urlsplit(self.raw_path).path

    @property
    def query(self) -> Dict[str, List[str]]:
        return parse_qs(urlsplit(self.raw_path).query, keep_blank_values=True)

    @property
    def raw_query(self) -> str:
        return urlsplit(self.raw_path).query

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    """What the server answers."""

    status: int = 200
    body: Union[bytes, str, Dict[str, Any], List[Any]] = b"{}"
    headers: Dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay: float = 0.0

    def encoded_body(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode("utf-8")


Responder = Callable[[RecordedRequest], Reply]

# Sockets that keep ports of refused_port() taken until the test process ends.
_held_ports: List[socket.socket] = []


def refused_port() -> int:
    """A 127.0.0.1 port where a connection is refused, for as long as this process runs.

    A probe that is closed again frees its port for anyone, and a later test could then reach
    some other process's server there. This one stays bound, never listening: the kernel
    refuses every connection to it and gives the port to no one else.
    """
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    _held_ports.append(probe)
    return int(probe.getsockname()[1])


def reserved_port() -> int:
    """A free 127.0.0.1 port for a server that a test starts later and must tell its port.

    Prefer port 0 and reading the port the server reports. Where a program can only be told
    its port, a plain probe would free it for any process's next bind or outgoing connection
    before that program binds it. Here one connection is made and the accepted side closed
    first: the port rests in TIME_WAIT for a minute, which keeps the kernel from handing it
    out, while a server that binds with SO_REUSEADDR (http.server, wsgiref, uvicorn,
    redis-server all do) may take it.
    """
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        address = listener.getsockname()
        with socket.create_connection(address):
            accepted, _ = listener.accept()
            accepted.close()  # the side that closes first keeps the TIME_WAIT: the port's side
    return int(address[1])


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server on a free 127.0.0.1 port, served by ``thread``.

    ``stop()`` leaves nothing behind: it ends the serving loop, closes the listening socket,
    shuts down the connections still open (a keep-alive handler would otherwise wait for
    the client's next request) and joins every handler thread, so that no handler of one
    test is still running, or logging, in the next.
    """

    daemon_threads = True
    # The default backlog (5) drops connections a burst of concurrent clients makes (the
    # kernel then retries them seconds later): room for hundreds at once.
    request_queue_size = 1024

    def __init__(self, handler: type) -> None:
        self._lock = threading.Lock()
        self._connections: List[socket.socket] = []
        self._handlers: List[threading.Thread] = []
        super().__init__(("127.0.0.1", 0), handler)
        # A short poll interval keeps shutdown() (test teardown) fast.
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address))
        thread.daemon = True
        with self._lock:
            self._handlers = [handler for handler in self._handlers if handler.is_alive()]
            self._handlers.append(thread)
            self._connections.append(request)
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            if request in self._connections:
                self._connections.remove(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer (its timeout, its size limit, a stopped server) is
        # what many tests provoke: not worth a traceback on stderr. Anything else is.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.shutdown()
        self.server_close()
        with self._lock:
            connections, handlers = list(self._connections), list(self._handlers)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for handler in handlers:
            handler.join(timeout=30)


def loopback_server(handler: type) -> Tuple[LoopbackHTTPServer, threading.Thread]:
    """A threaded server for ``handler`` on a free 127.0.0.1 port, and the thread to serve it."""
    httpd = LoopbackHTTPServer(handler)
    return httpd, httpd.thread


class RecordingServer:
    """A threaded HTTP/1.1 keep-alive server on 127.0.0.1 that records every request.

    Answers come from ``queue_reply`` (in order) or else from ``responder`` (default: 200 ``{}``).
    """

    def __init__(self, responder: Optional[Responder] = None) -> None:
        self.requests: List[RecordedRequest] = []
        self.responder: Responder = responder or (lambda request: Reply())
        self._queued: queue.Queue[Reply] = queue.Queue()
        self._lock = threading.Lock()
        self.connections = 0
        self.max_open_connections = 0
        self._open_connections = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def setup(self) -> None:
                super().setup()
                with server._lock:
                    server.connections += 1
                    self.connection_id = server.connections
                    server._open_connections += 1
                    server.max_open_connections = max(server.max_open_connections, server._open_connections)

            def finish(self) -> None:
                try:
                    super().finish()
                finally:
                    with server._lock:
                        server._open_connections -= 1

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = RecordedRequest(self.command, self.path, self.headers, body, self.connection_id)
                with server._lock:
                    server.requests.append(request)
                try:
                    reply = server._queued.get_nowait()
                except queue.Empty:
                    reply = server.responder(request)
                if reply.delay:
                    threading.Event().wait(reply.delay)
                payload = reply.encoded_body()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd, self._thread = loopback_server(Handler)

    @property
    def address(self) -> Tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def queue_reply(self, *replies: Reply) -> None:
        for reply in replies:
            self._queued.put(reply)

    @property
    def last(self) -> RecordedRequest:
        assert self.requests, "the server received no request"
        return self.requests[-1]

    def start(self) -> RecordingServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.stop()
