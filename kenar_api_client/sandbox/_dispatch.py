"""Answering an API call: match it to the spec's operation, authenticate it, run its handler.

The operations Kenar's behaviour is modelled for have a handler of their own (the Events
operations, chat, the user endpoints); every other operation gets the spec-driven sample
answer of ``_generic``.
"""

from __future__ import annotations

import json
from email.message import Message
from typing import Dict

from kenar_api_client.sandbox import _api, _chat, _generic, _users
from kenar_api_client.sandbox._auth import authenticate
from kenar_api_client.sandbox._calls import Call, Handler
from kenar_api_client.sandbox._spec import match
from kenar_api_client.sandbox._state import SandboxState

HANDLERS: Dict[str, Handler] = {
    _api.SEND_EVENT: _api.send_event,
    _api.REGISTER_SUBSCRIPTION: _api.register_subscription,
    "chat_api_conversation_send_message": _chat.conversation_send_message,
    **{
        name: _chat.chat_bot_send_message
        for name in (
            "chat_api_chat_bot_send_message",
            "chat_api_chat_bot_send_message2",
            "chat_api_chat_bot_send_message3",
            "chat_api_chat_bot_send_message4",
            "chat_api_chat_bot_send_message5",
        )
    },
    "chat_api_get_conversation": _chat.get_conversation,
    "chat_api_generate_upload_token": _chat.generate_upload_token,
    "finder_get_user": _users.get_user,
    "finder_get_user2": _users.get_user,
}


def answer(state: SandboxState, method: str, path: str, query: str, headers: Message, body: bytes) -> bytes:
    """The JSON answer of an API call; raises ``RpcError`` for a call Kenar would refuse.

    The checks run in this order: the path and method, the API key and its permissions, the
    access token, then what the operation's handler checks (arguments, scopes, ownership).
    """
    operation, path_values = match(method, path)
    caller = authenticate(state, headers, operation.name)
    call = Call(state, operation, caller, path_values, query, body)
    document = HANDLERS.get(operation.name, _generic.answer)(call)
    return json.dumps(document, ensure_ascii=False).encode("utf-8")
