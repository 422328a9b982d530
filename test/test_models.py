"""Models: the shared helpers, wire names, unknown fields, validation rules and enums."""

from __future__ import annotations

import inspect
import json
from typing import Any, Dict, Iterator, List, Optional, Tuple, Type, Union

import pydantic
import pytest
from typing_extensions import Literal, get_args, get_origin

import kenar_api_client
from kenar_api_client import (
    AddonsAction,
    AddonsGetDynamicAction,
    AddonsOpenPostManagePage,
    AddonsOpenPostPage,
    EventsEventButton,
    EventsEventButtonList,
    EventsRegisterEventSubscriptionRequest,
    EventsRegisterEventSubscriptionRequestEventType,
    GoogleRpcStatus,
    ProtobufAny,
    SendEventRequestTargetType,
)
from kenar_api_client.models import ApiModel, KenarModel


def exported_models() -> List[Type[KenarModel]]:
    exported = [getattr(kenar_api_client.models, name) for name in kenar_api_client.models.__all__]
    return [
        item
        for item in exported
        if isinstance(item, type)
        and issubclass(item, pydantic.BaseModel)
        and item not in (KenarModel, ApiModel)
    ]


def test_every_model_shares_the_one_base() -> None:
    """Each model has its own helper methods, named after it, all running the base's one code."""
    models = exported_models()
    assert len(models) >= 10
    for model in models:
        assert issubclass(model, ApiModel)
        for name in ("to_dict", "to_json", "to_str", "from_dict", "from_json"):
            own = inspect.getattr_static(model, name)
            shared = inspect.getattr_static(ApiModel, name)
            function, base_function = getattr(own, "__func__", own), getattr(shared, "__func__", shared)
            assert function.__code__ is base_function.__code__, f"{model.__name__}.{name}"
            assert function.__qualname__ == f"{model.__name__}.{name}"


def test_button_list_round_trips_through_json() -> None:
    buttons = EventsEventButtonList(
        items=[
            EventsEventButton(
                title="مشاهده سفارش",
                action=AddonsAction(open_direct_link="https://shop.example/orders/17"),
            ),
            EventsEventButton(
                title="Open post",
                action=AddonsAction(open_post_page=AddonsOpenPostPage(post_token="wZ3kT9pQ")),
            ),
            EventsEventButton(
                title="Refresh",
                action=AddonsAction(get_dynamic_action=AddonsGetDynamicAction(data={"id": 7})),
            ),
        ]
    )
    text = buttons.to_json()
    assert json.loads(text) == {
        "items": [
            {"title": "مشاهده سفارش", "action": {"open_direct_link": "https://shop.example/orders/17"}},
            {"title": "Open post", "action": {"open_post_page": {"post_token": "wZ3kT9pQ"}}},
            {"title": "Refresh", "action": {"get_dynamic_action": {"data": {"id": 7}}}},
        ]
    }
    assert EventsEventButtonList.from_json(text) == buttons
    assert EventsEventButtonList.from_dict(buttons.to_dict()) == buttons


@pytest.mark.parametrize(
    ("title", "valid"),
    [
        ("Buy", False),
        ("Buy!", False),
        ("Buy!!", True),
        ("x" * 50, True),
        ("x" * 51, False),
        ("سفارش", True),  # five Persian letters
        ("می‌خوا", True),  # ZWNJ counts as a character
    ],
)
def test_button_title_must_be_5_to_50_characters(title: str, valid: bool) -> None:
    if valid:
        assert EventsEventButton(title=title).title == title
    else:
        with pytest.raises(pydantic.ValidationError) as raised:
            EventsEventButton(title=title)
        assert raised.value.errors()[0]["loc"] == ("title",)


def test_assignment_is_validated_too() -> None:
    button = EventsEventButton(title="Hello")
    with pytest.raises(pydantic.ValidationError):
        button.title = "Hi"


def test_required_post_token() -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        AddonsOpenPostManagePage()  # type: ignore[call-arg]
    assert raised.value.errors()[0]["loc"] == ("post_token",)


def test_to_dict_leaves_out_unset_fields() -> None:
    request = EventsRegisterEventSubscriptionRequest(event_type="POST_UPDATE")
    assert request.to_dict() == {"event_type": "POST_UPDATE"}
    assert EventsRegisterEventSubscriptionRequest().to_dict() == {}
    assert json.loads(request.to_json()) == {"event_type": "POST_UPDATE"}


def test_unknown_keywords_are_refused_when_building_a_model() -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        EventsRegisterEventSubscriptionRequest(event_typ="POST_UPDATE")  # type: ignore[call-arg]
    assert raised.value.errors()[0]["loc"] == ("event_typ",)


@pytest.mark.parametrize(
    ("build", "location"),
    [
        (lambda: EventsEventButtonList(items=[{"title": "Track it", "actoin": {}}]), ("items", 0, "actoin")),
        (
            lambda: EventsEventButton(
                title="Track it", action={"open_post_page": {"post_token": "p", "mdoe": "full"}}
            ),
            ("action", "open_post_page", "mdoe"),
        ),
    ],
)
def test_unknown_keys_in_nested_dicts_are_refused_when_building_a_model(build: Any, location: Any) -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        build()
    assert [(e["type"], e["loc"]) for e in raised.value.errors()] == [("extra_forbidden", location)]


def test_free_form_fields_take_any_keys_but_no_nan() -> None:
    request = EventsRegisterEventSubscriptionRequest(metadata={"any": {"key": [1, 2.5, None, True]}})
    assert request.to_dict() == {"metadata": {"any": {"key": [1, 2.5, None, True]}}}
    with pytest.raises(pydantic.ValidationError) as raised:
        EventsRegisterEventSubscriptionRequest(metadata={"a": [float("nan")]})
    assert raised.value.errors()[0]["loc"] == ("metadata",)


def test_unknown_fields_from_the_server_are_kept() -> None:
    status = GoogleRpcStatus.from_json(
        '{"code": 3, "message": "bad", "retry_info": {"delay": "1s"},'
        ' "details": [{"@type": "t/x", "field": "message", "nested": {"a": [1]}}]}'
    )
    assert status is not None
    assert status.additional_properties == {"retry_info": {"delay": "1s"}}
    assert status.details is not None
    assert status.details[0].type == "t/x"
    assert status.details[0].additional_properties == {"field": "message", "nested": {"a": [1]}}
    assert status.to_dict()["retry_info"] == {"delay": "1s"}
    assert GoogleRpcStatus.from_json(status.to_json()) == status


def test_nested_unknown_fields_are_kept_too() -> None:
    action = AddonsAction.from_dict({"open_post_page": {"post_token": "p", "mode": "full"}, "new_kind": {}})
    assert action is not None
    assert action.open_post_page is not None
    assert action.open_post_page.additional_properties == {"mode": "full"}
    assert action.to_dict() == {"open_post_page": {"post_token": "p", "mode": "full"}, "new_kind": {}}


def test_protobuf_any_uses_the_at_type_wire_name() -> None:
    detail = ProtobufAny(**{"@type": "type.googleapis.com/google.rpc.BadRequest", "field_violations": []})
    assert detail.type == "type.googleapis.com/google.rpc.BadRequest"
    assert detail.to_dict() == {"@type": "type.googleapis.com/google.rpc.BadRequest", "field_violations": []}
    assert ProtobufAny(type="t").to_dict() == {"@type": "t"}


def test_null_gives_none_and_anything_but_an_object_is_refused() -> None:
    assert GoogleRpcStatus.from_dict(None) is None
    assert GoogleRpcStatus.from_json("null") is None
    for document in ("[]", '"code"'):
        with pytest.raises(pydantic.ValidationError, match="valid dictionary"):
            GoogleRpcStatus.from_json(document)


def test_grpc_code_name() -> None:
    assert GoogleRpcStatus(code=16).code_name == "UNAUTHENTICATED"
    assert GoogleRpcStatus(code=99).code_name is None
    assert GoogleRpcStatus().code_name is None


def test_to_str_is_readable() -> None:
    text = EventsRegisterEventSubscriptionRequest(event_type="POST_UPDATE").to_str()
    assert (
        "'event_type': <EventsRegisterEventSubscriptionRequestEventType.POST_UPDATE: 'POST_UPDATE'>" in text
    )
    assert "'metadata': None" in text


def test_enums_are_strings_with_from_json() -> None:
    assert SendEventRequestTargetType.USER == "USER"
    assert SendEventRequestTargetType.POST.value == "POST"
    assert SendEventRequestTargetType.from_json('"POST"') is SendEventRequestTargetType.POST
    assert [m.value for m in EventsRegisterEventSubscriptionRequestEventType] == [
        "NEW_MESSAGE_ON_POST",
        "POST_UPDATE",
    ]
    with pytest.raises(ValueError, match="GROUP"):
        SendEventRequestTargetType("GROUP")


def test_generated_style_module_paths_import() -> None:
    from kenar_api_client.models.events_register_event_subscription_request import (
        EventsRegisterEventSubscriptionRequest as ByModule,
    )
    from kenar_api_client.models.googlerpc_status import GooglerpcStatus
    from kenar_api_client.rest import ApiException

    assert ByModule is EventsRegisterEventSubscriptionRequest
    assert GooglerpcStatus is GoogleRpcStatus
    assert ApiException is kenar_api_client.ApiException


# -- enum fields: Union[E, Literal[...]] for type checkers, E for pydantic ----------------------


def _type_parts(annotation: Any) -> Iterator[Any]:
    yield annotation
    for arg in get_args(annotation):
        yield from _type_parts(arg)


def test_no_model_validates_an_enum_field_as_a_literal() -> None:
    """Each enum field is validated as its enum (a string becomes the member), never as a Literal."""
    enum_fields: List[Tuple[str, Any]] = []
    for model in exported_models():
        for name, field in model.model_fields.items():
            parts = list(_type_parts(field.annotation))
            assert not [p for p in parts if get_origin(p) is Literal], f"{model.__name__}.{name}"
            enum_fields += [
                (f"{model.__name__}.{name}", p)
                for p in parts
                if isinstance(p, type) and issubclass(p, kenar_api_client.models.KenarEnum)
            ]
    assert (
        "EventsRegisterEventSubscriptionRequest.event_type",
        EventsRegisterEventSubscriptionRequestEventType,
    ) in enum_fields


def test_a_plain_string_for_an_enum_field_becomes_the_member() -> None:
    for request in (
        EventsRegisterEventSubscriptionRequest(event_type="POST_UPDATE"),
        EventsRegisterEventSubscriptionRequest.from_dict({"event_type": "POST_UPDATE"}),
        EventsRegisterEventSubscriptionRequest.model_validate_json('{"event_type": "POST_UPDATE"}'),
    ):
        assert request.event_type is EventsRegisterEventSubscriptionRequestEventType.POST_UPDATE
    request = EventsRegisterEventSubscriptionRequest()
    request.event_type = "NEW_MESSAGE_ON_POST"
    assert request.event_type is EventsRegisterEventSubscriptionRequestEventType.NEW_MESSAGE_ON_POST


def test_a_wrong_enum_value_is_one_error_listing_the_values() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        EventsRegisterEventSubscriptionRequest(event_type="POST_UPDATES")  # type: ignore[arg-type]
    errors = caught.value.errors()
    assert [(e["loc"], e["type"]) for e in errors] == [(("event_type",), "enum")]
    assert "'NEW_MESSAGE_ON_POST' or 'POST_UPDATE'" in errors[0]["msg"]


def define_model(name: str, annotations: Dict[str, Any], **defaults: Any) -> Any:
    """A KenarModel subclass with real (not string) annotations: this module defers its own."""
    return type(name, (KenarModel,), {"__annotations__": annotations, "__module__": __name__, **defaults})


def test_enum_fields_inside_lists_and_dicts_are_narrowed_too() -> None:
    color = Union[SendEventRequestTargetType, Literal["USER", "POST"]]
    palette_model = define_model(
        "Palette",
        {"main": color, "others": Optional[List[color]], "by_name": Optional[Dict[str, color]]},
        others=None,
        by_name=None,
    )

    palette = palette_model(main="USER", others=["POST"], by_name={"owner": "POST"})

    assert palette.main is SendEventRequestTargetType.USER
    assert palette.others == [SendEventRequestTargetType.POST]
    assert palette.others[0] is SendEventRequestTargetType.POST
    assert palette.by_name["owner"] is SendEventRequestTargetType.POST


def test_a_literal_that_does_not_match_its_enum_is_refused_when_the_model_is_defined() -> None:
    wrong = Union[SendEventRequestTargetType, Literal["USER"]]
    with pytest.raises(TypeError, match=r"Broken\.target: .*values of SendEventRequestTargetType"):
        define_model("Broken", {"target": wrong})
