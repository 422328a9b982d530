"""Every operation without a handler of its own, stripe-mock style: check the request, answer a sample.

Requests are checked as the spec describes them (the API key, its permissions, the access
token and its scopes are checked before, in ``_auth``): required parameters are there,
values have their types and enum values, the body matches its schema. The answer is a
deterministic, schema-valid body built from the spec; errors are ``googlerpcStatus``
bodies, as from Kenar.
"""

from __future__ import annotations

import functools
import importlib
import re
from typing import Any, Dict, List, Mapping, Tuple
from urllib.parse import parse_qs

from kenar_api_client.sandbox._auth import require_scope, resource_names
from kenar_api_client.sandbox._calls import Call
from kenar_api_client.sandbox._request_values import json_object
from kenar_api_client.sandbox._rpc import Code, RpcError, quoted
from kenar_api_client.sandbox._spec import SpecOperation, schemas

SAMPLE_DEPTH = 3
_INT = re.compile(r"-?\d+")


def answer(call: Call) -> Dict[str, Any]:
    """The sample answer of ``call``'s operation; raises ``RpcError`` for an invalid request."""
    operation = call.operation
    query_values = check_query(operation, call.query)
    check_body(operation, call.body)
    if call.caller.grant is not None:
        require_scope(call.caller, operation.name, resource_ids(operation, call.path_values, query_values))
    return sample_answer(operation)


def check_body(operation: SpecOperation, body: bytes) -> Dict[str, Any]:
    """The request body, checked against the operation's body schema; returned as parsed."""
    if operation.body is None:
        return {}
    document = json_object(body)
    if operation.body != "{}":
        check_value(document, ["ref", operation.body], "body")
    return document


def sample_answer(operation: SpecOperation) -> Dict[str, Any]:
    """The deterministic, schema-valid answer of ``operation`` (``{}`` when it has no schema)."""
    if not operation.response:
        return {}
    document: Dict[str, Any] = sample(["ref", operation.response], schemas())
    return document


def resource_ids(
    operation: SpecOperation, path_values: Mapping[str, str], query_values: Mapping[str, str]
) -> Dict[str, str]:
    """The ids the operation's resource scopes are bound to: its path and query values by
    name, and, for a resource no parameter is named after, the path's one parameter
    (``POST_ADDON_CREATE.post_token`` on ``/v2/open-platform/addons/post/{token}``)."""
    ids = {**query_values, **path_values}
    if len(operation.path_params) == 1:
        for resource in resource_names(operation.name):
            ids.setdefault(resource, path_values[operation.path_params[0]])
    return ids


def check_query(operation: SpecOperation, query: str) -> Dict[str, str]:
    """The query's values of the operation's parameters (the first of a list), checked."""
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
        check_value(value, kind, name)


# -- schema checks --------------------------------------------------------------------------

_SCALARS: Dict[str, Any] = {
    "str": str,
    "bool": bool,
    "float": (int, float),
    "datetime": str,
    "any_dict": dict,
}


def check_value(value: Any, kind: Any, where: str) -> None:
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
            check_value(item, inner, f"{where}[{index}]")
    elif container == "dict":
        if not isinstance(value, dict):
            raise RpcError(Code.INVALID_ARGUMENT, f"{where}: expected a JSON object")
        for key, item in value.items():
            check_value(item, inner, f"{where}.{key}")
    else:
        _check_schema(value, schemas()[inner], where)


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
        check_value(value.get(name), kind, f"{where}.{name}")
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
