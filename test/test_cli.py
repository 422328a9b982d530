"""Tests of the ``kenar-events`` command line: in-process through ``main`` and as installed."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest
from servers import RecordingServer, Reply, refused_port, reserved_port

import kenar_api_client
from kenar_api_client.cli import main
from kenar_api_client.sandbox import (
    DEMO_ACCESS_TOKEN,
    DEMO_API_KEY,
    DEMO_IDENTIFICATION_KEY,
    DEMO_POST_TOKEN,
    DEMO_USER_ID,
    Sandbox,
)

COMMANDS = ["sandbox", "send", "subscribe", "listen", "trigger", "demo", "login", "token", "subscriptions"]
SECRET_KEY = "cli-test-key-77aa"
SECRET_TOKEN = "cli-test-token-88bb"
SECRET_IDENTIFICATION_KEY = "cli-test-identification-99cc"
SECRETS = [SECRET_KEY, SECRET_TOKEN, SECRET_IDENTIFICATION_KEY]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(
        api_keys={SECRET_KEY: ["EVENTS_SEND", "EVENTS_REGISTER_SUBSCRIPTION"]},
        access_tokens={},
        identification_key=SECRET_IDENTIFICATION_KEY,
        delivery_backoff=0,
    ) as running:
        running.add_access_token(
            SECRET_TOKEN,
            "cli-user",
            ["SEND_EVENT", "USER_POSTS_GET", "CHAT_POST_CONVERSATIONS_READ.p1"],
            ["p1"],
        )
        yield running


@pytest.fixture
def env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The sandbox, with its URL and credentials in the environment."""
    monkeypatch.setenv("KENAR_BASE_URL", sandbox.url)
    monkeypatch.setenv("KENAR_API_KEY", SECRET_KEY)
    monkeypatch.setenv("KENAR_ACCESS_TOKEN", SECRET_TOKEN)
    monkeypatch.setenv("KENAR_IDENTIFICATION_KEY", SECRET_IDENTIFICATION_KEY)
    return sandbox


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert not any(secret in out + err for secret in SECRETS), "a credential was printed"
    return status, out, err


# -- help and usage -------------------------------------------------------------------------


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_command_has_help(command: Optional[str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--help"] if command is None else [command, "--help"]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out
    assert usage.startswith(f"usage: kenar-events{'' if command is None else ' ' + command}")
    if command is None:
        assert all(name in usage for name in COMMANDS)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nonsense"],
        ["send", "-m", "x", "--target-type", "GROUP", "--target-resource-id", "p"],
        ["subscribe", "--event-type", "POST_UPDATE", "--metadata", "[1]"],
        ["trigger", "NEW_MESSAGE", "--set", "no-equals-sign"],
        ["listen", "--port", "70000"],
    ],
)
def test_usage_errors_exit_2(argv: List[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_missing_identification_key_or_sandbox_url_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, _, err = run(capsys, "listen", "--port", "0")
    assert status == 2
    assert err == (
        "error: listen needs the identification key: set KENAR_IDENTIFICATION_KEY or pass "
        "--identification-key (see: kenar-events listen --help)\n"
    )
    status, _, err = run(capsys, "trigger", "NEW_MESSAGE")
    assert status == 2
    assert "pass --base-url or set KENAR_BASE_URL" in err


# -- send and subscribe ---------------------------------------------------------------------


def test_send_with_credentials_from_the_environment(env: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(
        capsys, "send", "-m", "سلام", "--target-type", "POST", "--target-resource-id", "p1"
    )
    assert (status, out, err) == (0, "ok: event sent to POST p1\n", "")
    (event,) = env.sent_events
    assert (event.message, event.api_key, event.user_id) == ("سلام", SECRET_KEY, "cli-user")


def test_flags_win_over_the_environment(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KENAR_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("KENAR_API_KEY", "wrong-key")
    flags = ["--base-url", sandbox.url, "--api-key", SECRET_KEY, "--access-token", SECRET_TOKEN]
    status, out, _ = run(
        capsys, "send", "-m", "hi", "--target-type", "USER", "--target-resource-id", "cli-user", *flags
    )
    assert (status, out) == (0, "ok: event sent to USER cli-user\n")
    assert sandbox.sent_events[0].target_type == "USER"


def test_subscribe_with_metadata(env: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(
        capsys,
        "subscribe",
        "--event-type",
        "NEW_MESSAGE_ON_POST",
        "--resource-id",
        "p1",
        "--metadata",
        '{"shop": 4}',
    )
    assert (status, out) == (0, "ok: subscribed to NEW_MESSAGE_ON_POST for post p1\n")
    (subscription,) = env.subscriptions
    assert (subscription.event_resource_id, subscription.metadata) == ("p1", {"shop": 4})


def test_send_json_never_prints_credentials_a_server_echoes(
    recorder: RecordingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--base-url", recorder.url, "--api-key", SECRET_KEY, "--access-token", SECRET_TOKEN]
    argv = ["--json", "send", "-m", "hi", "--target-type", "USER", "--target-resource-id", "u", *flags]
    recorder.queue_reply(
        Reply(body={"seen_key": SECRET_KEY, "seen": f"Bearer {SECRET_TOKEN}", "quoted": f'"{SECRET_KEY}"'}),
        Reply(
            status=403, body={"code": 7, "message": f"API key {SECRET_KEY} lacks EVENTS_SEND", "details": []}
        ),
    )

    status, out, _ = run(capsys, *argv)  # run() fails the test if a credential shows
    assert status == 0
    assert recorder.last.headers["X-API-Key"] == SECRET_KEY  # it was sent, and only hidden in print
    assert json.loads(out)["response"] == {
        "seen_key": "[REDACTED]",
        "seen": "Bearer [REDACTED]",
        "quoted": '"[REDACTED]"',
    }

    status, out, err = run(capsys, *argv)
    assert status == 1
    assert err == "error: 403 PERMISSION_DENIED (7): API key [REDACTED] lacks EVENTS_SEND\n"
    assert json.loads(out)["error"]["message"] == "API key [REDACTED] lacks EVENTS_SEND"


def test_api_error_is_one_line_with_status_code_and_message(
    env: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "send", "-m", "hi", "--target-type", "POST", "--target-resource-id", "p2")
    assert status == 1
    assert out == ""
    assert err == "error: 403 PERMISSION_DENIED (7): post 'p2' is not owned by the authenticated user\n"

    status, _, err = run(capsys, "subscribe", "--event-type", "NEW_MESSAGE_ON_POST")
    assert status == 1
    assert err == (
        "error: 403 PERMISSION_DENIED (7): the access token lacks scope CHAT_SUPPLIER_ALL_CONVERSATIONS_READ "
        "(needed to subscribe to NEW_MESSAGE_ON_POST for all posts)\n"
    )


def test_unknown_key_gives_401_without_echoing_it(
    env: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(
        capsys,
        "send",
        "-m",
        "x",
        "--target-type",
        "USER",
        "--target-resource-id",
        "u",
        "--api-key",
        "cli-test-key-bad",
    )
    assert status == 1
    assert err == "error: 401 UNAUTHENTICATED (16): the API key is not valid\n"


@pytest.fixture
def hang_up_server() -> Iterator[str]:
    """A server that accepts connections and closes them without answering."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    listener.close()


def test_connection_error_is_one_line(hang_up_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "send",
        "-m",
        "x",
        "--target-type",
        "USER",
        "--target-resource-id",
        "u",
        "--base-url",
        hang_up_server,
        "--api-key",
        "k",
        "--access-token",
        "t",
    ]
    status, _, err = run(capsys, *argv)
    assert status == 1
    assert err.startswith("error: no answer from the server: ")
    assert err.count("\n") == 1


def test_json_output_global_and_per_command(env: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(
        capsys, "--json", "send", "-m", "x", "--target-type", "POST", "--target-resource-id", "p1"
    )
    assert status == 0
    assert json.loads(out) == {
        "ok": True,
        "operation": "events_send_event",
        "target_type": "POST",
        "target_resource_id": "p1",
        "response": {},
    }
    status, out, err = run(
        capsys, "subscribe", "--json", "--event-type", "NEW_MESSAGE_ON_POST", "--resource-id", "p9"
    )
    assert status == 1
    assert json.loads(out)["error"] == {
        "status": 403,
        "code": 7,
        "code_name": "PERMISSION_DENIED",
        "message": "the access token lacks scope CHAT_POST_CONVERSATIONS_READ.p9 or "
        "CHAT_SUPPLIER_ALL_CONVERSATIONS_READ (needed to subscribe to NEW_MESSAGE_ON_POST for this post)",
    }
    assert err.startswith("error: 403 PERMISSION_DENIED (7)")


# -- trigger --------------------------------------------------------------------------------


@pytest.fixture
def recorder() -> Iterator[RecordingServer]:
    server = RecordingServer().start()
    yield server
    server.stop()


def test_trigger_sets_the_webhook_and_delivers(
    env: Sandbox, recorder: RecordingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(
        capsys,
        "trigger",
        "NEW_CHATBOT_MESSAGE",
        "--webhook-url",
        f"{recorder.url}/hook",
        "--fields",
        '{"sender": {"side": "SELLER"}}',
        "--set",
        "text=سلام",
        "--set",
        "conversation.id=c-9",
        "--set",
        "extra=[1, 2]",
    )
    assert (status, err) == (0, "")
    assert out == f"delivered NEW_CHATBOT_MESSAGE to {recorder.url}/hook: 200 after 1 attempt\n"
    request = recorder.last
    assert request.headers["Authorization"] == SECRET_IDENTIFICATION_KEY
    payload = request.json()["new_chatbot_message"]
    assert (payload["text"], payload["conversation"]["id"], payload["extra"]) == ("سلام", "c-9", [1, 2])
    assert payload["sender"] == {"side": "SELLER", "type": "HUMAN"}


def test_trigger_needs_a_subscription_for_new_message(
    env: Sandbox, recorder: RecordingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    env.set_webhook(recorder.url)
    status, _, err = run(capsys, "trigger", "NEW_MESSAGE")
    assert status == 1
    assert err.startswith("error: 400 FAILED_PRECONDITION (9): no subscription matches NEW_MESSAGE")
    assert err.count("\n") == 1

    status, out, _ = run(
        capsys, "--json", "trigger", "NEW_MESSAGE", "--no-subscription-check", "--metadata", '{"m": 1}'
    )
    assert status == 0
    report = json.loads(out)
    assert report["ok"] is True
    assert report["delivery"]["body"]["metadata"] == {"m": 1}


def test_trigger_reports_a_failed_delivery(
    env: Sandbox, recorder: RecordingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    recorder.responder = lambda request: Reply(status=500)
    env.set_webhook(recorder.url)
    status, _, err = run(capsys, "trigger", "PAYMENT_TRANSACTION")
    assert status == 1
    assert (
        err == f"error: delivery of PAYMENT_TRANSACTION to {recorder.url} failed after 3 attempts: "
        "the receiver answered 500\n"
    )


def test_trigger_escapes_control_characters_of_a_failed_delivery(
    env: Sandbox, recorder: RecordingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    recorder.responder = lambda request: Reply(status=500)
    env.set_webhook(recorder.url)
    status, _, err = run(capsys, "trigger", "EVIL\x1b]0;owned\x07\x9b2J")
    assert status == 1
    assert err.startswith("error: delivery of EVIL\\u001b]0;owned\\u0007\\u009b2J to ")
    assert not any(ch in err for ch in "\x1b\x07\x9b")


def test_trigger_against_no_sandbox(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{refused_port()}"
    status, _, err = run(capsys, "trigger", "USER_ACCESS_REVOCATION", "--base-url", url)
    assert status == 1
    assert err.startswith(f"error: no answer from the sandbox at {url}: ")


# -- listen ---------------------------------------------------------------------------------


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise AssertionError(f"nothing listens on port {port}")


def test_listen_verifies_prints_and_stops_after_count(
    env: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    port = reserved_port()
    result: List[int] = []
    thread = threading.Thread(
        target=lambda: result.append(main(["listen", "--port", str(port), "--count", "2"]))
    )
    thread.start()
    try:
        wait_for_port(port)
        env.set_webhook(f"http://127.0.0.1:{port}/")
        env.trigger("PAYMENT_TRANSACTION", cost_rials=5)
        env.set_webhook(f"http://127.0.0.1:{port}/", "not-the-key")
        assert env.trigger("USER_ACCESS_REVOCATION").status == 401  # rejected, not counted
        env.set_webhook(f"http://127.0.0.1:{port}/", SECRET_IDENTIFICATION_KEY)
        env.trigger("USER_ACCESS_REVOCATION")
    finally:
        thread.join(timeout=60)
    assert result == [0]
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == f"listening for Kenar webhook deliveries on http://127.0.0.1:{port}/ (Ctrl+C to stop)"
    assert lines[1].startswith("PAYMENT_TRANSACTION  transaction ")
    assert lines[1].endswith("TRANSACTION_STATE_COMPLETED, 5 rials")
    assert lines[2] == "USER_ACCESS_REVOCATION  user cli-user revoked the app's access"
    assert "status=401" in err
    assert not any(secret in out + err for secret in [*SECRETS, "not-the-key"])


def test_listen_json_lines(env: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    port = reserved_port()
    result: List[int] = []
    argv = ["listen", "--json", "--port", str(port), "--count", "1"]
    thread = threading.Thread(target=lambda: result.append(main(argv)))
    thread.start()
    try:
        wait_for_port(port)
        env.set_webhook(f"http://127.0.0.1:{port}/")
        env.trigger("SOMETHING_NEW", x=1)
    finally:
        thread.join(timeout=60)
    assert result == [0]
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first == {"listening": f"http://127.0.0.1:{port}/"}
    assert second == {
        "event_type": "SOMETHING_NEW",
        "class": "UnknownEvent",
        "event": {"type": "SOMETHING_NEW", "metadata": {}, "something_new": {"x": 1}},
    }


def start_listen(capsys: pytest.CaptureFixture[str], *argv: str) -> Tuple[threading.Thread, List[int], int]:
    """``kenar-events listen --port 0`` in a daemon thread of this process, once it listens.

    The port comes from its ready line (which is consumed): no other process can take it.
    """
    result: List[int] = []
    thread = threading.Thread(
        target=lambda: result.append(main(["listen", "--port", "0", *argv])), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready = re.search(r"http://127\.0\.0\.1:(\d+)/", capsys.readouterr().out)
        if ready:
            return thread, result, int(ready.group(1))
        time.sleep(0.01)
    raise AssertionError("listen printed no ready line")


def post_delivery(port: int, body: bytes, key: str = SECRET_IDENTIFICATION_KEY) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/", body=body, headers={"Authorization": key})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_listen_answers_while_an_idle_and_a_half_sent_connection_wait(
    env: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    thread, result, port = start_listen(capsys, "--count", "1")
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5),
        socket.create_connection(("127.0.0.1", port), timeout=5) as half_sent,
    ):
        half_sent.sendall(
            f"POST / HTTP/1.1\r\nAuthorization: {SECRET_IDENTIFICATION_KEY}\r\n"
            "Content-Length: 500\r\n\r\n{".encode()
        )
        body = json.dumps({"type": "USER_ACCESS_REVOCATION", "user_access_revocation": {"user_id": "u-9"}})
        assert post_delivery(port, body.encode()) == 200
        thread.join(timeout=60)
    assert result == [0]
    assert capsys.readouterr().out == "USER_ACCESS_REVOCATION  user u-9 revoked the app's access\n"


def test_listen_refuses_deep_nesting_with_400_and_goes_on(
    env: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    thread, result, port = start_listen(capsys, "--json", "--count", "1")
    deep: object = {}
    for _ in range(500):
        deep = {"a": deep}
    assert post_delivery(port, json.dumps({"type": "X", "metadata": deep}).encode()) == 400
    assert post_delivery(port, b'{"type": "X", "metadata": {"ok": true}}') == 200
    thread.join(timeout=60)
    assert result == [0]
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[-1])["event"]["metadata"] == {"ok": True}
    assert "deeper than 64 levels" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("as_json", [False, True], ids=["human", "json"])
def test_listen_escapes_control_characters_of_received_events(
    env: Sandbox, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    thread, result, port = start_listen(capsys, "--count", "1", *(["--json"] if as_json else []))
    hostile = "\x1b]0;owned\x07\x1b[2J\x9b31m\u202e\r\n"
    body = {"type": f"NEW{hostile}", "metadata": {"k": hostile}, f"new{hostile.lower()}": {"text": hostile}}
    assert post_delivery(port, json.dumps(body).encode()) == 200
    thread.join(timeout=60)
    assert result == [0]
    out = capsys.readouterr().out
    assert not any(ch in out for ch in "\x1b\x07\x9b\u202e\r")
    assert len(out.splitlines()) == 1  # one line per event, whatever it contains
    assert "\\u001b]0;owned\\u0007" in out
    if as_json:
        assert json.loads(out)["event"] == body  # still valid JSON, nothing lost


# -- signals --------------------------------------------------------------------------------


def start_command(*argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "kenar_api_client.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**clean_env(), "KENAR_IDENTIFICATION_KEY": SECRET_IDENTIFICATION_KEY},
    )


def finish(process: subprocess.Popen[bytes]) -> Tuple[bytes, bytes]:
    """Its output once it exited; a process still running 300 s later fails the test."""
    try:
        return process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"the command kept running after the signal:\n{err.decode(errors='replace')}")


def deliver_in_background(port: int, body: bytes) -> threading.Thread:
    def send() -> None:
        with contextlib.suppress(OSError, http.client.HTTPException):
            post_delivery(port, body)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)], ids=["INT", "TERM"]
)
def test_one_signal_stops_listen_while_a_delivery_is_being_handled(signum: int, status: int) -> None:
    process = start_command("--json", "listen", "--port", "0")
    assert process.stdout is not None
    port = int(json.loads(process.stdout.readline())["listening"].rstrip("/").rsplit(":", 1)[1])
    # The handler prints this 600 kB event on stdout, which nobody reads for now: it blocks
    # in the middle of handling the delivery, once the pipe is full.
    sender = deliver_in_background(
        port, json.dumps({"type": "BIG", "metadata": {"x": "y" * 600_000}}).encode()
    )
    seen = b""
    while b'"event_type"' not in seen:
        chunk = process.stdout.read1(4096)
        assert chunk, "listen printed nothing"
        seen += chunk

    process.send_signal(signum)
    _, err = finish(process)

    assert process.returncode == status, err.decode(errors="replace")
    assert b"Traceback" not in err
    sender.join(timeout=60)


@pytest.mark.parametrize("command", [["sandbox", "--port", "0"], ["listen", "--port", "0"]])
def test_sigterm_right_after_the_ready_line_is_a_clean_exit(command: List[str]) -> None:
    process = start_command(*command)
    assert process.stdout is not None
    process.stdout.readline()  # "Kenar sandbox running at ..." / "listening for ..."

    process.send_signal(signal.SIGTERM)
    _, err = finish(process)

    assert process.returncode == 0, err.decode(errors="replace")  # not -15: death by the signal
    assert b"Traceback" not in err


# -- demo -----------------------------------------------------------------------------------


def test_demo_runs_every_step_and_leaves_no_threads(capsys: pytest.CaptureFixture[str]) -> None:
    threads_before = set(threading.enumerate())
    status, out, _ = run(capsys, "demo")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("kenar-events demo")
    steps = [line for line in lines if line.startswith("  ")]
    assert len(steps) == 16
    assert all(line.startswith("  ok   ") for line in steps)
    for class_name in (
        "NewMessageEvent",
        "NewChatbotMessageEvent",
        "UserAccessRevocationEvent",
        "PostUpdateEvent",
    ):
        assert f"verified as {class_name}" in out
    assert "kept by the keeper" not in out
    assert "refreshed the token once and registered 2 kept subscriptions again" in out
    assert "died with its token" in out
    assert lines[-1].startswith("all 16 steps worked in ")
    # A server's last handler thread may still be on its way out: wait for the threads to
    # end by themselves, however slowly (a thread the demo left running never would).
    deadline = time.monotonic() + 30
    while not set(threading.enumerate()) <= threads_before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(threading.enumerate()) <= threads_before


def test_demo_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "demo", "--json")
    assert status == 0
    report = json.loads(out)
    assert report["ok"] is True
    assert [step["step"] for step in report["steps"]] == [
        "start sandbox",
        "start listener",
        "log in through OAuth",
        "keep NEW_MESSAGE_ON_POST subscription",
        "keep POST_UPDATE subscription",
        "plain subscription",
        "send event",
        "deliver NEW_MESSAGE",
        "deliver NEW_CHATBOT_MESSAGE",
        "deliver USER_ACCESS_REVOCATION",
        "deliver POST_UPDATE",
        "deliver PAYMENT_TRANSACTION",
        "an hour passes",
        "plain subscription lapsed",
        "kept NEW_MESSAGE still delivered",
        "kept POST_UPDATE still delivered",
    ]


def test_demo_fails_when_a_step_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A listener that refuses every delivery (wrong key): the five deliveries fail.
    from kenar_api_client.cli import demo

    original = demo.Listener.__init__
    monkeypatch.setattr(demo.Listener, "__init__", lambda self, key: original(self, "some-other-key"))
    status, out, _ = run(capsys, "demo")
    assert status == 1
    assert out.count("  FAIL deliver ") == 5
    assert "delivery failed after 3 attempts: the receiver answered 401" in out
    assert out.splitlines()[-1].startswith("5 of 12 steps failed: deliver NEW_MESSAGE, ")


# -- as installed ---------------------------------------------------------------------------


def console_script() -> str:
    candidate = Path(sys.executable).with_name("kenar-events")
    found = str(candidate) if candidate.exists() else shutil.which("kenar-events")
    assert found, "the kenar-events console script is not installed: run pip install -e ."
    return found


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("KENAR_")}


def test_installed_console_script_help_and_demo() -> None:
    script = console_script()
    help_run = subprocess.run(
        [script, "--help"], capture_output=True, text=True, timeout=300, env=clean_env()
    )
    assert help_run.returncode == 0
    assert help_run.stdout.startswith("usage: kenar-events")
    demo_run = subprocess.run([script, "demo"], capture_output=True, text=True, timeout=300, env=clean_env())
    assert demo_run.returncode == 0, demo_run.stdout + demo_run.stderr
    assert "all 16 steps worked" in demo_run.stdout


def test_python_dash_m_and_a_light_import() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "kenar_api_client.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert version.stdout.splitlines()[0] == f"kenar-events {kenar_api_client.__version__}"
    probe = (
        "import sys, kenar_api_client.cli, kenar_api_client\n"
        "kenar_api_client.EventsApi, kenar_api_client.Configuration\n"
        "heavy = ('kenar_api_client.sandbox', 'kenar_api_client.webhooks', 'kenar_api_client.cli.demo',"
        " 'wsgiref.simple_server', 'http.server')\n"
        "loaded = [m for m in heavy if m in sys.modules]\n"
        "print(loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert result.stdout == "[]\n", result.stderr


def test_sandbox_command_serves_until_terminated() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "kenar_api_client.cli", "--json", "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert process.stdout is not None
        banner = json.loads(process.stdout.readline())
        assert banner["api_key"] == DEMO_API_KEY
        assert banner["access_token"] == DEMO_ACCESS_TOKEN
        assert banner["identification_key"] == DEMO_IDENTIFICATION_KEY
        assert (banner["user_id"], banner["post_token"]) == (DEMO_USER_ID, DEMO_POST_TOKEN)
        configuration = kenar_api_client.Configuration(
            host=banner["url"], api_key={"APIKey": DEMO_API_KEY}, access_token=DEMO_ACCESS_TOKEN
        )
        with kenar_api_client.ApiClient(configuration) as client:
            kenar_api_client.EventsApi(client).events_send_event(
                message="hi", target_type="POST", target_resource_id=DEMO_POST_TOKEN
            )
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=300)
    assert process.returncode == 0
    assert "POST /experimental/open-platform/events/send -> 200" in err


def test_human_sandbox_banner_names_the_demo_values() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "kenar_api_client.cli", "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert process.stdout is not None
        banner = []
        while not banner or banner[-1] not in ("Press Ctrl+C to stop.\n", ""):
            banner.append(process.stdout.readline())
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=300)
    assert banner[0].startswith("Kenar sandbox running at http://127.0.0.1:")
    assert "public demo values" in banner[1]
    assert f"  export KENAR_API_KEY={DEMO_API_KEY}\n" in banner
    assert "  export KENAR_APP_SLUG=kenar-sandbox-demo-app\n" in banner  # so that login works at once
    assert banner[-1] == "Press Ctrl+C to stop.\n"
    assert process.returncode == 130  # Ctrl+C, as documented
