"""The chat operations, as Kenar's docs describe them: answer known conversations, record what is sent.

* ``chat_api_conversation_send_message``: a message (text or an uploaded media token, not
  both; button grids for either side) into a conversation about one of the user's posts.
* ``chat_api_chat_bot_send_message`` (and its 2 to 5): the app's chatbot writes to a chatbot
  conversation, or to the authenticated user by their id (starting a conversation if needed).
* ``chat_api_get_conversation``: a conversation and its text messages, oldest first.
* ``chat_api_generate_upload_token``: a token a message can then carry as ``media_token``.

A conversation id the sandbox never handed out is refused with 404: on Divar the ids come
from the ``NEW_MESSAGE`` / ``NEW_CHATBOT_MESSAGE`` deliveries.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict, Optional, Tuple

from kenar_api_client.sandbox._auth import Caller, require_scope
from kenar_api_client.sandbox._calls import Call
from kenar_api_client.sandbox._chat_book import BOT, POST, ChatMessage, Conversation, SentMessage
from kenar_api_client.sandbox._generic import check_body, check_value, sample_answer
from kenar_api_client.sandbox._request_values import json_object
from kenar_api_client.sandbox._rpc import Code, RpcError, quoted

_BUTTON_GRID = ["ref", "chatapiChatButtonGrid"]
_KIND_NAMES = {POST: "post conversation", BOT: "chatbot conversation", None: "conversation"}
_ORIGINS = {
    POST: "a NEW_MESSAGE delivery",
    BOT: "a NEW_CHATBOT_MESSAGE delivery",
    None: "a NEW_MESSAGE or NEW_CHATBOT_MESSAGE delivery",
}
# protojson accepts a field's proto name and its JSON (lowerCamelCase) name alike.
_JSON_NAMES = {
    "textMessage": "text_message",
    "mediaToken": "media_token",
    "senderButtons": "sender_buttons",
    "receiverButtons": "receiver_buttons",
    "userId": "user_id",
}


def conversation_send_message(call: Call) -> Dict[str, Any]:
    """``POST /v2/open-platform/conversations/{conversation_id}/messages``."""
    text, media_token, buttons = _message(call, ("message",), ("sender_buttons", "receiver_buttons"))
    conversation = _known_conversation(call, POST)
    require_scope(
        call.caller,
        call.operation.name,
        {"post_token": conversation.post_token, "conversation_id": conversation.id},
    )
    _require_own(call.caller, conversation)
    _record(call, conversation, text, media_token, buttons, sender_type="HUMAN")
    return sample_answer(call.operation)


def chat_bot_send_message(call: Call) -> Dict[str, Any]:
    """``POST .../chat/bot/conversations/{conversation_id}/messages`` (to a chatbot conversation)
    or ``POST .../chat/bot/users/{user_id}/messages`` (to the authenticated user)."""
    text, media_token, buttons = _message(call, ("text_message", "user_id"), ("buttons",))
    require_scope(call.caller, call.operation.name, {})
    if "conversation_id" in call.path_values:
        conversation = _known_conversation(call, BOT)
        _require_own(call.caller, conversation)
    else:
        user_id = call.path_values["user_id"]
        if user_id != call.caller.user.user_id:
            raise RpcError(
                Code.PERMISSION_DENIED, f"user_id {quoted(user_id)} is not the id of the authenticated user"
            )
        existing = call.state.chat.bot_conversation(user_id)
        conversation = existing or call.state.chat.add_conversation(
            Conversation(str(uuid.uuid4()), BOT, "", user_id, call.state.now())
        )
    _record(call, conversation, text, media_token, buttons, sender_type="BOT")
    return {"conversation_id": conversation.id}


def get_conversation(call: Call) -> Dict[str, Any]:
    """``GET /v1/open-platform/chat/conversations/{conversation_id}``: text messages only, oldest first."""
    conversation = _known_conversation(call, None)
    require_scope(call.caller, call.operation.name, {"conversation_id": conversation.id})
    _require_own(call.caller, conversation)
    messages = [
        {
            "id": message.id,
            "conversation": conversation.to_api(),
            "sender": {"side": message.side, "type": message.sender_type},
            "sent_at": message.at.isoformat().replace("+00:00", "Z"),
            "text": message.text,
            "type": message.type,
        }
        for message in call.state.chat.messages(conversation.id)
        if message.type == "TEXT"
    ]
    return {"conversation": conversation.to_api(), "messages": messages}


def generate_upload_token(call: Call) -> Dict[str, Any]:
    """``POST /experimental/open-platform/chat/upload``: a token for one media upload."""
    check_body(call.operation, call.body)
    return {"token": call.state.chat.issue_upload_token()}


def _message(
    call: Call, string_fields: Tuple[str, ...], button_fields: Tuple[str, ...]
) -> Tuple[str, str, Dict[str, Any]]:
    """The text (the first of ``string_fields``), media token and button grids of a send's
    body, checked."""
    document = json_object(call.body, _JSON_NAMES)
    for name in (*string_fields, "media_token"):
        check_value(document.get(name), "str", f"body.{name}")
    text_field = string_fields[0]
    text = str(document.get(text_field) or "")
    media_token = str(document.get("media_token") or "")
    if text and media_token:
        raise RpcError(
            Code.INVALID_ARGUMENT, f"send either {text_field} or media_token, not both (Kenar's rule)"
        )
    if not text.strip() and not media_token:
        raise RpcError(Code.INVALID_ARGUMENT, f"{text_field} is required (or a media_token)")
    if media_token and not call.state.chat.issued_upload_token(media_token):
        raise RpcError(
            Code.INVALID_ARGUMENT,
            f"media_token {quoted(media_token)} is not an upload token of this sandbox: "
            "get one from chat_api_generate_upload_token",
        )
    buttons: Dict[str, Any] = {}
    for name in button_fields:
        grid = document.get(name)
        if grid is not None:
            check_value(grid, _BUTTON_GRID, f"body.{name}")
            buttons[name] = grid
    return text, media_token, buttons


def _known_conversation(call: Call, kind: Optional[str]) -> Conversation:
    """The conversation of the path's ``conversation_id`` (of type ``kind``, if given); else 404."""
    conversation_id = call.path_values["conversation_id"]
    conversation = call.state.chat.conversation(conversation_id)
    if conversation is None or (kind is not None and conversation.type != kind):
        raise RpcError(
            Code.NOT_FOUND,
            f"{_KIND_NAMES[kind]} {quoted(conversation_id)} is not known: its id comes from "
            f"{_ORIGINS[kind]} (in a sandbox: trigger one, or call add_conversation())",
        )
    return conversation


def _require_own(caller: Caller, conversation: Conversation) -> None:
    if conversation.user_id != caller.user.user_id:
        raise RpcError(
            Code.PERMISSION_DENIED,
            f"conversation {quoted(conversation.id)} is not one of the authenticated user's conversations",
        )


def _record(
    call: Call,
    conversation: Conversation,
    text: str,
    media_token: str,
    buttons: Dict[str, Any],
    *,
    sender_type: str,
) -> None:
    state, now = call.state, call.state.now()
    if text:
        state.chat.add_message(
            ChatMessage(str(uuid.uuid4()), conversation.id, "SELLER", sender_type, "TEXT", text, now)
        )
    state.chat.add_sent(
        SentMessage(
            operation=call.operation.name,
            conversation_id=conversation.id,
            text=text,
            media_token=media_token,
            buttons=buttons,
            user_id=call.caller.user.user_id,
            api_key=call.caller.api_key,
            at=now,
        )
    )
