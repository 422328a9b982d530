"""The HTTP/1.1 server: routes requests to the Events operations and the admin endpoints."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple

from kenar_api_client.sandbox import _admin, _api, _faults, _generic, _oauth
from kenar_api_client.sandbox._rpc import Code, Reply, RpcError, error_reply
from kenar_api_client.sandbox._state import RequestRecord

if TYPE_CHECKING:
    from kenar_api_client.sandbox._sandbox import Sandbox

logger = logging.getLogger("kenar_api_client.sandbox")

MAX_BODY_BYTES = 1024 * 1024
ADMIN_PREFIX = "/_sandbox/"

_Operation = Callable[["Sandbox", "SandboxRequestHandler", str, bytes], None]


def _send_event(sandbox: Sandbox, handler: SandboxRequestHandler, query: str, body: bytes) -> None:
    _api.send_event(sandbox.state, handler.headers, query)


def _register_subscription(sandbox: Sandbox, handler: SandboxRequestHandler, query: str, body: bytes) -> None:
    _api.register_subscription(sandbox.state, handler.headers, body)


_OPERATIONS: Dict[str, _Operation] = {
    _api.SEND_EVENT_PATH: _send_event,
    _api.SUBSCRIPTIONS_PATH: _register_subscription,
}


class _BodyError(Exception):
    """The request body cannot be read; the connection is closed after answering."""


class SandboxHTTPServer(ThreadingHTTPServer):
    """A threaded server that can also close its open keep-alive connections when stopping."""

    daemon_threads = True

    def __init__(self, address: Tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._connections: Set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, SandboxRequestHandler)

    def track(self, connection: socket.socket) -> None:
        """Remember an open connection."""
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        """Forget a closed connection."""
        with self._connections_lock:
            self._connections.discard(connection)

    def stop(self) -> None:
        """Make ``serve_forever`` return now, then close open connections and the socket.

        ``shutdown()`` alone waits until the serving loop's next poll; connecting to
        ourselves wakes the loop at once, so a test suite can start and stop many sandboxes.
        """
        stopper = threading.Thread(target=self.shutdown, name="kenar-sandbox-stop", daemon=True)
        stopper.start()
        while stopper.is_alive():
            self._wake()
            stopper.join(0.005)
        self.close_connections()
        self.server_close()

    def _wake(self) -> None:
        host, port = self.server_address[:2]
        if host in ("", "0.0.0.0"):  # noqa: S104 - reached through loopback when bound to all
            host = "127.0.0.1"
        with contextlib.suppress(OSError):
            socket.create_connection((str(host), int(port)), timeout=0.1).close()

    def close_connections(self) -> None:
        """Shut down every open connection, so idle keep-alive handler threads end at once."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class SandboxRequestHandler(BaseHTTPRequestHandler):
    """One connection: answers Events calls like Kenar's gateway and the admin endpoints."""

    server: SandboxHTTPServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 60  # seconds an idle keep-alive connection is kept
    server_version = "kenar-sandbox"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def parse_request(self) -> bool:
        watcher = _LastLineWatcher(self.rfile)
        self.rfile = watcher  # type: ignore[assignment]
        try:
            parsed = super().parse_request()
        finally:
            self.rfile = watcher.stream
        if parsed and watcher.last_line == b"":  # the client closed before the blank line
            self.close_connection = True
            message = "the request headers never ended: the connection closed before the blank line"
            self.send(self.path.partition("?")[0], error_reply(RpcError(Code.INVALID_ARGUMENT, message)))
            return False
        return parsed

    def handle_request_line(self) -> None:
        """Answer the request of the current request line."""
        path, _, query = self.path.partition("?")
        fault = self.server.sandbox.fault_plan.take(self.command, path)
        if fault is not None:  # a fault injected on purpose answers instead
            _faults.serve(self, fault[0], fault[1], path, query)
            return
        body = self.read_request_body(path)
        if body is not None:
            self.send(path, self.dispatch(path, query, body))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_request_line

    def read_request_body(self, path: str) -> Optional[bytes]:
        """The request body; None if it cannot be read, once answered 400 (the connection closes)."""
        try:
            return self._read_body()
        except _BodyError as exc:
            self.close_connection = True
            self.send(path, error_reply(RpcError(Code.INVALID_ARGUMENT, str(exc))))
            return None

    def dispatch(self, path: str, query: str, body: bytes) -> Reply:
        """Run the admin endpoint, OAuth endpoint or API operation of ``path``; its reply."""
        if path.startswith(ADMIN_PREFIX):
            return self._admin_reply(path, body)
        if path.startswith(_oauth.PREFIX):
            answer = _oauth.handle(self.server.sandbox.state, self.command, path, query, self.headers, body)
            return Reply(answer.status, answer.body, answer.headers, recorded=False)
        return self._api_reply(path, query, body)

    def send(self, path: str, reply: Reply) -> None:
        """Record (if it is an API call) and send ``reply``."""
        if reply.recorded:
            self._record(path, reply)
        self._answer(reply.status, reply.payload, reply.headers)

    def drop(self) -> None:
        """Close the connection without an answer."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _api_reply(self, path: str, query: str, body: bytes) -> Reply:
        payload = b"{}"
        try:
            operation = _OPERATIONS.get(path)
            if operation is None:  # not an Events operation: the spec-driven layer answers
                state = self.server.sandbox.state
                payload = _generic.answer(state, self.command, path, query, self.headers, body)
            elif self.command != "POST":
                raise RpcError(
                    Code.UNIMPLEMENTED, f"Method Not Allowed: {path} accepts POST only", {"Allow": "POST"}
                )
            else:
                operation(self.server.sandbox, self, query, body)
        except RpcError as error:
            return error_reply(error)
        except Exception:
            logger.exception("the sandbox failed on %s %s", self.command, path)
            return error_reply(RpcError(Code.INTERNAL, "internal sandbox error"))
        return Reply(200, payload)

    def _admin_reply(self, path: str, body: bytes) -> Reply:
        try:
            if not _is_loopback(self.client_address[0]):
                raise RpcError(
                    Code.PERMISSION_DENIED, "the sandbox admin endpoints answer loopback clients only"
                )
            result = _admin.handle(self.server.sandbox, self.command, path, body)
        except RpcError as error:
            return error_reply(error, recorded=False)
        except Exception:
            logger.exception("the sandbox failed on %s %s", self.command, path)
            return error_reply(RpcError(Code.INTERNAL, "internal sandbox error"), recorded=False)
        return Reply(200, json.dumps(result, ensure_ascii=False).encode("utf-8"), recorded=False)

    def _record(self, path: str, reply: Reply) -> None:
        state = self.server.sandbox.state
        record = RequestRecord(self.command, path, reply.status, reply.code, reply.message, state.now())
        state.add_request(record)
        if reply.message is None:
            logger.info("%s %s -> %d", self.command, path, reply.status)
        else:
            code_name = _code_name(reply.code)
            logger.info("%s %s -> %d %s: %s", self.command, path, reply.status, code_name, reply.message)

    def _answer(self, status: int, payload: bytes, headers: Optional[Dict[str, str]] = None) -> None:
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        raw_length = (self.headers.get("Content-Length") or "0").strip()
        if not raw_length.isdigit():
            raise _BodyError("the Content-Length header is not a number")
        length = int(raw_length)
        if length > MAX_BODY_BYTES:
            raise _BodyError(f"the request body is larger than {MAX_BODY_BYTES} bytes")
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise _BodyError(
                f"the request body ended after {len(body)} of the {length} bytes its Content-Length announced"
            )
        return body

    def _read_chunked(self) -> bytes:
        chunks: List[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError as exc:
                raise _BodyError("the chunked request body is malformed") from exc
            total += size
            if total > MAX_BODY_BYTES:
                raise _BodyError(f"the request body is larger than {MAX_BODY_BYTES} bytes")
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers, then the final blank line
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request stderr line; requests are logged in ``_record``."""


class _LastLineWatcher:
    """A request stream that remembers the last line read: ``b""`` means the client closed."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.last_line: Optional[bytes] = None

    def readline(self, limit: int = -1) -> bytes:
        line: bytes = self.stream.readline(limit)
        self.last_line = line
        return line


def _code_name(code: Optional[int]) -> str:
    if code is None:
        return "-"
    try:
        return Code(code).name
    except ValueError:
        return str(code)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
