"""Property tests: models survive a JSON round trip, and any Unicode text travels unchanged."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator
from urllib.parse import unquote_to_bytes

import pytest
from conftest import ACCESS_TOKEN, API_KEY
from hypothesis import HealthCheck, given, settings, strategies as st
from servers import RecordedRequest, RecordingServer, Reply

from kenar_api_client import (
    AddonsAction,
    AddonsGetDynamicAction,
    AddonsOpenPostManagePage,
    AddonsOpenPostPage,
    AddonsOpenServerLink,
    ApiClient,
    BadRequestException,
    Configuration,
    EventsApi,
    EventsEventButton,
    EventsEventButtonList,
    EventsRegisterEventSubscriptionRequest,
    EventsRegisterEventSubscriptionRequestEventType,
    GoogleRpcStatus,
    ProtobufAny,
)

MODEL_SETTINGS = settings(max_examples=60, deadline=None)
NETWORK_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Any Unicode scalar value: everything but the surrogate halves, which UTF-8 cannot carry.
text = st.text(st.characters(exclude_categories=("Cs",)))
short_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | short_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(short_text, children, max_size=4),
    max_leaves=12,
)
json_objects = st.dictionaries(short_text, json_values, max_size=5)


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def models_from(draw: Any, model: Any, **fields: st.SearchStrategy[Any]) -> Any:
    """``model`` built from a random subset of ``fields`` (unset fields stay unset)."""
    chosen: Dict[str, Any] = {}
    for name, strategy in fields.items():
        if draw(st.booleans()):
            chosen[name] = draw(strategy)
    return model(**chosen)


subscription_requests = models_from(
    EventsRegisterEventSubscriptionRequest,
    event_type=_optional(st.sampled_from(EventsRegisterEventSubscriptionRequestEventType)),
    event_resource_id=_optional(text),
    metadata=_optional(json_objects),
)

actions = st.one_of(
    st.builds(AddonsAction, open_direct_link=text),
    st.builds(AddonsAction, get_dynamic_action=st.builds(AddonsGetDynamicAction, data=json_objects)),
    st.builds(AddonsAction, open_server_link=st.builds(AddonsOpenServerLink, data=json_objects)),
    st.builds(AddonsAction, open_post_page=st.builds(AddonsOpenPostPage, post_token=text)),
    st.builds(AddonsAction, open_post_manage_page=st.builds(AddonsOpenPostManagePage, post_token=text)),
)
buttons = models_from(
    EventsEventButton,
    title=st.text(st.characters(exclude_categories=("Cs",)), min_size=5, max_size=50),
    action=actions,
)
button_lists = models_from(EventsEventButtonList, items=st.lists(buttons, max_size=4))

# A detail's own fields are free-form, "type" (the Python name of "@type") included.
detail_keys = short_text.filter(lambda key: key != "@type") | st.just("type")
protobuf_anys = st.builds(
    lambda type_url, extra: ProtobufAny(**{"@type": type_url}, **extra),
    text,
    st.dictionaries(detail_keys, json_values, max_size=4),
)
statuses = models_from(
    GoogleRpcStatus,
    code=st.integers(min_value=-(2**31), max_value=2**31 - 1),
    message=text,
    details=st.lists(protobuf_anys, max_size=3),
)


# -- model round trips --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_class", "strategy"),
    [
        (EventsRegisterEventSubscriptionRequest, subscription_requests),
        (EventsEventButton, buttons),
        (EventsEventButtonList, button_lists),
        (GoogleRpcStatus, statuses),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_from_json_of_to_json_is_the_same_model(model_class: Any, strategy: Any) -> None:
    @MODEL_SETTINGS
    @given(strategy)
    def round_trip(model: Any) -> None:
        assert model_class.from_json(model.to_json()) == model
        assert model_class.from_dict(model.to_dict()) == model
        assert model_class.from_dict(json.loads(model.to_json())) == model

    round_trip()


@MODEL_SETTINGS
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=4) | st.text(min_size=51, max_size=80))
def test_a_button_title_outside_5_to_50_characters_is_refused(title: str) -> None:
    with pytest.raises(ValueError, match="title"):
        EventsEventButton(title=title)


@MODEL_SETTINGS
@given(text, st.dictionaries(detail_keys, json_values, max_size=4))
def test_a_protobuf_any_keeps_every_field_it_arrives_with(type_url: str, fields: Dict[str, Any]) -> None:
    wire = {"@type": type_url, **fields}
    detail = ProtobufAny.from_dict(wire)
    assert detail is not None
    assert detail["@type"] == type_url
    for key, value in fields.items():
        assert detail[key] == value
    assert json.loads(detail.to_json()) == wire


# -- text on the wire ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def wire() -> Iterator[EventsApi]:
    server = RecordingServer(_answer).start()
    configuration = Configuration(host=server.url, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN)
    configuration.timeout = 5.0
    with ApiClient(configuration) as client:
        api = EventsApi(client)
        api.server = server  # type: ignore[attr-defined]
        yield api
    server.stop()


def _answer(request: RecordedRequest) -> Reply:
    if request.path.endswith("/reject"):
        return Reply(400, request.body)  # the status body the test asked for
    return Reply(200, {})


@NETWORK_SETTINGS
@given(message=text, resource_id=text)
def test_any_unicode_message_arrives_byte_exact(wire: EventsApi, message: str, resource_id: str) -> None:
    wire.events_send_event(message=message, target_type="POST", target_resource_id=resource_id)
    received = wire.server.last  # type: ignore[attr-defined]
    sent = dict(part.split("=", 1) for part in received.raw_query.split("&"))
    assert unquote_to_bytes(sent["message"]) == message.encode("utf-8")
    assert unquote_to_bytes(sent["target_resource_id"]) == resource_id.encode("utf-8")
    assert received.query["message"] == [message]
    assert received.query["target_type"] == ["POST"]


@NETWORK_SETTINGS
@given(request=subscription_requests)
def test_a_subscription_body_arrives_as_its_json(
    wire: EventsApi, request: EventsRegisterEventSubscriptionRequest
) -> None:
    wire.events_register_event_subscription(request)
    received = wire.server.last  # type: ignore[attr-defined]
    assert received.json() == request.to_dict()
    assert EventsRegisterEventSubscriptionRequest.from_json(received.body) == request


@NETWORK_SETTINGS
@given(status=statuses)
def test_an_error_status_with_any_text_arrives_unchanged_in_the_exception(
    wire: EventsApi, status: GoogleRpcStatus
) -> None:
    # The server answers 400 with the body it received: the status, sent as a subscription
    # request's raw bytes through a path the test owns.
    client = wire.api_client
    method, url, headers, body = client.param_serialize(
        "POST", "/reject", header_params={"Content-Type": "application/json"}, body=status.to_json()
    )
    response = client.call_api(method, url, headers, body)
    with pytest.raises(BadRequestException) as caught:
        client.response_deserialize(response, {"200": "object"})
    error = caught.value
    if status.code is not None or status.message is not None:
        assert error.data == status
        if status.code is not None and status.message:
            assert status.message in str(error)
    assert json.loads(error.body or "") == json.loads(status.to_json())
