"""Field types the generated models share beyond pydantic's own."""

from __future__ import annotations

import math
from typing import Any, Dict

from pydantic import AfterValidator, BeforeValidator, StrictInt
from typing_extensions import Annotated


def _int_from_numeric_string(value: Any) -> Any:
    # protobuf's JSON mapping writes int64 as a string ("1280"); accept both forms.
    if type(value) is str and value.lstrip("-").isdigit() and value.isascii():
        return int(value)
    return value


#: An integer that also accepts its decimal string form, as protobuf JSON sends int64.
Int64 = Annotated[StrictInt, BeforeValidator(_int_from_numeric_string)]


def _check_finite(value: Any) -> Any:
    """``value`` if every float in it is finite; JSON has no NaN or infinity to send."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} cannot be sent: JSON has no NaN or infinity")
    elif isinstance(value, dict):
        for item in value.values():
            _check_finite(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _check_finite(item)
    return value


#: A free-form JSON object to send (``metadata``, ``data``): any keys, values pydantic can
#: serialize, but no NaN or infinity (pydantic would send them as null).
JsonObject = Annotated[Dict[str, Any], AfterValidator(_check_finite)]
