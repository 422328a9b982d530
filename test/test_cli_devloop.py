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
from kenar_api_client.oauth import OAuthClient
from kenar_api_client.sandbox import (
    DEMO_ACCESS_TOKEN,
    DEMO_API_KEY,
    DEMO_CLIENT_SECRET,
    DEMO_IDENTIFICATION_KEY,
    DEMO_POST_TOKEN,
    DEMO_REDIRECT_URI,
    DEMO_USER_ID,
    Sandbox,
    consent,
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
    [("[1, 2]", "must be a JSON object: the body of one delivery"), ("{not json", "is not valid JSON")],
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


def test_state_shows_the_conversations_and_the_messages_the_app_sent(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    conversation = sandbox.add_conversation(DEMO_POST_TOKEN, conversation_id="conv-cli-1")
    scopes = [f"CHAT_POST_CONVERSATIONS_MESSAGE_SEND.{DEMO_POST_TOKEN}"]
    token = sandbox.issue_tokens(scopes=scopes)["access_token"]
    configuration = kenar_api_client.Configuration(
        host=sandbox.url, api_key={"APIKey": DEMO_API_KEY}, access_token=token
    )
    grid = {"rows": [{"buttons": [{"caption": "بله"}, {"caption": "نه"}]}]}
    with kenar_api_client.ApiClient(configuration) as api_client:
        kenar_api_client.ChatAPIApi(api_client).chat_api_conversation_send_message(
            conversation.id, {"message": "هنوز موجوده", "receiver_buttons": grid}
        )

    status, out, _ = run(capsys, "sandbox", "state")

    assert status == 0
    assert (
        f"conversations (1):\n  conv-cli-1: POST about post {DEMO_POST_TOKEN}, user {DEMO_USER_ID}\n" in out
    )
    assert (
        "sent messages (1):\n  to conversation conv-cli-1 (chat_api_conversation_send_message): "
        "'هنوز موجوده' [buttons: بله | نه]\n"
    ) in out
    status, out, _ = run(capsys, "--json", "sandbox", "state")
    (sent,) = json.loads(out)["sent_messages"]
    assert (sent["text"], sent["buttons"]) == ("هنوز موجوده", {"receiver_buttons": grid})


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


# -- the sandbox banner: redirect URIs, the clock file, every key documented ----------------------


def start_sandbox(*flags: str, as_json: bool = True) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "kenar_api_client.cli", *(["--json"] if as_json else []), "sandbox"]
    return subprocess.Popen(
        [*argv, "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)


def test_redirect_uri_registers_the_apps_callback_and_is_printed() -> None:
    app_callback = "http://127.0.0.1:8000/oauth/callback"
    process = start_sandbox("--redirect-uri", app_callback)
    try:
        assert process.stdout is not None
        banner = json.loads(process.stdout.readline())
        oauth = OAuthClient(
            banner["app_slug"], DEMO_CLIENT_SECRET, banner["redirect_uri"], banner["oauth_url"]
        )
        url, _ = oauth.authorization_url(["SEND_EVENT"])
        back = consent(url)  # the sandbox redirects to the app's own callback
    finally:
        stop(process)
    assert banner["redirect_uri"] == app_callback
    assert banner["redirect_uris"] == [DEMO_REDIRECT_URI, app_callback]
    assert back.startswith(f"{app_callback}?code=ory_ac_")


def test_the_human_banner_says_what_to_set_the_redirect_uri_to() -> None:
    process = start_sandbox(as_json=False)
    try:
        assert process.stdout is not None
        lines: List[str] = []
        while not lines or lines[-1] not in ("Press Ctrl+C to stop.\n", ""):
            lines.append(process.stdout.readline())
    finally:
        stop(process)
    assert "  export KENAR_REDIRECT_URI=http://127.0.0.1/kenar/callback\n" in lines
    (hint,) = [line for line in lines if "KENAR_REDIRECT_URI matches any port" in line]
    assert "http://127.0.0.1:8000/kenar/callback" in hint
    assert any(line.startswith("  export KENAR_CLOCK_FILE=") for line in lines)


def test_a_malformed_redirect_uri_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "sandbox", "--port", "0", "--redirect-uri", "http://127.0.0.1/cb?x=1")
    assert status == 2
    assert err.startswith("error: --redirect-uri: the redirect URI 'http://127.0.0.1/cb?x=1' must carry")


def documented_sandbox_json_keys() -> List[str]:
    text = (Path(__file__).parent.parent / "docs" / "CLI.md").read_text(encoding="utf-8")
    table = text.split("<!-- sandbox-json-keys:start -->")[1].split("<!-- sandbox-json-keys:end -->")[0]
    return [line.split("`")[1] for line in table.splitlines() if line.startswith("| `")]


def test_docs_list_every_key_of_the_json_banner() -> None:
    process = start_sandbox()
    try:
        assert process.stdout is not None
        banner = json.loads(process.stdout.readline())
    finally:
        stop(process)
    assert list(banner) == documented_sandbox_json_keys()


# -- kenar-events api: any operation --------------------------------------------------------------


def test_api_calls_any_operation_and_prints_its_answer(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "api", "assets_get_cities")
    assert status == 0
    assert out.startswith("ok: assets_get_cities\n{\n")
    assert json.loads(out.partition("\n")[2]) == {
        "cities": [{"display": "sandbox-display", "slug": "sandbox-slug"}]
    }

    status, out, _ = run(capsys, "api", "finder_get_user2", "--json")
    assert status == 0
    assert json.loads(out) == {
        "ok": True,
        "operation": "finder_get_user2",
        "response": {"user_id": DEMO_USER_ID},
    }
    assert [r.path for r in sandbox.requests] == ["/v1/open-platform/assets/city", "/v1/open-platform/users"]


def test_api_sends_params_and_a_json_body(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    conversation = sandbox.add_conversation(DEMO_POST_TOKEN, conversation_id="conv-api-1")
    token = sandbox.issue_tokens(scopes=[f"CONVERSATION_SEND_MESSAGE.{conversation.id}"])["access_token"]
    body = json.dumps({"message": "سلام", "sender_buttons": {"rows": [{"buttons": [{"caption": "OK"}]}]}})

    status, out, _ = run(
        capsys,
        "--json",
        "api",
        "chat_api_conversation_send_message",
        "--param",
        f"conversation_id={conversation.id}",
        "--json-body",
        body,
        "--access-token",
        token,
    )

    assert status == 0, out
    assert json.loads(out)["operation"] == "chat_api_conversation_send_message"
    (sent,) = sandbox.sent_messages
    assert (sent.conversation_id, sent.text) == ("conv-api-1", "سلام")
    assert token not in out


def test_api_converts_integer_params_and_reads_a_body_file(
    app: RecordingServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--base-url", app.url, "--api-key", APP_KEY, "--access-token", "t-1"]
    assert run(capsys, "api", "payment_list_transactions", "--param", "page_size=5", *common)[0] == 0
    assert app.last.query == {"page_size": ["5"]}
    (tmp_path / "body.json").write_text('{"phone": "09120000000"}', encoding="utf-8")
    argv = ["api", "finder_get_user_idby_phone", "--json-body", f"@{tmp_path / 'body.json'}", *common]
    assert run(capsys, *argv)[0] == 0
    assert app.last.json() == {"phone": "09120000000"}
    assert app.last.headers["X-API-Key"] == APP_KEY


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["api", "assets_get_citis"],
            "there is no operation 'assets_get_citis' (did you mean assets_get_cities",
        ),
        (["api", "assets_get_brand_models"], "assets_get_brand_models needs --param category=VALUE"),
        (
            ["api", "assets_get_cities", "--param", "city=x"],
            "--param 'city=x': expected NAME=VALUE, NAME one of: none",
        ),
        (["api", "payment_list_transactions", "--param", "page_size=ten"], "'ten' is not an integer"),
        (["api", "finder_get_user_idby_phone"], "needs a request body: --json-body JSON"),
        (["api", "finder_get_user_idby_phone", "--json-body", "[1]"], "--json-body must be a JSON object"),
        (["api", "finder_get_user_idby_phone", "--json-body", '{"phone": 9}'], "phone"),
    ],
)
def test_api_usage_errors_send_nothing(
    app: RecordingServer, capsys: pytest.CaptureFixture[str], argv: List[str], message: str
) -> None:
    status, out, err = run(capsys, *argv, "--base-url", app.url, "--api-key", APP_KEY, "--access-token", "t")
    assert status == 2
    assert message in err
    assert len(err.splitlines()) == 1
    assert "Traceback" not in out + err
    assert app.requests == []


def test_api_errors_are_reported_like_send(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["api", "chat_api_get_conversation", "--param", "conversation_id=nope"]
    status, _, err = run(capsys, *argv)
    assert status == 1
    assert err.startswith("error: 404 NOT_FOUND (5): conversation 'nope' is not known")
    status, out, _ = run(capsys, "--json", *argv)
    assert json.loads(out)["error"]["code_name"] == "NOT_FOUND"
    assert run(capsys, "api")[:2] == (2, "")


def test_api_key_only_operations_need_no_access_token(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KENAR_ACCESS_TOKEN")
    assert run(capsys, "api", "assets_get_cities")[0] == 0
    status, _, err = run(capsys, "api", "finder_get_user2")
    assert status == 2
    assert "the access token is missing" in err


def test_api_help_lists_every_operation_and_each_operations_help_comes_from_the_spec(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kenar_api_client._operation_security import OPERATION_SECURITY

    with pytest.raises(SystemExit) as done:
        main(["api", "--help"])
    assert done.value.code == 0
    listing = capsys.readouterr().out
    for name in OPERATION_SECURITY:
        assert f"\n  {name} " in listing
    assert "  assets_get_cities                          GET /v1/open-platform/assets/city\n" in listing

    with pytest.raises(SystemExit) as done:
        main(["api", "chat_api_conversation_send_message", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: kenar-events api chat_api_conversation_send_message")
    assert "ارسال پیام به مکالمه" in text  # the spec's summary
    assert "`POST /v2/open-platform/conversations/{conversation_id}/messages`" in text
    assert "`CHAT_SEND_MESSAGE_OAUTH`" in text
    assert "--param conversation_id=VALUE   string, required" in text
    assert "an object of type ChatAPIConversationSendMessageBody: {media_token?, message," in text
