"""What code written for the official client reads of the models is the same here, without that client.

Each behaviour is the official client's (divar-ir/kenar-sdk-python 0.297.0), as
tools/compare_official_docs.py and test/wire/official_requests.json measured it; the few
differences made on purpose (docs/FromOfficialClient.md) are pinned at the end.
"""

from __future__ import annotations

import datetime
import enum
import importlib
import json
import pickle
import sys
from pathlib import Path
from typing import Any, Dict

import pydantic
import pytest
from servers import RecordingServer, Reply

import kenar_api_client
from kenar_api_client import (
    ChatapiGenerateUploadTokenResponse,
    EventsApi,
    EventsRegisterEventSubscriptionRequest,
    FinderApi,
    GoogleRpcStatus,
    GooglerpcStatus,
    PaymentTransaction,
    PaymentTransactionState,
    ProtobufAny,
    SendEventRequestTargetType,
)
from kenar_api_client.models import ApiEnum, ApiModel
from kenar_api_client.models.payment_ticket_validate_request import PaymentTicketValidateRequest
from kenar_api_client.models.post_submit_post_v2_request import PostSubmitPostV2Request

LEGACY = json.loads((Path(__file__).resolve().parents[1] / "generator" / "legacy_models.json").read_text())
WHEN = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


def a_transaction() -> PaymentTransaction:
    transaction = PaymentTransaction.from_dict(
        {"id": "تراکنش-1", "created_at": "2024-01-02T03:04:05Z", "state": "TRANSACTION_STATE_PENDING"}
    )
    assert transaction is not None
    return transaction


# -- to_dict, to_json, to_str ----------------------------------------------------------------


def test_to_dict_holds_enum_members_and_datetimes_as_pydantic_does() -> None:
    data = a_transaction().to_dict()
    assert data["state"] is PaymentTransactionState.TRANSACTION_STATE_PENDING
    assert data["created_at"] == WHEN
    assert type(data["created_at"]) is datetime.datetime
    assert data == {
        "id": "تراکنش-1",
        "created_at": WHEN,
        "state": PaymentTransactionState.TRANSACTION_STATE_PENDING,
    }


def test_to_dict_leaves_out_none_values_set_or_not() -> None:
    request = EventsRegisterEventSubscriptionRequest(event_type="POST_UPDATE", metadata=None)
    assert request.to_dict() == {"event_type": "POST_UPDATE"}
    assert PaymentTransaction(app_slug=None).to_dict() == {}


def test_to_dict_leaves_out_read_only_fields_and_to_str_shows_them() -> None:
    answer = ChatapiGenerateUploadTokenResponse.from_dict({"token": "dXBsb2Fk"})
    assert answer is not None
    assert answer.token == "dXBsb2Fk"
    assert answer.to_dict() == {}
    assert answer.to_json() == "{}"
    assert answer.to_str() == "{'token': 'dXBsb2Fk'}"


def test_to_json_is_json_dumps_of_to_dict_byte_for_byte() -> None:
    request = EventsRegisterEventSubscriptionRequest(
        event_type="NEW_MESSAGE_ON_POST", event_resource_id="پست", metadata={"a": [1, None]}
    )
    # json.dumps' defaults: ", " and ": " separators, non-ASCII as \\uXXXX, enums by value.
    assert request.to_json() == (
        '{"event_resource_id": "\\u067e\\u0633\\u062a", "event_type": "NEW_MESSAGE_ON_POST",'
        ' "metadata": {"a": [1, null]}}'
    )


def test_to_str_pretty_prints_every_field_none_included() -> None:
    assert a_transaction().to_str() == (
        "{'app_slug': None,\n"
        " 'cost_rials': None,\n"
        f" 'created_at': {WHEN.replace(tzinfo=a_transaction().created_at.tzinfo)!r},\n"  # type: ignore[union-attr]
        " 'extra_details': None,\n"
        " 'id': 'تراکنش-1',\n"
        " 'state': <PaymentTransactionState.TRANSACTION_STATE_PENDING: 'TRANSACTION_STATE_PENDING'>,\n"
        " 'type': None}"
    )


# -- from_dict, from_json ------------------------------------------------------------------


def test_from_json_of_null_is_none() -> None:
    assert PaymentTransaction.from_json("null") is None
    assert PaymentTransaction.from_dict(None) is None


def test_a_missing_required_field_is_reported_as_none() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        PaymentTicketValidateRequest.from_dict({"ticket_uuid": "u"})
    assert caught.value.title == "PaymentTicketValidateRequest"
    assert [(e["loc"], e["type"], e["input"]) for e in caught.value.errors()] == [
        (("service_cost",), "int_type", None)
    ]
    # Built by keyword, a missing field is "Field required", there as here.
    with pytest.raises(pydantic.ValidationError, match="Field required"):
        PaymentTicketValidateRequest(ticket_uuid="u")  # type: ignore[call-arg]


def test_an_invalid_nested_model_reports_its_own_errors_first() -> None:
    document = {
        "category_fields": {},
        "general_data": {"title": "t", "video": {"name": "v"}},
    }
    with pytest.raises(pydantic.ValidationError) as caught:
        PostSubmitPostV2Request.from_dict(document)
    # The innermost invalid model first, titled with its own name, as nested from_dict calls raise.
    assert caught.value.title == "PostGeneralDataPostVideo"
    assert {e["loc"] for e in caught.value.errors()} == {("thumbnail_name",), ("duration",)}


def test_a_valid_answer_parses_as_before() -> None:
    assert a_transaction().state is PaymentTransactionState.TRANSACTION_STATE_PENDING


# -- ProtobufAny ---------------------------------------------------------------------------


def test_protobuf_any_keeps_the_packed_fields_in_additional_properties() -> None:
    detail = ProtobufAny(
        type="type.googleapis.com/google.rpc.ErrorInfo", additional_properties={"reason": "R"}
    )
    assert repr(detail) == (
        "ProtobufAny(type='type.googleapis.com/google.rpc.ErrorInfo', additional_properties={'reason': 'R'})"
    )
    assert detail.to_dict() == {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "R"}
    assert detail.to_json() == '{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "R"}'
    assert detail.to_str() == (
        "{'@type': 'type.googleapis.com/google.rpc.ErrorInfo',\n 'additional_properties': {'reason': 'R'}}"
    )
    detail.additional_properties["domain"] = "kenar"
    assert detail.to_dict()["domain"] == "kenar"
    detail.additional_properties = {"only": None}
    assert detail.to_dict() == {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "only": None}


def test_protobuf_any_reads_the_type_url_from_at_type_only() -> None:
    detail = ProtobufAny.from_dict({"@type": "t/x", "type": "a packed field named type"})
    assert detail is not None
    assert detail.type == "t/x"
    assert detail.additional_properties == {"type": "a packed field named type"}


def test_a_status_shows_its_details_as_the_official_dump_does() -> None:
    status = GoogleRpcStatus.from_dict({"code": 3, "details": [{"@type": "t", "field": "f"}]})
    assert status is not None
    assert repr(status) == (
        "GooglerpcStatus(code=3, details=[ProtobufAny(type='t', additional_properties={'field': 'f'})], "
        "message=None)"
    )
    assert status.to_dict() == {"code": 3, "details": [{"@type": "t", "field": "f"}]}
    assert "'details': [{'@type': 't', 'additional_properties': {'field': 'f'}}]" in status.to_str()


def test_a_protobuf_any_in_a_request_body_is_flat_on_the_wire(
    server: RecordingServer, api_client: kenar_api_client.ApiClient
) -> None:
    detail = ProtobufAny(type="t/x", additional_properties={"reason": "R", "n": None})
    server.queue_reply(Reply(body={}), Reply(body={}))
    # In a free-form body, and in a free-form field of a model body.
    FinderApi(api_client).finder_get_user(body={"detail": detail})
    assert server.last.json() == {"detail": {"@type": "t/x", "reason": "R", "n": None}}
    EventsApi(api_client).events_register_event_subscription(
        EventsRegisterEventSubscriptionRequest(event_type="POST_UPDATE", metadata={"detail": detail})
    )
    assert server.last.json() == {
        "event_type": "POST_UPDATE",
        "metadata": {"detail": {"@type": "t/x", "reason": "R", "n": None}},
    }


def test_a_body_leaves_out_none_values_as_its_to_dict_does(
    server: RecordingServer, api_client: kenar_api_client.ApiClient
) -> None:
    request = EventsRegisterEventSubscriptionRequest(event_type="POST_UPDATE", event_resource_id=None)
    server.queue_reply(Reply(body={}))
    EventsApi(api_client).events_register_event_subscription(request)
    assert server.last.json() == {"event_type": "POST_UPDATE"} == json.loads(request.to_json())


# -- names: classes, reprs, messages, enums --------------------------------------------------


def test_the_error_status_is_named_as_the_official_client_names_it() -> None:
    assert GoogleRpcStatus is GooglerpcStatus
    assert GooglerpcStatus.__name__ == "GooglerpcStatus"
    assert repr(GooglerpcStatus(code=7)) == "GooglerpcStatus(code=7, details=None, message=None)"
    from kenar_api_client.models.googlerpc_status import GooglerpcStatus as ByModule

    assert ByModule is GooglerpcStatus
    assert pickle.loads(pickle.dumps(GooglerpcStatus(code=7))) == GooglerpcStatus(code=7)


def test_python_names_the_model_when_a_helper_is_called_on_the_class() -> None:
    # The official docs' model example calls to_json() on the class.
    with pytest.raises(TypeError) as caught:
        PaymentTransaction.to_json()  # type: ignore[call-arg]
    name = "PaymentTransaction.to_json()" if sys.version_info >= (3, 10) else "to_json()"
    assert str(caught.value) == f"{name} missing 1 required positional argument: 'self'"
    with pytest.raises(TypeError, match="from_json"):
        SendEventRequestTargetType.from_json()  # type: ignore[call-arg]
    assert SendEventRequestTargetType.from_json.__qualname__ == "SendEventRequestTargetType.from_json"


class PlainStrEnum(str, enum.Enum):
    """How the official client declares its enums."""

    TRANSACTION_STATE_PENDING = "TRANSACTION_STATE_PENDING"


def test_enums_print_as_plain_str_enums_do_on_this_python() -> None:
    ours, theirs = PaymentTransactionState.TRANSACTION_STATE_PENDING, PlainStrEnum.TRANSACTION_STATE_PENDING
    assert str(ours) == "PaymentTransactionState.TRANSACTION_STATE_PENDING"
    # "%s" % e is how the official docs print: as a plain (str, Enum) prints on this Python.
    printed = f"{ours}|{ours:>30}|{'%s' % ours}"  # noqa: UP031
    plain = f"{theirs}|{theirs:>30}|{'%s' % theirs}"  # noqa: UP031
    assert printed == plain.replace("PlainStrEnum", "PaymentTransactionState")
    assert repr(ours) == "<PaymentTransactionState.TRANSACTION_STATE_PENDING: 'TRANSACTION_STATE_PENDING'>"
    assert json.dumps({"state": ours}) == '{"state": "TRANSACTION_STATE_PENDING"}'
    assert isinstance(ours, ApiEnum)


# -- the modules of older official builds ----------------------------------------------------


@pytest.mark.parametrize("model", LEGACY["models"], ids=[m["class"] for m in LEGACY["models"]])
def test_every_old_official_model_module_imports_with_its_fields(model: Dict[str, Any]) -> None:
    module = importlib.import_module(f"kenar_api_client.models.{model['module']}")
    cls = getattr(module, model["class"])
    assert issubclass(cls, ApiModel)
    fields = {name: (f.alias or name, f.is_required()) for name, f in cls.model_fields.items()}
    assert fields == {f["name"]: (f["wire_name"], f["required"]) for f in model["fields"]}
    # Not exported from the packages: the official client does not export them either.
    assert model["class"] not in kenar_api_client.models.__all__


@pytest.mark.parametrize("enum_def", LEGACY["enums"], ids=[e["class"] for e in LEGACY["enums"]])
def test_every_old_official_enum_module_imports_with_its_values(enum_def: Dict[str, Any]) -> None:
    module = importlib.import_module(f"kenar_api_client.models.{enum_def['module']}")
    cls = getattr(module, enum_def["class"])
    assert issubclass(cls, ApiEnum)
    assert [member.value for member in cls] == enum_def["values"]


def test_the_old_modules_are_the_ones_the_official_package_ships_and_todays_spec_lacks() -> None:
    assert len(LEGACY["models"]) == 16
    assert len(LEGACY["enums"]) == 10
    from kenar_api_client.models.darvaze_iranian_car_plate import DarvazeIranianCarPlate
    from kenar_api_client.models.widgets_action import WidgetsAction

    plate = DarvazeIranianCarPlate.from_dict({"area_code": 11, "serial_letter": "ب"})
    assert plate is not None
    assert plate.to_json() == '{"area_code": 11, "serial_letter": "\\u0628"}'
    action = WidgetsAction.from_dict({"type": "OPEN_PAGE", "payload": {"@type": "t", "k": 1}})
    assert action is not None
    assert repr(action) == (
        "WidgetsAction(page_pop_link=None, payload=ProtobufAny(type='t', additional_properties={'k': 1}), "
        "type=<WidgetsActionType.OPEN_PAGE: 'OPEN_PAGE'>)"
    )


# -- validation errors of API calls ---------------------------------------------------------


@pytest.mark.parametrize("form", ["", "_with_http_info", "_without_preload_content"])
def test_a_refused_argument_names_the_api_method(
    form: str, server: RecordingServer, api_client: kenar_api_client.ApiClient
) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        getattr(FinderApi(api_client), "finder_get_user" + form)(body=1)
    assert caught.value.title == f"FinderApi.finder_get_user{form}"
    assert str(caught.value).startswith(f"1 validation error for FinderApi.finder_get_user{form}\nbody\n")
    assert server.requests == []


def test_a_subclass_of_an_api_class_is_titled_with_the_class_defining_the_method(
    server: RecordingServer, api_client: kenar_api_client.ApiClient
) -> None:
    class MyEvents(EventsApi):
        pass

    with pytest.raises(pydantic.ValidationError) as caught:
        MyEvents(api_client).events_register_event_subscription({"event_typ": "POST_UPDATE"})
    assert caught.value.title == "EventsApi.events_register_event_subscription"
    assert caught.value.errors()[0]["loc"] == ("events_register_event_subscription_request", "event_typ")
    assert server.requests == []


# -- differences made on purpose (docs/FromOfficialClient.md) ------------------------------


def test_an_enum_argument_outside_its_values_is_refused_before_sending(
    server: RecordingServer, api_client: kenar_api_client.ApiClient
) -> None:
    # The official client sends target_type=target_type_example (its docs' own example).
    with pytest.raises(pydantic.ValidationError) as caught:
        EventsApi(api_client).events_send_event(
            message="m",
            target_type="target_type_example",  # type: ignore[arg-type]
            target_resource_id="r",
        )
    assert caught.value.errors()[0]["type"] == "enum"
    assert server.requests == []


def test_a_refused_argument_is_named_even_when_passed_by_position(
    server: RecordingServer, api_client: kenar_api_client.ApiClient
) -> None:
    # The official client locates it by position: "1" (self is 0).
    with pytest.raises(pydantic.ValidationError) as caught:
        FinderApi(api_client).finder_get_user(None)  # type: ignore[arg-type]
    assert caught.value.errors()[0]["loc"] == ("body",)


def test_to_json_writes_a_datetime_in_iso_8601() -> None:
    # The official one raises TypeError: Object of type datetime is not JSON serializable.
    assert a_transaction().to_json() == (
        '{"created_at": "2024-01-02T03:04:05+00:00", "id": "\\u062a\\u0631\\u0627\\u06a9\\u0646\\u0634-1",'
        ' "state": "TRANSACTION_STATE_PENDING"}'
    )


def test_answer_fields_and_enum_values_this_sdk_does_not_know_are_kept() -> None:
    transaction = PaymentTransaction.from_dict({"state": "TRANSACTION_STATE_NEW", "new_field": 1})
    assert transaction is not None
    assert transaction.state == "TRANSACTION_STATE_NEW"
    assert transaction.additional_properties == {"new_field": 1}
    assert transaction.to_dict() == {"state": "TRANSACTION_STATE_NEW", "new_field": 1}


def test_an_unknown_keyword_is_refused_when_building_a_model() -> None:
    # The official client drops it silently.
    with pytest.raises(pydantic.ValidationError, match="event_typ"):
        EventsRegisterEventSubscriptionRequest(event_typ="POST_UPDATE")  # type: ignore[call-arg]
