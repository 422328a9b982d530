"""Fault injection in the sandbox: what each fault answers, whether the operation took effect,
which calls it hits, and how Python, the admin endpoint and a reset configure it."""

from __future__ import annotations

import email.utils
import http.client
import json
import socket
import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

import kenar_api_client
from kenar_api_client import (
    ApiConnectionError,
    ApiException,
    ApiTimeoutError,
    ServiceException,
    TooManyRequestsException,
)
from kenar_api_client.retry import KenarRetry, parse_retry_after
from kenar_api_client.sandbox import (
    DEMO_ACCESS_TOKEN,
    DEMO_API_KEY,
    DEMO_POST_TOKEN,
    DEMO_USER_ID,
    FAULTS,
    InjectedFault,
    Sandbox,
    SandboxError,
)

SEND = "/experimental/open-platform/events/send"
SUBSCRIPTION = {"event_type": "POST_UPDATE", "event_resource_id": DEMO_POST_TOKEN}


@pytest.fixture
def api_client(sandbox: Sandbox) -> Iterator[kenar_api_client.ApiClient]:
    configuration = kenar_api_client.Configuration(
        host=sandbox.url, api_key={"APIKey": DEMO_API_KEY}, access_token=DEMO_ACCESS_TOKEN
    )
    configuration.retries = KenarRetry.default(2).new(backoff_factor=0.01, backoff_jitter=0)
    configuration.timeout = 5.0
    with kenar_api_client.ApiClient(configuration) as client:
        yield client


@pytest.fixture
def events(api_client: kenar_api_client.ApiClient) -> kenar_api_client.EventsApi:
    return kenar_api_client.EventsApi(api_client)


def send(events: kenar_api_client.EventsApi) -> Any:
    return events.events_send_event(message="hi", target_type="USER", target_resource_id=DEMO_USER_ID)


def raw_post(sandbox: Sandbox, path: str, body: bytes = b"", headers: Optional[Dict[str, str]] = None) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=5)
    try:
        all_headers = {"X-API-Key": DEMO_API_KEY, "Authorization": f"Bearer {DEMO_ACCESS_TOKEN}"}
        all_headers.update(headers or {})
        connection.request("POST", path, body=body, headers=all_headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def outcomes(sandbox: Sandbox) -> List[Tuple[str, str, bool, Optional[int]]]:
    return [(f.operation, f.fault, f.took_effect, f.status) for f in sandbox.injected_faults]


# -- what each fault does ---------------------------------------------------------------


def test_429_turns_the_call_away_and_the_sdk_retry_sends_it_once(
    sandbox: Sandbox, events: kenar_api_client.EventsApi
) -> None:
    sandbox.inject_fault("events_send_event", 429, retry_after=0)

    assert send(events) == {}

    assert len(sandbox.sent_events) == 1
    assert [r.status for r in sandbox.requests] == [429, 200]
    assert sandbox.requests[0].code == 8  # RESOURCE_EXHAUSTED
    assert outcomes(sandbox) == [("events_send_event", "429", False, 429)]
    assert sandbox.fault_rules == []


def test_retry_after_in_seconds_and_as_a_date(sandbox: Sandbox) -> None:
    sandbox.inject_fault("events_send_event", 429, retry_after=7)
    sandbox.inject_fault("events_send_event", 503, retry_after=30, retry_after_as_date=True)

    status, headers, body = raw_post(sandbox, SEND)
    assert (status, headers["Retry-After"]) == (429, "7")
    assert json.loads(body) == {"code": 8, "message": "injected fault: too many requests", "details": []}

    status, headers, body = raw_post(sandbox, SEND)
    assert status == 503
    assert json.loads(body)["code"] == 14  # UNAVAILABLE
    assert email.utils.parsedate_tz(headers["Retry-After"]) is not None
    seconds = parse_retry_after(headers["Retry-After"])
    assert seconds is not None
    assert 29 <= seconds <= 31


def test_503_every_time_raises_after_the_retries_and_nothing_took_effect(
    sandbox: Sandbox, events: kenar_api_client.EventsApi
) -> None:
    sandbox.inject_fault("events_send_event", 503, times=3)

    with pytest.raises(ServiceException) as caught:
        send(events)

    assert caught.value.status == 503
    assert caught.value.data.code_name == "UNAVAILABLE"
    assert sandbox.sent_events == []
    assert outcomes(sandbox) == [("events_send_event", "503", False, 503)] * 3


def test_500_lets_the_operation_take_effect_and_the_sdk_does_not_resend(
    sandbox: Sandbox, events: kenar_api_client.EventsApi
) -> None:
    sandbox.inject_fault("events_register_event_subscription", 500)

    with pytest.raises(ServiceException) as caught:
        events.events_register_event_subscription(SUBSCRIPTION)

    assert caught.value.status == 500
    assert caught.value.data.code_name == "INTERNAL"
    assert len(sandbox.subscriptions) == 1  # it happened, although the caller got an error
    assert [r.status for r in sandbox.requests] == [500]
    assert outcomes(sandbox) == [("events_register_event_subscription", "500", True, 500)]


@pytest.mark.parametrize(("fault", "title"), [(502, "502 Bad Gateway"), (504, "504 Gateway Time-out")])
def test_502_and_504_are_a_proxy_s_html_page(
    sandbox: Sandbox, events: kenar_api_client.EventsApi, fault: int, title: str
) -> None:
    sandbox.inject_fault("events_send_event", fault, takes_effect=False)

    with pytest.raises(ServiceException) as caught:
        send(events)

    assert caught.value.status == fault
    assert title in (caught.value.body or "")
    assert caught.value.headers is not None
    assert caught.value.headers["Content-Type"] == "text/html"
    assert sandbox.sent_events == []
    assert sandbox.requests[0].message == f"injected fault: {title}"


def test_drop_before_read_closes_without_effect_and_without_a_record(
    sandbox: Sandbox, events: kenar_api_client.EventsApi
) -> None:
    sandbox.inject_fault("events_send_event", "drop-before-read")

    with pytest.raises(ApiConnectionError):
        send(events)

    assert sandbox.sent_events == []
    assert sandbox.requests == []
    assert outcomes(sandbox) == [("events_send_event", "drop-before-read", False, None)]


def test_drop_after_read_takes_effect_and_the_caller_cannot_know(
    sandbox: Sandbox, events: kenar_api_client.EventsApi
) -> None:
    sandbox.inject_fault("events_send_event", "drop-after-read")

    with pytest.raises(ApiConnectionError):
        send(events)

    assert len(sandbox.sent_events) == 1  # sent once: the SDK did not retry
    assert outcomes(sandbox) == [("events_send_event", "drop-after-read", True, None)]


def test_drop_after_read_can_also_be_without_effect(
    sandbox: Sandbox, events: kenar_api_client.EventsApi
) -> None:
    sandbox.inject_fault("events_send_event", "drop-after-read", takes_effect=False)

    with pytest.raises(ApiConnectionError):
        send(events)

    assert sandbox.sent_events == []


def test_slow_answers_late_and_a_client_timeout_leaves_the_effect(
    sandbox: Sandbox, events: kenar_api_client.EventsApi
) -> None:
    sandbox.inject_fault("events_send_event", "slow", delay=2)

    with pytest.raises(ApiTimeoutError):
        events.events_send_event(
            message="hi", target_type="USER", target_resource_id=DEMO_USER_ID, _request_timeout=0.2
        )

    # The client gave up after 0.2 s: a loaded sandbox may run the operation only later.
    assert wait_for(lambda: len(sandbox.sent_events) >= 1)
    assert len(sandbox.sent_events) == 1
    assert outcomes(sandbox)[0][:3] == ("events_send_event", "slow", True)


def test_slow_then_answers_normally(sandbox: Sandbox, events: kenar_api_client.EventsApi) -> None:
    sandbox.inject_fault("events_send_event", "slow", delay=0.05)

    started = time.monotonic()
    assert send(events) == {}

    assert time.monotonic() - started >= 0.05
    assert outcomes(sandbox) == [("events_send_event", "slow", True, 200)]


def test_stop_cuts_a_slow_answer_short() -> None:
    sandbox = Sandbox().start()
    sandbox.inject_fault("*", "slow", delay=60)
    errors: List[BaseException] = []

    def call() -> None:
        try:
            raw_post(sandbox, SEND + "?message=hi&target_type=USER&target_resource_id=" + DEMO_USER_ID)
        except (OSError, http.client.HTTPException) as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    assert wait_for(lambda: len(sandbox.injected_faults) == 1)
    started = time.monotonic()
    sandbox.stop()
    caller.join(30)
    assert not caller.is_alive()
    assert time.monotonic() - started < 30  # loose: a 60 s wait was not sat through
    assert errors, "the caller got no answer"
    assert len(sandbox.sent_events) == 1


def test_malformed_takes_effect_and_the_sdk_says_the_body_is_not_json(
    sandbox: Sandbox, events: kenar_api_client.EventsApi
) -> None:
    sandbox.inject_fault("events_send_event", "malformed")

    with pytest.raises(ApiException) as caught:
        send(events)

    assert caught.value.status == 200
    assert "not valid JSON" in str(caught.value)
    assert len(sandbox.sent_events) == 1
    assert outcomes(sandbox) == [("events_send_event", "malformed", True, 200)]


def test_the_record_is_a_dataclass_with_a_json_form(sandbox: Sandbox) -> None:
    sandbox.inject_fault("events_send_event", 503)
    raw_post(sandbox, SEND)
    (injected,) = sandbox.injected_faults
    assert isinstance(injected, InjectedFault)
    document = injected.to_dict()
    assert document["path"] == SEND
    assert document["method"] == "POST"
    assert document["at"].endswith("+00:00")


# -- which calls a rule hits ------------------------------------------------------------


def test_times_counts_down_then_calls_succeed(sandbox: Sandbox, events: kenar_api_client.EventsApi) -> None:
    rule = sandbox.inject_fault("events_send_event", 503, times=2)
    assert rule.remaining == 2

    assert send(events) == {}  # 503, 503, then 200 on the second retry

    assert [r.status for r in sandbox.requests] == [503, 503, 200]
    assert sandbox.fault_rules == []


def test_other_operations_are_not_hit(sandbox: Sandbox, events: kenar_api_client.EventsApi) -> None:
    sandbox.inject_fault("events_register_event_subscription", 500)

    assert send(events) == {}

    assert sandbox.injected_faults == []
    assert len(sandbox.fault_rules) == 1


def test_a_fraction_with_a_seed_is_repeatable(sandbox: Sandbox) -> None:
    def pattern() -> List[int]:
        sandbox.reset()
        sandbox.inject_fault("events_send_event", 500, fraction=0.5, seed=7, takes_effect=False)
        return [raw_post(sandbox, SEND)[0] for _ in range(20)]

    first = pattern()
    assert first == pattern()
    assert 0 < first.count(500) < 20
    assert set(first) == {500, 400}  # the rest reach the operation: message is required
    assert len(sandbox.fault_rules) == 1  # a fraction without times never runs out


def test_a_fraction_with_times_stops_after_that_many(sandbox: Sandbox) -> None:
    sandbox.inject_fault("*", 503, fraction=1, times=2)
    statuses = [raw_post(sandbox, SEND)[0] for _ in range(3)]
    assert statuses == [503, 503, 400]


def test_rules_fire_in_the_order_they_were_added(sandbox: Sandbox) -> None:
    sandbox.inject_fault("events_send_event", 429)
    sandbox.inject_fault("*", 503)
    assert [raw_post(sandbox, SEND)[0] for _ in range(3)] == [429, 503, 400]


def test_patterns_reach_generated_operations_and_oauth(sandbox: Sandbox, api_client: Any) -> None:
    sandbox.inject_fault("assets_*", 500, takes_effect=False)
    sandbox.inject_fault("oauth2_token", 503)

    assets = kenar_api_client.AssetsApi(api_client)
    with pytest.raises(ServiceException):
        assets.assets_get_cities()
    assert assets.assets_get_cities() is not None

    status, _, body = raw_post(sandbox, "/oauth2/token", b"grant_type=authorization_code")
    assert status == 503
    assert json.loads(body)["error"] == "temporarily_unavailable"  # as Hydra answers it
    assert sandbox.token_requests == []  # turned away before the OAuth server saw it
    assert [(f.operation, f.took_effect) for f in sandbox.injected_faults] == [
        ("assets_get_cities", False),
        ("oauth2_token", False),
    ]


def test_the_admin_endpoints_never_fail_on_purpose(sandbox: Sandbox) -> None:
    sandbox.inject_fault("*", "drop-before-read", fraction=1)
    status, _, _body = raw_post(sandbox, "/_sandbox/reset", b"{}", {"Content-Type": "application/json"})
    assert status == 200


def test_too_many_requests_exception_carries_retry_after(
    sandbox: Sandbox, events: kenar_api_client.EventsApi
) -> None:
    # Beyond the SDK's cap: not slept through, raised at once with the seconds asked for.
    sandbox.inject_fault("events_send_event", 429, retry_after=3600)
    with pytest.raises(TooManyRequestsException) as caught:
        send(events)
    assert caught.value.retry_after == 3600
    assert sandbox.sent_events == []


# -- bad rules are refused before anything fires ----------------------------------------


@pytest.mark.parametrize(
    ("operation", "fault", "options", "message"),
    [
        ("events_send", 500, {}, "no sandbox operation is called 'events_send' (did you mean events_send_"),
        ("nothing_like_it", 500, {}, "(e.g. events_send_event, or '*')"),
        ("*", 418, {}, "unknown fault 418: one of 429, 500, 502, 503, 504, slow"),
        ("*", 500, {"times": 0}, "times must be a whole number of at least 1"),
        ("*", 500, {"fraction": 1.5}, "fraction must be a number greater than 0 and at most 1"),
        ("*", "slow", {"retry_after": 1}, "retry_after goes with a status fault"),
        ("*", 429, {"retry_after_as_date": True}, "retry_after_as_date needs retry_after"),
        ("*", "slow", {"delay": -1}, "delay must be a number of seconds from 0 to 3600"),
        ("*", "drop-before-read", {"takes_effect": True}, "never lets the operation take effect"),
        ("*", "malformed", {"takes_effect": False}, "always lets the operation take effect"),
    ],
)
def test_bad_rules_are_refused(
    sandbox: Sandbox, operation: str, fault: Any, options: Dict[str, Any], message: str
) -> None:
    with pytest.raises(SandboxError) as caught:
        sandbox.inject_fault(operation, fault, **options)
    assert message in str(caught.value)
    assert sandbox.fault_rules == []


def test_every_documented_fault_is_accepted(sandbox: Sandbox) -> None:
    for fault in FAULTS:
        sandbox.inject_fault("events_send_event", fault)
    assert [rule.fault for rule in sandbox.fault_rules] == list(FAULTS)


# -- configuring over HTTP, clearing, resetting -------------------------------------------


def admin(sandbox: Sandbox, method: str, document: Optional[Dict[str, Any]] = None) -> Tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=5)
    try:
        body = None if document is None else json.dumps(document).encode()
        headers = {} if document is None else {"Content-Type": "application/json"}
        connection.request(method, "/_sandbox/faults", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_the_admin_endpoint_adds_lists_and_clears_rules(sandbox: Sandbox) -> None:
    status, rule = admin(
        sandbox, "POST", {"operation": "events_send_event", "fault": "429", "times": 2, "retry_after": 1}
    )
    assert status == 200
    assert rule == {
        "operation": "events_send_event",
        "fault": "429",
        "remaining": 2,
        "fraction": None,
        "seed": None,
        "retry_after": 1,
        "retry_after_as_date": False,
        "delay": 0.0,  # a status fault answers at once unless given a delay
        "takes_effect": False,
    }
    assert raw_post(sandbox, SEND)[0] == 429

    status, listing = admin(sandbox, "GET")
    assert status == 200
    assert [r["remaining"] for r in listing["fault_rules"]] == [1]
    assert [(f["fault"], f["took_effect"]) for f in listing["injected_faults"]] == [("429", False)]
    state = sandbox.snapshot()
    assert state["fault_rules"] == listing["fault_rules"]
    assert state["injected_faults"] == listing["injected_faults"]

    assert admin(sandbox, "DELETE") == (200, {})
    assert sandbox.fault_rules == []
    assert len(sandbox.injected_faults) == 1  # clearing rules keeps the record


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"fault": "teapot"}, "unknown fault 'teapot'"),
        ({"fault": "500", "operation": "nope"}, "no sandbox operation is called 'nope'"),
        ({"fault": "500", "times": "2"}, "times must be a whole number"),
        ({"fault": "500", "when": "now"}, "unknown field 'when'"),
    ],
)
def test_the_admin_endpoint_refuses_bad_rules(
    sandbox: Sandbox, document: Dict[str, Any], message: str
) -> None:
    status, answer = admin(sandbox, "POST", document)
    assert status == 400
    assert message in answer["message"]
    assert sandbox.fault_rules == []


def test_reset_drops_rules_and_records(sandbox: Sandbox) -> None:
    sandbox.inject_fault("events_send_event", 500, times=2, takes_effect=False)
    raw_post(sandbox, SEND)
    sandbox.reset()
    assert sandbox.fault_rules == []
    assert sandbox.injected_faults == []
    assert raw_post(sandbox, SEND)[0] == 400


def wait_for(condition: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_dropped_connection_before_read_is_reset_or_closed(sandbox: Sandbox) -> None:
    sandbox.inject_fault("events_register_event_subscription", "drop-before-read")
    body = json.dumps(SUBSCRIPTION).encode()
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as raw:
        raw.sendall(
            b"POST /v1/open-platform/events/subscriptions HTTP/1.1\r\nHost: x\r\n"
            + f"X-API-Key: {DEMO_API_KEY}\r\nAuthorization: Bearer {DEMO_ACCESS_TOKEN}\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        try:
            answer = raw.recv(65536)
        except ConnectionResetError:
            answer = b""
    assert answer == b""
    assert sandbox.subscriptions == []
