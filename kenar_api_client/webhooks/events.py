"""Typed models of the events Kenar delivers to a webhook, and the dispatch of a decoded body."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Tuple, Type, Union

from pydantic import (
    AfterValidator,
    AliasChoices,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.functional_validators import ModelWrapValidatorHandler
from typing_extensions import Annotated, Literal, Self

from kenar_api_client.models._base import KenarModel
from kenar_api_client.models._enum import KenarEnum
from kenar_api_client.webhooks._errors import WebhookPayloadError

__all__ = [
    "MAX_NESTING_DEPTH",
    "TRANSACTION_TYPE_REORDER",
    "ChatMessage",
    "ContactData",
    "Conversation",
    "ConversationType",
    "FileData",
    "ImageData",
    "LocationData",
    "MessageType",
    "NewChatbotMessageEvent",
    "NewMessageEvent",
    "PaymentTransactionEvent",
    "Post",
    "PostUpdate",
    "PostUpdateEvent",
    "PostUpdateType",
    "Sender",
    "SenderSide",
    "SenderType",
    "Transaction",
    "TransactionState",
    "UnknownEvent",
    "UserAccessRevocation",
    "UserAccessRevocationEvent",
    "VideoData",
    "VoiceData",
    "WebhookEvent",
    "WebhookEventType",
    "event_from_dict",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# The one transaction type the docs name; others may arrive and are kept as plain strings.
TRANSACTION_TYPE_REORDER = "TRANSACTION_TYPE_REORDER"

#: How deeply a delivery body may nest objects and arrays, the body itself being level 1.
#: Kenar's own payloads nest a few levels; the limit keeps every event serialisable.
MAX_NESTING_DEPTH = 64
TOO_DEEP_MESSAGE = f"webhook body nests objects and arrays deeper than {MAX_NESTING_DEPTH} levels"


# --- enums -------------------------------------------------------------------------------


class WebhookEventType(KenarEnum):
    """The documented values of a delivery's ``type``."""

    NEW_MESSAGE = "NEW_MESSAGE"
    NEW_CHATBOT_MESSAGE = "NEW_CHATBOT_MESSAGE"
    USER_ACCESS_REVOCATION = "USER_ACCESS_REVOCATION"
    POST_UPDATE = "POST_UPDATE"
    PAYMENT_TRANSACTION = "PAYMENT_TRANSACTION"


class ConversationType(KenarEnum):
    """Whether a chat is about a post or with a chatbot."""

    POST = "POST"
    BOT = "BOT"


class SenderSide(KenarEnum):
    """Which side of a post conversation sent a message."""

    SELLER = "SELLER"
    BUYER = "BUYER"


class SenderType(KenarEnum):
    """Who sent a message; ``USER`` appears in Kenar's examples besides the documented two."""

    HUMAN = "HUMAN"
    BOT = "BOT"
    USER = "USER"


class MessageType(KenarEnum):
    """The kind of a chat message, naming which ``*_data`` field (or ``text``) is set."""

    TEXT = "TEXT"
    IMAGE = "IMAGE"
    FILE = "FILE"
    VOICE = "VOICE"
    LOCATION = "LOCATION"
    VIDEO = "VIDEO"
    CONTACT = "CONTACT"


class PostUpdateType(KenarEnum):
    """What happened to a post; Kenar says more values may be added."""

    PUBLISH = "PUBLISH"
    RETIRE = "RETIRE"
    ONGOING = "ONGOING"
    ARCHIVE = "ARCHIVE"


class TransactionState(KenarEnum):
    """The state of a payment transaction."""

    TRANSACTION_STATE_PENDING = "TRANSACTION_STATE_PENDING"
    TRANSACTION_STATE_COMPLETED = "TRANSACTION_STATE_COMPLETED"
    TRANSACTION_STATE_FAILED = "TRANSACTION_STATE_FAILED"
    TRANSACTION_STATE_REFUNDED = "TRANSACTION_STATE_REFUNDED"


# An enum field accepts any string: a known value becomes the member, a value added by Kenar
# after this release stays a plain ``str``. Pydantic's default "smart" union would pick
# ``str`` even for known values, hence left to right.
_OPEN_ENUM = Field(union_mode="left_to_right")
_ConversationTypeValue = Annotated[Union[ConversationType, str], _OPEN_ENUM]
_SenderSideValue = Annotated[Union[SenderSide, str], _OPEN_ENUM]
_SenderTypeValue = Annotated[Union[SenderType, str], _OPEN_ENUM]
_MessageTypeValue = Annotated[Union[MessageType, str], _OPEN_ENUM]
_PostUpdateTypeValue = Annotated[Union[PostUpdateType, str], _OPEN_ENUM]
_TransactionStateValue = Annotated[Union[TransactionState, str], _OPEN_ENUM]


def _as_utc(value: datetime) -> datetime:
    """Make a parsed timestamp aware and UTC; protobuf timestamps without an offset are UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


_UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]

# int64 fields (sent_at, cost_rials, size_bytes) are plain ``int``: pydantic's lax mode also
# takes the numeric strings proto3 JSON uses for int64.


# --- chat messages -----------------------------------------------------------------------


class Conversation(KenarModel):
    """The chat a message belongs to: ``id``, ``type`` (POST or BOT), ``post_token`` if any."""

    id: Optional[str] = None
    type: Optional[_ConversationTypeValue] = None
    post_token: Optional[str] = None


class Sender(KenarModel):
    """Who sent a message: ``side`` (SELLER or BUYER) and ``type`` (HUMAN, BOT or USER)."""

    side: Optional[_SenderSideValue] = None
    type: Optional[_SenderTypeValue] = None


class ImageData(KenarModel):
    """An image message: download ``link``, ``size_bytes`` and pixel dimensions."""

    link: Optional[str] = None
    size_bytes: Optional[int] = None
    height_px: Optional[int] = None
    width_px: Optional[int] = None


class FileData(KenarModel):
    """A file message: download ``link``, file ``name`` and ``size_bytes``."""

    link: Optional[str] = None
    name: Optional[str] = None
    size_bytes: Optional[int] = None


class VoiceData(KenarModel):
    """A voice message: download ``link`` and ``size_bytes``."""

    link: Optional[str] = None
    size_bytes: Optional[int] = None


class LocationData(KenarModel):
    """A shared location: ``latitude`` and ``longitude`` in degrees."""

    latitude: Optional[float] = None
    longitude: Optional[float] = None


class VideoData(KenarModel):
    """A video message: download ``link``, ``thumbnail_link`` and ``size_bytes``."""

    link: Optional[str] = None
    thumbnail_link: Optional[str] = None
    size_bytes: Optional[int] = None


class ContactData(KenarModel):
    """A shared contact: ``phone`` and an optional ``name``."""

    name: Optional[str] = None
    phone: Optional[str] = None


class ChatMessage(KenarModel):
    """One chat message; ``type`` says which of ``text`` and the ``*_data`` fields is set."""

    id: Optional[str] = None
    conversation: Optional[Conversation] = None
    sender: Optional[Sender] = None
    type: Optional[_MessageTypeValue] = None
    sent_at: Optional[int] = Field(default=None, description="Microseconds since the Unix epoch.")
    text: Optional[str] = None
    image_data: Optional[ImageData] = None
    file_data: Optional[FileData] = None
    voice_data: Optional[VoiceData] = None
    location_data: Optional[LocationData] = None
    video_data: Optional[VideoData] = None
    contact_data: Optional[ContactData] = None

    @property
    def sent_at_datetime(self) -> Optional[datetime]:
        """``sent_at`` as an aware UTC datetime, exact to the microsecond; ``None`` if absent.

        Raises ``OverflowError`` for a value outside the years 1 to 9999.
        """
        if self.sent_at is None:
            return None
        # Integer arithmetic: going through a float timestamp would lose microseconds.
        return _EPOCH + timedelta(microseconds=self.sent_at)


# --- other payloads ----------------------------------------------------------------------


class UserAccessRevocation(KenarModel):
    """A user withdrew the app's access; ``user_id`` is their (obfuscated) Divar user id."""

    user_id: Optional[str] = None


class Post(KenarModel):
    """A post as sent with a post update; for RETIRE and ARCHIVE only ``token`` is present."""

    token: Optional[str] = None
    category: Optional[str] = None
    city: Optional[str] = None
    district: Optional[str] = None
    is_phone_hidden: Optional[bool] = None
    supplier_chat_assistant_enabled: Optional[bool] = None
    chat_enabled: Optional[bool] = None
    first_published_at: Optional[_UtcDatetime] = Field(
        default=None, description="When the post was first published, as an aware UTC datetime."
    )
    data: Optional[Dict[str, Any]] = Field(
        default=None, description="The post's other fields, as Kenar sent them."
    )


class PostUpdate(KenarModel):
    """What happened (``type``) to which ``post``."""

    type: Optional[_PostUpdateTypeValue] = None
    post: Optional[Post] = None


class Transaction(KenarModel):
    """A payment transaction: ``id`` (a UUID), ``cost_rials``, ``state``, ``type``, details."""

    id: Optional[str] = None
    cost_rials: Optional[int] = None
    extra_details: Optional[str] = None
    state: Optional[_TransactionStateValue] = None
    type: Optional[str] = Field(default=None, description="For example ``TRANSACTION_TYPE_REORDER``.")


# --- events ------------------------------------------------------------------------------


class WebhookEvent(KenarModel):
    """Base of every delivered event: the ``type`` and the app's own ``metadata``."""

    type: str
    metadata: Dict[str, Any] = Field(default_factory=dict)

    @field_validator("metadata", mode="before")
    @classmethod
    def _null_metadata_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    def model_post_init(self, context: Any, /) -> None:
        # ``type`` always belongs in to_dict(), also when a subclass filled in its default.
        self.__pydantic_fields_set__.add("type")

    @property
    def payload(self) -> Any:
        """The event's payload; each event class narrows the type."""
        return None

    @property
    def delivery_key(self) -> str:
        """What tells a redelivery of this event apart from another event.

        A chat message event's key is its type and message id (``NEW_MESSAGE:<id>``): every
        delivery of one message has it, whatever its ``metadata``. Any other event (and a
        message without an id) is keyed by the SHA-256 of its canonical JSON
        (``sha256:<hex>`` of ``to_dict()`` with sorted keys, compact, UTF-8): a redelivery
        of the same body matches whatever its key order or spacing, and an event rebuilt
        from ``to_dict()`` (in a job queue's worker, say) has the same key.
        """
        return self._digest_key()

    def _digest_key(self) -> str:
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def _message_key(self, message: ChatMessage) -> str:
        if isinstance(message.id, str) and message.id:
            return f"{self.type}:{message.id}"
        return self._digest_key()


class NewMessageEvent(WebhookEvent):
    """``NEW_MESSAGE``: a message in a post conversation the app subscribed to."""

    type: Literal["NEW_MESSAGE"] = "NEW_MESSAGE"
    new_message: ChatMessage

    @property
    def payload(self) -> ChatMessage:
        """The same as ``new_message``."""
        return self.new_message

    @property
    def delivery_key(self) -> str:
        """``NEW_MESSAGE:<message id>``; see :attr:`WebhookEvent.delivery_key`."""
        return self._message_key(self.new_message)


class NewChatbotMessageEvent(WebhookEvent):
    """``NEW_CHATBOT_MESSAGE``: a message to the app's chatbot (no subscription needed)."""

    type: Literal["NEW_CHATBOT_MESSAGE"] = "NEW_CHATBOT_MESSAGE"
    new_chatbot_message: ChatMessage

    @property
    def payload(self) -> ChatMessage:
        """The same as ``new_chatbot_message``."""
        return self.new_chatbot_message

    @property
    def delivery_key(self) -> str:
        """``NEW_CHATBOT_MESSAGE:<message id>``; see :attr:`WebhookEvent.delivery_key`."""
        return self._message_key(self.new_chatbot_message)


class UserAccessRevocationEvent(WebhookEvent):
    """``USER_ACCESS_REVOCATION``: a user revoked the app's access (no subscription needed)."""

    type: Literal["USER_ACCESS_REVOCATION"] = "USER_ACCESS_REVOCATION"
    user_access_revocation: UserAccessRevocation

    @property
    def payload(self) -> UserAccessRevocation:
        """The same as ``user_access_revocation``."""
        return self.user_access_revocation


class PostUpdateEvent(WebhookEvent):
    """``POST_UPDATE``: a post the app subscribed to was published, retired, and so on."""

    type: Literal["POST_UPDATE"] = "POST_UPDATE"
    post_update: PostUpdate

    @property
    def payload(self) -> PostUpdate:
        """The same as ``post_update``."""
        return self.post_update


_TRANSACTION_KEYS = ("transaction", "payment_transaction")


class PaymentTransactionEvent(WebhookEvent):
    """``PAYMENT_TRANSACTION``: a payment changed state (no subscription needed).

    Kenar's docs put the payload under ``transaction`` in one place and under
    ``payment_transaction`` in another; either way it is available as ``transaction``, and
    ``to_dict()`` writes it back under the key it arrived with.
    """

    type: Literal["PAYMENT_TRANSACTION"] = "PAYMENT_TRANSACTION"
    transaction: Transaction = Field(validation_alias=AliasChoices(*_TRANSACTION_KEYS))
    _payload_key: str = PrivateAttr(default="transaction")

    @model_validator(mode="wrap")
    @classmethod
    def _remember_payload_key(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        event = handler(data)
        if isinstance(data, Mapping) and "transaction" not in data and "payment_transaction" in data:
            event._payload_key = "payment_transaction"
        return event

    @model_serializer(mode="wrap")
    def _write_payload_key(self, handler: SerializerFunctionWrapHandler) -> Dict[str, Any]:
        data: Dict[str, Any] = handler(self)
        if self._payload_key != "transaction" and "transaction" in data:
            data[self._payload_key] = data.pop("transaction")
        return data

    @property
    def payload_key(self) -> str:
        """The key the payload arrived under: ``transaction`` or ``payment_transaction``."""
        return self._payload_key

    @property
    def payload(self) -> Transaction:
        """The same as ``transaction``."""
        return self.transaction


class UnknownEvent(WebhookEvent):
    """An event type this version of the SDK does not know; ``raw`` is the whole body."""

    # Any key may appear, also when building one by keyword (e.g. in a test).
    _reject_unknown_keywords: ClassVar[bool] = False

    type: str
    _raw: Dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_raw(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        event = handler(data)
        if isinstance(data, Mapping):
            event._raw = dict(data)
        return event

    @property
    def raw(self) -> Dict[str, Any]:
        """The decoded body exactly as received."""
        return self._raw

    @property
    def payload(self) -> Any:
        """The value under the lowercased type (``SOMETHING_NEW`` -> ``something_new``), if any.

        Every documented type but ``PAYMENT_TRANSACTION`` names its payload that way.
        """
        return self._raw.get(self.type.lower())


#: The class of each documented event type.
EVENT_CLASSES: Mapping[str, Type[WebhookEvent]] = {
    WebhookEventType.NEW_MESSAGE.value: NewMessageEvent,
    WebhookEventType.NEW_CHATBOT_MESSAGE.value: NewChatbotMessageEvent,
    WebhookEventType.USER_ACCESS_REVOCATION.value: UserAccessRevocationEvent,
    WebhookEventType.POST_UPDATE.value: PostUpdateEvent,
    WebhookEventType.PAYMENT_TRANSACTION.value: PaymentTransactionEvent,
}

_MAX_REPORTED_ERRORS = 3


def _describe(exc: ValidationError) -> str:
    """Where and why validation failed, without echoing any of the received values."""
    errors = exc.errors()
    parts = [
        f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
        for error in errors[:_MAX_REPORTED_ERRORS]
    ]
    if len(errors) > _MAX_REPORTED_ERRORS:
        parts.append(f"and {len(errors) - _MAX_REPORTED_ERRORS} more")
    return "; ".join(parts)


def _nests_deeper_than(data: Mapping[str, Any], limit: int) -> bool:
    """Whether objects and arrays nest more than ``limit`` levels (without recursing)."""
    pending: List[Tuple[Any, int]] = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, Mapping) else value
        pending.extend((child, depth + 1) for child in children if _is_container(child))
    return False


def _is_container(value: Any) -> bool:
    # Decoded JSON holds dicts and lists only: test their exact types first, which is cheap,
    # and fall back to the abstract Mapping check (slow) for what callers built themselves.
    kind = type(value)
    if kind is dict or kind is list:
        return True
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return False
    return isinstance(value, (Mapping, list, tuple))


def event_from_dict(data: Mapping[str, Any]) -> WebhookEvent:
    """Build the typed event for an already decoded and *already verified* delivery body.

    The class is chosen by ``data["type"]``; a type this SDK does not know gives an
    :class:`UnknownEvent`. Raises :class:`WebhookPayloadError` if ``type`` is missing or
    not a string, if objects and arrays nest deeper than :data:`MAX_NESTING_DEPTH`, or if
    the body does not fit its event class.
    """
    event_type = data.get("type")
    if not isinstance(event_type, str):
        raise WebhookPayloadError("webhook body has no string 'type' field")
    if _nests_deeper_than(data, MAX_NESTING_DEPTH):
        raise WebhookPayloadError(TOO_DEEP_MESSAGE)
    event_class = EVENT_CLASSES.get(event_type, UnknownEvent)
    try:
        return event_class.model_validate(data)
    except ValidationError as exc:
        raise WebhookPayloadError(
            f"webhook body is not a valid {event_class.__name__}: {_describe(exc)}"
        ) from exc
