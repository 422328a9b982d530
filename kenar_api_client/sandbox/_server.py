"""The HTTP/1.1 server: routes requests to the Events operations and the admin endpoints."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from kenar_api_client._content_length import parse_content_length
from kenar_api_client._hosts import is_loopback_ip
from kenar_api_client._printable import printable
from kenar_api_client._threaded_server import ThreadedServer
from kenar_api_client.sandbox import _admin, _api, _faults, _generic, _oauth, _vetting
from kenar_api_client.sandbox._rpc import Code, Reply, RpcError, error_reply
from kenar_api_client.sandbox._state import RequestRecord

if TYPE_CHECKING:
    from kenar_api_client.sandbox._core import SandboxCore

logger = logging.getLogger("kenar_api_client.sandbox")

MAX_BODY_BYTES = 1024 * 1024
ADMIN_PREFIX = "/_sandbox/"
_MAX_LINE_BYTES = 1024  # a chunk-size or trailer line
_MAX_TRAILER_LINES = 32
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")

_Operation = Callable[["SandboxCore", "SandboxRequestHandler", str, bytes], None]


def _send_event(sandbox: SandboxCore, handler: SandboxRequestHandler, query: str, body: bytes) -> None:
    _api.send_event(sandbox.state, handler.headers, query)


def _register_subscription(
    sandbox: SandboxCore, handler: SandboxRequestHandler, query: str, body: bytes
) -> None:
    _api.register_subscription(sandbox.state, handler.headers, body)


_OPERATIONS: Dict[str, _Operation] = {
    _api.SEND_EVENT_PATH: _send_event,
    _api.SUBSCRIPTIONS_PATH: _register_subscription,
}


class _BodyError(Exception):
    """The request body cannot be read; the connection is closed after answering."""


class SandboxHTTPServer(ThreadedServer, HTTPServer):
    """A threaded server that also closes its open keep-alive connections when stopping."""

    def __init__(self, address: Tuple[str, int], sandbox: SandboxCore) -> None:
        self.sandbox = sandbox
        super().__init__(address, SandboxRequestHandler)


class SandboxRequestHandler(BaseHTTPRequestHandler):
    """One connection: answers Events calls like Kenar's gateway and the admin endpoints."""

    server: SandboxHTTPServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 60  # seconds an idle keep-alive connection is kept
    request_timeout = 10.0  # seconds the rest of a started request may take to arrive
    server_version = "kenar-sandbox"
    sys_version = ""

    def handle_one_request(self) -> None:
        self.connection.settimeout(self.timeout)
        super().handle_one_request()

    def parse_request(self) -> bool:
        # The request line has arrived: the headers and body must follow promptly.
        self.connection.settimeout(self.request_timeout)
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
            self.serve_fault(fault[0], fault[1], path, query)
            return
        body = self.accept_request(path)
        if body is not None:
            self.send(path, self.dispatch(path, query, body))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_request_line

    def accept_request(self, path: str) -> Optional[bytes]:
        """The request body, read and vetted (see ``_vetting``); None once refused and answered.

        A body that cannot be read is answered 400 and the connection closes; a request a
        web page could have forged is answered 403.
        """
        try:
            body = self._read_body()
        except _BodyError as exc:
            self.close_connection = True
            self.send(path, error_reply(RpcError(Code.INVALID_ARGUMENT, str(exc))))
            return None
        admin = path.startswith(ADMIN_PREFIX)
        try:
            _vetting.vet(self.command, self.headers, body, admin=admin, address=self._address())
        except RpcError as error:
            self.send(path, error_reply(error, recorded=not admin))
            return None
        return body

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

    def serve_fault(self, rule: _faults.FaultRule, operation: str, path: str, query: str) -> None:
        """Answer this request with the fault ``rule`` injects, and record it."""
        sandbox = self.server.sandbox
        plan = sandbox.fault_plan
        recorded = path not in _faults.OAUTH_OPERATIONS

        def note(took_effect: bool, status: Optional[int]) -> None:
            fault = _faults.InjectedFault(
                operation, rule.fault, self.command, path, took_effect, status, sandbox.state.now()
            )
            plan.record(fault)

        # Each fault is on record before the client can see it.
        if rule.fault == "drop-before-read":
            note(False, None)
            self._hold(rule)
            self.drop()
            return
        body = self.accept_request(path)
        if body is None:  # unreadable or refused: answered like any such request
            return
        if not rule.takes_effect:
            refusal = rule.reply(recorded, operation) if rule.fault in _faults.STATUS_FAULTS else None
            note(False, None if refusal is None else refusal.status)
            self._hold(rule)
            self._send_or_drop(path, refusal)
            return
        real = self.dispatch(path, query, body)
        reply: Optional[Reply] = real
        if rule.fault in _faults.STATUS_FAULTS:
            reply = rule.reply(recorded, operation)
        elif rule.fault == "drop-after-read":
            reply = None
        elif rule.fault == "malformed":
            headers = {**real.headers, "Content-Type": "application/json"}
            reply = Reply(
                real.status, _faults.MALFORMED_BODY, headers, real.code, real.message, real.recorded
            )
        note(real.status < 400, None if reply is None else reply.status)
        if rule.fault == "trickle" and reply is not None:
            self.send_trickled(path, reply, rule.delay)
            return
        if not self._hold(rule):
            reply = None  # the sandbox stopped meanwhile
        self._send_or_drop(path, reply)

    def _hold(self, rule: _faults.FaultRule) -> bool:
        """Wait the rule's ``delay``; False if the sandbox stopped meanwhile."""
        return rule.delay <= 0 or self.server.sandbox.fault_plan.wait(rule.delay)

    def send_trickled(self, path: str, reply: Reply, seconds: float) -> None:
        """Send ``reply``'s status line and headers at once, then its body byte by byte over ``seconds``."""
        if reply.recorded:
            self._record(path, reply)
        payload = reply.payload
        self._answer(reply.status, b"", reply.headers, content_length=len(payload))
        plan = self.server.sandbox.fault_plan
        pause = seconds / max(1, len(payload))
        try:
            for index in range(len(payload)):
                if index and not plan.wait(pause):
                    self.drop()  # the sandbox stopped meanwhile
                    return
                self.wfile.write(payload[index : index + 1])
                self.wfile.flush()
        except OSError:  # the client gave up: nothing more to send
            self.close_connection = True

    def _send_or_drop(self, path: str, reply: Optional[Reply]) -> None:
        if reply is None:
            self.drop()
        else:
            self.send(path, reply)

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
            logger.exception("the sandbox failed on %s %s", self.command, printable(path))
            return error_reply(RpcError(Code.INTERNAL, "internal sandbox error"))
        return Reply(200, payload)

    def _admin_reply(self, path: str, body: bytes) -> Reply:
        try:
            if not is_loopback_ip(self.client_address[0]):
                raise RpcError(
                    Code.PERMISSION_DENIED, "the sandbox admin endpoints answer loopback clients only"
                )
            result = _admin.handle(self.server.sandbox, self.command, path, body)
        except RpcError as error:
            return error_reply(error, recorded=False)
        except Exception:
            logger.exception("the sandbox failed on %s %s", self.command, printable(path))
            return error_reply(RpcError(Code.INTERNAL, "internal sandbox error"), recorded=False)
        return Reply(200, json.dumps(result, ensure_ascii=False).encode("utf-8"), recorded=False)

    def _record(self, path: str, reply: Reply) -> None:
        state = self.server.sandbox.state
        record = RequestRecord(self.command, path, reply.status, reply.code, reply.message, state.now())
        state.add_request(record)
        if reply.message is None:
            logger.info("%s %s -> %d", self.command, printable(path), reply.status)
        else:
            code_name = _code_name(reply.code)
            logger.info(
                "%s %s -> %d %s: %s",
                self.command,
                printable(path),
                reply.status,
                code_name,
                printable(reply.message),
            )

    def _answer(
        self,
        status: int,
        payload: bytes,
        headers: Optional[Dict[str, str]] = None,
        *,
        content_length: Optional[int] = None,
    ) -> None:
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        self.send_header("Content-Length", str(len(payload) if content_length is None else content_length))
        for name, value in headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _address(self) -> Tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def _read_body(self) -> bytes:
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._read_chunked()
            return self._read_sized()
        except socket.timeout as exc:  # TimeoutError from Python 3.10
            raise _BodyError(
                f"the request body did not arrive within {self.request_timeout:g} seconds"
            ) from exc

    def _read_sized(self) -> bytes:
        length = parse_content_length(self.headers.get("Content-Length") or "0", MAX_BODY_BYTES)
        if length is None:
            raise _BodyError("the Content-Length header is not a number")
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
            size_text = self._read_line().split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_text):
                raise _BodyError("the chunked request body is malformed: a chunk size is not a hex number")
            size = int(size_text, 16)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BodyError(f"the request body is larger than {MAX_BODY_BYTES} bytes")
            if size == 0:
                break
            chunk = self.rfile.read(size)
            if len(chunk) != size or self._read_line().strip():
                raise _BodyError("the chunked request body is malformed: a chunk is cut short")
            chunks.append(chunk)
        for _ in range(_MAX_TRAILER_LINES):  # trailers, then the final blank line
            if not self._read_line().strip():
                return b"".join(chunks)
        raise _BodyError(f"the chunked request body has more than {_MAX_TRAILER_LINES} trailer lines")

    def _read_line(self) -> bytes:
        line = self.rfile.readline(_MAX_LINE_BYTES + 1)
        if len(line) > _MAX_LINE_BYTES or not line.endswith(b"\n"):
            raise _BodyError(
                f"the chunked request body is malformed: a line is unfinished or over {_MAX_LINE_BYTES} bytes"
            )
        return line

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
