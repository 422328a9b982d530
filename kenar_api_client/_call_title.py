"""The title of an API call's ``ValidationError``: ``FinderApi.finder_get_user``, as the official client's.

The official client validates each method with ``pydantic.validate_call``, so its errors
read ``1 validation error for FinderApi.finder_get_user`` (``..._with_http_info`` for
that form). Our methods share one ``Operation`` per call, which does not know the API
class or the form it was called through; the calling method's frame does. This is looked
up only when an argument is refused, never on a call that goes through.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from pydantic import ValidationError

#: The forms of one operation, as the method names end.
_FORMS = ("", "_with_http_info", "_without_preload_content")
#: How far up from the check the API method's frame may be (it is 3 or 4 frames up today).
_MAX_DEPTH = 12


def call_title(operation: str) -> str:
    """``<ApiClass>.<method>`` of the API method being run for ``operation``, else ``operation``."""
    frame: Optional[FrameType] = sys._getframe(1)
    methods = {operation + form for form in _FORMS}
    for _ in range(_MAX_DEPTH):
        if frame is None:
            break
        code = frame.f_code
        if code.co_name in methods and "self" in frame.f_locals:
            return _defining_class(type(frame.f_locals["self"]), code.co_name) + "." + code.co_name
        frame = frame.f_back
    return operation


def _defining_class(cls: type, method: str) -> str:
    """The class whose body defines ``method`` (as ``__qualname__`` would name it)."""
    for klass in cls.__mro__:
        if method in vars(klass):
            return klass.__name__
    return cls.__name__


def retitled(error: ValidationError, operation: str) -> ValidationError:
    """``error`` with the title of the API call being run for ``operation`` (same errors otherwise)."""
    from pydantic import ValidationError

    errors: Any = error.errors()
    try:
        return ValidationError.from_exception_data(call_title(operation), errors)
    except (TypeError, ValueError, KeyError):  # an error pydantic cannot rebuild: keep it as it is
        return error
