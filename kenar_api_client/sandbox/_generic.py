"""Every other operation of the spec, stripe-mock style: validate the request, answer a sample body.

Requests are checked as the spec describes them: the API key is present, an access token is
sent where the spec's security names OAuth (and, if the sandbox issued it, holds one of the
operation's scopes), required parameters are there, values have their types and enum values,
the body matches its schema. The answer is a deterministic, schema-valid body built from the
spec; errors are ``googlerpcStatus`` bodies, as from Kenar.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
from email.message import Message
from typing import Any, Dict, List, Mapping, Pattern, Tuple
from urllib.parse import parse_qs, unquote

from kenar_api_client.sandbox._api import _bearer_token, _json_object, _single_header
from kenar_api_client.sandbox._rpc import Code, RpcError, quoted
from kenar_api_client.sandbox._state import SandboxState

SAMPLE_DEPTH = 3
_INT = re.compile(r"-?\d+")


class SpecOperation:
    """One row of the generated table, with its path compiled to a pattern."""

    def __init__(self, row: List[Any]) -> None:
        self.method, self.path, self.name, self.params, self.body, self.response, self.scopes = row
        names = re.findall(r"{(\w+)}", self.path)
        pattern = re.escape(self.path)
        for name in names:
            pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>[^/]+)")
        self.pattern: Pattern[str] = re.compile(pattern + "$")


@functools.lru_cache(maxsize=1)
def _table() -> Tuple[List[SpecOperation], Dict[str, Any]]:
    from kenar_api_client.sandbox._spec_operations import OPERATIONS, SCHEMAS

    return [SpecOperation(row) for row in OPERATIONS], SCHEMAS


def answer(state: SandboxState, method: str, path: str, query: str, headers: Message, body: bytes) -> bytes:
    """The JSON answer of a spec operation; raises ``RpcError`` for an invalid request."""
    operation, path_values = _match(method, path)
    query_values = _query(operation, query)
    _authenticate(state, operation, headers, {**query_values, **path_values})
    if operation.body == "{}":
        _json_object(body)
    elif operation.body:
        _check_value(_json_object(body), ["ref", operation.body], "body")
    schemas = _table()[1]
    document = sample(["ref", operation.response], schemas) if operation.response else {}
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


def _match(method: str, path: str) -> Tuple[SpecOperation, Dict[str, str]]:
    allowed = []
    for operation in _table()[0]:
        found = operation.pattern.match(path)
        if found is None:
            continue
        if operation.method == method:
            return operation, {name: unquote(value) for name, value in found.groupdict().items()}
        allowed.append(operation.method)
    if allowed:
        methods = ", ".join(sorted(set(allowed)))
        raise RpcError(
            Code.UNIMPLEMENTED, f"Method Not Allowed: {path} accepts {methods}", {"Allow": methods}
        )
    raise RpcError(Code.NOT_FOUND, f"Not Found: {quoted(path, 80)} is not a Kenar API path")


def _query(operation: SpecOperation, query: str) -> Dict[str, str]:
    given: Dict[str, List[str]] = parse_qs(query, keep_blank_values=True)
    values: Dict[str, str] = {}
    for name, location, kind, required in operation.params:
        if location != "query":
            continue
        items = given.get(name, [])
        if not items:
            if required:
                raise RpcError(Code.INVALID_ARGUMENT, f"query parameter {name} is required")
            continue
        many = isinstance(kind, list) and kind[0] == "list"
        if len(items) > 1 and not many:
            raise RpcError(Code.INVALID_ARGUMENT, f"query parameter {name} is given more than once")
        for item in items:
            _check_query_value(item, kind[1] if many else kind, name)
        values[name] = items[0]
    return values


def _check_query_value(value: str, kind: Any, name: str) -> None:
    if kind in ("int", "int64") and not _INT.fullmatch(value):
        raise RpcError(Code.INVALID_ARGUMENT, f"query parameter {name}: {quoted(value)} is not an integer")
    if isinstance(kind, list) and kind[0] == "ref":
        _check_value(value, kind, name)


def _authenticate(
    state: SandboxState, operation: SpecOperation, headers: Message, values: Mapping[str, str]
) -> None:
    if _single_header(headers, "X-API-Key", "API key") is None:
        raise RpcError(Code.UNAUTHENTICATED, "missing API key: send it in the X-API-Key header")
    if not operation.scopes:
        return
    status = state.tokens.status(_bearer_token(headers))
    if status.grant is None:
        if status.revoked or status.valid_until is not None:
            raise RpcError(Code.UNAUTHENTICATED, status.problem or "the access token is not valid")
        return  # a token the sandbox did not issue: its scopes are unknown here
    if not any(_scope_granted(scope, status.grant.scopes, values) for scope in operation.scopes):
        needed = " or ".join(operation.scopes)
        raise RpcError(Code.PERMISSION_DENIED, f"the access token lacks scope {needed}")


def _scope_granted(scope: str, granted: Any, values: Mapping[str, str]) -> bool:
    """``BASE`` needs ``BASE``; ``BASE.resource`` needs ``BASE.<its id>`` (any id if none was sent)."""
    base, _, resource = scope.partition(".")
    if not resource:
        return scope in granted
    if resource in values:
        return f"{base}.{values[resource]}" in granted
    return any(str(item).startswith(base + ".") for item in granted)


# -- schema checks --------------------------------------------------------------------------

_SCALARS: Dict[str, Any] = {
    "str": str,
    "bool": bool,
    "float": (int, float),
    "datetime": str,
    "any_dict": dict,
}


def _check_value(value: Any, kind: Any, where: str) -> None:
    """Raise INVALID_ARGUMENT naming ``where`` if ``value`` does not fit ``kind``."""
    if value is None:
        return
    if kind in ("int", "int64"):
        ok = (type(value) is int) or (isinstance(value, str) and bool(_INT.fullmatch(value)))
        if not ok:
            raise RpcError(Code.INVALID_ARGUMENT, f"{where}: expected an integer")
        return
    if isinstance(kind, str):
        if not isinstance(value, _SCALARS[kind]) or (kind == "float" and isinstance(value, bool)):
            raise RpcError(Code.INVALID_ARGUMENT, f"{where}: expected a {_type_word(kind)}")
        return
    container, inner = kind
    if container == "list":
        if not isinstance(value, list):
            raise RpcError(Code.INVALID_ARGUMENT, f"{where}: expected a JSON array")
        for index, item in enumerate(value):
            _check_value(item, inner, f"{where}[{index}]")
    elif container == "dict":
        if not isinstance(value, dict):
            raise RpcError(Code.INVALID_ARGUMENT, f"{where}: expected a JSON object")
        for key, item in value.items():
            _check_value(item, inner, f"{where}.{key}")
    else:
        _check_schema(value, _table()[1][inner], where)


def _check_schema(value: Any, schema: List[Any], where: str) -> None:
    if schema[0] == "enum":
        values = enum_values(schema[1])
        if value not in values:
            raise RpcError(
                Code.INVALID_ARGUMENT,
                f"{where}: invalid value {quoted(str(value))}: must be one of {', '.join(values)}",
            )
        return
    if not isinstance(value, dict):
        raise RpcError(Code.INVALID_ARGUMENT, f"{where}: expected a JSON object")
    for name, (kind, required) in schema[1].items():
        if required and value.get(name) in (None, ""):
            raise RpcError(Code.INVALID_ARGUMENT, f"{where}.{name} is required")
        _check_value(value.get(name), kind, f"{where}.{name}")
    # Unknown fields are ignored, as grpc-gateway discards them.


@functools.cache
def enum_values(reference: str) -> Tuple[str, ...]:
    """The values of the generated enum ``module.ClassName`` (its module imports nothing heavy)."""
    module, _, class_name = reference.rpartition(".")
    enum = getattr(importlib.import_module(f"kenar_api_client.models.{module}"), class_name)
    return tuple(member.value for member in enum)


def _type_word(kind: str) -> str:
    return {"str": "string", "bool": "boolean", "float": "number", "datetime": "date-time string"}.get(
        kind, "JSON object"
    )


# -- answers --------------------------------------------------------------------------------


def sample(kind: Any, schemas: Mapping[str, Any], name: str = "", depth: int = 0) -> Any:
    """A deterministic value of ``kind``: every field filled, nesting cut at ``SAMPLE_DEPTH``."""
    if isinstance(kind, str):
        return _SAMPLE_SCALARS[kind](name)
    container, inner = kind
    if container == "list":
        return [sample(inner, schemas, name, depth + 1)] if depth < SAMPLE_DEPTH else []
    if container == "dict":
        return {"key": sample(inner, schemas, name, depth + 1)}
    schema = schemas[inner]
    if schema[0] == "enum":
        return enum_values(schema[1])[0]
    if depth >= SAMPLE_DEPTH:
        return {}
    return {
        field: sample(field_kind, schemas, field, depth + 1) for field, (field_kind, _) in schema[1].items()
    }


_SAMPLE_SCALARS: Dict[str, Any] = {
    "str": lambda name: f"sandbox-{name}" if name else "sandbox",
    "int": lambda name: 1,
    "int64": lambda name: "1",  # protobuf's JSON writes int64 as a string
    "float": lambda name: 1.5,
    "bool": lambda name: True,
    "datetime": lambda name: "2025-01-01T00:00:00Z",
    "any_dict": lambda name: {},
}
