"""The base of the string enums in the API: plain ``str`` enums with the generated-style ``from_json``."""

from __future__ import annotations

import json
from contextvars import ContextVar
from enum import Enum
from typing import Any, Optional, Union

from typing_extensions import Self

#: True while an answer (or a webhook) is parsed: then an enum takes values it does not list.
reading_answer: ContextVar[bool] = ContextVar("kenar_reading_answer", default=False)


class KenarEnum(str, Enum):
    """A string enum whose members compare equal to, and serialize as, their wire value.

    Values the server sends that this version of the SDK does not list are kept (as a
    member-like value whose ``name`` and ``value`` are the string), so a new value on
    Kenar's side does not break parsing; values a caller passes are checked strictly.
    """

    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def _missing_(cls, value: Any) -> Optional[Self]:
        if not reading_answer.get() or not isinstance(value, str):
            return None
        unknown = str.__new__(cls, value)
        unknown._name_ = value
        unknown._value_ = value
        return unknown

    @classmethod
    def from_json(cls, json_str: Union[str, bytes]) -> Self:
        """Parse a JSON string value (``'"USER"'``) into a member; unknown values are kept."""
        token = reading_answer.set(True)
        try:
            return cls(json.loads(json_str))
        finally:
            reading_answer.reset(token)
