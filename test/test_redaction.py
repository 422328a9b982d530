"""Secrets never leak (logs, stdout/stderr, reprs, reports, exceptions) and headers cannot be injected."""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
from conftest import ACCESS_TOKEN, API_KEY
from fault_servers import RawServer, free_port, http_response, stall
from servers import RecordedRequest, RecordingServer, Reply

from kenar_api_client import (
    ApiClient,
    ApiConnectionError,
    ApiException,
    ApiTimeoutError,
    ApiValueError,
    Configuration,
    EventsApi,
    ForbiddenException,
    UnauthorizedException,
)
from kenar_api_client.retry import KenarRetry

SEND_ARGS: Dict[str, Any] = {"message": "hello", "target_type": "USER", "target_resource_id": "u-1"}
REDACTED = "[REDACTED]"
PREFIX = "Token"


def secrets() -> List[str]:
    return [API_KEY, ACCESS_TOKEN, f"{PREFIX} {API_KEY}", f"Bearer {ACCESS_TOKEN}"]


def assert_no_secret(text: str, where: str) -> None:
    for secret in secrets():
        assert secret not in text, f"a credential leaked into {where}"


def exception_texts(error: BaseException) -> Iterator[str]:
    """str() and repr() of ``error`` and of everything chained under it, args included."""
    seen: List[BaseException] = []
    pending: List[Optional[BaseException]] = [error]
    while pending:
        current = pending.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        yield str(current)
        yield repr(current)
        yield repr(current.args)
        pending.extend([current.__cause__, current.__context__])


def echo_credentials(request: RecordedRequest) -> Reply:
    """A hostile (or merely careless) server that repeats the credentials back."""
    key = request.headers.get("X-API-Key", "")
    authorization = request.headers.get("Authorization", "")
    status = 401 if "unauthorized" in request.raw_path else 403
    body = {
        "code": 16 if status == 401 else 7,
        "message": f"key {key} with {authorization} is not allowed",
        "details": [{"@type": "type.googleapis.com/debug", "key": key, "auth": authorization}],
    }
    return Reply(status, body, {"Content-Type": "application/json", "X-Echo-Key": key})


@pytest.fixture
def stalling_url() -> Iterator[str]:
    raw = RawServer(stall).start()
    yield raw.url
    raw.stop()


def make_configuration(host: str, with_prefix: bool) -> Configuration:
    configuration = Configuration(host=host, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN)
    if with_prefix:
        configuration.api_key_prefix["APIKey"] = PREFIX
    configuration.timeout = 0.3
    configuration.retries = KenarRetry.default(1).new(backoff_factor=0.01, backoff_jitter=0)
    return configuration


def run_every_kind_of_call(
    server: RecordingServer, stalling_url: str, with_prefix: bool
) -> List[BaseException]:
    """Success, 401/403 echoing the credentials, timeout, refused: returns the exceptions."""
    errors: List[BaseException] = []
    refused_host, refused_port = free_port()
    server.responder = lambda request: (
        echo_credentials(request) if "reject" in request.raw_path else Reply(200, {"ok": True})
    )

    configuration = make_configuration(server.url, with_prefix)
    configuration.debug = True
    try:
        with ApiClient(configuration) as client:
            api = EventsApi(client)
            assert api.events_send_event(**SEND_ARGS) == {"ok": True}
            assert api.events_register_event_subscription({"event_type": "POST_UPDATE"}) == {"ok": True}
            for path, expected in (
                ("/reject/unauthorized", UnauthorizedException),
                ("/reject", ForbiddenException),
            ):
                client.configuration.host = server.url + path
                with pytest.raises(expected) as caught:
                    api.events_send_event(**SEND_ARGS)
                errors.append(caught.value)
            client.configuration.host = server.url

        for url, expected_error in (
            (stalling_url, ApiTimeoutError),
            (f"http://{refused_host}:{refused_port}", ApiConnectionError),
            ("http://kenar-sdk-test.invalid", ApiConnectionError),
        ):
            other = make_configuration(url, with_prefix)
            other.debug = True
            try:
                with ApiClient(other) as client, pytest.raises(expected_error) as caught:
                    EventsApi(client).events_send_event(**SEND_ARGS)
                errors.append(caught.value)
            finally:
                other.debug = False
    finally:
        configuration.debug = False
    return errors


@pytest.mark.parametrize("with_prefix", [False, True], ids=["no-prefix", "prefix"])
def test_a_debug_run_logs_redacted_headers_and_no_secret(
    server: RecordingServer,
    stalling_url: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    with_prefix: bool,
) -> None:
    caplog.set_level(logging.DEBUG)
    errors = run_every_kind_of_call(server, stalling_url, with_prefix)

    # The server did receive the real credentials: the redaction is only on our side.
    assert server.requests[0].headers["X-API-Key"] == (f"{PREFIX} {API_KEY}" if with_prefix else API_KEY)
    assert any("reject" in r.raw_path for r in server.requests)

    log_text = "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
    )
    assert_no_secret(log_text, "the log records")
    assert_no_secret(caplog.text, "the formatted log")
    out, err = capfd.readouterr()
    assert_no_secret(out, "stdout")
    assert_no_secret(err, "stderr")

    # Requests and answers were logged, with placeholders where the credentials were.
    request_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("request: ")]
    assert len(request_lines) >= 7
    for line in request_lines:
        assert f"'X-API-Key': '{REDACTED}'" in line
        assert f"'Authorization': '{REDACTED}'" in line
    assert any(r.getMessage().startswith("response: 403") for r in caplog.records)
    # urllib3's own debug output came through too.
    assert any(r.name.startswith("urllib3") for r in caplog.records)

    assert len(errors) == 5
    for error in errors:
        assert isinstance(error, ApiException)
        for text in exception_texts(error):
            assert_no_secret(text, f"an exception ({type(error).__name__})")
        assert_no_secret(str(error.body or ""), "an exception's body")
        assert_no_secret(repr(error.data), "an exception's data")
    forbidden = errors[1]
    assert REDACTED in str(forbidden)
    assert REDACTED in (forbidden.body or "")


def test_debug_output_on_stderr_without_logging_setup_is_redacted(
    server: RecordingServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """With no logging configured, ``debug = True`` prints through its own stderr handler."""
    root = logging.getLogger()
    saved_handlers = root.handlers[:]
    root.handlers.clear()  # pytest's capture handlers; the application has none
    server.responder = echo_credentials
    configuration = Configuration(
        host=server.url + "/reject", api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN
    )
    try:
        configuration.debug = True
        assert configuration.logger_stream_handler is not None
        with ApiClient(configuration) as client, pytest.raises(ForbiddenException):
            EventsApi(client).events_send_event(**SEND_ARGS)
    finally:
        configuration.debug = False
        root.handlers[:] = saved_handlers
    out, err = capfd.readouterr()
    assert "request: POST" in err
    assert REDACTED in err
    assert_no_secret(out + err, "the debug output")


@pytest.mark.parametrize("with_prefix", [False, True], ids=["no-prefix", "prefix"])
def test_reprs_and_the_debug_report_hold_no_secret(with_prefix: bool) -> None:
    configuration = make_configuration("https://open-api.divar.ir", with_prefix)
    with ApiClient(configuration) as client:
        api = EventsApi(client)
        texts = {
            "repr(Configuration)": repr(configuration),
            "str(Configuration)": str(configuration),
            "repr(ApiClient)": repr(client),
            "str(ApiClient)": str(client),
            "repr(EventsApi)": repr(api),
            "str(EventsApi)": str(api),
            "to_debug_report()": configuration.to_debug_report(),
            "repr(api_key)": repr(configuration.api_key),
            "str(api_key)": str(configuration.api_key),
        }
    for where, text in texts.items():
        assert_no_secret(text, where)
    assert REDACTED in texts["repr(Configuration)"]
    assert REDACTED in texts["to_debug_report()"]


def test_credentials_from_the_environment_are_redacted_too(
    monkeypatch: pytest.MonkeyPatch, server: RecordingServer
) -> None:
    monkeypatch.setenv("KENAR_BASE_URL", server.url)
    monkeypatch.setenv("KENAR_API_KEY", API_KEY)
    monkeypatch.setenv("KENAR_ACCESS_TOKEN", ACCESS_TOKEN)
    configuration = Configuration()
    assert_no_secret(repr(configuration), "repr(Configuration)")
    assert_no_secret(configuration.to_debug_report(), "to_debug_report()")


def test_an_unsent_request_error_does_not_quote_the_secret(server: RecordingServer) -> None:
    configuration = Configuration(host=server.url, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN)
    with ApiClient(configuration) as client, pytest.raises(ApiValueError) as caught:
        EventsApi(client).events_send_event(**SEND_ARGS, _request_timeout="abc")
    for text in exception_texts(caught.value):
        assert_no_secret(text, "ApiValueError")


# -- credentials a server echoes back ----------------------------------------------------

PER_CALL_KEY = "per-call-key-77a1c0"
PER_CALL_TOKEN = "per-call-token-5d2c9e"
COOKIE_SECRET = "cookie-secret-9f3e41"
ECHOED = ("X-API-Key", "Authorization", "Cookie")


def echo_all(request: RecordedRequest) -> Reply:
    """Repeat every credential the request carried: in the message, the details and headers."""
    sent = {name: request.headers.get(name, "") for name in ECHOED}
    body = {
        "code": 16,
        "message": "rejected " + " ".join(f"{name}={value}" for name, value in sent.items()),
        "details": [{"@type": "type.googleapis.com/debug", "echo": sent}],
    }
    headers = {f"X-Echo-{name}": value for name, value in sent.items() if value}
    return Reply(401, body, {"Content-Type": "application/json", **headers})


def where_an_exception_shows(error: ApiException) -> Dict[str, str]:
    """Every place a user (or a logging call) may read from an ApiException."""
    headers = error.headers or {}
    return {
        "str(e)": str(error),
        "repr(e)": repr(error),
        "e.args": repr(error.args),
        "e.reason": str(error.reason),
        "e.body": str(error.body),
        "e.data": repr(error.data),
        "e.data.message": str(getattr(error.data, "message", "")),
        "e.data.details": repr(getattr(error.data, "details", "")),
        "e.headers": repr(list(headers.items())),
    }


def _per_call_key(api: EventsApi, configuration: Configuration) -> Any:
    auth = {"in": "header", "type": "api_key", "key": "X-API-Key", "value": PER_CALL_KEY}
    return api.events_send_event(**SEND_ARGS, _request_auth=auth)


def _per_call_bearer(api: EventsApi, configuration: Configuration) -> Any:
    configuration.access_token = None  # a configured token would replace the header
    return api.events_send_event(**SEND_ARGS, _headers={"Authorization": f"Bearer {PER_CALL_TOKEN}"})


def _per_call_cookie(api: EventsApi, configuration: Configuration) -> Any:
    return api.events_send_event(**SEND_ARGS, _headers={"Cookie": f"session={COOKIE_SECRET}; theme=dark"})


def _configured(api: EventsApi, configuration: Configuration) -> Any:
    return api.events_send_event(**SEND_ARGS)


ECHO_CASES = {
    "_request_auth": (_per_call_key, [PER_CALL_KEY]),
    "_headers-authorization": (_per_call_bearer, [PER_CALL_TOKEN, f"Bearer {PER_CALL_TOKEN}"]),
    "_headers-cookie": (_per_call_cookie, [COOKIE_SECRET]),
    "configured": (_configured, [API_KEY, ACCESS_TOKEN]),
}


@pytest.mark.parametrize("case", sorted(ECHO_CASES))
def test_credentials_a_request_was_sent_with_are_scrubbed_from_its_exception(
    server: RecordingServer, case: str
) -> None:
    call, sent_secrets = ECHO_CASES[case]
    server.responder = echo_all
    configuration = Configuration(host=server.url, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN)
    with ApiClient(configuration) as client, pytest.raises(UnauthorizedException) as caught:
        call(EventsApi(client), configuration)

    # The server did receive (and echo) them.
    echoed = server.last.headers
    assert any(secret in str(echoed.get(name)) for name in ECHOED for secret in sent_secrets)
    texts = where_an_exception_shows(caught.value)
    for where, text in texts.items():
        for secret in sent_secrets:
            assert secret not in text, f"a credential leaked into {where}"
    for where in ("str(e)", "e.body", "e.data.message", "e.data.details", "e.headers"):
        assert REDACTED in texts[where], where
    # What is not a credential is kept.
    assert caught.value.status == 401
    assert caught.value.data is not None
    assert caught.value.data.code == 16


def test_a_token_replaced_while_the_call_was_under_way_is_scrubbed_too(server: RecordingServer) -> None:
    configuration = Configuration(host=server.url, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN)

    def refresh_then_echo(request: RecordedRequest) -> Reply:
        configuration.access_token = "refreshed-token-31f0aa"  # another thread refreshed it
        return echo_all(request)

    server.responder = refresh_then_echo
    with ApiClient(configuration) as client, pytest.raises(UnauthorizedException) as caught:
        EventsApi(client).events_send_event(**SEND_ARGS)
    for where, text in where_an_exception_shows(caught.value).items():
        assert ACCESS_TOKEN not in text, f"the token sent leaked into {where}"


def test_a_cookie_the_server_sets_is_not_logged(
    server: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    cookie = "session=set-cookie-secret-4b; Secure"
    server.queue_reply(Reply(200, {}, {"Content-Type": "application/json", "Set-Cookie": cookie}))
    configuration = Configuration(host=server.url, api_key={"APIKey": API_KEY})
    caplog.set_level(logging.DEBUG)
    configuration.debug = True
    try:
        with ApiClient(configuration) as client:
            EventsApi(client).events_send_event(**SEND_ARGS)
    finally:
        configuration.debug = False
    assert "set-cookie-secret-4b" not in caplog.text
    assert f"'Set-Cookie': '{REDACTED}'" in caplog.text


def test_a_copy_of_the_api_key_dict_still_hides_its_values() -> None:
    configuration = Configuration(api_key={"APIKey": API_KEY})
    copied = configuration.api_key.copy()
    assert copied == {"APIKey": API_KEY}
    assert copied is not configuration.api_key
    assert_no_secret(repr(copied), "repr(api_key.copy())")
    assert_no_secret(str(copied), "str(api_key.copy())")


def _echo_key_in_reason(server: RawServer, conn: Any) -> None:
    head = server.read_request(conn) or b""
    key = next(
        line.split(b":", 1)[1].strip().decode()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"x-api-key:")
    )
    conn.sendall(http_response(401, b'{"code": 16}', reason=f"Unauthorized key {key}"))


@pytest.mark.parametrize("key", [None, PER_CALL_KEY], ids=["configured", "_request_auth"])
def test_a_credential_echoed_in_the_reason_phrase_is_not_in_the_exception(key: Optional[str]) -> None:
    raw = RawServer(_echo_key_in_reason).start()
    options: Dict[str, Any] = {}
    if key is not None:
        options["_request_auth"] = {"in": "header", "type": "api_key", "key": "X-API-Key", "value": key}
    try:
        configuration = make_configuration(raw.url, with_prefix=False)
        with ApiClient(configuration) as client, pytest.raises(UnauthorizedException) as caught:
            EventsApi(client).events_send_event(**SEND_ARGS, **options)
    finally:
        raw.stop()
    assert caught.value.reason == f"Unauthorized key {REDACTED}"
    for text in exception_texts(caught.value):
        assert_no_secret(text, "the exception")
        assert PER_CALL_KEY not in text


# -- header injection ---------------------------------------------------------------------


INJECTED = "a\r\nX-Evil: 1"


def _key_with_crlf(configuration: Configuration) -> Callable[[EventsApi], Any]:
    configuration.api_key = {"APIKey": API_KEY + "\r\nX-Evil: 1"}
    return lambda api: api.events_send_event(**SEND_ARGS)


def _token_with_lf(configuration: Configuration) -> Callable[[EventsApi], Any]:
    configuration.access_token = ACCESS_TOKEN + "\nX-Evil: 1"
    return lambda api: api.events_send_event(**SEND_ARGS)


def _prefix_with_cr(configuration: Configuration) -> Callable[[EventsApi], Any]:
    configuration.api_key_prefix["APIKey"] = "Token\r"
    return lambda api: api.events_send_event(**SEND_ARGS)


def _extra_header(configuration: Configuration) -> Callable[[EventsApi], Any]:
    return lambda api: api.events_send_event(**SEND_ARGS, _headers={"X-Extra": INJECTED})


def _extra_header_on_subscribe(configuration: Configuration) -> Callable[[EventsApi], Any]:
    return lambda api: api.events_register_event_subscription(
        {"event_type": "POST_UPDATE"}, _headers={"X-Extra": "a\nb"}
    )


def _header_name(configuration: Configuration) -> Callable[[EventsApi], Any]:
    return lambda api: api.events_send_event(**SEND_ARGS, _headers={"X-A\r\nX-Evil": "1"})


def _request_auth(configuration: Configuration) -> Callable[[EventsApi], Any]:
    auth = {"in": "header", "type": "api_key", "key": "X-API-Key", "value": API_KEY + "\r\n"}
    return lambda api: api.events_send_event(**SEND_ARGS, _request_auth=auth)


def _content_type(configuration: Configuration) -> Callable[[EventsApi], Any]:
    return lambda api: api.events_register_event_subscription(
        {"event_type": "POST_UPDATE"}, _content_type="application/json\r\nX-Evil: 1"
    )


INJECTIONS = {
    "api-key-crlf": _key_with_crlf,
    "access-token-lf": _token_with_lf,
    "api-key-prefix-cr": _prefix_with_cr,
    "_headers-value": _extra_header,
    "_headers-value-subscribe": _extra_header_on_subscribe,
    "_headers-name": _header_name,
    "_request_auth": _request_auth,
    "_content_type": _content_type,
}


@pytest.mark.parametrize("case", sorted(INJECTIONS))
def test_a_line_break_in_a_header_is_refused_before_sending(server: RecordingServer, case: str) -> None:
    configuration = Configuration(host=server.url, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN)
    # A key or token is refused as soon as it is set, the others when the call is made.
    with ApiClient(configuration) as client, pytest.raises(ApiValueError) as caught:
        INJECTIONS[case](configuration)(EventsApi(client))
    assert server.requests == []
    message = str(caught.value)
    assert "X-Evil: 1" not in message
    assert_no_secret(message, "the ApiValueError")


def test_set_default_header_refuses_a_line_break(server: RecordingServer) -> None:
    configuration = Configuration(host=server.url, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN)
    with ApiClient(configuration) as client:
        with pytest.raises(ApiValueError) as caught:
            client.set_default_header("X-Extra", INJECTED)
        assert "X-Evil" not in str(caught.value)
        with pytest.raises(ApiValueError):
            ApiClient(configuration, header_name="X-Extra", header_value="a\nb")
        # The refused header was not kept: later calls go out clean.
        EventsApi(client).events_send_event(**SEND_ARGS)
    assert len(server.requests) == 1
    assert "X-Extra" not in server.last.headers
    assert "X-Evil" not in server.last.headers


def test_a_line_break_in_a_query_value_is_escaped_not_injected(server: RecordingServer) -> None:
    configuration = Configuration(host=server.url, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN)
    with ApiClient(configuration) as client:
        EventsApi(client).events_send_event(
            message="line\r\nX-Evil: 1", target_type="USER", target_resource_id="u\r\n1"
        )
    assert "X-Evil" not in server.last.headers
    assert server.last.query["message"] == ["line\r\nX-Evil: 1"]
    assert server.last.query["target_resource_id"] == ["u\r\n1"]
