"""The two Events operations: authentication, permissions, scopes and arguments, as Kenar checks them."""

from __future__ import annotations

import json
from email.message import Message
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import parse_qs

from kenar_api_client.sandbox._rpc import Code, RpcError, quoted
from kenar_api_client.sandbox._state import SUBSCRIBABLE_EVENT_TYPES, SandboxState, SentEvent, Subscription
from kenar_api_client.sandbox._tokens import AccessToken

SEND_EVENT_PATH = "/experimental/open-platform/events/send"
SUBSCRIPTIONS_PATH = "/v1/open-platform/events/subscriptions"

PERMISSION_SEND = "EVENTS_SEND"
PERMISSION_SUBSCRIBE = "EVENTS_REGISTER_SUBSCRIPTION"
SCOPE_SEND_EVENT = "SEND_EVENT"
SCOPE_POSTS_GET = "USER_POSTS_GET"
SCOPE_ALL_CONVERSATIONS = "CHAT_SUPPLIER_ALL_CONVERSATIONS_READ"
SCOPE_POST_CONVERSATIONS = "CHAT_POST_CONVERSATIONS_READ"

TARGET_TYPES = ("USER", "POST")

# protojson accepts a field's proto name and its JSON (lowerCamelCase) name alike.
_JSON_NAMES = {"eventType": "event_type", "eventResourceId": "event_resource_id"}


class Caller:
    """Who made an authenticated call: their API key and what their access token stands for."""

    __slots__ = ("api_key", "grant", "token")

    def __init__(self, api_key: str, token: str, grant: AccessToken) -> None:
        self.api_key = api_key
        self.token = token
        self.grant = grant


def authenticate(state: SandboxState, headers: Message, permission: str) -> Caller:
    """Check the API key and its ``permission``, then the bearer token; raise ``RpcError``."""
    api_key = _single_header(headers, "X-API-Key", "API key")
    if api_key is None:
        raise RpcError(Code.UNAUTHENTICATED, "missing API key: send it in the X-API-Key header")
    permissions = state.permissions(api_key)
    if permissions is None:
        raise RpcError(Code.UNAUTHENTICATED, "the API key is not valid")
    if permission not in permissions:
        raise RpcError(Code.PERMISSION_DENIED, f"the API key lacks permission {permission}")

    token = _bearer_token(headers)
    status = state.tokens.status(token)
    if status.grant is None:
        raise RpcError(Code.UNAUTHENTICATED, status.problem or "the access token is not valid")
    return Caller(api_key, token, status.grant)


def _single_header(headers: Message, name: str, what: str) -> Optional[str]:
    values = headers.get_all(name) or []
    if len(values) > 1:
        raise RpcError(Code.UNAUTHENTICATED, f"more than one {name} header: send the {what} once")
    value = values[0].strip() if values else ""
    return value or None


def _bearer_token(headers: Message) -> str:
    authorization = _single_header(headers, "Authorization", "access token")
    if authorization is None:
        raise RpcError(
            Code.UNAUTHENTICATED,
            "missing access token: send it in the Authorization header as 'Bearer <access token>'",
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise RpcError(Code.UNAUTHENTICATED, "the Authorization header must be 'Bearer <access token>'")
    return token.strip()


def _require_scope(caller: Caller, *accepted: str, purpose: str = "") -> None:
    if caller.grant.scopes.isdisjoint(accepted):
        needed = " or ".join(accepted)
        suffix = f" (needed {purpose})" if purpose else ""
        raise RpcError(Code.PERMISSION_DENIED, f"the access token lacks scope {needed}{suffix}")


def _require_post(caller: Caller, post_token: str) -> None:
    if post_token not in caller.grant.posts:
        raise RpcError(
            Code.PERMISSION_DENIED, f"post {quoted(post_token)} is not owned by the authenticated user"
        )


# -- send an event --------------------------------------------------------------------------


def send_event(state: SandboxState, headers: Message, query: str) -> SentEvent:
    """``POST /experimental/open-platform/events/send``: check, record and return the event."""
    caller = authenticate(state, headers, PERMISSION_SEND)
    _require_scope(caller, SCOPE_SEND_EVENT)
    params = _query_params(query)

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

    if target_type == "USER" and target != caller.grant.user_id:
        raise RpcError(
            Code.PERMISSION_DENIED,
            f"target_resource_id {quoted(target)} is not the id of the authenticated user",
        )
    if target_type == "POST":
        _require_post(caller, target)

    event = SentEvent(
        message=message,
        target_type=target_type,
        target_resource_id=target,
        api_key=caller.api_key,
        user_id=caller.grant.user_id,
        at=state.now(),
    )
    state.add_sent_event(event)
    return event


def _query_params(query: str) -> Dict[str, str]:
    """The query's parameters; a repeated one is an error, as for any non-repeated proto field."""
    parsed: Dict[str, List[str]] = parse_qs(query, keep_blank_values=True)
    params: Dict[str, str] = {}
    for name, values in parsed.items():
        if len(values) > 1:
            raise RpcError(Code.INVALID_ARGUMENT, f"query parameter {name} is given more than once")
        params[name] = values[0]
    return params


# -- register a subscription ----------------------------------------------------------------


def register_subscription(state: SandboxState, headers: Message, body: bytes) -> Subscription:
    """``POST /v1/open-platform/events/subscriptions``: check, record and return it."""
    caller = authenticate(state, headers, PERMISSION_SUBSCRIBE)
    event_type, resource_id, metadata = _subscription_request(body)

    if event_type == "POST_UPDATE":
        _require_scope(caller, SCOPE_POSTS_GET, purpose="to subscribe to POST_UPDATE")
    elif resource_id:
        _require_scope(
            caller,
            f"{SCOPE_POST_CONVERSATIONS}.{resource_id}",
            SCOPE_ALL_CONVERSATIONS,
            purpose="to subscribe to NEW_MESSAGE_ON_POST for this post",
        )
    else:
        _require_scope(
            caller, SCOPE_ALL_CONVERSATIONS, purpose="to subscribe to NEW_MESSAGE_ON_POST for all posts"
        )
    if resource_id:
        _require_post(caller, resource_id)

    subscription = Subscription(
        event_type=event_type,
        event_resource_id=resource_id,
        metadata=metadata,
        access_token=caller.token,
        user_id=caller.grant.user_id,
        api_key=caller.api_key,
        at=state.now(),
    )
    state.add_subscription(subscription)
    return subscription


def _subscription_request(body: bytes) -> Tuple[str, str, Dict[str, Any]]:
    """``event_type``, ``event_resource_id`` and ``metadata`` of a request body."""
    document = _json_object(body)
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


def _json_object(body: bytes) -> Mapping[str, Any]:
    """The body as a JSON object with proto field names; an empty body is an empty request."""
    if not body.strip():
        return {}
    try:
        document = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise RpcError(Code.INVALID_ARGUMENT, "the request body is not valid JSON") from exc
    if not isinstance(document, dict):
        raise RpcError(Code.INVALID_ARGUMENT, "the request body must be a JSON object")
    # Unknown fields are ignored, as grpc-gateway discards them.
    return {_JSON_NAMES.get(str(key), str(key)): value for key, value in document.items()}
