"""The base of the string enums in the API: plain ``str`` enums with the generated-style ``from_json``."""

from __future__ import annotations

import json
from enum import Enum
from typing import Union

from typing_extensions import Self


class KenarEnum(str, Enum):
    """A string enum whose members compare equal to, and serialize as, their wire value."""

    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def from_json(cls, json_str: Union[str, bytes]) -> Self:
        """Parse a JSON string value (``'"USER"'``) into a member."""
        return cls(json.loads(json_str))
