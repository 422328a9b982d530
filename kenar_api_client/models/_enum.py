"""The base of the string enums: plain ``str`` enums with the generated-style ``from_json``."""

from __future__ import annotations

import json
from contextvars import ContextVar
from enum import Enum
from typing import TYPE_CHECKING, Any, Optional, Union

from typing_extensions import Self

from kenar_api_client.models._own_methods import give_own_methods

#: True while an answer (or a webhook) is parsed: then an enum takes values it does not list.
reading_answer: ContextVar[bool] = ContextVar("kenar_reading_answer", default=False)
#: The classes below only share code: each enum class gets its own, named copy of ``from_json``.
_SHARED_BASES = ("KenarEnum", "ApiEnum")


class KenarEnum(str, Enum):
    """A string enum whose members compare equal to, and serialize as, their wire value.

    Values the server sends that this version of the SDK does not list are kept (as a
    member-like value whose ``name`` and ``value`` are the string), so a new value on
    Kenar's side does not break parsing; values a caller passes are checked strictly.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        give_own_methods(cls, _SHARED_BASES, ("from_json",))

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


class ApiEnum(KenarEnum):
    """An enum of the Kenar API, printed as the official client prints its ``(str, Enum)`` classes.

    ``str(member)`` is ``"ClassName.MEMBER"`` and ``format()`` (f-strings) is whatever the
    running Python does for such a class: the value on 3.9 and 3.10, ``str()`` from 3.11 on.
    The wire value is always ``member.value``.
    """

    if TYPE_CHECKING:

        def __str__(self) -> str:
            """``"ClassName.MEMBER"``."""

        def __format__(self, format_spec: str) -> str:
            """As a plain ``(str, Enum)`` member formats on this Python."""

    else:
        # Enum's own functions, not wrappers: Python 3.9 and 3.10 format a member by its
        # value only when __str__ is exactly Enum.__str__, as for the official classes.
        __str__ = Enum.__str__
        __format__ = Enum.__format__
