"""Field types the generated models share beyond pydantic's own."""

from __future__ import annotations

from typing import Any, Dict

from pydantic import AfterValidator, BeforeValidator, StrictInt
from typing_extensions import Annotated

from kenar_api_client._json_check import problem_in


def _int_from_numeric_string(value: Any) -> Any:
    # protobuf's JSON mapping writes int64 as a string ("1280"); accept both forms.
    if type(value) is str and value.lstrip("-").isdigit() and value.isascii():
        return int(value)
    return value


#: An integer that also accepts its decimal string form, as protobuf JSON sends int64.
Int64 = Annotated[StrictInt, BeforeValidator(_int_from_numeric_string)]


def _check_sendable(value: Any) -> Any:
    """``value`` if it can be sent as JSON: no NaN or infinity (pydantic would send them as
    null), no lone surrogate, no unwritable object, no absurd nesting; else a ValueError
    saying where in it."""
    problem = problem_in(value)
    if problem is not None:
        path, reason = problem
        where = "".join(f"[{part!r}]" for part in path)
        raise ValueError(f"{where} {reason}" if where else reason)
    return value


#: A free-form JSON object to send (``metadata``, ``data``): any keys, values pydantic can
#: serialize, checked to be sendable (see ``_json_check``).
JsonObject = Annotated[Dict[str, Any], AfterValidator(_check_sendable)]
