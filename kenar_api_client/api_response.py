"""``ApiResponse``: what the ``*_with_http_info`` methods return."""

from __future__ import annotations

from typing import Any, ClassVar, Generic, Mapping, Optional, TypeVar

T = TypeVar("T")


class ApiResponse(Generic[T]):
    """An API answer: HTTP status, headers, the deserialized ``data`` and the raw body."""

    __slots__ = ("data", "headers", "raw_data", "status_code")

    def __init__(
        self,
        *,
        status_code: int,
        headers: Optional[Mapping[str, str]] = None,
        data: T,
        raw_data: bytes,
    ) -> None:
        self.status_code: int = status_code
        self.headers: Optional[Mapping[str, str]] = headers
        self.data: T = data
        self.raw_data: bytes = raw_data

    def __repr__(self) -> str:
        return f"ApiResponse(status_code={self.status_code}, data={self.data!r})"

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, ApiResponse):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    __hash__: ClassVar[None] = None  # type: ignore[assignment]
