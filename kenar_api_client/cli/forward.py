"""``kenar-events listen --forward-to URL``: pass each verified delivery on to the app's own endpoint.

The verifying WSGI app runs first; a delivery it accepted is posted to the app with the
headers and body exactly as received (the identification key included), and the app's
answer is printed. The sender gets 200 if the app answered 2xx, else 502, so a failing app
sees Kenar's retries as it would in production.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Tuple

from kenar_api_client.cli.output import Output

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

FORWARD_TIMEOUT = 30.0  # seconds the app may take to answer
# Hop-by-hop headers, and those http.client sets itself for the new request.
_NOT_FORWARDED = {
    "HTTP_HOST",
    "HTTP_CONNECTION",
    "HTTP_KEEP_ALIVE",
    "HTTP_TE",
    "HTTP_TRAILER",
    "HTTP_TRANSFER_ENCODING",
    "HTTP_UPGRADE",
    "HTTP_PROXY_CONNECTION",
    "HTTP_CONTENT_LENGTH",
}


class _Tee:
    """A request body stream that keeps a copy of what was read from it."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.data = bytearray()

    def read(self, size: int = -1) -> bytes:
        chunk: bytes = self._stream.read(size)
        self.data += chunk
        return chunk

    def readline(self, size: int = -1) -> bytes:
        line: bytes = self._stream.readline(size)
        self.data += line
        return line


def forwarding(app: WSGIApplication, url: str, out: Output) -> WSGIApplication:
    """``app`` (the verifying receiver), then each delivery it accepted posted on to ``url``."""

    def forward_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        tee = _Tee(environ["wsgi.input"])
        environ["wsgi.input"] = tee
        answered: List[Any] = []

        def keep_answer(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
            answered.extend((status, headers))
            return lambda data: None

        body = b"".join(app(environ, keep_answer))
        status, headers = answered
        if not str(status).startswith("200"):  # refused: the sender learns why, the app sees nothing
            start_response(status, headers)
            return [body]
        code, error, seconds = _post(url, forwarded_headers(environ), bytes(tee.data))
        out.line(_result_line(url, code, error, seconds))
        result = {"url": url, "status": code, "error": error, "seconds": round(seconds, 6)}
        out.document({"forwarded": result})
        if code is not None and 200 <= code < 300:
            start_response(status, headers)
            return [body]
        reply = json.dumps({"error": f"the app at {url} did not answer 2xx"}).encode("utf-8")
        reply_headers = [("Content-Type", "application/json"), ("Content-Length", str(len(reply)))]
        start_response("502 Bad Gateway", reply_headers)
        return [reply]

    return forward_app


def forwarded_headers(environ: WSGIEnvironment) -> Dict[str, str]:
    """The request's end-to-end headers, as received (WSGI gives their names in capitals)."""
    headers: Dict[str, str] = {}
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = str(environ["CONTENT_TYPE"])
    for name, value in environ.items():
        if name.startswith("HTTP_") and name not in _NOT_FORWARDED:
            headers["-".join(part.capitalize() for part in name[5:].split("_"))] = str(value)
    return headers


def _post(url: str, headers: Dict[str, str], body: bytes) -> Tuple[Optional[int], Optional[str], float]:
    from kenar_api_client.sandbox._delivery import post

    started = time.monotonic()
    code, error = post(url, headers, body, FORWARD_TIMEOUT)
    return code, error, time.monotonic() - started


def _result_line(url: str, code: Optional[int], error: Optional[str], seconds: float) -> str:
    took = f"{seconds * 1000:.0f} ms"
    if code is None:
        return f"  -> POST {url} failed after {took}: {error}"
    verdict = "" if 200 <= code < 300 else ": not 2xx, the sender is told 502 and will retry"
    return f"  -> POST {url} [{code}] {took}{verdict}"
