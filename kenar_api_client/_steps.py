"""The steps a request pipeline asks its driver for: the only I/O a call does, named.

A pipeline is a generator that decides everything (auth, retries, what an answer means)
and yields one of these whenever it needs the outside world; the sync driver performs the
step in the calling thread, the async driver on the event loop (or, for ``Blocking``, in a
worker thread). So the decisions are written once for both clients. A yielded
``Request`` means "send it": the answer (or its typed exception) comes back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Generator, Hashable, Optional, Tuple, TypeVar, Union

if TYPE_CHECKING:
    from kenar_api_client._request import Request

T = TypeVar("T")


class Sleep:
    """Wait ``seconds`` (between retries)."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class Release:
    """Let go of an answer that will not be used (drained, its connection back in the pool)."""

    __slots__ = ("response",)

    def __init__(self, response: Any) -> None:
        self.response = response


class Blocking:
    """Call ``function(*args)``, which may block (a token store, the OAuth server).

    The async driver runs it in a worker thread, once per ``flight`` key at a time: tasks
    asking for the same thing at once share one call and its result.
    """

    __slots__ = ("args", "flight", "function")

    def __init__(self, function: Callable[..., Any], *args: Any, flight: Optional[Hashable] = None) -> None:
        self.function = function
        self.args: Tuple[Any, ...] = args
        self.flight = flight


Step = Union["Request", Sleep, Release, Blocking]

#: A pipeline (or a part of one) that finishes with a ``T``.
Flow = Generator[Step, Any, T]
