"""The developer loop from the command line: listen --forward-to, deliver, sandbox state / reset /
fault / faults, a sandbox with your own credentials, and the small defects around them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from servers import RecordingServer, Reply, refused_port, reserved_port

import kenar_api_client
from kenar_api_client.cli import main
from kenar_api_client.cli.output import reachable_url
from kenar_api_client.sandbox import (
    DEMO_ACCESS_TOKEN,
    DEMO_API_KEY,
    DEMO_IDENTIFICATION_KEY,
    DEMO_POST_TOKEN,
    DEMO_USER_ID,
    Sandbox,
)

KEY = "devloop-identification-key-51e0"
APP_KEY = "devloop-api-key-7d21"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert APP_KEY not in out + err, "a credential was printed"
    assert KEY not in out + err, "the identification key was printed"
    return status, out, err


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with Sandbox(identification_key=KEY, delivery_backoff=0) as running:
        monkeypatch.setenv("KENAR_BASE_URL", running.url)
        monkeypatch.setenv("KENAR_API_KEY", DEMO_API_KEY)
        monkeypatch.setenv("KENAR_ACCESS_TOKEN", DEMO_ACCESS_TOKEN)
        monkeypatch.setenv("KENAR_IDENTIFICATION_KEY", KEY)
        yield running


@pytest.fixture
def app() -> Iterator[RecordingServer]:
    """The developer's own app: records what it is sent."""
    server = RecordingServer().start()
    yield server
    server.stop()


class Listening:
    """``kenar-events listen`` running in a thread until it has verified ``count`` events."""

    def __init__(self, *argv: str, count: int) -> None:
        self.port = reserved_port()
        self.status: List[int] = []
        args = ["listen", "--port", str(self.port), "--count", str(count), *argv]
        self.thread = threading.Thread(target=lambda: self.status.append(main(args)), daemon=True)
        self.thread.start()
        wait_for_port(self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def join(self) -> int:
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "listen did not stop after --count events"
        return self.status[0]


# -- listen --forward-to --------------------------------------------------------------------


def test_forward_to_passes_a_verified_delivery_on_as_received(
    sandbox: Sandbox, app: RecordingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    listening = Listening("--forward-to", f"{app.url}/kenar/hook?shop=42", count=1)
    sandbox.set_webhook(listening.url)

    delivery = sandbox.trigger("NEW_CHATBOT_MESSAGE", text="سلام")

    assert listening.join() == 0
    assert (delivery.status, len(delivery.attempts)) == (200, 1)
    (request,) = app.requests
    assert (request.method, request.raw_path) == ("POST", "/kenar/hook?shop=42")
    assert request.headers["Authorization"] == KEY  # the identification key, as Kenar sends it
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("kenar-sandbox/")
    assert request.body == json.dumps(delivery.body, ensure_ascii=False, separators=(",", ":")).encode()
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"listening for Kenar webhook deliveries on {listening.url}, forwarding")
    assert out[1].startswith("NEW_CHATBOT_MESSAGE  TEXT message: 'سلام'")
    assert out[2].startswith(f"  -> POST {app.url}/kenar/hook?shop=42 [200] ")


def test_forward_to_an_app_that_fails_is_shown_and_the_sender_retries(
    sandbox: Sandbox, app: RecordingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    app.responder = lambda request: Reply(500, b'{"error": "boom"}')
    listening = Listening("--forward-to", app.url, count=3)
    sandbox.set_webhook(listening.url)

    delivery = sandbox.trigger("PAYMENT_TRANSACTION")

    assert listening.join() == 0
    assert [attempt.status for attempt in delivery.attempts] == [502, 502, 502]
    assert len(app.requests) == 3
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  -> ")]
    assert len(lines) == 3
    assert all("[500]" in line and "the sender is told 502 and will retry" in line for line in lines)


def test_forward_to_an_app_that_is_down_says_so(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    down = f"http://127.0.0.1:{refused_port()}/hook"
    listening = Listening("--json", "--forward-to", down, count=1)
    sandbox.set_webhook(listening.url)

    delivery = sandbox.trigger("USER_ACCESS_REVOCATION", require_subscription=False)

    listening.join()
    assert delivery.attempts[0].status == 502
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert documents[0] == {"listening": listening.url, "forward_to": down}
    assert documents[1]["event_type"] == "USER_ACCESS_REVOCATION"
    forwarded = documents[2]["forwarded"]
    assert (forwarded["url"], forwarded["status"], forwarded["error"]) == (down, None, "connection refused")


def test_forward_to_never_forwards_a_delivery_that_fails_verification(
    sandbox: Sandbox, app: RecordingServer
) -> None:
    listening = Listening("--forward-to", app.url, count=1)
    sandbox.set_webhook(listening.url, identification_key="not-the-key")
    refused = sandbox.trigger("NEW_CHATBOT_MESSAGE")
    sandbox.set_webhook(listening.url, identification_key=KEY)
    sandbox.trigger("NEW_CHATBOT_MESSAGE")

    listening.join()
    assert refused.status == 401
    assert len(app.requests) == 1
    assert app.requests[0].headers["Authorization"] == KEY


@pytest.mark.parametrize("url", ["localhost:5000/hook", "ftp://127.0.0.1/", "http://127.0.0.1:port/"])
def test_forward_to_needs_an_http_url(sandbox: Sandbox, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "listen", "--port", "0", "--forward-to", url)
    assert status == 2
    assert "--forward-to must be an http:// or https:// URL" in err


def test_a_wildcard_listen_address_is_printed_as_one_a_client_can_use() -> None:
    assert reachable_url("0.0.0.0", 8000) == "http://127.0.0.1:8000/"
    assert reachable_url("::", 8000) == "http://[::1]:8000/"
    assert reachable_url("192.168.1.5", 80) == "http://192.168.1.5:80/"


# -- deliver --------------------------------------------------------------------------------


@pytest.fixture
def body_file(tmp_path: Path) -> Path:
    path = tmp_path / "delivery.json"
    body = {"type": "POST_UPDATE", "metadata": {"shop": "42"}, "post_update": {"type": "RETIRE"}}
    path.write_text(json.dumps(body, indent=2), encoding="utf-8")
    return path


def test_deliver_posts_the_file_as_kenar_does(
    app: RecordingServer, body_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(
        capsys, "deliver", str(body_file), "--webhook-url", f"{app.url}/hook", "--identification-key", KEY
    )

    assert status == 0
    assert out == f"delivered POST_UPDATE to {app.url}/hook: 200 after 1 attempt\n"
    (request,) = app.requests
    assert request.headers["Authorization"] == KEY
    assert request.json() == json.loads(body_file.read_text(encoding="utf-8"))
    assert request.body.startswith(b'{"type":"POST_UPDATE","metadata"')  # compact, as Kenar sends


def test_deliver_reports_a_refusing_receiver_after_its_attempts(
    app: RecordingServer, body_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KENAR_IDENTIFICATION_KEY", KEY)
    app.responder = lambda request: Reply(401, b'{"error": "unauthorized"}')

    status, out, err = run(
        capsys, "--json", "deliver", str(body_file), "--webhook-url", app.url, "--attempts", "2"
    )

    assert status == 1
    assert (
        err
        == f"error: delivery of POST_UPDATE to {app.url} failed after 2 attempts: the receiver answered 401\n"
    )
    document = json.loads(out)
    assert document["ok"] is False
    assert [a["status"] for a in document["delivery"]["attempts"]] == [401, 401]
    assert len(app.requests) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [("[1, 2]", "must hold a JSON object"), ("{not json", "is not valid JSON")],
)
def test_deliver_refuses_a_file_that_is_not_a_json_object(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    status, _, err = run(
        capsys, "deliver", str(path), "--webhook-url", "http://127.0.0.1:9/", "--identification-key", KEY
    )
    assert status == 2
    assert message in err


def test_deliver_needs_the_identification_key(body_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "deliver", str(body_file), "--webhook-url", "http://127.0.0.1:9/")
    assert status == 2
    assert "set KENAR_IDENTIFICATION_KEY or pass --identification-key" in err


# -- sandbox state / reset / fault / faults ---------------------------------------------------


def test_state_shows_what_the_sandbox_recorded(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "subscribe", "--event-type", "POST_UPDATE", "--resource-id", DEMO_POST_TOKEN)[0] == 0
    assert (
        run(capsys, "send", "-m", "hi", "--target-type", "POST", "--target-resource-id", "NotMine1")[0] == 1
    )

    status, out, _ = run(capsys, "sandbox", "state")

    assert status == 0
    assert f"sandbox at {sandbox.url}, webhook URL: none" in out
    assert f"  POST_UPDATE for post {DEMO_POST_TOKEN} of user {DEMO_USER_ID}, metadata {{}}" in out
    assert "sent events (0)\n" in out
    assert "  POST /experimental/open-platform/events/send -> 403 (7): post 'NotMine1' is not owned" in out

    status, out, _ = run(capsys, "--json", "sandbox", "state")
    snapshot = json.loads(out)
    assert snapshot["ok"] is True
    assert [r["status"] for r in snapshot["requests"]] == [200, 403]


def test_reset_forgets_the_records(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "subscribe", "--event-type", "POST_UPDATE")
    sandbox.inject_fault("*", 503)

    assert run(capsys, "sandbox", "reset") == (0, "reset: records and fault rules forgotten\n", "")

    assert sandbox.subscriptions == []
    assert sandbox.requests == []
    assert sandbox.fault_rules == []


def test_a_fault_from_the_cli_and_what_it_did(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "sandbox", "fault", "events_send_event", "500")
    assert status == 0
    assert out == "fault rule added: events_send_event: 500 (1 more; takes effect)\n"

    status, _, err = run(
        capsys, "send", "-m", "hi", "--target-type", "USER", "--target-resource-id", DEMO_USER_ID
    )
    assert status == 1
    assert err == "error: 500 INTERNAL (13): injected fault: internal error\n"
    assert len(sandbox.sent_events) == 1  # it took effect all the same

    status, out, _ = run(capsys, "sandbox", "faults")
    assert out.splitlines() == [
        "fault rules (0)",
        "injected faults (1):",
        "  events_send_event: 500 on POST /experimental/open-platform/events/send, answered 500, took effect",
    ]


def test_fault_options_reach_the_sandbox(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sandbox", "fault", "events_*", "429", "--fraction", "0.5", "--seed", "3"]
    status, out, _ = run(capsys, *argv, "--retry-after", "2", "--retry-after-date", "--times", "4")
    assert status == 0
    (rule,) = sandbox.fault_rules
    assert (rule.operation, rule.fault, rule.remaining, rule.fraction, rule.seed) == (
        "events_*",
        "429",
        4,
        0.5,
        3,
    )
    assert (rule.retry_after, rule.retry_after_as_date, rule.takes_effect) == (2, True, False)

    run(capsys, "sandbox", "fault", "oauth2_token", "slow", "--delay", "0.5", "--takes-effect")
    assert sandbox.fault_rules[1].delay == 0.5

    status, out, _ = run(capsys, "--json", "sandbox", "faults", "--clear")
    assert json.loads(out) == {"ok": True, "fault_rules": [], "injected_faults": []}
    assert sandbox.fault_rules == []


def test_a_bad_fault_is_refused_by_the_sandbox(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "--json", "sandbox", "fault", "events_send", "418")
    assert status == 1
    assert err.startswith("error: 400 INVALID_ARGUMENT (3): no sandbox operation is called 'events_send'")
    assert json.loads(out)["error"]["code_name"] == "INVALID_ARGUMENT"


def test_admin_commands_need_the_sandbox_url(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "sandbox", "state")
    assert status == 2
    assert "sandbox state needs the sandbox's URL: pass --base-url or set KENAR_BASE_URL" in err


# -- trigger --json errors have the documented shape -------------------------------------------


def test_trigger_json_errors_have_the_api_error_shape(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "--json", "trigger", "NEW_MESSAGE", "--webhook-url", "http://127.0.0.1:9/")
    assert status == 1
    error = json.loads(out)["error"]
    assert (error["status"], error["code"], error["code_name"]) == (400, 9, "FAILED_PRECONDITION")
    assert error["message"].startswith("no subscription matches NEW_MESSAGE for post")

    status, out, _ = run(
        capsys, "--json", "trigger", "NEW_MESSAGE", "--base-url", f"http://127.0.0.1:{refused_port()}"
    )
    error = json.loads(out)["error"]
    assert (error["status"], error["code"], error["code_name"]) == (None, None, None)
    assert error["message"].startswith("no answer from the sandbox at")


# -- credentials are asked for, not sent empty to production ----------------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "the API key is missing: set KENAR_API_KEY or pass --api-key"),
        ({"KENAR_API_KEY": "k"}, "the access token is missing: set KENAR_ACCESS_TOKEN, pass --access-token"),
    ],
)
def test_send_without_credentials_says_what_to_set(
    env: Dict[str, str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for command in (
        ["send", "-m", "hi", "--target-type", "USER", "--target-resource-id", "u"],
        ["subscribe", "--event-type", "POST_UPDATE"],
    ):
        status, _, err = run(capsys, *command)
        assert status == 2
        assert message in err


# -- the sandbox with your own credentials -----------------------------------------------------


def clean_env() -> Dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("KENAR_")}


def test_sandbox_accepts_the_credentials_its_flags_give() -> None:
    argv = ["--json", "sandbox", "--port", "0", "--api-key", APP_KEY, "--permission", "EVENTS_SEND"]
    argv += ["--user-id", "sara-1", "--scope", "SEND_EVENT", "--post", "AbCd1234", "--post", "EfGh5678"]
    process = subprocess.Popen(
        [sys.executable, "-m", "kenar_api_client.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert process.stdout is not None
        banner: Dict[str, Any] = json.loads(process.stdout.readline())
        assert banner["api_key"] is None  # a key you passed is not printed
        assert banner["access_token"] == DEMO_ACCESS_TOKEN
        assert (banner["user_id"], banner["posts"], banner["scopes"]) == (
            "sara-1",
            ["AbCd1234", "EfGh5678"],
            ["SEND_EVENT"],
        )
        configuration = kenar_api_client.Configuration(
            host=banner["url"], api_key={"APIKey": APP_KEY}, access_token=DEMO_ACCESS_TOKEN
        )
        with kenar_api_client.ApiClient(configuration) as client:
            events = kenar_api_client.EventsApi(client)
            events.events_send_event(message="hi", target_type="POST", target_resource_id="EfGh5678")
            with pytest.raises(kenar_api_client.ForbiddenException) as caught:
                events.events_register_event_subscription({"event_type": "POST_UPDATE"})
            assert caught.value.data.message == "the API key lacks permission EVENTS_REGISTER_SUBSCRIPTION"
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=300)
    assert APP_KEY not in err
    assert "POST /experimental/open-platform/events/send -> 200" in err


def test_sandbox_refuses_an_unknown_scope(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "sandbox", "--port", "0", "--scope", "NOT_A_SCOPE")
    assert status == 2
    assert "--scope: the scope 'NOT_A_SCOPE' is unknown" in err


# -- a closed pipe, a silent library -------------------------------------------------------------


def test_demo_into_head_ends_without_a_traceback() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "kenar_api_client.cli", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    process.stdout.close()  # what `head -1` does after its line
    _, err = process.communicate(timeout=300)
    assert first.startswith(b"kenar-events demo")
    assert b"Traceback" not in err
    assert b"BrokenPipeError" not in err
    assert process.returncode in (0, 1)  # 1 if it noticed the closed pipe; 0 if it had finished


def test_the_library_prints_no_warning_unless_logging_is_configured() -> None:
    code = (
        "import logging, sys\n"
        "from kenar_api_client.sandbox import Sandbox\n"
        "with Sandbox(webhook_url='http://127.0.0.1:9/', delivery_attempts=1) as sandbox:\n"
        "    assert sandbox.trigger('PAYMENT_TRANSACTION').outcome == 'failed'\n"
        "    if sys.argv[1:] == ['configured']:\n"
        "        logging.basicConfig()\n"
        "        sandbox.trigger('PAYMENT_TRANSACTION')\n"
    )
    quiet = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert quiet.stderr == ""
    shown = subprocess.run(
        [sys.executable, "-c", code, "configured"], capture_output=True, text=True, timeout=300, check=True
    )
    assert (
        "delivery of PAYMENT_TRANSACTION to http://127.0.0.1:9/, attempt 1/1: connection refused"
        in shown.stderr
    )


def test_configuration_debug_still_shows_records_on_stderr() -> None:
    code = (
        "import kenar_api_client\n"
        "configuration = kenar_api_client.Configuration(host='http://127.0.0.1:9')\n"
        "configuration.debug = True\n"
        "import logging\n"
        "logging.getLogger('kenar_api_client').debug('visible')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert "visible" in result.stderr
    assert DEMO_IDENTIFICATION_KEY not in result.stderr


@pytest.mark.parametrize(
    "command",
    [["deliver"], ["sandbox", "state"], ["sandbox", "reset"], ["sandbox", "fault"], ["sandbox", "faults"]],
)
def test_the_new_commands_have_help(command: List[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert f"usage: kenar-events {' '.join(command)}" in capsys.readouterr().out
