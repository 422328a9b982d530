"""Realistic webhook delivery bodies for each event type, with caller-given fields merged in."""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any, Callable, Dict, Mapping, Optional

#: The event types Kenar's docs describe, in the order the docs list them.
DOCUMENTED_EVENT_TYPES = (
    "NEW_MESSAGE",
    "NEW_CHATBOT_MESSAGE",
    "USER_ACCESS_REVOCATION",
    "POST_UPDATE",
    "PAYMENT_TRANSACTION",
)

#: The body key each documented type puts its payload under.
PAYLOAD_KEYS: Dict[str, str] = {
    "NEW_MESSAGE": "new_message",
    "NEW_CHATBOT_MESSAGE": "new_chatbot_message",
    "USER_ACCESS_REVOCATION": "user_access_revocation",
    "POST_UPDATE": "post_update",
    # Kenar's docs use both "transaction" and "payment_transaction"; the example body uses
    # the latter, which also follows the naming of every other type.
    "PAYMENT_TRANSACTION": "payment_transaction",
}

_SAMPLE_LINK = "https://s100.divarcdn.com/sandbox"

# What each kind of chat message carries besides the common fields.
_MESSAGE_CONTENT: Dict[str, Dict[str, Any]] = {
    "TEXT": {"text": "سلام، این آگهی هنوز موجوده؟"},
    "IMAGE": {
        "image_data": {
            "link": f"{_SAMPLE_LINK}/photo.jpg",
            "size_bytes": 183211,
            "height_px": 1280,
            "width_px": 960,
        }
    },
    "FILE": {"file_data": {"link": f"{_SAMPLE_LINK}/plan.pdf", "name": "plan.pdf", "size_bytes": 52031}},
    "VOICE": {"voice_data": {"link": f"{_SAMPLE_LINK}/voice.ogg", "size_bytes": 30412}},
    "LOCATION": {"location_data": {"latitude": 35.7219, "longitude": 51.3347}},
    "VIDEO": {
        "video_data": {
            "link": f"{_SAMPLE_LINK}/video.mp4",
            "thumbnail_link": f"{_SAMPLE_LINK}/video.jpg",
            "size_bytes": 2048000,
        }
    },
    "CONTACT": {"contact_data": {"name": "Sara", "phone": "+989120000000"}},
}


def _now_micros() -> int:
    return time.time_ns() // 1000


def _chat_message(conversation: Dict[str, Any], message_type: Any) -> Dict[str, Any]:
    content = _MESSAGE_CONTENT.get(str(message_type), {})
    return {
        "id": str(uuid.uuid4()),
        "conversation": conversation,
        "sender": {"side": "BUYER", "type": "HUMAN"},
        "type": message_type,
        "sent_at": _now_micros(),
        **copy.deepcopy(content),
    }


def _new_message(fields: Mapping[str, Any], post_token: str, user_id: str) -> Dict[str, Any]:
    conversation = {"id": str(uuid.uuid4()), "type": "POST", "post_token": post_token}
    return _chat_message(conversation, fields.get("type", "TEXT"))


def _new_chatbot_message(fields: Mapping[str, Any], post_token: str, user_id: str) -> Dict[str, Any]:
    message = _chat_message({"id": str(uuid.uuid4()), "type": "BOT"}, fields.get("type", "TEXT"))
    if message["type"] == "TEXT":
        message["text"] = "قیمت؟"
    return message


def _user_access_revocation(fields: Mapping[str, Any], post_token: str, user_id: str) -> Dict[str, Any]:
    return {"user_id": user_id}


def _post_update(fields: Mapping[str, Any], post_token: str, user_id: str) -> Dict[str, Any]:
    update_type = fields.get("type", "PUBLISH")
    if update_type in ("RETIRE", "ARCHIVE"):
        return {"type": update_type, "post": {"token": post_token}}
    post = {
        "token": post_token,
        "category": "apartment-sell",
        "city": "tehran",
        "district": "vanak",
        "is_phone_hidden": False,
        "supplier_chat_assistant_enabled": True,
        "chat_enabled": True,
        "first_published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "data": {"size": 85, "rooms": 2},
    }
    return {"type": update_type, "post": post}


def _payment_transaction(fields: Mapping[str, Any], post_token: str, user_id: str) -> Dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "cost_rials": 250000,
        "extra_details": f"reorder {post_token}",
        "state": "TRANSACTION_STATE_COMPLETED",
        "type": "TRANSACTION_TYPE_REORDER",
    }


_BUILDERS: Dict[str, Callable[[Mapping[str, Any], str, str], Dict[str, Any]]] = {
    "NEW_MESSAGE": _new_message,
    "NEW_CHATBOT_MESSAGE": _new_chatbot_message,
    "USER_ACCESS_REVOCATION": _user_access_revocation,
    "POST_UPDATE": _post_update,
    "PAYMENT_TRANSACTION": _payment_transaction,
}


def payload_key(event_type: str) -> str:
    """The body key of the payload: documented, or the lowercased type for a new one."""
    return PAYLOAD_KEYS.get(event_type, event_type.lower())


def merge(base: Dict[str, Any], extra: Mapping[str, Any]) -> Dict[str, Any]:
    """``base`` updated by ``extra``; nested objects are merged, anything else replaced."""
    merged = dict(base)
    for key, value in extra.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            merged[key] = merge(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def build_body(
    event_type: str,
    fields: Mapping[str, Any],
    *,
    metadata: Mapping[str, Any],
    post_token: str,
    user_id: str,
) -> Dict[str, Any]:
    """The delivery body for ``event_type``: a realistic payload with ``fields`` merged in.

    ``post_token`` and ``user_id`` fill in the post and user the default payload is about.
    A type the docs do not describe gets ``fields`` alone as its payload.
    """
    builder = _BUILDERS.get(event_type)
    payload = builder(fields, post_token, user_id) if builder is not None else {}
    return {
        "type": event_type,
        "metadata": copy.deepcopy(dict(metadata)),
        payload_key(event_type): merge(payload, fields),
    }


def post_token_of(body: Mapping[str, Any]) -> Optional[str]:
    """The post a NEW_MESSAGE or POST_UPDATE body is about, if it names one."""
    payload = body.get(payload_key(str(body.get("type"))))
    if not isinstance(payload, Mapping):
        return None
    holder = payload.get("conversation") if body.get("type") == "NEW_MESSAGE" else payload.get("post")
    if not isinstance(holder, Mapping):
        return None
    token = holder.get("post_token" if body.get("type") == "NEW_MESSAGE" else "token")
    return token if isinstance(token, str) else None
