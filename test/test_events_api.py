"""EventsApi over real HTTP: what the server receives and what the caller gets back, per variant."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict
from urllib.parse import unquote

import pydantic
import pytest
import urllib3
from conftest import ACCESS_TOKEN, API_KEY
from servers import RecordingServer, Reply

import kenar_api_client
from kenar_api_client import (
    ApiResponse,
    EventsApi,
    EventsRegisterEventSubscriptionRequest,
    EventsRegisterEventSubscriptionRequestEventType,
    SendEventRequestTargetType,
)

SEND_PATH = "/experimental/open-platform/events/send"
SUBSCRIBE_PATH = "/v1/open-platform/events/subscriptions"


def subscription() -> EventsRegisterEventSubscriptionRequest:
    return EventsRegisterEventSubscriptionRequest(
        event_type=EventsRegisterEventSubscriptionRequestEventType.NEW_MESSAGE_ON_POST,
        event_resource_id="wZ3kT9pQ",
        metadata={"shop": "۴۲", "tags": ["a", "b"]},
    )


def call_variant(api: EventsApi, operation: str, variant: str, *args: Any, **kwargs: Any) -> Any:
    suffix = {"plain": "", "http_info": "_with_http_info", "raw": "_without_preload_content"}[variant]
    return getattr(api, operation + suffix)(*args, **kwargs)


VARIANTS = ["plain", "http_info", "raw"]


def assert_auth_headers(request: Any) -> None:
    assert request.headers["X-API-Key"] == API_KEY
    assert request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"


class TestSendEvent:
    @pytest.mark.parametrize("variant", VARIANTS)
    def test_sends_a_post_with_query_parameters_and_no_body(
        self, events_api: EventsApi, server: RecordingServer, variant: str
    ) -> None:
        call_variant(
            events_api,
            "events_send_event",
            variant,
            message="Your order shipped",
            target_type="USER",
            target_resource_id="user-7f3a",
        )

        request = server.last
        assert request.method == "POST"
        assert request.path == SEND_PATH
        assert request.query == {
            "message": ["Your order shipped"],
            "target_type": ["USER"],
            "target_resource_id": ["user-7f3a"],
        }
        assert request.body == b""
        assert request.headers["Content-Length"] == "0"
        assert request.headers.get("Content-Type") is None
        assert request.headers["Accept"] == "application/json"
        assert request.headers["User-Agent"] == f"kenar-api-client/{kenar_api_client.__version__}/python"
        assert_auth_headers(request)

    def test_plain_variant_returns_the_parsed_answer(
        self, events_api: EventsApi, server: RecordingServer
    ) -> None:
        server.queue_reply(Reply(body={"event_id": "e-1"}))
        assert events_api.events_send_event(message="hi") == {"event_id": "e-1"}

    def test_with_http_info_returns_status_headers_data_and_raw_body(
        self, events_api: EventsApi, server: RecordingServer
    ) -> None:
        server.queue_reply(
            Reply(body=b'{"ok": true}', headers={"X-Request-Id": "r-9", "Content-Type": "application/json"})
        )

        response = events_api.events_send_event_with_http_info(message="hi")

        assert isinstance(response, ApiResponse)
        assert response.status_code == 200
        assert response.headers is not None
        assert response.headers["x-request-id"] == "r-9"
        assert response.data == {"ok": True}
        assert response.raw_data == b'{"ok": true}'

    def test_without_preload_content_returns_the_unread_urllib3_response(
        self, events_api: EventsApi, server: RecordingServer
    ) -> None:
        server.queue_reply(Reply(status=403, body={"code": 7, "message": "no"}))

        response = events_api.events_send_event_without_preload_content(message="hi")

        assert isinstance(response, urllib3.BaseHTTPResponse)
        assert response.status == 403  # status is not checked in this variant
        assert json.loads(response.read()) == {"code": 7, "message": "no"}
        response.release_conn()

    def test_unset_parameters_are_left_out_of_the_query(
        self, events_api: EventsApi, server: RecordingServer
    ) -> None:
        events_api.events_send_event(message="only a message")
        assert server.last.query == {"message": ["only a message"]}
        events_api.events_send_event()
        assert server.last.raw_query == ""

    @pytest.mark.parametrize(
        "text",
        [
            "سلام! سفارش شما ارسال شد",
            "می‌خواهم",  # ZWNJ inside the word
            "🎉 تخفیف ۲۰٪ 👨‍👩‍👧",  # emoji with a ZWJ sequence, Persian digits
            "a&b=c?d#e/f+g%h i",  # characters that mean something in a URL
            "line one\nline two\ttab",
        ],
    )
    def test_any_unicode_message_arrives_byte_exact(
        self, events_api: EventsApi, server: RecordingServer, text: str
    ) -> None:
        events_api.events_send_event(message=text, target_type="POST", target_resource_id="wZ3kT9pQ")

        raw = server.last.raw_query
        encoded = raw.split("message=", 1)[1].split("&", 1)[0]
        assert unquote(encoded, encoding="utf-8", errors="strict") == text
        assert server.last.query["message"] == [text]

    @pytest.mark.parametrize("target_type", [SendEventRequestTargetType.POST, "POST"])
    def test_target_type_accepts_the_enum_or_its_value(
        self, events_api: EventsApi, server: RecordingServer, target_type: Any
    ) -> None:
        events_api.events_send_event(message="m", target_type=target_type, target_resource_id="t")
        assert server.last.query["target_type"] == ["POST"]

    def test_generated_style_keyword_call_works(self, events_api: EventsApi, server: RecordingServer) -> None:
        message = "message_example"
        target_type = "USER"
        target_resource_id = "target_resource_id_example"
        events_api.events_send_event(
            message=message, target_type=target_type, target_resource_id=target_resource_id
        )
        assert server.last.query["target_resource_id"] == ["target_resource_id_example"]


class TestRegisterEventSubscription:
    @pytest.mark.parametrize("variant", VARIANTS)
    def test_posts_the_model_as_json(
        self, events_api: EventsApi, server: RecordingServer, variant: str
    ) -> None:
        result = call_variant(events_api, "events_register_event_subscription", variant, subscription())
        if variant == "raw":
            result.read()
            result.release_conn()

        request = server.last
        assert request.method == "POST"
        assert request.path == SUBSCRIBE_PATH
        assert request.raw_query == ""
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["Accept"] == "application/json"
        assert_auth_headers(request)
        assert request.json() == {
            "event_type": "NEW_MESSAGE_ON_POST",
            "event_resource_id": "wZ3kT9pQ",
            "metadata": {"shop": "۴۲", "tags": ["a", "b"]},
        }
        # Persian text travels as UTF-8, not as \\u escapes.
        assert "۴۲".encode() in request.body

    def test_returns_the_parsed_answer(self, events_api: EventsApi, server: RecordingServer) -> None:
        assert events_api.events_register_event_subscription(subscription()) == {}

    def test_only_fields_that_were_set_are_sent(self, events_api: EventsApi, server: RecordingServer) -> None:
        events_api.events_register_event_subscription(
            EventsRegisterEventSubscriptionRequest(event_type="POST_UPDATE")
        )
        assert server.last.json() == {"event_type": "POST_UPDATE"}

        events_api.events_register_event_subscription(EventsRegisterEventSubscriptionRequest())
        assert server.last.json() == {}

    def test_a_dict_is_accepted_and_validated_like_the_model(
        self, events_api: EventsApi, server: RecordingServer
    ) -> None:
        events_api.events_register_event_subscription({"event_type": "POST_UPDATE", "metadata": {"k": 1}})
        assert server.last.json() == {"event_type": "POST_UPDATE", "metadata": {"k": 1}}


class TestAuth:
    @pytest.mark.parametrize(
        ("api_key", "prefix", "token", "expected"),
        [
            ({"APIKey": "k1"}, None, "t1", {"X-API-Key": "k1", "Authorization": "Bearer t1"}),
            ({"APIKey": "k1"}, None, None, {"X-API-Key": "k1", "Authorization": None}),
            ({}, None, "t1", {"X-API-Key": None, "Authorization": "Bearer t1"}),
            ({}, None, None, {"X-API-Key": None, "Authorization": None}),
            ({"APIKey": "k1"}, "Token", None, {"X-API-Key": "Token k1", "Authorization": None}),
        ],
    )
    def test_headers_are_sent_only_when_configured(
        self,
        server: RecordingServer,
        api_key: Dict[str, str],
        prefix: Any,
        token: Any,
        expected: Dict[str, Any],
    ) -> None:
        configuration = kenar_api_client.Configuration(host=server.url, api_key=api_key, access_token=token)
        if prefix:
            configuration.api_key_prefix["APIKey"] = prefix
        with kenar_api_client.ApiClient(configuration) as client:
            EventsApi(client).events_send_event(message="m")
        for name, value in expected.items():
            assert server.last.headers.get(name) == value

    def test_credentials_set_after_the_client_was_created_are_used(self, server: RecordingServer) -> None:
        configuration = kenar_api_client.Configuration(host=server.url)
        with kenar_api_client.ApiClient(configuration) as client:
            api = EventsApi(client)
            configuration.api_key["APIKey"] = "late-key"
            configuration.access_token = "late-token"
            api.events_send_event(message="m")
        assert server.last.headers["X-API-Key"] == "late-key"
        assert server.last.headers["Authorization"] == "Bearer late-token"

    def test_request_auth_replaces_the_configured_auth_for_one_call(
        self, events_api: EventsApi, server: RecordingServer
    ) -> None:
        events_api.events_send_event(
            message="m",
            _request_auth={"in": "header", "type": "api_key", "key": "X-API-Key", "value": "other-key"},
        )
        assert server.last.headers["X-API-Key"] == "other-key"
        assert server.last.headers.get("Authorization") is None


class TestPerCallOptions:
    def test_headers_are_added_and_override_case_insensitively(
        self, events_api: EventsApi, server: RecordingServer
    ) -> None:
        events_api.events_send_event(message="m", _headers={"X-Trace": "abc", "accept": "application/x"})
        assert server.last.headers["X-Trace"] == "abc"
        assert server.last.headers.get_all("Accept") == ["application/x"]

    def test_content_type_overrides_the_default(self, events_api: EventsApi, server: RecordingServer) -> None:
        events_api.events_register_event_subscription(
            subscription(), _content_type="application/json; charset=utf-8"
        )
        assert server.last.headers["Content-Type"] == "application/json; charset=utf-8"

    def test_request_timeout_and_host_index_zero_are_accepted(
        self, events_api: EventsApi, server: RecordingServer
    ) -> None:
        events_api.events_send_event(message="m", _request_timeout=30, _host_index=0)
        events_api.events_send_event(message="m", _request_timeout=(10.0, 30.0))
        assert len(server.requests) == 2

    @pytest.mark.parametrize(
        ("options", "error"),
        [
            ({"_host_index": 1}, kenar_api_client.ApiValueError),
            ({"_request_timout": 5}, kenar_api_client.ApiTypeError),
            ({"_request_timeout": -1}, kenar_api_client.ApiValueError),
            ({"_request_timeout": "soon"}, kenar_api_client.ApiValueError),
            ({"_headers": {"X-Bad": "a\r\nX-Injected: 1"}}, kenar_api_client.ApiValueError),
            ({"_headers": {"Bad Name:": "x"}}, kenar_api_client.ApiValueError),
        ],
    )
    def test_bad_options_fail_before_sending(
        self, events_api: EventsApi, server: RecordingServer, options: Dict[str, Any], error: type
    ) -> None:
        with pytest.raises(error):
            events_api.events_send_event(message="m", **options)
        assert server.requests == []


class TestValidation:
    @pytest.mark.parametrize(
        ("kwargs", "argument"),
        [
            ({"target_type": "GROUP"}, "target_type"),
            ({"target_type": "user"}, "target_type"),
            ({"target_type": 1}, "target_type"),
            ({"message": 42}, "message"),
            ({"message": b"bytes"}, "message"),
            ({"target_resource_id": ["a"]}, "target_resource_id"),
        ],
    )
    def test_invalid_send_arguments_raise_validation_error_naming_them(
        self, events_api: EventsApi, server: RecordingServer, kwargs: Dict[str, Any], argument: str
    ) -> None:
        with pytest.raises(pydantic.ValidationError) as raised:
            events_api.events_send_event(**kwargs)
        assert [error["loc"][0] for error in raised.value.errors()] == [argument]
        assert argument in str(raised.value)
        assert server.requests == []

    @pytest.mark.parametrize(
        "bad_request",
        [None, "NEW_MESSAGE_ON_POST", 7, {"event_type": "SOMETHING_ELSE"}, {"metadata": "not an object"}],
    )
    def test_invalid_subscription_request_raises_validation_error(
        self, events_api: EventsApi, server: RecordingServer, bad_request: Any
    ) -> None:
        with pytest.raises(pydantic.ValidationError) as raised:
            events_api.events_register_event_subscription(bad_request)
        assert "events_register_event_subscription_request" in str(raised.value)
        assert server.requests == []

    @pytest.mark.parametrize(
        ("request_dict", "location"),
        [
            ({"event_type": "POST_UPDATE", "evnt_resource_id": "wZ3kT9pQ"}, ("evnt_resource_id",)),
            ({"event_typ": "POST_UPDATE"}, ("event_typ",)),
        ],
    )
    def test_a_dict_with_a_key_the_request_does_not_have_is_refused_before_sending(
        self,
        events_api: EventsApi,
        server: RecordingServer,
        request_dict: Dict[str, Any],
        location: Any,
    ) -> None:
        # Kenar ignores unknown keys: a misspelt event_resource_id would subscribe to every post.
        with pytest.raises(pydantic.ValidationError) as raised:
            events_api.events_register_event_subscription(request_dict)
        errors = raised.value.errors()
        assert [(e["type"], e["loc"]) for e in errors] == [
            ("extra_forbidden", ("events_register_event_subscription_request", *location))
        ]
        assert location[-1] in str(raised.value)
        assert server.requests == []

    @pytest.mark.parametrize("message", ["\ud800", "سلام \udfff", "a\udc80b"])
    def test_a_message_with_a_lone_surrogate_is_refused_before_sending(
        self, events_api: EventsApi, server: RecordingServer, message: str
    ) -> None:
        with pytest.raises(pydantic.ValidationError) as raised:
            events_api.events_send_event(message=message, target_type="USER", target_resource_id="u-1")
        assert [error["loc"] for error in raised.value.errors()] == [("message",)]
        assert server.requests == []

    @pytest.mark.parametrize(
        "metadata",
        [
            {"score": float("nan")},
            {"score": float("inf")},
            {"deep": [1, {"score": -float("inf")}]},
            {"thing": object()},
            {"text": "\ud800"},
        ],
        ids=["nan", "inf", "nested-inf", "object", "surrogate"],
    )
    @pytest.mark.parametrize("as_model", [False, True], ids=["dict", "model"])
    def test_metadata_that_json_cannot_carry_is_refused_before_sending(
        self, events_api: EventsApi, server: RecordingServer, metadata: Dict[str, Any], as_model: bool
    ) -> None:
        # pydantic would send NaN and infinity as null, and fail mid-serialization on the rest.
        def subscribe() -> Any:
            request: Any = {"event_type": "POST_UPDATE", "metadata": metadata}
            if as_model:  # NaN and infinity are refused as the model is built
                request = EventsRegisterEventSubscriptionRequest(**request)
            return events_api.events_register_event_subscription(request)

        with pytest.raises(pydantic.ValidationError) as raised:
            subscribe()
        location = raised.value.errors()[0]["loc"]
        assert location[0] in ("metadata", "events_register_event_subscription_request")
        assert server.requests == []

    def test_a_three_character_button_title_is_refused(self) -> None:
        with pytest.raises(pydantic.ValidationError) as raised:
            kenar_api_client.EventsEventButton(title="Buy")
        assert raised.value.errors()[0]["loc"] == ("title",)

    def test_client_side_validation_can_be_turned_off_for_unknown_enum_values(
        self, configuration: kenar_api_client.Configuration, server: RecordingServer
    ) -> None:
        configuration.client_side_validation = False
        with kenar_api_client.ApiClient(configuration) as client:
            EventsApi(client).events_send_event(message="m", target_type="GROUP")
        assert server.last.query["target_type"] == ["GROUP"]


ERROR_CASES = [
    (400, kenar_api_client.BadRequestException, 3, "INVALID_ARGUMENT"),
    (401, kenar_api_client.UnauthorizedException, 16, "UNAUTHENTICATED"),
    (403, kenar_api_client.ForbiddenException, 7, "PERMISSION_DENIED"),
    (404, kenar_api_client.NotFoundException, 5, "NOT_FOUND"),
    (409, kenar_api_client.ConflictException, 6, "ALREADY_EXISTS"),
    (422, kenar_api_client.UnprocessableEntityException, 9, "FAILED_PRECONDITION"),
    (500, kenar_api_client.ServiceException, 13, "INTERNAL"),
    (504, kenar_api_client.ServiceException, 4, "DEADLINE_EXCEEDED"),
    (418, kenar_api_client.ApiException, 2, "UNKNOWN"),
]


class TestErrorAnswers:
    @pytest.mark.parametrize(("status", "exception", "code", "code_name"), ERROR_CASES)
    @pytest.mark.parametrize(
        "call",
        [
            lambda api: api.events_send_event(message="m"),
            lambda api: api.events_send_event_with_http_info(message="m"),
            lambda api: api.events_register_event_subscription(subscription()),
            lambda api: api.events_register_event_subscription_with_http_info(subscription()),
        ],
    )
    def test_status_maps_to_typed_exception_with_parsed_status(
        self,
        events_api: EventsApi,
        server: RecordingServer,
        status: int,
        exception: type,
        code: int,
        code_name: str,
        call: Callable[[EventsApi], Any],
    ) -> None:
        body = {
            "code": code,
            "message": "توکن دسترسی معتبر نیست",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "X"}],
        }
        server.queue_reply(Reply(status=status, body=body))

        with pytest.raises(exception) as raised:
            call(events_api)

        error = raised.value
        assert type(error) is exception
        assert error.status == status
        assert isinstance(error.data, kenar_api_client.GoogleRpcStatus)
        assert error.data.code == code
        assert error.data.message == "توکن دسترسی معتبر نیست"
        assert error.data.details[0].type == "type.googleapis.com/google.rpc.ErrorInfo"
        assert error.data.details[0]["reason"] == "X"
        assert json.loads(error.body) == body
        assert error.headers["Content-Type"] == "application/json"
        assert f"({status})" in str(error)
        assert f"{code_name} ({code})" in str(error)
        assert "توکن دسترسی معتبر نیست" in str(error)

    def test_error_exceptions_share_the_api_exception_base(self) -> None:
        for _, exception, _, _ in ERROR_CASES:
            assert issubclass(exception, kenar_api_client.ApiException)
            assert issubclass(exception, kenar_api_client.OpenApiException)

    def test_unknown_fields_in_an_error_body_are_kept(
        self, events_api: EventsApi, server: RecordingServer
    ) -> None:
        server.queue_reply(Reply(status=400, body={"code": 3, "message": "bad", "trace_id": "tr-1"}))
        with pytest.raises(kenar_api_client.BadRequestException) as raised:
            events_api.events_send_event(message="m")
        assert raised.value.data.additional_properties == {"trace_id": "tr-1"}


def test_default_api_client_is_used_when_none_is_given(server: RecordingServer) -> None:
    kenar_api_client.Configuration.set_default(
        kenar_api_client.Configuration(host=server.url, api_key={"APIKey": "default-key"})
    )
    EventsApi().events_send_event(message="m")
    assert server.last.headers["X-API-Key"] == "default-key"


def test_one_connection_is_reused_across_calls(events_api: EventsApi, server: RecordingServer) -> None:
    for _ in range(5):
        events_api.events_send_event(message="m")
        events_api.events_register_event_subscription(subscription())
    assert len(server.requests) == 10
    assert server.connections == 1
