"""What an error tracker (Sentry and the like) records of a failure: every frame's local variables."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Callable, List, Optional, Set

from kenar_api_client.exceptions import ApiException


def failure_of(action: Callable[[], Any]) -> ApiException:
    """The ``ApiException`` ``action()`` raises."""
    try:
        action()
    except ApiException as error:
        return error
    raise AssertionError("no error was raised")


def traceback_locals(error: BaseException, skip_file: str = "") -> str:
    """The local variables of every frame of ``error``'s traceback and of the errors chained to it
    (``__cause__``, ``__context__``), shown as a tracker shows them; frames of ``skip_file`` left out."""
    shown: List[str] = []
    seen: Set[int] = set()
    pending: List[Optional[BaseException]] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        tb: Optional[TracebackType] = current.__traceback__
        while tb is not None:
            if not skip_file or not tb.tb_frame.f_code.co_filename.endswith(skip_file):
                shown.append(_shown(dict(tb.tb_frame.f_locals), set()))
            tb = tb.tb_next
        pending += [current.__cause__, current.__context__]
    return "\n".join(shown)


def frame_names(error: BaseException) -> List[str]:
    """The functions of ``error``'s traceback, outermost first."""
    names: List[str] = []
    tb = error.__traceback__
    while tb is not None:
        names.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    return names


def _shown(value: Any, seen: Set[int]) -> str:
    """A local variable as a tracker records it: strings as they are, containers walked into,
    anything else by its repr."""
    if id(value) in seen:
        return ""
    seen.add(id(value))
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dict):
        return " ".join(_shown(key, seen) + " " + _shown(item, seen) for key, item in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return " ".join(_shown(item, seen) for item in value)
    try:
        return repr(value)
    except Exception as exc:  # a repr that fails shows nothing of the value
        return f"<repr failed: {type(exc).__name__}>"
