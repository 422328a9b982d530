"""Header and query values as the request path writes them: checked, merged, formatted."""

from __future__ import annotations

import re
from enum import Enum
from typing import Any, Dict, Mapping, Set, Tuple

from kenar_api_client.exceptions import ApiTypeError, ApiValueError


def merge_headers(base: Mapping[str, Any], extra: Mapping[str, Any]) -> Dict[str, Any]:
    """``base`` updated with ``extra``; header names compare case-insensitively."""
    if not isinstance(extra, Mapping):
        raise ApiTypeError(f"headers must be a mapping of names to values, not {type(extra).__name__}")
    overridden = {name.lower() for name in extra if isinstance(name, str)}
    merged = {k: v for k, v in base.items() if k.lower() not in overridden}
    merged.update(extra)
    return merged


def query_value(value: Any) -> str:
    """How a parameter value is written in a query string."""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


_HEADER_NAME = re.compile(r"[^:\s][^:\r\n]*")
#: Header names already found valid, so that the check per call is one set lookup.
checked_header_names: Set[str] = set()


def checked_header(name: Any, value: Any) -> Tuple[str, str]:
    """``(name, value)`` as strings safe to put in a request, or ``ApiValueError``.

    The value itself is never quoted in the error: it may be a credential.
    """
    if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name) or not name.isascii():
        raise ApiValueError(f"invalid HTTP header name {name!r}")
    if len(checked_header_names) < 1024:
        checked_header_names.add(name)
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ApiTypeError(f"header {name!r} must be a string, not {type(value).__name__}")
    value = str(value)
    if "\r" in value or "\n" in value:
        raise ApiValueError(
            f"header {name!r} contains a line break (CR or LF), which could inject headers; "
            "refusing to send it"
        )
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ApiValueError(
            f"header {name!r} contains characters HTTP headers cannot carry (use ASCII)"
        ) from None
    return name, value
