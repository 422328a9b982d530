"""``kenar-events listen``'s delivery flags, run as a real process: --events, --headers, --deliveries,
--skip-verify, the bounded read of --forward-to, and the escaping of the ASGI app's log lines."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from typing import Any, Dict, Iterator, List, Optional

import pytest
from servers import RecordingServer, Reply

from kenar_api_client.webhooks import make_asgi_app

KEY = "listen-identification-key-3a9d"
DEADLINE = 60.0


def body(event_type: str, message_id: str = "m-1") -> bytes:
    if event_type == "NEW_MESSAGE":
        return json.dumps({"type": "NEW_MESSAGE", "new_message": {"id": message_id, "text": "hi"}}).encode()
    return json.dumps({"type": event_type, "user_access_revocation": {"user_id": "u-1"}}).encode()


class Listen:
    """``kenar-events --json listen --port 0 ...`` in a process of its own, once it listens."""

    def __init__(self, *argv: str, key: Optional[str] = KEY) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KENAR_")}
        if key is not None:
            env["KENAR_IDENTIFICATION_KEY"] = key
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kenar_api_client.cli", "--json", "listen", "--port", "0", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        assert first, self.process.communicate(timeout=DEADLINE)
        self.url = json.loads(first)["listening"]
        self.port = int(self.url.rstrip("/").rsplit(":", 1)[1])

    def post(self, raw: bytes, key: str = KEY, headers: Optional[Dict[str, str]] = None) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=DEADLINE)
        try:
            sent = {"Authorization": key, "Content-Type": "application/json", **(headers or {})}
            connection.request("POST", "/", body=raw, headers=sent)
            return connection.getresponse().status
        finally:
            connection.close()

    def finish(self, stops_itself: bool = False) -> Any:
        """Stop it (SIGTERM, or wait if it stops itself); its documents after the ready line, stderr."""
        if not stops_itself:
            self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=DEADLINE)
        return [json.loads(line) for line in out.splitlines()], err


@pytest.fixture
def app() -> Iterator[RecordingServer]:
    server = RecordingServer().start()
    yield server
    server.stop()


def test_events_prints_counts_and_forwards_only_the_chosen_types(app: RecordingServer) -> None:
    listen = Listen("--events", "USER_ACCESS_REVOCATION", "--count", "1", "--forward-to", app.url)
    assert listen.post(body("NEW_MESSAGE")) == 200  # verified and acknowledged, but not wanted
    assert listen.post(body("USER_ACCESS_REVOCATION")) == 200
    documents, _ = listen.finish(stops_itself=True)  # --count 1 ends it after the second delivery

    assert listen.process.returncode == 0
    events = [document["event_type"] for document in documents if "event_type" in document]
    assert events == ["USER_ACCESS_REVOCATION"]
    assert [json.loads(request.body)["type"] for request in app.requests] == ["USER_ACCESS_REVOCATION"]


def test_events_refuses_a_type_the_sdk_does_not_document() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kenar_api_client.cli", "listen", "--events", "NEW_MESSAGE,NEW_MESAGE"],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert result.returncode == 2
    assert "unknown event type NEW_MESAGE: choose from NEW_MESSAGE, NEW_CHATBOT_MESSAGE" in result.stderr


def test_headers_are_printed_with_the_key_masked() -> None:
    listen = Listen("--headers", "--count", "1")
    assert listen.post(body("NEW_MESSAGE"), headers={"X-Trace": "abc-1"}) == 200
    documents, err = listen.finish(stops_itself=True)

    headers = documents[0]["headers"]
    assert headers["Authorization"] == "[REDACTED]"
    assert headers["X-Trace"] == "abc-1"
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Length"] == str(len(body("NEW_MESSAGE")))
    assert KEY not in json.dumps(documents) + err


@pytest.mark.parametrize("log", ["memory", "sqlite"])
def test_deliveries_prints_and_forwards_a_redelivery_once(
    app: RecordingServer, log: str, tmp_path: Any
) -> None:
    where = "memory" if log == "memory" else str(tmp_path / "deliveries.db")
    listen = Listen("--deliveries", where, "--forward-to", app.url)
    statuses = [listen.post(body("NEW_MESSAGE", "m-1")) for _ in range(3)] + [
        listen.post(body("NEW_MESSAGE", "m-2"))
    ]
    documents, err = listen.finish()

    assert statuses == [200, 200, 200, 200]
    ids = [d["event"]["new_message"]["id"] for d in documents if "event_type" in d]
    assert ids == ["m-1", "m-2"]
    assert len(app.requests) == 2
    assert err.count("webhook delivery duplicate: status=200") == 2
    assert "delivery_key=NEW_MESSAGE:m-1" in err


def test_deliveries_that_cannot_be_opened_is_one_line_and_exit_1(tmp_path: Any) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kenar_api_client.cli",
            "listen",
            "--identification-key",
            KEY,
            "--deliveries",
            str(tmp_path / "no-such-directory" / "d.db"),
        ],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot use the delivery log")
    assert "Traceback" not in result.stderr


def test_skip_verify_relays_every_request_and_the_apps_answer(app: RecordingServer) -> None:
    app.queue_reply(Reply(401, b'{"error": "the app says no"}'))
    listen = Listen("--skip-verify", "--forward-to", app.url, key=None)
    assert listen.post(body("NEW_MESSAGE"), key="a-wrong-key") == 401  # the app's own verdict
    assert listen.post(body("NEW_MESSAGE"), key="the-apps-key") == 200
    documents, _ = listen.finish()

    assert [request.headers["Authorization"] for request in app.requests] == ["a-wrong-key", "the-apps-key"]
    events = [document for document in documents if "event_type" in document]
    assert len(events) == 2


def test_skip_verify_needs_forward_to() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kenar_api_client.cli", "listen", "--skip-verify"],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert result.returncode == 2
    assert "--skip-verify needs --forward-to" in result.stderr


class EndlessAnswer:
    """An app whose answer to every request is 200 and a body that never ends (until the client leaves)."""

    def __init__(self) -> None:
        self.sent = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        connection, _ = self._listener.accept()
        with connection:
            connection.settimeout(DEADLINE)
            received = b""
            while b"\r\n\r\n" not in received:
                received += connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
            chunk = b"x" * 65536
            try:
                while self.sent < 1 << 30:  # bounded all the same: 1 GiB
                    connection.sendall(chunk)
                    self.sent += len(chunk)
            except OSError:
                pass  # the client read what it wanted and closed

    def close(self) -> None:
        self._listener.close()
        self._thread.join(DEADLINE)


def test_forward_to_reads_a_bounded_part_of_the_apps_answer() -> None:
    endless = EndlessAnswer()
    try:
        listen = Listen("--forward-to", endless.url, "--count", "1")
        assert listen.post(body("NEW_MESSAGE")) == 200
        documents, _ = listen.finish(stops_itself=True)
    finally:
        endless.close()
    assert documents[1]["forwarded"]["status"] == 200
    assert endless.sent < 1 << 30  # it stopped reading long before the bound above


# -- item 17: the ASGI app's failure lines escape the client address ---------------------------


def test_the_asgi_apps_500_line_escapes_the_client_address(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kenar_api_client.webhooks")

    def failing(event: Any) -> None:
        raise RuntimeError("handler failed")

    sent: List[Dict[str, Any]] = []

    async def receive() -> Dict[str, Any]:
        return {"type": "http.request", "body": body("NEW_MESSAGE")}

    async def send(message: Dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "headers": [(b"authorization", KEY.encode())],
        "client": ("\x1b[2J10.0.0.1\nwebhook delivery handled: status=200", 1),
    }
    asyncio.run(make_asgi_app(KEY, failing)(scope, receive, send))

    assert sent[0]["status"] == 500
    [record] = caplog.records
    message = record.getMessage()
    assert "\x1b" not in message
    assert "\n" not in message
    assert "remote=\\u001b[2J10.0.0.1\\u000awebhook delivery handled" in message
