"""``Hidden``: a secret held where a traceback's local variables may be captured, shown as ``[REDACTED]``.

Error trackers (Sentry and the like) record the local variables of every frame of a
traceback by their ``repr``. A client secret or refresh token held as a plain ``str`` in a
frame would reach them; held as ``Hidden`` it shows as ``Hidden([REDACTED])``.
"""

from __future__ import annotations

from typing import Any, NoReturn

from kenar_api_client._redact import REDACTED


class Hidden:
    """A secret string that no ``repr``, ``str``, format or pickle shows: :meth:`reveal` it to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself: pass it on at once, do not keep it in a variable."""
        return self._value

    def __repr__(self) -> str:
        return f"Hidden({REDACTED})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Hidden) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Hidden, self._value))

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Hidden secret is never pickled")
