"""Requests cut short reach no operation: a body shorter than its Content-Length, headers
that never end. And a stopped sandbox still tells the port it had."""

from __future__ import annotations

import json
import socket

from kenar_api_client.sandbox import DEMO_ACCESS_TOKEN, DEMO_API_KEY, Sandbox

SUBSCRIBE = "/v1/open-platform/events/subscriptions"
BODY = json.dumps({"event_type": "POST_UPDATE"}).encode()
HEAD = (
    f"POST {SUBSCRIBE} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {DEMO_API_KEY}\r\n"
    f"Authorization: Bearer {DEMO_ACCESS_TOKEN}\r\nContent-Type: application/json\r\n"
)


def send_then_half_close(sandbox: Sandbox, data: bytes) -> bytes:
    """Send ``data``, say we are done sending (FIN), and read the whole answer."""
    data = data.replace(b"Host: 127.0.0.1\r\n", f"Host: 127.0.0.1:{sandbox.port}\r\n".encode())
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as raw:
        raw.sendall(data)
        raw.shutdown(socket.SHUT_WR)
        answer = b""
        while True:
            chunk = raw.recv(65536)
            if not chunk:
                return answer
            answer += chunk


def test_the_whole_request_is_processed(sandbox: Sandbox) -> None:
    answer = send_then_half_close(sandbox, f"{HEAD}Content-Length: {len(BODY)}\r\n\r\n".encode() + BODY)
    assert answer.startswith(b"HTTP/1.1 200")
    assert len(sandbox.subscriptions) == 1


def test_a_body_shorter_than_its_content_length_is_refused_and_not_processed(sandbox: Sandbox) -> None:
    answer = send_then_half_close(sandbox, f"{HEAD}Content-Length: {len(BODY) + 10}\r\n\r\n".encode() + BODY)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"Connection: close" in head
    assert json.loads(body) == {
        "code": 3,
        "message": f"the request body ended after {len(BODY)} of the {len(BODY) + 10} bytes "
        "its Content-Length announced",
        "details": [],
    }
    assert sandbox.subscriptions == []
    assert [(r.status, r.code) for r in sandbox.requests] == [(400, 3)]


def test_headers_that_never_end_are_refused_and_not_processed(sandbox: Sandbox) -> None:
    # No blank line after the headers: the client closed in the middle of them.
    answer = send_then_half_close(sandbox, f"{HEAD}Content-Length: 0\r\n".encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert json.loads(body)["message"] == (
        "the request headers never ended: the connection closed before the blank line"
    )
    assert sandbox.subscriptions == []


def test_the_port_stays_known_after_stop() -> None:
    sandbox = Sandbox().start()
    port = sandbox.port
    assert port != 0
    sandbox.stop()
    assert sandbox.port == port
    assert not sandbox.running
