"""gRPC status codes, their HTTP statuses, and ``googlerpcStatus`` error bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Dict, Optional, Tuple


class Code(IntEnum):
    """The gRPC codes the sandbox answers with."""

    INVALID_ARGUMENT = 3
    NOT_FOUND = 5
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    UNAUTHENTICATED = 16


# As grpc-gateway maps them; UNIMPLEMENTED is only used for a wrong method, which the
# gateway answers with 405 rather than 501.
HTTP_STATUS: Dict[Code, int] = {
    Code.INVALID_ARGUMENT: 400,
    Code.NOT_FOUND: 404,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.UNIMPLEMENTED: 405,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.UNAUTHENTICATED: 401,
}


class RpcError(Exception):
    """An error answer: a gRPC code, a message that names the problem, extra headers."""

    def __init__(self, code: Code, message: str, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers: Dict[str, str] = dict(headers or {})

    @property
    def http_status(self) -> int:
        """The HTTP status grpc-gateway gives this code."""
        return HTTP_STATUS[self.code]


def status_body(code: Code, message: str) -> bytes:
    """A ``googlerpcStatus`` JSON body."""
    return json.dumps({"code": int(code), "message": message, "details": []}).encode("utf-8")


def quoted(value: str, limit: int = 40) -> str:
    """``value`` quoted for an error message, shortened so a huge value cannot flood it."""
    if len(value) > limit:
        value = value[:limit] + "..."
    return repr(value)


def error_answer(error: RpcError) -> Tuple[int, bytes]:
    """The HTTP status and body for ``error``."""
    return error.http_status, status_body(error.code, error.message)


@dataclass(frozen=True)
class Reply:
    """An answer to send, and what the request record says about it.

    ``recorded``: whether the request goes to ``sandbox.requests`` (API calls do; OAuth and
    admin calls do not). ``code`` and ``message`` are the record's (None for a success).
    """

    status: int
    payload: bytes
    headers: Dict[str, str] = field(default_factory=dict)
    code: Optional[int] = None
    message: Optional[str] = None
    recorded: bool = True


def error_reply(error: RpcError, *, recorded: bool = True) -> Reply:
    """The ``googlerpcStatus`` reply for ``error``."""
    status, payload = error_answer(error)
    return Reply(status, payload, dict(error.headers), int(error.code), error.message, recorded)
