"""ApiClient's generated-style helpers: serialization, deserialization and param_serialize."""

from __future__ import annotations

import datetime
from typing import Any, Dict

import pytest
from servers import RecordingServer, Reply

import kenar_api_client
from kenar_api_client import (
    ApiClient,
    ApiException,
    ApiTypeError,
    ApiValueError,
    Configuration,
    EventsEventButton,
    GoogleRpcStatus,
    SendEventRequestTargetType,
)
from kenar_api_client.exceptions import ApiAttributeError, ApiKeyError

UTC = datetime.timezone.utc


@pytest.fixture
def client() -> ApiClient:
    return ApiClient(Configuration(host="https://example.test", api_key={"APIKey": "k"}, access_token="t"))


def test_sanitize_for_serialization_handles_every_kind(client: ApiClient) -> None:
    moment = datetime.datetime(2026, 11, 20, 9, 30, tzinfo=datetime.timezone.utc)
    value: Any = {
        "button": EventsEventButton(title="Hello"),
        "target": SendEventRequestTargetType.POST,
        "when": moment,
        "day": moment.date(),
        "items": (1, "two", None, [True, 2.5]),
        3: "keys become strings",
    }
    assert client.sanitize_for_serialization(value) == {
        "button": {"title": "Hello"},
        "target": "POST",
        "when": "2026-11-20T09:30:00+00:00",
        "day": "2026-11-20",
        "items": [1, "two", None, [True, 2.5]],
        "3": "keys become strings",
    }


def test_sanitize_for_serialization_refuses_what_json_cannot_carry(client: ApiClient) -> None:
    with pytest.raises(ApiTypeError, match="set"):
        client.sanitize_for_serialization({"bad": {1, 2}})


@pytest.mark.parametrize(
    ("text", "response_type", "expected"),
    [
        (b'{"a": 1}', "object", {"a": 1}),
        (b"", "object", None),
        (
            b'"2026-11-20T09:30:00Z"',
            "datetime",
            datetime.datetime(2026, 11, 20, 9, 30, tzinfo=datetime.timezone.utc),
        ),
        (b'"2026-11-20"', "date", datetime.date(2026, 11, 20)),
        (b"[1, 2]", "List[int]", [1, 2]),
        (b'{"x": "POST"}', "Dict[str, SendEventRequestTargetType]", {"x": SendEventRequestTargetType.POST}),
        (b'{"code": 7, "message": "no"}', "GoogleRpcStatus", GoogleRpcStatus(code=7, message="no")),
    ],
)
def test_deserialize(client: ApiClient, text: bytes, response_type: str, expected: Any) -> None:
    assert client.deserialize(text, response_type, "application/json") == expected


def test_deserialize_plain_text(client: ApiClient) -> None:
    assert client.deserialize(b"pong", "str", "text/plain") == "pong"


def test_param_serialize_builds_url_headers_and_body(client: ApiClient) -> None:
    method, url, headers, body = client.param_serialize(
        "POST",
        "/v1/things/{thing_id}",
        path_params={"thing_id": "a/b c"},
        query_params={"q": "x y+z", "skip": None, "kind": SendEventRequestTargetType.USER},
        header_params={"Content-Type": "application/json"},
        body={"when": datetime.date(2026, 1, 2), "text": "سلام"},
        auth_settings=["APIKey", "OAuth"],
    )
    assert method == "POST"
    assert url == "https://example.test/v1/things/a%2Fb%20c?q=x%20y%2Bz&kind=USER"
    assert headers["X-API-Key"] == "k"
    assert headers["Authorization"] == "Bearer t"
    assert body == '{"when":"2026-01-02","text":"سلام"}'.encode()


def test_param_serialize_refuses_a_header_with_a_line_break(client: ApiClient) -> None:
    with pytest.raises(ApiValueError, match="X-Note") as raised:
        client.param_serialize("POST", "/x", header_params={"X-Note": "a\nb"})
    assert "a\nb" not in str(raised.value)


def test_custom_call_through_the_public_steps(server: RecordingServer) -> None:
    with ApiClient(Configuration(host=server.url, api_key={"APIKey": "k"})) as api_client:
        serialized = api_client.param_serialize(
            "POST",
            "/v1/open-platform/events/subscriptions",
            body={"event_type": "POST_UPDATE"},
            header_params={"Content-Type": "application/json"},
            auth_settings=["APIKey"],
        )
        response = api_client.call_api(*serialized, _request_timeout=5)
        result = api_client.response_deserialize(response, {"200": "object"})
    assert result.status_code == 200
    assert result.data == {}
    assert server.last.json() == {"event_type": "POST_UPDATE"}
    assert server.last.headers["X-API-Key"] == "k"


@pytest.mark.parametrize("error", [ApiTypeError, ApiValueError, ApiKeyError, ApiAttributeError])
def test_argument_errors_locate_the_problem(error: type) -> None:
    raised = error("wrong value", path_to_item=["items", 0, "title"])
    assert "wrong value at ['items'][0]['title']" in str(raised)
    assert raised.path_to_item == ["items", 0, "title"]


@pytest.mark.parametrize(
    ("answer", "response_type"),
    [(b"[1, 2]", "Dict[str, int]"), (b'{"a": 1}', "List[int]"), (b'"x"', "GoogleRpcStatus")],
)
def test_an_answer_of_another_shape_than_expected_is_an_api_exception(
    server: RecordingServer, answer: bytes, response_type: str
) -> None:
    server.queue_reply(Reply(200, answer))
    with ApiClient(Configuration(host=server.url)) as api_client:
        response = api_client.call_api(*api_client.param_serialize("POST", "/v1/custom"))
        with pytest.raises(ApiException) as raised:
            api_client.response_deserialize(response, {"200": response_type})
    assert raised.value.status == 200
    assert raised.value.body == answer.decode()


def test_a_configuration_subclass_s_own_auth_settings_are_the_ones_sent(server: RecordingServer) -> None:
    class SignedConfiguration(Configuration):
        def auth_settings(self) -> Dict[str, Dict[str, Any]]:
            return {
                "APIKey": {"type": "api_key", "in": "header", "key": "X-API-Key", "value": "signed-key-123"}
            }

    configuration = SignedConfiguration(host=server.url, api_key={"APIKey": "plain-key-456"})
    with ApiClient(configuration) as client:
        kenar_api_client.EventsApi(client).events_send_event(message="m")
    assert server.last.headers["X-API-Key"] == "signed-key-123"
