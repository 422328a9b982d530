"""Tests of kenar_api_client.webhooks: verification, typed events, source check, WSGI receiver."""

from __future__ import annotations

import email.message
import http.client
import io
import ipaddress
import json
import logging
import socket
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Type
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pydantic import ValidationError
from webhook_helpers import Recorder

from kenar_api_client.webhooks import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_READ_TIMEOUT,
    KENAR_WEBHOOK_NETWORKS,
    MAX_NESTING_DEPTH,
    TRANSACTION_TYPE_REORDER,
    ChatMessage,
    ContactData,
    ConversationType,
    FileData,
    ImageData,
    LocationData,
    MessageType,
    NewChatbotMessageEvent,
    NewMessageEvent,
    PaymentTransactionEvent,
    PostUpdateEvent,
    PostUpdateType,
    SenderSide,
    SenderType,
    Transaction,
    TransactionState,
    UnknownEvent,
    UserAccessRevocationEvent,
    VideoData,
    VoiceData,
    WebhookError,
    WebhookEvent,
    WebhookEventType,
    WebhookPayloadError,
    WebhookPayloadTooLarge,
    WebhookVerificationError,
    WebhookVerifier,
    event_from_dict,
    is_kenar_source,
    make_server as make_webhook_server,
    make_wsgi_app,
    parse_event,
)

KEY = "kenar-id-key-9c41f2b7"
WRONG_VALUE = "not-the-key-5e8a"
AUTH = {"Authorization": KEY}

SAMPLES_DIR = Path(__file__).resolve().parent / "webhook_samples"
SHARED_SAMPLES_DIR = Path(__file__).resolve().parents[2] / "shared" / "kenar-events" / "webhook-samples"
OWN_SAMPLES = sorted(SAMPLES_DIR.glob("*.json"))
# Samples whose to_dict() differs from the body in form only: int64 values sent as strings
# come back as numbers, a timestamp with an offset comes back in UTC.
NORMALIZED_SAMPLES = {
    "new_message_int64_strings.json",
    "payment_transaction_alt_key.json",
    "post_update_ongoing.json",
}

EXPECTED_CLASS: Dict[str, Type[WebhookEvent]] = {
    "NEW_MESSAGE": NewMessageEvent,
    "NEW_CHATBOT_MESSAGE": NewChatbotMessageEvent,
    "USER_ACCESS_REVOCATION": UserAccessRevocationEvent,
    "POST_UPDATE": PostUpdateEvent,
    "PAYMENT_TRANSACTION": PaymentTransactionEvent,
}
UTC = timezone.utc


def _shared_samples() -> List[Any]:
    if not SHARED_SAMPLES_DIR.is_dir():
        reason = f"shared webhook samples not found at {SHARED_SAMPLES_DIR}"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="shared-missing")]
    return [
        pytest.param(path, id=f"shared-{path.name}") for path in sorted(SHARED_SAMPLES_DIR.glob("*.json"))
    ]


def _own_samples() -> List[Any]:
    return [pytest.param(path, id=path.name) for path in OWN_SAMPLES]


def load(name: str) -> bytes:
    return (SAMPLES_DIR / name).read_bytes()


def parse(name: str) -> WebhookEvent:
    return parse_event(load(name), AUTH, KEY)


def expected_class(body: Dict[str, Any]) -> Type[WebhookEvent]:
    return EXPECTED_CLASS.get(body["type"], UnknownEvent)


# --- import weight ---------------------------------------------------------------------------

HEAVY_MODULES = (
    "urllib3",
    "dateutil",
    "kenar_api_client.api_client",
    "kenar_api_client.rest",
    "kenar_api_client.configuration",
    "kenar_api_client.api",
    "kenar_api_client.sandbox",
    "kenar_api_client.cli",
    "wsgiref.simple_server",  # make_server's: loaded on first use only
    "http.server",
)


def test_importing_webhooks_loads_nothing_heavy() -> None:
    code = textwrap.dedent(
        """
        import json, sys
        from kenar_api_client.webhooks import make_wsgi_app, parse_event
        parse_event(b'{"type": "NEW_MESSAGE", "new_message": {"text": "hi"}}',
                    {"Authorization": "k"}, "k")
        make_wsgi_app("k", print)
        print(json.dumps(sorted(sys.modules)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=60,
    )
    loaded = json.loads(result.stdout)
    assert "kenar_api_client.webhooks" in loaded
    heavy = [
        name
        for name in loaded
        if any(name == prefix or name.startswith(prefix + ".") for prefix in HEAVY_MODULES)
    ]
    assert heavy == []


# --- typed events ----------------------------------------------------------------------------


def test_new_message_text_is_fully_typed() -> None:
    event = parse("new_message_text.json")

    assert isinstance(event, NewMessageEvent)
    assert event.type == "NEW_MESSAGE" == WebhookEventType.NEW_MESSAGE
    assert event.metadata == {"tenant": "shop-7", "plan": 3}
    message = event.new_message
    assert event.payload is message
    assert message.id == "msg-text-0001"
    assert message.conversation is not None
    assert message.conversation.id == "conv-1111"
    assert message.conversation.type is ConversationType.POST
    assert message.conversation.post_token == "AbCd1234"
    assert message.sender is not None
    assert message.sender.side is SenderSide.BUYER
    assert message.sender.type is SenderType.HUMAN
    assert message.type is MessageType.TEXT
    assert message.sent_at == 1717171717123456
    assert message.text == "درود! هنوز موجوده؟"
    assert message.image_data is None


def test_sent_at_datetime_is_exact_and_aware() -> None:
    message = parse("new_message_text.json").payload

    moment = message.sent_at_datetime
    assert moment == datetime(2024, 5, 31, 16, 8, 37, 123456, tzinfo=UTC)
    assert moment.tzinfo is UTC
    assert moment.microsecond == 123456


@pytest.mark.parametrize(
    ("sent_at", "expected"),
    [
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        (1735689600000001, datetime(2025, 1, 1, 0, 0, 0, 1, tzinfo=UTC)),
        (1704067200999999, datetime(2024, 1, 1, 0, 0, 0, 999999, tzinfo=UTC)),
        (-1, datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        # A float timestamp cannot hold this one; it would round up into the year 10000.
        (253402300799999999, datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_sent_at_datetime_keeps_every_microsecond(sent_at: int, expected: datetime) -> None:
    assert ChatMessage(sent_at=sent_at).sent_at_datetime == expected


def test_sent_at_datetime_is_none_without_sent_at() -> None:
    assert ChatMessage(text="x").sent_at_datetime is None


MESSAGE_KINDS = [
    (
        "new_message_image.json",
        MessageType.IMAGE,
        "image_data",
        ImageData,
        {
            "link": "https://cdn.example.org/img/77.png",
            "size_bytes": 52000,
            "height_px": 600,
            "width_px": 800,
        },
    ),
    (
        "new_message_file.json",
        MessageType.FILE,
        "file_data",
        FileData,
        {
            "link": "https://cdn.example.org/f/contract.pdf",
            "name": "contract.pdf",
            "size_bytes": 7340032,
        },
    ),
    (
        "new_message_voice.json",
        MessageType.VOICE,
        "voice_data",
        VoiceData,
        {"link": "https://cdn.example.org/v/hello.ogg", "size_bytes": 31337},
    ),
    (
        "new_message_location.json",
        MessageType.LOCATION,
        "location_data",
        LocationData,
        {"latitude": 32.6546, "longitude": 51.668},
    ),
    (
        "new_message_video.json",
        MessageType.VIDEO,
        "video_data",
        VideoData,
        {
            "link": "https://cdn.example.org/m/tour.mp4",
            "thumbnail_link": "https://cdn.example.org/m/tour.jpg",
            "size_bytes": 20971520,
        },
    ),
    (
        "new_message_contact.json",
        MessageType.CONTACT,
        "contact_data",
        ContactData,
        {"name": "Sara", "phone": "09350000001"},
    ),
]
DATA_FIELDS = [kind[2] for kind in MESSAGE_KINDS]


@pytest.mark.parametrize(
    ("name", "message_type", "field", "model", "expected"),
    MESSAGE_KINDS,
    ids=[kind[0] for kind in MESSAGE_KINDS],
)
def test_each_message_data_kind_is_typed(
    name: str, message_type: MessageType, field: str, model: type, expected: Dict[str, Any]
) -> None:
    message = parse(name).payload

    assert message.type is message_type
    data = getattr(message, field)
    assert isinstance(data, model)
    for attribute, value in expected.items():
        assert getattr(data, attribute) == value
        assert type(getattr(data, attribute)) is type(value)
    assert [other for other in DATA_FIELDS if getattr(message, other) is not None] == [field]
    assert message.text is None


def test_int64_fields_accept_numeric_strings() -> None:
    message = parse("new_message_int64_strings.json").payload

    assert message.sent_at == 1717171717123456
    assert message.sent_at_datetime == datetime(2024, 5, 31, 16, 8, 37, 123456, tzinfo=UTC)
    assert message.file_data is not None
    # Beyond a float's 53 bits: parsed as an exact int, not through float.
    assert message.file_data.size_bytes == 9007199254740993

    transaction = parse("payment_transaction_alt_key.json").payload
    assert transaction.cost_rials == 75000000000
    assert isinstance(transaction.cost_rials, int)


def test_new_chatbot_message() -> None:
    event = parse("new_chatbot_message.json")

    assert isinstance(event, NewChatbotMessageEvent)
    assert event.type == WebhookEventType.NEW_CHATBOT_MESSAGE
    assert event.metadata == {"bot": "faq"}
    assert event.payload is event.new_chatbot_message
    assert event.new_chatbot_message.text == "menu"
    assert event.new_chatbot_message.conversation is not None
    assert event.new_chatbot_message.conversation.type is None
    assert event.new_chatbot_message.conversation.post_token is None


def test_new_chatbot_message_from_a_bot_with_partial_fields() -> None:
    event = parse("new_chatbot_message_bot_type.json")

    assert isinstance(event, NewChatbotMessageEvent)
    message = event.new_chatbot_message
    assert message.conversation is not None
    assert message.conversation.type is ConversationType.BOT
    assert message.sender is not None
    assert message.sender.type is SenderType.BOT
    assert message.sender.side is None
    assert message.image_data is not None
    assert message.image_data.link == "https://cdn.example.org/img/menu.png"
    assert message.image_data.size_bytes is None


def test_user_access_revocation() -> None:
    event = parse("user_access_revocation.json")

    assert isinstance(event, UserAccessRevocationEvent)
    assert event.type == WebhookEventType.USER_ACCESS_REVOCATION
    assert event.user_access_revocation.user_id == "u-obfuscated-5f2a"
    assert event.payload is event.user_access_revocation
    assert event.metadata == {"source": "panel"}


def test_post_update_publish_has_every_post_field() -> None:
    event = parse("post_update_publish.json")

    assert isinstance(event, PostUpdateEvent)
    assert event.payload is event.post_update
    assert event.post_update.type is PostUpdateType.PUBLISH
    post = event.post_update.post
    assert post is not None
    assert post.token == "PoSt0001"
    assert post.category == "light-vehicle"
    assert post.city == "isfahan"
    assert post.district == "jolfa"
    assert post.is_phone_hidden is True
    assert post.supplier_chat_assistant_enabled is False
    assert post.chat_enabled is True
    assert post.first_published_at == datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    assert post.first_published_at.tzinfo is UTC
    assert post.data == {"brand": "peugeot", "mileage": 120000, "options": ["abs", "airbag"]}


def test_post_first_published_at_with_an_offset_is_converted_to_utc() -> None:
    post = parse("post_update_ongoing.json").payload.post

    assert post.first_published_at == datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert post.first_published_at.tzinfo is UTC


def test_post_first_published_at_without_an_offset_is_taken_as_utc() -> None:
    body = {
        "type": "POST_UPDATE",
        "post_update": {"type": "PUBLISH", "post": {"first_published_at": "2025-03-04T05:06:07"}},
    }
    post = event_from_dict(body).payload.post

    assert post.first_published_at == datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "update_type", "token"),
    [
        ("post_update_retire.json", PostUpdateType.RETIRE, "PoSt0003"),
        ("post_update_archive.json", PostUpdateType.ARCHIVE, "PoSt0004"),
    ],
)
def test_retire_and_archive_carry_only_the_token(name: str, update_type: PostUpdateType, token: str) -> None:
    event = parse(name)

    assert isinstance(event, PostUpdateEvent)
    assert event.post_update.type is update_type
    post = event.post_update.post
    assert post is not None
    assert post.token == token
    assert post.model_fields_set == {"token"}
    assert post.category is None
    assert post.first_published_at is None
    assert post.data is None
    assert event.to_dict() == json.loads(load(name))


@pytest.mark.parametrize("post_update_type", ["PUBLISH", "RETIRE", "ONGOING", "ARCHIVE"])
def test_every_documented_post_update_type_is_a_member(post_update_type: str) -> None:
    body = {"type": "POST_UPDATE", "post_update": {"type": post_update_type}}
    update = event_from_dict(body).payload

    assert update.type is PostUpdateType(post_update_type)


def test_unknown_post_update_type_is_kept_as_a_string() -> None:
    event = parse("post_update_unknown_type.json")

    assert isinstance(event, PostUpdateEvent)
    assert event.post_update.type == "SUSPEND"
    assert type(event.post_update.type) is str
    assert event.post_update.additional_properties == {"reason_code": 17}
    assert event.post_update.post is not None
    assert event.post_update.post.additional_properties == {"badge": "verified"}


def test_unknown_enum_values_in_a_message_are_kept() -> None:
    message = parse("new_message_unknown_enums.json").payload

    assert message.type == "STICKER"
    assert type(message.type) is str
    assert message.conversation is not None
    assert message.conversation.type == "GROUP"
    assert message.sender is not None
    assert (message.sender.side, message.sender.type) == ("MODERATOR", "SYSTEM")
    assert message.additional_properties == {"sticker_data": {"pack": "cats", "index": 4}}


def test_unknown_fields_are_kept_at_every_level() -> None:
    event = parse("new_message_extra_fields.json")

    assert isinstance(event, NewMessageEvent)
    assert event.additional_properties == {"delivery_attempt": 2}
    message = event.new_message
    assert message.additional_properties == {"reply_to": "msg-text-0001"}
    assert message.conversation is not None
    assert message.conversation.additional_properties == {"archived": False}
    assert message.sender is not None
    assert message.sender.type is SenderType.USER
    assert message.sender.additional_properties == {"display_name": "Reza"}
    assert event.to_dict() == json.loads(load("new_message_extra_fields.json"))


@pytest.mark.parametrize(
    ("name", "key", "state", "cost"),
    [
        (
            "payment_transaction.json",
            "transaction",
            TransactionState.TRANSACTION_STATE_FAILED,
            1200000,
        ),
        (
            "payment_transaction_alt_key.json",
            "payment_transaction",
            TransactionState.TRANSACTION_STATE_REFUNDED,
            75000000000,
        ),
    ],
)
def test_transaction_under_either_key(name: str, key: str, state: TransactionState, cost: int) -> None:
    event = parse(name)

    assert isinstance(event, PaymentTransactionEvent)
    assert event.type == WebhookEventType.PAYMENT_TRANSACTION
    assert isinstance(event.transaction, Transaction)
    assert event.payload is event.transaction
    assert event.transaction.state is state
    assert event.transaction.cost_rials == cost
    assert event.transaction.type == TRANSACTION_TYPE_REORDER
    assert event.payload_key == key
    written = event.to_dict()
    other_key = ({"transaction", "payment_transaction"} - {key}).pop()
    assert key in written
    assert other_key not in written
    assert written[key]["id"] == json.loads(load(name))[key]["id"]
    assert json.loads(event.to_json()).keys() == written.keys()


def test_transaction_details() -> None:
    transaction = parse("payment_transaction.json").payload

    assert transaction.id == "3f2b8c1e-6a4d-4e7b-9c0d-1a2b3c4d5e6f"
    assert transaction.extra_details == "bump PoSt0001"


def test_transaction_unknown_state_and_type_are_kept() -> None:
    transaction = parse("payment_transaction_unknown_values.json").payload

    assert transaction.state == "TRANSACTION_STATE_DISPUTED"
    assert type(transaction.state) is str
    assert transaction.type == "TRANSACTION_TYPE_SUBSCRIPTION"
    assert transaction.additional_properties == {"gateway": "sep"}


def test_transaction_under_both_keys_prefers_transaction_and_keeps_the_other() -> None:
    body = {
        "type": "PAYMENT_TRANSACTION",
        "transaction": {"id": "a"},
        "payment_transaction": {"id": "b"},
    }
    event = event_from_dict(body)

    assert isinstance(event, PaymentTransactionEvent)
    assert event.transaction.id == "a"
    assert event.additional_properties == {"payment_transaction": {"id": "b"}}
    assert event.to_dict() == body


def test_transaction_event_without_either_key_is_a_payload_error() -> None:
    with pytest.raises(WebhookPayloadError, match="transaction"):
        event_from_dict({"type": "PAYMENT_TRANSACTION", "metadata": {}})


def test_unknown_event_type_keeps_the_raw_body() -> None:
    body = json.loads(load("unknown_event_type.json"))
    event = parse("unknown_event_type.json")

    assert isinstance(event, UnknownEvent)
    assert isinstance(event, WebhookEvent)
    assert event.type == "POST_VIEW_MILESTONE"
    assert event.raw == body
    assert event.metadata == {"campaign": "spring"}
    assert event.payload == {"post_token": "PoSt0001", "views": 1000}
    assert event.to_dict() == body


def test_unknown_event_can_be_built_by_keyword() -> None:
    event = UnknownEvent(type="LATER", later={"x": 1})

    assert event.raw == {"type": "LATER", "later": {"x": 1}}
    assert event.payload == {"x": 1}


@pytest.mark.parametrize("path", _own_samples())
def test_every_own_sample_parses_and_round_trips(path: Path) -> None:
    body = json.loads(path.read_bytes())
    event = parse_event(path.read_bytes(), AUTH, KEY)

    assert type(event) is expected_class(body)
    assert event.type == body["type"]
    assert event.metadata == body.get("metadata", {})
    if path.name not in NORMALIZED_SAMPLES:
        assert event.to_dict() == body


@pytest.mark.parametrize("path", _shared_samples())
def test_every_shared_sample_parses(path: Path) -> None:
    body = json.loads(path.read_bytes())
    event = parse_event(path.read_bytes(), AUTH, KEY)

    assert type(event) is expected_class(body)
    assert event.type == body["type"]
    if isinstance(event, UnknownEvent):
        assert event.raw == body
    else:
        assert event.payload is not None


def test_shared_future_samples_are_forward_compatible() -> None:
    if not SHARED_SAMPLES_DIR.is_dir():
        pytest.skip(f"shared webhook samples not found at {SHARED_SAMPLES_DIR}")
    future = parse_event((SHARED_SAMPLES_DIR / "future_event_type.json").read_bytes(), AUTH, KEY)
    assert isinstance(future, UnknownEvent)
    assert future.raw["something_new"] == {"x": 1}

    update = parse_event((SHARED_SAMPLES_DIR / "post_update_future_enum.json").read_bytes(), AUTH, KEY)
    assert isinstance(update, PostUpdateEvent)
    assert update.post_update.type == "HIDE"
    assert update.post_update.post is not None
    assert update.post_update.post.additional_properties == {"new_field": True}


@pytest.mark.skipif(sys.version_info < (3, 10), reason="match needs Python 3.10")
def test_events_work_with_match() -> None:
    # Kept in a string: a match statement would not even compile on Python 3.9.
    source = textwrap.dedent(
        """
        def describe(event):
            match event:
                case NewMessageEvent(new_message=message):
                    return "message: " + message.text
                case PostUpdateEvent():
                    return "post: " + event.post_update.post.token
                case UnknownEvent(type=other):
                    return "unknown: " + other
            return "other"
        """
    )
    namespace: Dict[str, Any] = {
        "NewMessageEvent": NewMessageEvent,
        "PostUpdateEvent": PostUpdateEvent,
        "UnknownEvent": UnknownEvent,
    }
    exec(compile(source, "<match>", "exec"), namespace)  # noqa: S102 - fixed source above
    describe = namespace["describe"]

    assert describe(parse("new_message_text.json")) == "message: درود! هنوز موجوده؟"
    assert describe(parse("post_update_retire.json")) == "post: PoSt0003"
    assert describe(parse("unknown_event_type.json")) == "unknown: POST_VIEW_MILESTONE"
    assert describe(parse("user_access_revocation.json")) == "other"


def test_events_built_by_keyword_serialize_their_type() -> None:
    event = NewMessageEvent(new_message=ChatMessage(text="hi", type=MessageType.TEXT))

    assert event.to_dict() == {"type": "NEW_MESSAGE", "new_message": {"text": "hi", "type": "TEXT"}}
    built = PaymentTransactionEvent(transaction=Transaction(id="t-1"))
    assert built.to_dict() == {"type": "PAYMENT_TRANSACTION", "transaction": {"id": "t-1"}}
    with pytest.raises(ValidationError):
        ChatMessage(txet="typo")  # type: ignore[call-arg]


def test_event_type_must_match_its_class() -> None:
    with pytest.raises(ValidationError):
        NewMessageEvent.model_validate({"type": "POST_UPDATE", "new_message": {}})


@pytest.mark.parametrize(
    "body",
    [
        {"new_message": {}},
        {"type": 7, "new_message": {}},
        {"type": None},
        {"type": "NEW_MESSAGE"},
        {"type": "NEW_MESSAGE", "new_message": None},
        {"type": "NEW_MESSAGE", "new_message": {"sent_at": "yesterday"}},
        {"type": "NEW_MESSAGE", "new_message": {}, "metadata": "not an object"},
        {"type": "POST_UPDATE", "post_update": {"post": {"first_published_at": "soon"}}},
    ],
)
def test_bodies_that_do_not_fit_are_payload_errors(body: Dict[str, Any]) -> None:
    with pytest.raises(WebhookPayloadError):
        parse_event(json.dumps(body), AUTH, KEY)


def test_null_metadata_is_an_empty_dict() -> None:
    body = {"type": "USER_ACCESS_REVOCATION", "metadata": None, "user_access_revocation": {}}
    event = event_from_dict(body)

    assert event.metadata == {}


# --- verification ----------------------------------------------------------------------------


def test_missing_authorization_is_rejected() -> None:
    with pytest.raises(WebhookVerificationError, match="missing"):
        parse_event(load("new_message_text.json"), {"Content-Type": "application/json"}, KEY)


@pytest.mark.parametrize(
    "value",
    [
        WRONG_VALUE,
        KEY.upper(),
        f"Bearer {KEY}",
        f"{KEY} ",
        KEY[:-1],
        f"{KEY}x",
        "",
    ],
    ids=["wrong", "different-case", "bearer", "trailing-space", "prefix", "longer", "empty"],
)
def test_wrong_authorization_is_rejected(value: str) -> None:
    with pytest.raises(WebhookVerificationError, match="does not match"):
        parse_event(load("new_message_text.json"), {"Authorization": value}, KEY)


def test_verification_happens_before_the_body_is_looked_at() -> None:
    bad = {"Authorization": WRONG_VALUE}
    with pytest.raises(WebhookVerificationError):
        parse_event(b"this is not json", bad, KEY)
    with pytest.raises(WebhookVerificationError):
        parse_event(b"[]", {}, KEY)
    with pytest.raises(WebhookVerificationError):
        parse_event(b"x" * (DEFAULT_MAX_BODY_BYTES + 10), bad, KEY)


@pytest.mark.parametrize("name", ["Authorization", "authorization", "AUTHORIZATION", "aUtHoRiZaTiOn"])
def test_header_name_is_case_insensitive(name: str) -> None:
    event = parse_event(load("new_message_text.json"), {name: KEY, "X-Other": "1"}, KEY)

    assert isinstance(event, NewMessageEvent)


def _http_message() -> email.message.Message:
    message = email.message.Message()
    message["Content-Type"] = "application/json"
    message["authorization"] = KEY
    return message


@pytest.mark.parametrize(
    "headers",
    [
        [("Content-Type", "application/json"), ("authorization", KEY)],
        [(b"content-type", b"application/json"), (b"authorization", KEY.encode())],
        (("Authorization", KEY),),
        _http_message(),
    ],
    ids=["str-pairs", "asgi-byte-pairs", "tuple", "email-message"],
)
def test_headers_as_pairs_or_message_objects(headers: Any) -> None:
    event = parse_event(load("user_access_revocation.json"), headers, KEY)

    assert isinstance(event, UserAccessRevocationEvent)


def test_repeated_authorization_headers_are_rejected() -> None:
    headers = [("Authorization", WRONG_VALUE), ("authorization", KEY)]
    with pytest.raises(WebhookVerificationError, match="more than one"):
        parse_event(load("user_access_revocation.json"), headers, KEY)
    with pytest.raises(WebhookVerificationError):
        parse_event(load("user_access_revocation.json"), {"authorization": KEY, "AUTHORIZATION": KEY}, KEY)


def test_non_ascii_key_compares_as_utf8() -> None:
    key = "کلید-آزمایشی"
    body = load("user_access_revocation.json")

    assert isinstance(parse_event(body, {"Authorization": key}, key), UserAccessRevocationEvent)
    assert isinstance(
        parse_event(body, [(b"authorization", key.encode("utf-8"))], key),
        UserAccessRevocationEvent,
    )
    with pytest.raises(WebhookVerificationError):
        parse_event(body, {"Authorization": "\udcff"}, key)


@pytest.mark.parametrize("key", ["", " key", "key\n", "\tkey"])
def test_verifier_rejects_keys_no_delivery_could_match(key: str) -> None:
    with pytest.raises(ValueError, match="identification key"):
        WebhookVerifier(key)


@pytest.mark.parametrize("limit", [0, -1])
def test_verifier_rejects_a_useless_limit(limit: int) -> None:
    with pytest.raises(ValueError, match="max_body_bytes"):
        WebhookVerifier(KEY, max_body_bytes=limit)


def test_verifier_repr_hides_the_key() -> None:
    verifier = WebhookVerifier(KEY, max_body_bytes=2048)

    assert KEY not in repr(verifier)
    assert KEY not in str(verifier)
    assert "2048" in repr(verifier)
    assert verifier.max_body_bytes == 2048


def test_verifier_is_reusable() -> None:
    verifier = WebhookVerifier(KEY)

    events = [verifier.parse_event(path.read_bytes(), AUTH) for path in OWN_SAMPLES]
    assert len(events) == len(OWN_SAMPLES)
    with pytest.raises(WebhookVerificationError):
        verifier.parse_event(load("new_message_text.json"), {})
    verifier.verify(AUTH)


def test_error_classes_share_a_base_and_carry_a_status() -> None:
    assert issubclass(WebhookVerificationError, WebhookError)
    assert issubclass(WebhookPayloadTooLarge, WebhookError)
    assert issubclass(WebhookPayloadError, WebhookError)
    assert WebhookVerificationError.http_status == 401
    assert WebhookPayloadTooLarge.http_status == 413
    assert WebhookPayloadError.http_status == 400


def _failures() -> List[Any]:
    body = load("new_message_text.json")
    return [
        pytest.param(body, {}, WebhookVerificationError, id="missing"),
        pytest.param(body, {"Authorization": WRONG_VALUE}, WebhookVerificationError, id="wrong"),
        pytest.param(body, {"Authorization": f"Bearer {KEY}"}, WebhookVerificationError, id="bearer"),
        pytest.param(b"x" * (DEFAULT_MAX_BODY_BYTES + 1), AUTH, WebhookPayloadTooLarge, id="big"),
        pytest.param(b"{not json", AUTH, WebhookPayloadError, id="not-json"),
        pytest.param(b"[1, 2]", AUTH, WebhookPayloadError, id="array"),
        pytest.param(b'{"type": "NEW_MESSAGE"}', AUTH, WebhookPayloadError, id="no-payload"),
    ]


@pytest.mark.parametrize(("body", "headers", "error"), _failures())
def test_error_messages_never_contain_the_key_or_received_value(
    body: bytes, headers: Dict[str, str], error: Type[WebhookError]
) -> None:
    with pytest.raises(error) as caught:
        parse_event(body, headers, KEY)

    for text in (str(caught.value), repr(caught.value), repr(caught.value.args)):
        assert KEY not in text
        assert WRONG_VALUE not in text


# --- body size and decoding ------------------------------------------------------------------


def test_body_at_the_limit_is_accepted_and_one_byte_more_is_not() -> None:
    body = load("user_access_revocation.json")
    verifier = WebhookVerifier(KEY, max_body_bytes=len(body))

    assert isinstance(verifier.parse_event(body, AUTH), UserAccessRevocationEvent)
    with pytest.raises(WebhookPayloadTooLarge, match=str(len(body))):
        verifier.parse_event(body + b" ", AUTH)


def test_default_limit_is_one_mebibyte() -> None:
    assert DEFAULT_MAX_BODY_BYTES == 1024 * 1024
    start = b'{"type": "LATER"}'
    exactly = start + b" " * (DEFAULT_MAX_BODY_BYTES - len(start))

    assert isinstance(parse_event(exactly, AUTH, KEY), UnknownEvent)
    with pytest.raises(WebhookPayloadTooLarge):
        parse_event(exactly + b" ", AUTH, KEY)


def test_str_body_size_is_counted_in_utf8_bytes() -> None:
    text = json.dumps({"type": "NEW_MESSAGE", "new_message": {"text": "سلام" * 10}}, ensure_ascii=False)
    encoded = len(text.encode("utf-8"))
    assert encoded > len(text)

    assert isinstance(parse_event(text, AUTH, KEY, max_body_bytes=encoded), NewMessageEvent)
    with pytest.raises(WebhookPayloadTooLarge):
        parse_event(text, AUTH, KEY, max_body_bytes=encoded - 1)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview, str])
def test_body_types(kind: Any) -> None:
    raw = load("new_message_text.json")
    body = raw.decode("utf-8") if kind is str else kind(raw)

    assert isinstance(parse_event(body, AUTH, KEY), NewMessageEvent)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"{'type': 'NEW_MESSAGE'}",
        b"[]",
        b'[{"type": "NEW_MESSAGE"}]',
        b'"NEW_MESSAGE"',
        b"42",
        b"null",
        b'{"type": "USER_ACCESS_REVOCATION", "user_access_revocation": {}',
        b'{"type": "\xff\xfe"}',
        b"[" * 100_000,
        "{}".encode("utf-16"),
    ],
    ids=[
        "empty",
        "text",
        "python-repr",
        "array",
        "array-of-object",
        "string",
        "number",
        "null",
        "truncated",
        "bad-utf8",
        "deep-nesting",
        "utf16",
    ],
)
def test_bodies_that_are_not_a_json_object_are_payload_errors(body: bytes) -> None:
    with pytest.raises(WebhookPayloadError):
        parse_event(body, AUTH, KEY)


def test_body_with_lone_surrogate_is_a_payload_error() -> None:
    with pytest.raises(WebhookPayloadError):
        parse_event('{"type": "X", "t": "\udc80"}', AUTH, KEY)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
EVENT_TYPES = st.sampled_from([*EXPECTED_CLASS, "SOMETHING_ELSE"]) | st.text(max_size=10)
PAYLOAD_KEYS = st.sampled_from(
    [
        "new_message",
        "new_chatbot_message",
        "user_access_revocation",
        "post_update",
        "transaction",
        "payment_transaction",
        "metadata",
    ]
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    event_type=EVENT_TYPES,
    fields=st.dictionaries(PAYLOAD_KEYS | st.text(max_size=8), JSON_VALUES, max_size=4),
)
def test_any_json_object_gives_an_event_or_a_payload_error(event_type: str, fields: Dict[str, Any]) -> None:
    body = {**fields, "type": event_type}
    try:
        event = parse_event(json.dumps(body), AUTH, KEY)
    except WebhookPayloadError:
        return
    assert type(event) is expected_class(body)
    assert event.type == event_type


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=64))
def test_any_bytes_give_an_event_or_a_webhook_error(body: bytes) -> None:
    try:
        event = parse_event(body, AUTH, KEY, max_body_bytes=48)
    except (WebhookPayloadError, WebhookPayloadTooLarge):
        return
    assert isinstance(event, WebhookEvent)


# --- source addresses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ip",
    ["78.111.6.41", "78.111.6.42", "78.111.6.43", "31.214.250.128", "31.214.250.144", "31.214.250.159"],
)
def test_published_addresses_are_kenar_sources(ip: str) -> None:
    assert is_kenar_source(ip) is True
    assert is_kenar_source(ipaddress.ip_address(ip)) is True
    assert is_kenar_source(f"::ffff:{ip}") is True
    assert is_kenar_source(f"  {ip}\n") is True


@pytest.mark.parametrize(
    "ip",
    ["78.111.6.40", "78.111.6.44", "31.214.250.127", "31.214.250.160", "10.0.0.1", "127.0.0.1"],
)
def test_neighbours_are_not_kenar_sources(ip: str) -> None:
    assert is_kenar_source(ip) is False
    assert is_kenar_source(f"::ffff:{ip}") is False


def test_ipv4_mapped_ipv6_object_counts_as_its_ipv4_address() -> None:
    assert is_kenar_source(ipaddress.IPv6Address("::ffff:78.111.6.42")) is True


@pytest.mark.parametrize("ip", ["2001:db8::1", "[2001:db8::1]", "::1", "fe80::1%eth0"])
def test_ipv6_addresses_are_not_kenar_sources_by_default(ip: str) -> None:
    assert is_kenar_source(ip) is False


def test_ipv6_against_custom_networks() -> None:
    networks = ["2001:db8::/32", ipaddress.ip_network("fe80::/10")]

    assert is_kenar_source("2001:db8::1", networks=networks) is True
    assert is_kenar_source("[2001:db8::1]", networks=networks) is True
    assert is_kenar_source("fe80::1%eth0", networks=networks) is True
    assert is_kenar_source("2001:db9::1", networks=networks) is False
    assert is_kenar_source("78.111.6.41", networks=networks) is False


def test_custom_networks_as_strings() -> None:
    assert is_kenar_source("10.1.2.3", networks=["10.0.0.0/8"]) is True
    assert is_kenar_source("10.1.2.3", networks="10.0.0.0/8") is True
    assert is_kenar_source("10.1.2.3", networks="10.1.2.3") is True
    assert is_kenar_source("10.1.2.3", networks=[]) is False
    with pytest.raises(ValueError, match="does not appear to be"):
        is_kenar_source("10.1.2.3", networks=["not a network"])


@pytest.mark.parametrize(
    "ip",
    [
        "",
        "abc",
        None,
        "999.1.1.1",
        "78.111.6.41/32",
        "78.111.6.41:443",
        "78.111.6",
        "[]",
        "%",
        1315046953,
        b"78.111.6.41",
        ["78.111.6.41"],
        3.5,
    ],
)
def test_garbage_is_not_a_kenar_source(ip: Any) -> None:
    assert is_kenar_source(ip) is False


def test_published_networks_constant() -> None:
    published = (
        ipaddress.IPv4Network("78.111.6.41/32"),
        ipaddress.IPv4Network("78.111.6.42/32"),
        ipaddress.IPv4Network("78.111.6.43/32"),
        ipaddress.IPv4Network("31.214.250.128/27"),
    )
    assert published == KENAR_WEBHOOK_NETWORKS
    assert isinstance(KENAR_WEBHOOK_NETWORKS, tuple)


# --- WSGI receiver over real HTTP ------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


SHARED_SERVER_THREAD = "test-webhooks-shared-server"


@pytest.fixture(scope="module")
def wsgi_server() -> Iterator[Tuple[int, Recorder]]:
    """make_wsgi_app under wsgiref on a free loopback port, for the whole module."""
    recorder = Recorder()
    httpd: WSGIServer = make_server("127.0.0.1", 0, make_wsgi_app(KEY, recorder), handler_class=_QuietHandler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, name=SHARED_SERVER_THREAD
    )
    thread.daemon = True
    thread.start()
    try:
        yield httpd.server_port, recorder
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def receiver(wsgi_server: Tuple[int, Recorder], caplog: pytest.LogCaptureFixture) -> Tuple[int, Recorder]:
    """The shared server with a fresh recorder, and its log records captured."""
    port, recorder = wsgi_server
    recorder.events.clear()
    recorder.fail = False
    caplog.set_level(logging.INFO, logger="kenar_api_client.webhooks")
    return port, recorder


class Reply:
    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = {name.lower(): value for name, value in response.getheaders()}
        self.body = response.read()

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    port: int, method: str = "POST", body: Optional[bytes] = None, headers: Optional[Dict[str, str]] = None
) -> Reply:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, "/kenar/webhook", body=body, headers=headers or {})
        return Reply(connection.getresponse())
    finally:
        connection.close()


def delivery_headers(key: Optional[str] = KEY) -> Dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = key
    return headers


def webhook_records(caplog: pytest.LogCaptureFixture) -> List[logging.LogRecord]:
    """The shared server's log records: another test's server, still closing a connection, may
    log on the same logger meanwhile (wsgiref answers in its serving thread, so its records
    carry that thread's name)."""
    return [
        record
        for record in caplog.records
        if record.name == "kenar_api_client.webhooks" and record.threadName == SHARED_SERVER_THREAD
    ]


def assert_no_secret_logged(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        text = record.getMessage() + (caplog.handler.format(record) if record.exc_info else "")
        assert KEY not in text
        assert WRONG_VALUE not in text


def assert_json_reply(reply: Reply, status: int, body: Dict[str, str]) -> None:
    assert reply.status == status
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == body


@pytest.mark.parametrize("path", _own_samples() + _shared_samples())
def test_receiver_accepts_every_sample(
    receiver: Tuple[int, Recorder], caplog: pytest.LogCaptureFixture, path: Path
) -> None:
    port, recorder = receiver
    raw = path.read_bytes()
    body = json.loads(raw)

    reply = request(port, body=raw, headers=delivery_headers())

    assert_json_reply(reply, 200, {"status": "ok"})
    assert len(recorder.events) == 1
    event = recorder.events[0]
    assert type(event) is expected_class(body)
    assert event.type == body["type"]
    [record] = webhook_records(caplog)
    assert record.levelno == logging.INFO
    assert (record.webhook_outcome, record.webhook_status) == ("handled", 200)  # type: ignore[attr-defined]
    assert record.webhook_event_type == body["type"]  # type: ignore[attr-defined]
    assert repr(body["type"]) in record.getMessage()
    assert_no_secret_logged(caplog)


def test_receiver_hands_over_typed_values(receiver: Tuple[int, Recorder]) -> None:
    port, recorder = receiver

    request(port, body=load("payment_transaction_alt_key.json"), headers=delivery_headers())

    [event] = recorder.events
    assert isinstance(event, PaymentTransactionEvent)
    assert event.transaction.state is TransactionState.TRANSACTION_STATE_REFUNDED
    assert event.transaction.cost_rials == 75000000000


@pytest.mark.parametrize(
    "key",
    [None, WRONG_VALUE, f"Bearer {KEY}", KEY.upper()],
    ids=["missing", "wrong", "bearer", "different-case"],
)
def test_receiver_answers_401_without_calling_the_handler(
    receiver: Tuple[int, Recorder], caplog: pytest.LogCaptureFixture, key: Optional[str]
) -> None:
    port, recorder = receiver

    reply = request(port, body=load("new_message_text.json"), headers=delivery_headers(key))

    assert_json_reply(reply, 401, {"error": "unauthorized"})
    assert recorder.events == []
    [record] = webhook_records(caplog)
    assert record.levelno == logging.WARNING
    assert record.webhook_status == 401  # type: ignore[attr-defined]
    assert "Authorization" in record.getMessage()
    assert_no_secret_logged(caplog)
    if key is not None:
        assert key not in record.getMessage()


def test_receiver_answers_401_before_reading_a_bad_body(receiver: Tuple[int, Recorder]) -> None:
    port, recorder = receiver

    reply = request(port, body=b"garbage", headers=delivery_headers(WRONG_VALUE))

    assert reply.status == 401
    assert recorder.events == []


def test_receiver_answers_413_from_the_declared_length(
    receiver: Tuple[int, Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    port, recorder = receiver
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        # Announce a body over the limit but send none: the answer must not wait for it.
        connection.putrequest("POST", "/kenar/webhook")
        connection.putheader("Authorization", KEY)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(DEFAULT_MAX_BODY_BYTES + 1))
        connection.endheaders()
        reply = Reply(connection.getresponse())
    finally:
        connection.close()

    assert_json_reply(reply, 413, {"error": "payload too large"})
    assert recorder.events == []
    [record] = webhook_records(caplog)
    assert record.webhook_status == 413  # type: ignore[attr-defined]
    assert_no_secret_logged(caplog)


def test_receiver_answers_413_to_a_length_of_thousands_of_digits(
    receiver: Tuple[int, Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    port, recorder = receiver
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(
            f"POST /kenar/webhook HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\n"
            f"Content-Length: {'9' * 5000}\r\n\r\n{{}}".encode()
        )
        answer = read_all(raw)

    assert answer.startswith(b"HTTP/1.0 413 "), answer[:100]
    assert answer.endswith(b'{"error": "payload too large"}')
    assert recorder.events == []
    [record] = webhook_records(caplog)
    assert (record.levelno, record.exc_info) == (logging.WARNING, None)  # refused, not a failure


def nested(depth: int) -> Dict[str, Any]:
    """A metadata object that, inside a delivery body, makes the body ``depth`` levels deep."""
    value: Any = {"leaf": True}
    for level in range(depth - 3):
        value = [value] if level % 2 == 0 else {"a": value}
    return {"m": value}


def body_nesting(depth: int) -> Dict[str, Any]:
    body = {"type": "SOMETHING_NEW", "metadata": nested(depth)}
    assert nesting_depth(body) == depth
    return body


def nesting_depth(value: Any) -> int:
    """How many objects and arrays deep ``value`` is, counted from the JSON text."""
    depth = deepest = 0
    for char in json.dumps(value):  # no brackets inside the strings used here
        depth += (char in "[{") - (char in "]}")
        deepest = max(deepest, depth)
    return deepest


def test_receiver_refuses_a_body_nested_deeper_than_the_limit_with_400(
    receiver: Tuple[int, Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    port, recorder = receiver

    for depth in (MAX_NESTING_DEPTH + 1, 500):
        body = json.dumps(body_nesting(depth)).encode()
        reply = request(port, body=body, headers=delivery_headers())
        assert_json_reply(reply, 400, {"error": "bad payload"})
    assert recorder.events == []
    assert all(f"deeper than {MAX_NESTING_DEPTH} levels" in r.getMessage() for r in webhook_records(caplog))

    reply = request(
        port, body=json.dumps(body_nesting(MAX_NESTING_DEPTH)).encode(), headers=delivery_headers()
    )
    assert_json_reply(reply, 200, {"status": "ok"})
    [event] = recorder.events
    assert json.loads(event.to_json()) == event.to_dict() == body_nesting(MAX_NESTING_DEPTH)


def test_nesting_limit_holds_for_every_entry_point() -> None:
    assert MAX_NESTING_DEPTH == 64  # documented in docs/Webhooks.md
    deep = body_nesting(MAX_NESTING_DEPTH + 1)
    with pytest.raises(WebhookPayloadError, match="deeper than 64 levels"):
        event_from_dict(deep)
    with pytest.raises(WebhookPayloadError, match="deeper than 64 levels"):
        parse_event(json.dumps(deep), AUTH, KEY)
    # Deeper than json.loads itself can go: the same error, not "not valid JSON".
    with pytest.raises(WebhookPayloadError, match="deeper than 64 levels"):
        parse_event('{"type": "X", "metadata": ' + "[" * 100_000 + "]" * 100_000 + "}", AUTH, KEY)
    event = event_from_dict(body_nesting(MAX_NESTING_DEPTH))
    assert event.to_dict() == body_nesting(MAX_NESTING_DEPTH)


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2, 3]", b'{"type": "NEW_MESSAGE"}'],
    ids=["not-json", "array", "missing-payload"],
)
def test_receiver_answers_400_for_a_bad_payload(
    receiver: Tuple[int, Recorder], caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    port, recorder = receiver

    reply = request(port, body=body, headers=delivery_headers())

    assert_json_reply(reply, 400, {"error": "bad payload"})
    assert recorder.events == []
    [record] = webhook_records(caplog)
    assert record.webhook_status == 400  # type: ignore[attr-defined]
    assert_no_secret_logged(caplog)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_receiver_answers_405_for_other_methods(
    receiver: Tuple[int, Recorder], caplog: pytest.LogCaptureFixture, method: str
) -> None:
    port, recorder = receiver

    reply = request(port, method=method, headers=delivery_headers())

    assert_json_reply(reply, 405, {"error": "method not allowed"})
    assert reply.headers["allow"] == "POST"
    assert recorder.events == []
    [record] = webhook_records(caplog)
    assert record.webhook_status == 405  # type: ignore[attr-defined]
    assert_no_secret_logged(caplog)


def test_receiver_answers_500_without_details_when_the_handler_raises(
    receiver: Tuple[int, Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    port, recorder = receiver
    recorder.fail = True

    reply = request(port, body=load("post_update_publish.json"), headers=delivery_headers())

    assert_json_reply(reply, 500, {"error": "internal error"})
    assert b"private-detail" not in reply.body
    assert b"RuntimeError" not in reply.body
    assert len(recorder.events) == 1
    [record] = webhook_records(caplog)
    assert record.levelno == logging.ERROR
    assert record.webhook_status == 500  # type: ignore[attr-defined]
    assert record.webhook_event_type == "POST_UPDATE"  # type: ignore[attr-defined]
    assert record.exc_info is not None
    assert "private-detail-7731" in caplog.text  # the app's own traceback is logged
    assert_no_secret_logged(caplog)


# --- WSGI receiver called directly -----------------------------------------------------------


class CountingStream(io.BytesIO):
    """A wsgi.input that counts the bytes the app read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: Optional[int] = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


def call_app(
    app: Any, body: bytes = b"", method: str = "POST", **environ: Any
) -> Tuple[str, Dict[str, str], bytes, CountingStream]:
    stream = CountingStream(body)
    env: Dict[str, Any] = {
        "REQUEST_METHOD": method,
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": "78.111.6.41",
        "wsgi.input": stream,
    }
    env.update(environ)
    captured: Dict[str, Any] = {}

    def start_response(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"] = status
        captured["headers"] = dict(headers)
        return lambda data: None

    payload = b"".join(app(env, start_response))
    return captured["status"], captured["headers"], payload, stream


def test_app_does_not_read_a_body_declared_too_large() -> None:
    recorder = Recorder()
    app = make_wsgi_app(KEY, recorder, max_body_bytes=100)

    status, _, _, stream = call_app(app, b"x" * 500, HTTP_AUTHORIZATION=KEY)

    assert status.startswith("413 ")
    assert stream.bytes_read == 0
    assert recorder.events == []


def test_app_reads_at_most_one_byte_over_the_limit_without_a_length() -> None:
    app = make_wsgi_app(KEY, Recorder(), max_body_bytes=100)

    status, _, _, stream = call_app(
        app, b"x" * 10_000, HTTP_AUTHORIZATION=KEY, CONTENT_LENGTH="", **{"wsgi.input_terminated": True}
    )

    assert status.startswith("413 ")
    assert stream.bytes_read == 101


def test_app_reads_a_terminated_body_without_a_length() -> None:
    recorder = Recorder()
    app = make_wsgi_app(KEY, recorder)

    status, _, _, _ = call_app(
        app,
        load("user_access_revocation.json"),
        HTTP_AUTHORIZATION=KEY,
        CONTENT_LENGTH="",
        **{"wsgi.input_terminated": True},
    )

    assert status.startswith("200 ")
    assert isinstance(recorder.events[0], UserAccessRevocationEvent)


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", "+7"])
def test_app_answers_400_for_an_invalid_content_length(length: str) -> None:
    status, _, _, _ = call_app(
        make_wsgi_app(KEY, Recorder()), b"{}", HTTP_AUTHORIZATION=KEY, CONTENT_LENGTH=length
    )

    assert status.startswith("400 ")


def test_app_checks_the_key_before_looking_at_the_length() -> None:
    status, _, _, _ = call_app(
        make_wsgi_app(KEY, Recorder(), max_body_bytes=10),
        b"x" * 50,
        HTTP_AUTHORIZATION=WRONG_VALUE,
    )

    assert status.startswith("401 ")


def test_app_compares_the_header_bytes_for_a_non_ascii_key() -> None:
    key = "کلید-آزمایشی"
    recorder = Recorder()
    # PEP 3333 hands header bytes to the app as latin-1 text.
    as_environ = key.encode("utf-8").decode("latin-1")

    status, _, _, _ = call_app(
        make_wsgi_app(key, recorder), load("user_access_revocation.json"), HTTP_AUTHORIZATION=as_environ
    )

    assert status.startswith("200 ")
    assert len(recorder.events) == 1


def test_app_logs_to_the_given_logger(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("my_app.kenar")
    caplog.set_level(logging.INFO, logger="my_app.kenar")
    app = make_wsgi_app(KEY, Recorder(), logger=logger)

    call_app(app, load("new_message_text.json"), HTTP_AUTHORIZATION=KEY)

    assert [record.name for record in caplog.records] == ["my_app.kenar"]
    assert_no_secret_logged(caplog)


def test_app_reports_a_failure_to_read_as_500(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenStream(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise OSError("connection reset")

    status, _, payload, _ = call_app(
        make_wsgi_app(KEY, Recorder()), b"{}", HTTP_AUTHORIZATION=KEY, **{"wsgi.input": BrokenStream()}
    )

    assert status.startswith("500 ")
    assert json.loads(payload) == {"error": "internal error"}


def test_make_wsgi_app_rejects_an_empty_key() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        make_wsgi_app("", Recorder())


# --- the threaded server: make_server --------------------------------------------------------


@pytest.fixture
def served() -> Iterator[Tuple[Any, Recorder]]:
    """make_wsgi_app on the package's threaded server, with its default read timeout.

    Its app logs on a logger of its own: a connection it is still closing after the test
    (a half-sent delivery ends in a 408) never logs into the next test's records.
    """
    recorder = Recorder()
    logger = logging.getLogger("test_webhooks.served")
    app = make_wsgi_app(KEY, recorder, logger=logger)
    server = make_webhook_server("127.0.0.1", 0, app).start()
    try:
        yield server, recorder
    finally:
        server.stop()


def half_sent_delivery(port: int, timeout: float = 5) -> socket.socket:
    """A connection whose request announces a 100-byte body and sends 1 byte of it."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    connection.sendall(
        f"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\nContent-Length: 100\r\n\r\n{{".encode()
    )
    return connection


def read_all(connection: socket.socket) -> bytes:
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def test_a_delivery_is_answered_while_an_idle_and_a_half_sent_connection_wait(
    served: Tuple[Any, Recorder],
) -> None:
    server, recorder = served
    with (
        socket.create_connection(("127.0.0.1", server.server_port), timeout=5),
        half_sent_delivery(server.server_port),
    ):
        reply = request(server.server_port, body=load("new_message_text.json"), headers=delivery_headers())

    assert_json_reply(reply, 200, {"status": "ok"})
    assert [type(event) for event in recorder.events] == [NewMessageEvent]
    assert server.url == f"http://127.0.0.1:{server.server_port}/"
    assert DEFAULT_READ_TIMEOUT == 10.0


def own_logger(caplog: pytest.LogCaptureFixture, name: str) -> logging.Logger:
    """A logger for one test's app: records of other tests' servers (still stopping) never mix in."""
    logger = logging.getLogger(f"test_webhooks.{name}")
    caplog.set_level(logging.INFO, logger=logger.name)
    return logger


def records_of(caplog: pytest.LogCaptureFixture, logger: logging.Logger) -> List[logging.LogRecord]:
    return [record for record in caplog.records if record.name == logger.name]


def test_the_read_timeout_drops_idle_connections_and_answers_408_to_a_cut_body(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    logger = own_logger(caplog, "read_timeout")
    recorder = Recorder()
    with make_webhook_server(
        "127.0.0.1", 0, make_wsgi_app(KEY, recorder, logger=logger), read_timeout=0.2
    ).start() as server:
        # Each step waits for what the server does (a closed socket, an answer), however slow
        # the machine is; the socket timeouts are only a safety net.
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=60) as idle:
            assert idle.recv(1) == b""  # closed by the server, without a word
        with half_sent_delivery(server.server_port, timeout=60) as slow:
            answer = read_all(slow)

    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"\r\nConnection: close\r\n" in answer
    assert answer.endswith(b'{"error": "request timeout"}')
    assert recorder.events == []
    # The answer was written after the line was logged: it is there, and it is the only one.
    [record] = records_of(caplog, logger)
    assert (record.webhook_status, record.exc_info) == (408, None)  # type: ignore[attr-defined]
    assert "did not arrive in time" in record.getMessage()
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


@pytest.mark.parametrize(
    "sent", [b"", b"{", b'{"type": "USER_ACCESS_REVOCATION", "user_access_revocation": {}}']
)
def test_a_body_cut_short_by_the_client_is_408_and_never_decoded(
    caplog: pytest.LogCaptureFixture, sent: bytes
) -> None:
    """The defect behind issue 23's flake: a body whose connection ended early was decoded as if whole."""
    logger = own_logger(caplog, "cut_short")
    recorder = Recorder()
    head = f"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\nContent-Length: {len(sent) + 50}\r\n\r\n"
    with (
        make_webhook_server("127.0.0.1", 0, make_wsgi_app(KEY, recorder, logger=logger)).start() as server,
        socket.create_connection(("127.0.0.1", server.server_port), timeout=60) as connection,
    ):
        connection.sendall(head.encode() + sent)
        connection.shutdown(socket.SHUT_WR)  # the body ends here, 50 bytes early
        answer = read_all(connection)

    assert answer.startswith(b"HTTP/1.1 408 ")
    assert recorder.events == []  # even the last body, a whole event, was not taken for one
    [record] = records_of(caplog, logger)
    assert record.webhook_status == 408  # type: ignore[attr-defined]
    assert f"after {len(sent)} of {len(sent) + 50} body bytes" in record.getMessage()


def test_stop_ends_half_sent_requests_quietly_and_threads_are_daemons(
    capfd: pytest.CaptureFixture[str],
) -> None:
    recorder = Recorder()
    before = set(threading.enumerate())
    server = make_webhook_server("127.0.0.1", 0, make_wsgi_app(KEY, recorder)).start()
    with (
        half_sent_delivery(server.server_port) as slow,
        socket.create_connection(("127.0.0.1", server.server_port), timeout=5) as headers_only,
    ):
        headers_only.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
        # Served in turn: once this is answered, the two connections above have their threads.
        request(server.server_port, body=load("new_message_text.json"), headers=delivery_headers())
        started = [thread for thread in threading.enumerate() if thread not in before]
        assert len(started) >= 3  # the serving loop and a thread per waiting connection
        assert all(thread.daemon for thread in started)

        server.stop()

        read_all(slow)  # the connections end rather than hang
        read_all(headers_only)
    server.stop()  # twice is fine
    for thread in started:
        thread.join(timeout=5)
    assert not any(thread.is_alive() for thread in started)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.server_port), timeout=1).close()
    assert [type(event) for event in recorder.events] == [NewMessageEvent]
    assert "Traceback" not in capfd.readouterr().err


def test_serve_forever_ends_on_stop_from_another_thread() -> None:
    server = make_webhook_server("127.0.0.1", 0, make_wsgi_app(KEY, Recorder()))
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    assert request(server.server_port, body=b"{}", headers=delivery_headers()).status == 400
    server.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    unused = make_webhook_server("127.0.0.1", 0, make_wsgi_app(KEY, Recorder()))
    unused.stop()  # never served: just closes


@pytest.mark.parametrize("timeout", [0, -1, True, "10"])
def test_make_server_rejects_a_read_timeout_that_is_not_positive(timeout: Any) -> None:
    with pytest.raises(ValueError, match="read_timeout"):
        make_webhook_server("127.0.0.1", 0, make_wsgi_app(KEY, Recorder()), read_timeout=timeout)


# --- keep-alive and the worker pool ----------------------------------------------------------


def post_on(connection: socket.socket, raw: bytes, key: str = KEY, extra: str = "") -> None:
    head = f"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {key}\r\nContent-Length: {len(raw)}\r\n{extra}\r\n"
    connection.sendall(head.encode() + raw)


def read_answer(reader: Any) -> Tuple[int, Dict[str, str], bytes]:
    """One HTTP answer from a file over a socket: status, headers (lowercased names), body."""
    status = int(reader.readline().split()[1])
    headers: Dict[str, str] = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, reader.read(int(headers.get("content-length", "0")))


def test_one_connection_carries_delivery_after_delivery(served: Tuple[Any, Recorder]) -> None:
    server, recorder = served
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=60) as connection:
        reader = connection.makefile("rb")
        for name in ("new_message_text.json", "post_update_publish.json"):
            post_on(connection, load(name))
            status, headers, body = read_answer(reader)
            assert (status, body) == (200, b'{"status": "ok"}')
            assert "connection" not in headers
        # Two requests sent at once (pipelined) get their two answers, in order.
        post_on(connection, load("user_access_revocation.json"))
        post_on(connection, b"{}")
        assert [read_answer(reader)[0] for _ in range(2)] == [200, 400]
    assert [type(event) for event in recorder.events] == [
        NewMessageEvent,
        PostUpdateEvent,
        UserAccessRevocationEvent,
    ]


def test_a_body_left_unread_closes_the_connection(served: Tuple[Any, Recorder]) -> None:
    server, _ = served
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=60) as connection:
        reader = connection.makefile("rb")
        head = f"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\nContent-Length: 5000000\r\n\r\n"
        connection.sendall(head.encode() + b"{")  # refused by its length: the rest is never read
        status, headers, _ = read_answer(reader)
        assert (status, headers["connection"]) == (413, "close")
        assert reader.read() == b""  # and the server closed it


def test_http_1_0_and_connection_close_are_answered_then_closed(served: Tuple[Any, Recorder]) -> None:
    server, _ = served
    raw = load("user_access_revocation.json")
    for request_line, extra in (("POST / HTTP/1.0", ""), ("POST / HTTP/1.1", "Connection: close\r\n")):
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=60) as connection:
            head = f"{request_line}\r\nAuthorization: {KEY}\r\nContent-Length: {len(raw)}\r\n{extra}\r\n"
            connection.sendall(head.encode() + raw)
            answer = read_all(connection)  # ends: the server closed the connection
        assert answer.split(b" ", 2)[1] == b"200"


def test_at_most_workers_handlers_run_at_once_and_idle_connections_take_no_thread() -> None:
    running, most = 0, 0
    lock = threading.Lock()
    two_ran_at_once = threading.Event()

    def handler(event: WebhookEvent) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            if running == 2:
                two_ran_at_once.set()
        assert two_ran_at_once.wait(60)  # the first handler waits for a second one to start
        with lock:
            running -= 1

    before = threading.active_count()
    with make_webhook_server("127.0.0.1", 0, make_wsgi_app(KEY, handler), workers=2).start() as server:
        idle = [socket.create_connection(("127.0.0.1", server.server_port), timeout=60) for _ in range(40)]
        senders = [
            threading.Thread(
                target=lambda: request(
                    server.server_port, body=load("new_message_text.json"), headers=delivery_headers()
                )
            )
            for _ in range(6)
        ]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(60)
        threads = threading.active_count() - before
        for connection in idle:
            connection.close()
    assert most == 2
    assert threads <= 1 + 2  # the watching thread and the two workers, whatever the connections


def test_shutdown_and_server_close_work_as_socketservers_do() -> None:
    server = make_webhook_server("127.0.0.1", 0, make_wsgi_app(KEY, Recorder()))
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    assert request(server.server_port, body=b"{}", headers=delivery_headers()).status == 400
    server.shutdown()  # returns once serve_forever has
    thread.join(60)
    assert not thread.is_alive()
    server.server_close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.server_port), timeout=1).close()


@pytest.mark.parametrize("workers", [0, -1, True, "4"])
def test_make_server_rejects_a_worker_count_that_is_not_positive(workers: Any) -> None:
    with pytest.raises(ValueError, match="workers"):
        make_webhook_server("127.0.0.1", 0, make_wsgi_app(KEY, Recorder()), workers=workers)
