"""Writing a call's values into a request: path segments, the query string, the JSON body. No I/O."""

from __future__ import annotations

import datetime
import functools
import json
from enum import Enum
from typing import Any, Iterable, Optional, Tuple, Union
from urllib.parse import quote

from kenar_api_client._http_values import query_value
from kenar_api_client.exceptions import ApiTypeError, ApiValueError

#: Path parameter values that would not stay one segment: an empty one, or ``.``/``..``,
#: which servers and proxies normalise away (``/posts/..`` lands on another endpoint).
_DOT_SEGMENTS = frozenset({"", ".", ".."})


def path_segment(name: str, value: Any) -> str:
    """``value`` percent-encoded as one path segment; ApiValueError naming ``name`` if it cannot be."""
    text = query_value(value)
    if text in _DOT_SEGMENTS:
        shown = "empty" if text == "" else repr(text)
        raise ApiValueError(
            f"{name} is {shown}: a path parameter must be a non-empty value other than '.' and '..', "
            "which would send the request to another endpoint"
        )
    return quote(text, safe="")


@functools.lru_cache(maxsize=256)
def _quote_name(name: str) -> str:
    return quote(name, safe="")


def encode_query(items: Iterable[Tuple[str, Any]]) -> str:
    """``name=value&...`` percent-encoding every reserved character and all non-ASCII as UTF-8.

    ``+`` and ``&`` in a value stay data (``%2B``, ``%26``): servers read ``+`` as a space.
    """
    parts = []
    for name, value in items:
        if value is None:
            continue
        if type(value) is not str:
            value = query_value(value)
        parts.append(f"{_quote_name(name)}={quote(value, safe='')}")
    return "&".join(parts)


def body_bytes(body: Any) -> Union[bytes, str, None]:
    """The request body: bytes and str as given, a model as its JSON, anything else through ``sanitize``."""
    if body is None or isinstance(body, (bytes, str)):
        return body
    serializer = getattr(body, "__pydantic_serializer__", None)
    if serializer is not None:
        # Straight to UTF-8 JSON bytes: no intermediate dict, no \\u escapes.
        return serializer.to_json(body, by_alias=True, exclude_unset=True)  # type: ignore[no-any-return]
    # allow_nan=False: NaN and Infinity are not JSON, and a server would refuse the body.
    return json.dumps(sanitize(body), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8"
    )


def sanitize(obj: Any) -> Any:
    """``obj`` as JSON-ready Python data: models, enums, datetimes, lists, tuples, dicts."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj.value if isinstance(obj, Enum) else obj
    if isinstance(obj, Enum):
        return sanitize(obj.value)
    if isinstance(obj, (datetime.datetime, datetime.date)):
        return obj.isoformat()
    if isinstance(obj, (list, tuple)):
        return [sanitize(item) for item in obj]
    if isinstance(obj, dict):
        return {str(k): sanitize(v) for k, v in obj.items()}
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return sanitize(to_dict())
    raise ApiTypeError(f"cannot serialize a {type(obj).__name__} to JSON")


def unsendable_location(value: Any) -> Optional[Tuple[Tuple[Union[str, int], ...], str]]:
    """Where in a body value (a model or plain data) the part that cannot be written is, and why."""
    from kenar_api_client._json_check import problem_in

    if isinstance(value, (list, tuple)) and any(hasattr(item, "model_fields") for item in value):
        for index, item in enumerate(value):
            found = unsendable_location(item)
            if found is not None:
                return (index, *found[0]), found[1]
        return None
    fields = getattr(type(value), "model_fields", None)
    if fields is None:
        return problem_in(value)
    for field_name in fields:
        if field_name not in value.model_fields_set:
            continue
        found = unsendable_location(getattr(value, field_name))
        if found is not None:
            return (field_name, *found[0]), found[1]
    return None
