"""``kenar-events listen --forward-to URL``: pass each delivery on to the app's own endpoint.

By default the verifying WSGI app runs first; a delivery it accepted, and whose event the
listener took (its type is among ``--events``, it is no redelivery the delivery log knows),
is posted to the app with the headers and body exactly as received (the identification
key included), and the app's answer is printed. The sender gets 200 if the app answered
2xx, else 502, so a failing app sees Kenar's retries as it would in production.

With ``--skip-verify`` nothing is checked here: every request is relayed to the app, which
checks the key itself, and the sender gets the app's own answer. Only the first
:data:`~kenar_api_client._bounded_post.MAX_ANSWER_BYTES` of any answer are read.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Tuple

from kenar_api_client._bounded_post import PostResult, post
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
_BAD_GATEWAY = "502 Bad Gateway"


class RequestInThread(threading.local):
    """The request this thread is serving, and whether the listener took its event."""

    environ: Optional[WSGIEnvironment] = None
    taken: bool = False


def tracking(app: WSGIApplication, request: RequestInThread) -> WSGIApplication:
    """``app``, with each request noted in ``request`` for the handler and the forwarder."""

    def tracked_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request.environ, request.taken = environ, False
        return app(environ, start_response)

    return tracked_app


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


def forwarding(app: WSGIApplication, url: str, out: Output, request: RequestInThread) -> WSGIApplication:
    """``app`` (the verifying receiver), then each delivery whose event it took posted on to ``url``."""

    def forward_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        tee = _Tee(environ["wsgi.input"])
        environ["wsgi.input"] = tee
        answered: List[Any] = []

        def keep_answer(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
            answered.extend((status, headers))
            return lambda data: None

        body = b"".join(app(environ, keep_answer))
        status, headers = answered
        # Refused (the sender learns why), or not for the app (another type, a redelivery).
        if not str(status).startswith("200") or not request.taken:
            start_response(status, headers)
            return [body]
        result = _forward(url, environ, bytes(tee.data), out, "the sender is told 502 and will retry")
        if result.status is not None and 200 <= result.status < 300:
            start_response(status, headers)
            return [body]
        return _answer(start_response, _BAD_GATEWAY, {"error": f"the app at {url} did not answer 2xx"})

    return forward_app


def relaying(
    url: str, out: Output, limit: int, on_body: Callable[[bytes], bool], read_body: Callable[..., bytes]
) -> WSGIApplication:
    """``--skip-verify``: each request's body (up to ``limit`` bytes) relayed to ``url``, and back its answer.

    ``on_body`` prints what it can of the body and says whether to relay it (``--events``).
    """

    def relay_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        length_text = str(environ.get("CONTENT_LENGTH") or "").strip()
        length = int(length_text) if length_text.isdigit() else -1
        if length > limit:
            return _answer(start_response, "413 Payload Too Large", {"error": "payload too large"})
        body = read_body(environ, length, limit)
        if not on_body(body):
            return _answer(start_response, "200 OK", {"status": "ok"})
        result = _forward(url, environ, body, out, "relayed to the sender")
        if result.status is None:
            return _answer(start_response, _BAD_GATEWAY, {"error": f"the app at {url} did not answer"})
        reply_headers = [("Content-Type", "application/json"), ("Content-Length", str(len(result.body)))]
        start_response(f"{result.status} {_reason(result.status)}", reply_headers)
        return [result.body]

    return relay_app


def forwarded_headers(environ: WSGIEnvironment) -> Dict[str, str]:
    """The request's end-to-end headers, as received (WSGI gives their names in capitals)."""
    headers: Dict[str, str] = {}
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = str(environ["CONTENT_TYPE"])
    for name, value in environ.items():
        if name.startswith("HTTP_") and name not in _NOT_FORWARDED:
            headers["-".join(part.capitalize() for part in name[5:].split("_"))] = str(value)
    return headers


def _forward(url: str, environ: WSGIEnvironment, body: bytes, out: Output, not_2xx: str) -> PostResult:
    started = time.monotonic()
    result = post(url, forwarded_headers(environ), body, FORWARD_TIMEOUT)
    seconds = time.monotonic() - started
    out.line(_result_line(url, result, seconds, not_2xx))
    document = {"url": url, "status": result.status, "error": result.error, "seconds": round(seconds, 6)}
    out.document({"forwarded": document})
    return result


def _answer(start_response: StartResponse, status: str, document: Dict[str, str]) -> List[bytes]:
    reply = json.dumps(document).encode("utf-8")
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(reply)))])
    return [reply]


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _result_line(url: str, result: PostResult, seconds: float, not_2xx: str) -> str:
    took = f"{seconds * 1000:.0f} ms"
    if result.status is None:
        return f"  -> POST {url} failed after {took}: {result.error}"
    cut = f" (answer cut at {len(result.body)} bytes)" if result.truncated else ""
    verdict = "" if 200 <= result.status < 300 else f": not 2xx, {not_2xx}"
    return f"  -> POST {url} [{result.status}] {took}{verdict}{cut}"
