"""make_asgi_app: real deliveries under uvicorn, the same answers and log lines as the WSGI app,
and the ASGI corners (chunked bodies, disconnects, lifespan) driven by hand."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys
from typing import Any, Dict, List, Optional, Tuple

import pytest

from kenar_api_client.pytest_plugin import WebhookReceiver
from kenar_api_client.sandbox import DEMO_IDENTIFICATION_KEY, DOCUMENTED_EVENT_TYPES, Sandbox
from kenar_api_client.webhooks import (
    NewMessageEvent,
    UnknownEvent,
    WebhookEvent,
    make_asgi_app,
    make_wsgi_app,
)

KEY = DEMO_IDENTIFICATION_KEY
VALID = json.dumps({"type": "USER_ACCESS_REVOCATION", "user_access_revocation": {"user_id": "u-1"}}).encode()


def test_every_documented_delivery_reaches_an_async_handler(
    kenar_sandbox: Sandbox, kenar_receiver: WebhookReceiver
) -> None:
    received: List[WebhookEvent] = []

    async def handle(event: WebhookEvent) -> None:
        await asyncio.sleep(0)
        received.append(event)

    kenar_receiver.serve(make_asgi_app(KEY, handle), "/kenar/webhook")

    deliveries = [kenar_sandbox.trigger(t, require_subscription=False) for t in DOCUMENTED_EVENT_TYPES]
    deliveries.append(kenar_sandbox.trigger("SOMETHING_NEW", x=1))

    assert [(d.status, len(d.attempts)) for d in deliveries] == [(200, 1)] * 6
    assert [event.type for event in received] == [*DOCUMENTED_EVENT_TYPES, "SOMETHING_NEW"]
    assert isinstance(received[0], NewMessageEvent)
    assert isinstance(received[-1], UnknownEvent)
    assert kenar_receiver.webhook_url.endswith("/kenar/webhook")


def test_a_plain_function_is_a_handler_too(kenar_sandbox: Sandbox, kenar_receiver: WebhookReceiver) -> None:
    received: List[WebhookEvent] = []
    kenar_receiver.serve(make_asgi_app(KEY, received.append))

    assert kenar_sandbox.trigger("PAYMENT_TRANSACTION").status == 200
    assert [event.type for event in received] == ["PAYMENT_TRANSACTION"]


def test_a_wrong_key_is_refused_before_the_handler(
    kenar_sandbox: Sandbox, kenar_receiver: WebhookReceiver
) -> None:
    received: List[WebhookEvent] = []
    kenar_receiver.serve(make_asgi_app("another-key", received.append))

    delivery = kenar_sandbox.trigger("NEW_CHATBOT_MESSAGE")

    assert (delivery.outcome, delivery.status) == ("failed", 401)
    assert received == []


# -- the same answers and log lines as the WSGI app ----------------------------------------


def _head(method: str, headers: Dict[str, str], length: Optional[int]) -> bytes:
    lines = [f"{method} /hook HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


REQUESTS: Dict[str, Tuple[str, Dict[str, str], bytes, Optional[int]]] = {
    # name: method, headers, body, declared Content-Length (None: the body's length)
    "valid": ("POST", {"Authorization": KEY}, VALID, None),
    "get": ("GET", {"Authorization": KEY}, b"", 0),
    "no key": ("POST", {}, VALID, None),
    "bearer": ("POST", {"Authorization": f"Bearer {KEY}"}, VALID, None),
    "huge length": ("POST", {"Authorization": KEY}, b"", 10**12),
    "not json": ("POST", {"Authorization": KEY}, b"not json", None),
    "not an object": ("POST", {"Authorization": KEY}, b"[1]", None),
    "no payload": ("POST", {"Authorization": KEY}, b'{"type": "NEW_MESSAGE"}', None),
    "handler fails": ("POST", {"Authorization": KEY}, b'{"type": "FAIL"}', None),
}


def exchange(port: int, method: str, headers: Dict[str, str], body: bytes, length: Optional[int]) -> bytes:
    head = _head(method, headers, len(body) if length is None else length)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(head + body)
        answer = b""
        while True:
            chunk = raw.recv(65536)
            if not chunk:
                return answer
            answer += chunk


def summary(answer: bytes) -> Tuple[int, Any, Optional[str]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    allow = next((line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("allow:")), None)
    return int(lines[0].split()[1]), json.loads(body), allow


def handler(event: WebhookEvent) -> None:
    if event.type == "FAIL":
        raise RuntimeError("the app failed")


def run_all(receiver: WebhookReceiver, app: Any, caplog: pytest.LogCaptureFixture) -> List[Any]:
    receiver.serve(app)
    port = int(receiver.url.rsplit(":", 1)[1].strip("/"))
    results = []
    for name, (method, headers, body, length) in REQUESTS.items():
        caplog.clear()
        answer = summary(exchange(port, method, headers, body, length))
        lines = [
            (r.levelname, r.getMessage()) for r in caplog.records if r.name == "kenar_api_client.webhooks"
        ]
        results.append((name, answer, lines, [bool(r.exc_info) for r in caplog.records if r.exc_info]))
    return results


def test_the_asgi_app_answers_and_logs_as_the_wsgi_app_does(
    kenar_receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kenar_api_client.webhooks")

    wsgi = run_all(kenar_receiver, make_wsgi_app(KEY, handler), caplog)
    asgi = run_all(kenar_receiver, make_asgi_app(KEY, handler), caplog)

    assert asgi == wsgi
    statuses = {name: answer[0] for name, answer, _, _ in asgi}
    assert statuses == {
        "valid": 200,
        "get": 405,
        "no key": 401,
        "bearer": 401,
        "huge length": 413,
        "not json": 400,
        "not an object": 400,
        "no payload": 400,
        "handler fails": 500,
    }
    assert dict((name, answer[2]) for name, answer, _, _ in asgi)["get"] == "POST"
    assert [lines for name, _, lines, _ in asgi if name == "valid"] == [
        [
            (
                "INFO",
                "webhook delivery handled: status=200 event_type='USER_ACCESS_REVOCATION' remote=127.0.0.1",
            )
        ]
    ]
    assert [tracebacks for name, _, _, tracebacks in asgi if name == "handler fails"] == [[True]]


# -- ASGI corners, driven by hand --------------------------------------------------------


class Driver:
    """Calls an ASGI app with the given request messages and collects what it sends."""

    def __init__(self, messages: List[Dict[str, Any]]) -> None:
        self.messages = list(messages)
        self.received = 0
        self.sent: List[Dict[str, Any]] = []

    async def receive(self) -> Dict[str, Any]:
        self.received += 1
        if self.messages:
            return self.messages.pop(0)
        await asyncio.sleep(3600)  # as a server does when the client sends nothing more
        raise AssertionError("unreachable")

    async def send(self, message: Dict[str, Any]) -> None:
        self.sent.append(message)

    def run(self, app: Any, scope: Dict[str, Any]) -> Driver:
        asyncio.run(asyncio.wait_for(app(scope, self.receive, self.send), timeout=5))
        return self

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])


def http_scope(headers: List[Tuple[bytes, bytes]], method: str = "POST") -> Dict[str, Any]:
    return {"type": "http", "method": method, "path": "/", "headers": headers, "client": ("10.0.0.9", 5)}


def test_a_chunked_body_over_the_limit_is_413_without_reading_on() -> None:
    app = make_asgi_app(KEY, handler, max_body_bytes=100)
    chunks = [{"type": "http.request", "body": b"x" * 60, "more_body": True} for _ in range(5)]
    driver = Driver(chunks).run(app, http_scope([(b"authorization", KEY.encode())]))
    assert driver.status == 413
    assert driver.received == 2  # 120 bytes seen: enough to know


def test_a_body_in_several_messages_is_put_together() -> None:
    received: List[WebhookEvent] = []
    app = make_asgi_app(KEY, received.append)
    half = len(VALID) // 2
    messages = [
        {"type": "http.request", "body": VALID[:half], "more_body": True},
        {"type": "http.request", "body": VALID[half:], "more_body": False},
    ]
    assert Driver(messages).run(app, http_scope([(b"authorization", KEY.encode())])).status == 200
    assert [event.type for event in received] == ["USER_ACCESS_REVOCATION"]


def test_a_client_gone_mid_body_is_a_408_and_the_handler_is_not_called() -> None:
    received: List[WebhookEvent] = []
    app = make_asgi_app(KEY, received.append)
    messages = [{"type": "http.request", "body": VALID[:10], "more_body": True}, {"type": "http.disconnect"}]
    assert Driver(messages).run(app, http_scope([(b"authorization", KEY.encode())])).status == 408
    assert received == []


@pytest.mark.parametrize(
    "headers",
    [
        [(b"authorization", KEY.encode()), (b"authorization", KEY.encode())],  # uvicorn passes both
        [(b"authorization", KEY.encode()), (b"content-length", b"ten")],  # h11 refuses it first
    ],
    ids=["two keys", "bad length"],
)
def test_what_servers_may_pass_on_is_refused(headers: List[Tuple[bytes, bytes]]) -> None:
    received: List[WebhookEvent] = []
    app = make_asgi_app(KEY, received.append)
    driver = Driver([{"type": "http.request", "body": VALID}]).run(app, http_scope(headers))
    assert driver.status == (401 if headers[1][0] == b"authorization" else 400)
    assert received == []


def test_a_body_shorter_than_its_content_length_is_a_408_never_decoded() -> None:
    received: List[WebhookEvent] = []
    app = make_asgi_app(KEY, received.append)
    headers = [(b"authorization", KEY.encode()), (b"content-length", str(len(VALID) + 5).encode())]
    driver = Driver([{"type": "http.request", "body": VALID}]).run(app, http_scope(headers))
    assert driver.status == 408  # VALID is a whole event: the missing 5 bytes must not be guessed away
    assert received == []


def test_a_body_longer_than_its_content_length_is_a_400() -> None:
    received: List[WebhookEvent] = []
    app = make_asgi_app(KEY, received.append)
    headers = [(b"authorization", KEY.encode()), (b"content-length", str(len(VALID) - 1).encode())]
    driver = Driver([{"type": "http.request", "body": VALID}]).run(app, http_scope(headers))
    assert driver.status == 400
    assert received == []


def test_lifespan_is_acknowledged_and_websockets_are_closed() -> None:
    app = make_asgi_app(KEY, handler)
    lifespan = Driver([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    lifespan.run(app, {"type": "lifespan"})
    assert lifespan.sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]
    websocket = Driver([{"type": "websocket.connect"}]).run(app, {"type": "websocket", "headers": []})
    assert websocket.sent == [{"type": "websocket.close", "code": 1008}]


def test_the_remote_address_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kenar_api_client.webhooks")
    app = make_asgi_app(KEY, handler)
    Driver([{"type": "http.request", "body": VALID}]).run(app, http_scope([(b"authorization", KEY.encode())]))
    [record] = [r for r in caplog.records if r.name == "kenar_api_client.webhooks"]
    assert "remote=10.0.0.9" in record.getMessage()
    assert record.webhook_status == 200  # type: ignore[attr-defined]
    assert KEY not in caplog.text


def test_importing_it_loads_no_asgi_library() -> None:
    code = (
        "import sys, kenar_api_client.webhooks as w; w.make_asgi_app('k', print); "
        "print(sorted(m for m in ('starlette', 'uvicorn', 'anyio', 'asgiref') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
