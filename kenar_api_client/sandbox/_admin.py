"""The ``/_sandbox/`` admin endpoints: identity, deliveries, webhook, state, clock, consent, faults."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Tuple

from kenar_api_client._version import __version__
from kenar_api_client.sandbox._demo import DEMO_POST_TOKEN, DEMO_USER_ID
from kenar_api_client.sandbox._errors import SandboxError
from kenar_api_client.sandbox._rpc import Code, RpcError

if TYPE_CHECKING:
    from kenar_api_client.sandbox._core import SandboxCore

_Endpoint = Callable[["SandboxCore", Mapping[str, Any]], Dict[str, Any]]


#: What ``GET /_sandbox/info`` says the server is: how a tool tells a sandbox from another local server.
SERVER_NAME = "kenar-sandbox"


def _info(sandbox: SandboxCore, request: Mapping[str, Any]) -> Dict[str, Any]:
    return {"server": SERVER_NAME, "version": __version__}


def _state(sandbox: SandboxCore, request: Mapping[str, Any]) -> Dict[str, Any]:
    return sandbox.snapshot()


def _get_webhook(sandbox: SandboxCore, request: Mapping[str, Any]) -> Dict[str, Any]:
    return {"url": sandbox.webhook_url}


def _set_webhook(sandbox: SandboxCore, request: Mapping[str, Any]) -> Dict[str, Any]:
    url = request.get("url")
    key = request.get("identification_key")
    if url is not None and not isinstance(url, str):
        raise RpcError(Code.INVALID_ARGUMENT, "url must be a string or null")
    if key is not None and not isinstance(key, str):
        raise RpcError(Code.INVALID_ARGUMENT, "identification_key must be a string")
    try:
        sandbox.set_webhook(url, key)
    except (SandboxError, ValueError) as exc:
        raise RpcError(Code.INVALID_ARGUMENT, str(exc)) from exc
    return {"url": sandbox.webhook_url}


def _trigger(sandbox: SandboxCore, request: Mapping[str, Any]) -> Dict[str, Any]:
    event_type = request.get("event_type")
    fields = request.get("fields") or {}
    metadata = request.get("metadata")
    require = request.get("require_subscription", True)
    if not isinstance(event_type, str) or not event_type:
        raise RpcError(Code.INVALID_ARGUMENT, "event_type is required (a string)")
    if not isinstance(fields, dict):
        raise RpcError(Code.INVALID_ARGUMENT, "fields must be a JSON object")
    if metadata is not None and not isinstance(metadata, dict):
        raise RpcError(Code.INVALID_ARGUMENT, "metadata must be a JSON object or null")
    if not isinstance(require, bool):
        raise RpcError(Code.INVALID_ARGUMENT, "require_subscription must be true or false")
    try:
        delivery = sandbox._trigger(event_type, fields, metadata, require)
    except SandboxError as exc:
        raise RpcError(Code.FAILED_PRECONDITION, str(exc)) from exc
    return delivery.to_dict()


def _reset(sandbox: SandboxCore, request: Mapping[str, Any]) -> Dict[str, Any]:
    sandbox.reset()
    return {}


def _clock_answer(sandbox: SandboxCore) -> Dict[str, Any]:
    clock = sandbox.clock
    return {"now": clock.now(), "offset": clock.offset, "file": clock.file}


def _get_clock(sandbox: SandboxCore, request: Mapping[str, Any]) -> Dict[str, Any]:
    return _clock_answer(sandbox)


def _set_clock(sandbox: SandboxCore, request: Mapping[str, Any]) -> Dict[str, Any]:
    given = [name for name in ("advance", "set") if name in request]
    if len(given) != 1:
        raise RpcError(
            Code.INVALID_ARGUMENT, 'send either {"advance": <seconds>} or {"set": <epoch seconds>}'
        )
    value = request[given[0]]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RpcError(Code.INVALID_ARGUMENT, f"{given[0]} must be a number of seconds")
    try:
        if given[0] == "advance":
            sandbox.clock.advance(value)
        else:
            sandbox.clock.set(value)
    except ValueError as exc:
        raise RpcError(Code.INVALID_ARGUMENT, str(exc)) from exc
    except SandboxError as exc:  # the clock file could not be written
        raise RpcError(Code.INTERNAL, str(exc)) from exc
    return _clock_answer(sandbox)


def _set_consent(sandbox: SandboxCore, request: Mapping[str, Any]) -> Dict[str, Any]:
    user_id = request.get("user_id", DEMO_USER_ID)
    posts = request.get("posts", [DEMO_POST_TOKEN])
    refuse = request.get("refuse", False)
    if not isinstance(user_id, str) or not user_id:
        raise RpcError(Code.INVALID_ARGUMENT, "user_id must be a non-empty string")
    if not isinstance(posts, list) or not all(isinstance(post, str) for post in posts):
        raise RpcError(Code.INVALID_ARGUMENT, "posts must be a list of post tokens")
    if not isinstance(refuse, bool):
        raise RpcError(Code.INVALID_ARGUMENT, "refuse must be true or false")
    sandbox.set_consent(user_id, posts, refuse=refuse)
    return {}


_FAULT_OPTIONS = (
    "times",
    "fraction",
    "seed",
    "retry_after",
    "retry_after_as_date",
    "delay",
    "takes_effect",
)


def _get_faults(sandbox: SandboxCore, request: Mapping[str, Any]) -> Dict[str, Any]:
    return sandbox.faults_snapshot()


def _add_fault(sandbox: SandboxCore, request: Mapping[str, Any]) -> Dict[str, Any]:
    unknown = sorted(set(request) - {"operation", "fault", *_FAULT_OPTIONS})
    if unknown:
        raise RpcError(Code.INVALID_ARGUMENT, f"unknown field {unknown[0]!r} in the fault request")
    options = {name: request[name] for name in _FAULT_OPTIONS if request.get(name) is not None}
    try:
        rule = sandbox.inject_fault(request.get("operation", "*"), request.get("fault"), **options)  # type: ignore[arg-type]
    except SandboxError as exc:
        raise RpcError(Code.INVALID_ARGUMENT, str(exc)) from exc
    return rule.to_dict()


def _clear_faults(sandbox: SandboxCore, request: Mapping[str, Any]) -> Dict[str, Any]:
    sandbox.clear_faults()
    return {}


_ENDPOINTS: Dict[Tuple[str, str], _Endpoint] = {
    ("GET", "/_sandbox/info"): _info,
    ("GET", "/_sandbox/state"): _state,
    ("GET", "/_sandbox/webhook"): _get_webhook,
    ("POST", "/_sandbox/webhook"): _set_webhook,
    ("POST", "/_sandbox/trigger"): _trigger,
    ("POST", "/_sandbox/reset"): _reset,
    ("GET", "/_sandbox/clock"): _get_clock,
    ("POST", "/_sandbox/clock"): _set_clock,
    ("POST", "/_sandbox/consent"): _set_consent,
    ("GET", "/_sandbox/faults"): _get_faults,
    ("POST", "/_sandbox/faults"): _add_fault,
    ("DELETE", "/_sandbox/faults"): _clear_faults,
}


def handle(sandbox: SandboxCore, method: str, path: str, body: bytes) -> Dict[str, Any]:
    """Run the admin endpoint for ``method`` and ``path``; raise ``RpcError`` on a bad call."""
    endpoint = _ENDPOINTS.get((method, path))
    if endpoint is None:
        allowed = sorted(m for m, p in _ENDPOINTS if p == path)
        if not allowed:
            raise RpcError(Code.NOT_FOUND, f"Not Found: no sandbox admin endpoint {path}")
        raise RpcError(
            Code.UNIMPLEMENTED,
            f"Method Not Allowed: {path} accepts {' or '.join(allowed)}",
            {"Allow": ", ".join(allowed)},
        )
    return endpoint(sandbox, _request_object(body))


def _request_object(body: bytes) -> Mapping[str, Any]:
    if not body.strip():
        return {}
    try:
        document = json.loads(body.decode("utf-8"))
    except ValueError as exc:
        raise RpcError(Code.INVALID_ARGUMENT, "the request body is not valid JSON") from exc
    if not isinstance(document, dict):
        raise RpcError(Code.INVALID_ARGUMENT, "the request body must be a JSON object")
    return document
