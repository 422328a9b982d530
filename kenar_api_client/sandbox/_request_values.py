"""Reading a request's query string and JSON body as grpc-gateway does, with its error answers."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import parse_qs

from kenar_api_client.sandbox._rpc import Code, RpcError


def query_params(query: str) -> Dict[str, str]:
    """The query's parameters; a repeated one is an error, as for any non-repeated proto field."""
    parsed: Dict[str, List[str]] = parse_qs(query, keep_blank_values=True)
    params: Dict[str, str] = {}
    for name, values in parsed.items():
        if len(values) > 1:
            raise RpcError(Code.INVALID_ARGUMENT, f"query parameter {name} is given more than once")
        params[name] = values[0]
    return params


def json_object(body: bytes, json_names: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
    """The body as a JSON object; an empty body is an empty request.

    ``json_names`` maps a field's JSON (lowerCamelCase) name to its proto name: protojson
    accepts both, and the answer keys are the proto names.
    """
    if not body.strip():
        return {}
    try:
        document = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise RpcError(Code.INVALID_ARGUMENT, "the request body is not valid JSON") from exc
    if not isinstance(document, dict):
        raise RpcError(Code.INVALID_ARGUMENT, "the request body must be a JSON object")
    # Unknown fields are ignored, as grpc-gateway discards them.
    names = json_names or {}
    return {names.get(str(key), str(key)): value for key, value in document.items()}
