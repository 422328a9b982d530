"""Loopback HTTP servers the tests talk to, recording exactly what they received."""

from __future__ import annotations

import json
import queue
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


class _LoopbackHTTPServer(ThreadingHTTPServer):
    # The default backlog (5) drops connections a burst of concurrent clients makes (the
    # kernel then retries them seconds later): room for hundreds at once.
    request_queue_size = 1024


def loopback_server(handler: type) -> Tuple[ThreadingHTTPServer, threading.Thread]:
    """A threaded server for ``handler`` on a free 127.0.0.1 port, and the thread to serve it."""
    httpd = _LoopbackHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    # A short poll interval keeps shutdown() (test teardown) fast.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    return httpd, thread


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
        self._httpd.shutdown()
        self._httpd.server_close()
