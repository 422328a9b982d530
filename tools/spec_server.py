"""A loopback server that answers every operation of the spec with a sample body and records requests.

Each request is matched to an operation by method and path template; a match is answered
200 with a schema-valid sample of the operation's answer (every field filled, as the
generated docs' examples are), anything else 404 with a ``google.rpc.Status`` body.
Requests are recorded per run (``begin``/``take``), so that the comparison can tell which
run sent what.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Pattern, Tuple

from generator.render_docs import model_by_class, model_sample
from generator.spec import Spec

Route = Tuple[str, Pattern[str], bytes]
NOT_FOUND = json.dumps({"code": 5, "message": "no such operation", "details": []}).encode()
#: Headers that describe the connection or follow from the body, not the call.
CONNECTION_HEADERS = frozenset({"host", "content-length", "connection", "accept-encoding"})


def routes(spec: Spec) -> List[Route]:
    """(method, path pattern, answer body) per operation; a path value is one segment or more."""
    models = model_by_class(spec)
    found = []
    for op in spec.operations:
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^?]+?", re.escape(op.path))
        answer = {} if op.response is None else model_sample(models[str(op.response.name)], spec)
        found.append((op.http_method, re.compile(pattern + r"(\?.*)?"), json.dumps(answer).encode()))
    # Literal paths before templated ones, so /assets/district is not read as /assets/district/{x}.
    found.sort(key=lambda route: route[1].pattern.count("[^?]+?"))
    return found


class SpecServer:
    """The recording server; ``url`` once started."""

    def __init__(self, spec: Spec) -> None:
        self._routes = routes(spec)
        self._lock = threading.Lock()
        self._requests: List[Dict[str, Any]] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SpecServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def begin(self) -> None:
        """Forget what was received: what comes next belongs to the next run."""
        with self._lock:
            self._requests = []

    def take(self) -> List[Dict[str, Any]]:
        """The requests received since ``begin``, in order."""
        with self._lock:
            return list(self._requests)

    def answer(self, method: str, path: str) -> Tuple[int, bytes]:
        for route_method, pattern, body in self._routes:
            if route_method == method and pattern.fullmatch(path):
                return 200, body
        return 404, NOT_FOUND

    def receive(self, method: str, path: str, headers: Dict[str, str], body: bytes) -> Tuple[int, bytes]:
        """Record one request; the status and body to answer it with."""
        with self._lock:
            self._requests.append(recorded(method, path, headers, body))
        return self.answer(method, path)

    def _handler(self) -> type:
        receive = self.receive

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, payload = receive(
                    self.command, self.path, dict(self.headers), self.rfile.read(length)
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

            def log_message(self, *args: Any) -> None:  # quiet: the comparison reports what matters
                pass

        return Handler


def recorded(method: str, path: str, headers: Dict[str, str], body: bytes) -> Dict[str, Any]:
    """A request as the comparison sees it: the body as a JSON value when it is JSON."""
    value: Optional[Any]
    try:
        value = {"json": json.loads(body)} if body else None
    except ValueError:
        value = {"bytes": body.decode("utf-8", "replace")}
    return {
        "method": method,
        "path": path,
        "headers": {k.lower(): v for k, v in sorted(headers.items()) if k.lower() not in CONNECTION_HEADERS},
        "body": value,
    }
