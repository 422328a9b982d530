"""Whether free-form data can be sent as JSON, and if not, where in it and why. No recursion.

Free-form objects (``metadata``, ``data``, widgets) take any value pydantic can write, so a
value that cannot be sent is only found when the body is written: too late to name the
field. This walks the value first, iteratively (a 100,000-level nesting is an error, not a
``RecursionError``), and names the path to the culprit.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import math
import uuid
from typing import Any, List, Optional, Tuple, Union

#: How deep free-form data may nest. Kenar's own objects nest a few levels; a request nested
#: deeper is a mistake (or an attack on the parsers on the way), and is refused before sending.
MAX_JSON_DEPTH = 64

Path = Tuple[Union[str, int], ...]

# Besides the JSON types: what pydantic writes as a JSON string or number.
_WRITABLE = (datetime.date, datetime.time, datetime.timedelta, decimal.Decimal, uuid.UUID, enum.Enum)


def problem_in(value: Any) -> Optional[Tuple[Path, str]]:
    """``(path, reason)`` for the first part of ``value`` that cannot be sent, or None."""
    if _plainly_sendable(value):
        return None
    stack: List[Tuple[Any, Path]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        kind = type(item)
        if kind is str or isinstance(item, str):
            if not _encodable(item):
                return path, "contains a lone surrogate, which UTF-8 cannot encode"
        elif kind is float or (isinstance(item, float) and not isinstance(item, enum.Enum)):
            if not math.isfinite(item):
                return path, f"{item!r} cannot be sent: JSON has no NaN or infinity"
        elif item is None or kind is bool or kind is int or isinstance(item, (int, *_WRITABLE)):
            continue
        elif isinstance(item, dict):
            if len(path) >= MAX_JSON_DEPTH:
                return path, f"nests more than {MAX_JSON_DEPTH} levels deep"
            for key, child in item.items():
                if not isinstance(key, str):
                    return path, f"has a key of type {type(key).__name__}: JSON keys are strings"
                if not _encodable(key):
                    return (*path, key), "has a key with a lone surrogate, which UTF-8 cannot encode"
                stack.append((child, (*path, key)))
        elif isinstance(item, (list, tuple)):
            if len(path) >= MAX_JSON_DEPTH:
                return path, f"nests more than {MAX_JSON_DEPTH} levels deep"
            stack.extend((child, (*path, index)) for index, child in enumerate(item))
        elif hasattr(item, "__pydantic_serializer__"):
            continue  # a model: checked when it was built
        else:
            return path, f"a {kind.__name__} cannot be sent as JSON"
    return None


def _plainly_sendable(value: Any) -> bool:
    """The common case, decided fast: a shallow dict of plain strings, ints and bools."""
    if type(value) is not dict:
        return False
    for key, item in value.items():
        kind = type(item)
        if type(key) is not str or not key.isascii():
            return False
        if kind is str:
            if not item.isascii():
                return False
        elif kind is not int and kind is not bool and item is not None:
            return False
    return True


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
