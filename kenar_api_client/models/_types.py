"""Field types the generated models share beyond pydantic's own."""

from __future__ import annotations

from typing import Any

from pydantic import BeforeValidator, StrictInt
from typing_extensions import Annotated


def _int_from_numeric_string(value: Any) -> Any:
    # protobuf's JSON mapping writes int64 as a string ("1280"); accept both forms.
    if type(value) is str and value.lstrip("-").isdigit() and value.isascii():
        return int(value)
    return value


#: An integer that also accepts its decimal string form, as protobuf JSON sends int64.
Int64 = Annotated[StrictInt, BeforeValidator(_int_from_numeric_string)]
