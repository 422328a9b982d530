"""The two Events operations: their arguments, scopes and ownership rules, as Kenar checks them.

The API key, its permission and the access token are checked before (``_auth``, from the
spec's table); the scopes each request needs are the table's, for the resource it names.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

from kenar_api_client.sandbox._auth import Caller, require_scope
from kenar_api_client.sandbox._calls import Call
from kenar_api_client.sandbox._request_values import json_object, query_params
from kenar_api_client.sandbox._rpc import Code, RpcError, quoted
from kenar_api_client.sandbox._state import SUBSCRIBABLE_EVENT_TYPES, SentEvent, Subscription

SEND_EVENT = "events_send_event"
REGISTER_SUBSCRIPTION = "events_register_event_subscription"

TARGET_TYPES = ("USER", "POST")

#: Which of the spec's scopes for a subscription apply to each event type (Kenar's Events docs).
SUBSCRIPTION_SCOPE_NAMES: Dict[str, Tuple[str, ...]] = {
    "NEW_MESSAGE_ON_POST": ("CHAT_POST_CONVERSATIONS_READ", "CHAT_SUPPLIER_ALL_CONVERSATIONS_READ"),
    "POST_UPDATE": ("USER_POSTS_GET",),
}

# protojson accepts a field's proto name and its JSON (lowerCamelCase) name alike.
_JSON_NAMES = {"eventType": "event_type", "eventResourceId": "event_resource_id"}


def require_post(caller: Caller, post_token: str) -> None:
    """403 unless the authenticated user owns the post ``post_token``."""
    if post_token not in caller.user.posts:
        raise RpcError(
            Code.PERMISSION_DENIED, f"post {quoted(post_token)} is not owned by the authenticated user"
        )


# -- send an event --------------------------------------------------------------------------


def send_event(call: Call) -> Dict[str, Any]:
    """``POST /experimental/open-platform/events/send``: check and record the event."""
    caller, state = call.caller, call.state
    require_scope(caller, SEND_EVENT, {})
    params = query_params(call.query)

    message = params.get("message")
    if message is None:
        raise RpcError(Code.INVALID_ARGUMENT, "message is required")
    if not message.strip():
        raise RpcError(Code.INVALID_ARGUMENT, "message must not be empty")
    target_type = params.get("target_type")
    if not target_type:
        raise RpcError(Code.INVALID_ARGUMENT, "target_type is required: USER or POST")
    if target_type not in TARGET_TYPES:
        raise RpcError(
            Code.INVALID_ARGUMENT, f"invalid target_type {quoted(target_type)}: must be USER or POST"
        )
    target = params.get("target_resource_id")
    if not target:
        raise RpcError(Code.INVALID_ARGUMENT, "target_resource_id is required")

    if target_type == "USER" and target != caller.user.user_id:
        raise RpcError(
            Code.PERMISSION_DENIED,
            f"target_resource_id {quoted(target)} is not the id of the authenticated user",
        )
    if target_type == "POST":
        require_post(caller, target)

    state.add_sent_event(
        SentEvent(
            message=message,
            target_type=target_type,
            target_resource_id=target,
            api_key=caller.api_key,
            user_id=caller.user.user_id,
            at=state.now(),
        )
    )
    return {}


# -- register a subscription ----------------------------------------------------------------


def register_subscription(call: Call) -> Dict[str, Any]:
    """``POST /v1/open-platform/events/subscriptions``: check and record the subscription."""
    caller, state = call.caller, call.state
    event_type, resource_id, metadata = _subscription_request(call.body)
    if event_type == "POST_UPDATE":
        purpose = "to subscribe to POST_UPDATE"
    elif resource_id:
        purpose = "to subscribe to NEW_MESSAGE_ON_POST for this post"
    else:
        purpose = "to subscribe to NEW_MESSAGE_ON_POST for all posts"
    require_scope(
        caller,
        REGISTER_SUBSCRIPTION,
        {"post_token": resource_id},
        names=SUBSCRIPTION_SCOPE_NAMES[event_type],
        purpose=purpose,
    )
    if resource_id:
        require_post(caller, resource_id)

    state.add_subscription(
        Subscription(
            event_type=event_type,
            event_resource_id=resource_id,
            metadata=metadata,
            access_token=str(caller.token),
            user_id=caller.user.user_id,
            api_key=caller.api_key,
            at=state.now(),
        )
    )
    return {}


def _subscription_request(body: bytes) -> Tuple[str, str, Dict[str, Any]]:
    """``event_type``, ``event_resource_id`` and ``metadata`` of a request body."""
    document = json_object(body, _JSON_NAMES)
    event_type = document.get("event_type")
    if event_type is None or event_type == "":
        raise RpcError(Code.INVALID_ARGUMENT, "event_type is required: NEW_MESSAGE_ON_POST or POST_UPDATE")
    if not isinstance(event_type, str) or event_type not in SUBSCRIBABLE_EVENT_TYPES:
        shown = quoted(event_type) if isinstance(event_type, str) else "of the wrong JSON type"
        raise RpcError(
            Code.INVALID_ARGUMENT,
            f"invalid event_type {shown}: must be NEW_MESSAGE_ON_POST or POST_UPDATE",
        )
    resource_id = document.get("event_resource_id")
    if resource_id is None:
        resource_id = ""
    if not isinstance(resource_id, str):
        raise RpcError(Code.INVALID_ARGUMENT, "event_resource_id must be a string")
    metadata = document.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise RpcError(Code.INVALID_ARGUMENT, "metadata must be a JSON object")
    return event_type, resource_id, metadata
