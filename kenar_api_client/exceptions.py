"""Every exception the SDK raises, in one tree.

    OpenApiException
    ├── ApiTypeError            (also TypeError)   a wrong argument type, before sending
    ├── ApiValueError           (also ValueError)  a bad argument value, before sending
    ├── ApiKeyError             (also KeyError)
    ├── ApiAttributeError       (also AttributeError)
    └── ApiException                               anything that went wrong once a request was under way
        ├── ApiConnectionError                     no HTTP answer: refused, reset, DNS, TLS (status 0)
        │   └── ApiTimeoutError                    connect or read timed out
        ├── BadRequestException                    400
        ├── UnauthorizedException                  401
        ├── ForbiddenException                     403
        ├── NotFoundException                      404
        ├── ConflictException                      409
        ├── UnprocessableEntityException           422
        ├── TooManyRequestsException               429, after the retries the policy allows
        └── ServiceException                       5xx

Invalid arguments to an API method raise ``pydantic.ValidationError`` naming the argument.

``except ApiException`` catches everything raised once a request is under way; the
underlying urllib3/socket/ssl/json error, if any, is chained as ``__cause__``.
Messages never contain the API key or the access token.

Every exception survives pickling with all its attributes, so that one raised in a worker
process (``multiprocessing``, ``concurrent.futures.ProcessPoolExecutor``) reaches the parent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Tuple, Type

if TYPE_CHECKING:
    from kenar_api_client.models.google_rpc_status import GoogleRpcStatus

# How much of an unparsed error body ``str(exception)`` shows.
_BODY_PREVIEW_CHARS = 500


class OpenApiException(Exception):
    """The base of every exception this SDK raises."""

    def __reduce__(self) -> Tuple[Any, ...]:
        # Exception's own reduce calls ``cls(*self.args)``, which fails for every class whose
        # __init__ does not take exactly its args back. Rebuild without __init__ instead: args
        # as they were, then every attribute (status, body, data, headers, retry_after...).
        return (_rebuild, (type(self), self.args), self.__dict__)


def _rebuild(exception_class: Type[OpenApiException], args: Tuple[Any, ...]) -> OpenApiException:
    """An exception of ``exception_class`` with ``args``, made without calling its __init__."""
    return exception_class.__new__(exception_class, *args)


def _render_path(path_to_item: Sequence[Any]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f"['{p}']" for p in path_to_item)


class _ArgumentError(OpenApiException):
    """Shared constructor: a message, optionally located by a path into the arguments."""

    def __init__(self, msg: str, path_to_item: Optional[Sequence[Any]] = None) -> None:
        self.path_to_item = path_to_item
        super().__init__(f"{msg} at {_render_path(path_to_item)}" if path_to_item else msg)


class ApiTypeError(_ArgumentError, TypeError):
    """An argument has the wrong type; raised before anything is sent."""

    def __init__(
        self,
        msg: str,
        path_to_item: Optional[Sequence[Any]] = None,
        valid_classes: Optional[Sequence[type]] = None,
        key_type: Optional[bool] = None,
    ) -> None:
        self.valid_classes = valid_classes
        self.key_type = key_type
        super().__init__(msg, path_to_item)


class ApiValueError(_ArgumentError, ValueError):
    """An argument has a bad value; raised before anything is sent."""


class ApiAttributeError(_ArgumentError, AttributeError):
    """An attribute that does not exist was read."""


class ApiKeyError(_ArgumentError, KeyError):
    """A key that does not exist was looked up."""


class ApiException(OpenApiException):
    """A request was sent and failed: an error answer, or no usable answer at all.

    Attributes: ``status`` (HTTP status, 0 when no answer came), ``reason``, ``body`` (the
    answer's text), ``data`` (the parsed ``GoogleRpcStatus`` when the body was one),
    ``headers`` (the answer's headers).
    """

    status: Optional[int]
    reason: Optional[str]
    body: Optional[str]
    data: Optional[GoogleRpcStatus]
    headers: Optional[Mapping[str, str]]

    def __init__(
        self,
        status: Optional[int] = None,
        reason: Optional[str] = None,
        http_resp: Any = None,
        *,
        body: Optional[str] = None,
        data: Optional[GoogleRpcStatus] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.body = body
        self.data = data
        self.headers = headers
        if http_resp is not None:
            self.status = http_resp.status
            self.reason = http_resp.reason
            if self.body is None:
                raw = http_resp.data
                self.body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            if self.headers is None:
                self.headers = http_resp.headers
        super().__init__(status, reason)

    @classmethod
    def from_response(
        cls,
        *,
        http_resp: Any,
        body: Optional[str],
        data: Optional[GoogleRpcStatus],
        headers: Optional[Mapping[str, str]] = None,
    ) -> ApiException:
        """Build the exception class matching ``http_resp.status``."""
        exception_class = exception_class_for_status(http_resp.status)
        return exception_class(http_resp=http_resp, body=body, data=data, headers=headers)

    def __str__(self) -> str:
        message = f"({self.status})"
        if self.reason:
            message += f" {self.reason}"
        if self.data is not None and self.data.code is not None:
            message += f": {self.data.code_name or 'code'} ({self.data.code})"
            if self.data.message:
                message += f": {self.data.message}"
        elif self.body:
            preview = self.body[:_BODY_PREVIEW_CHARS]
            if len(self.body) > _BODY_PREVIEW_CHARS:
                preview += f"... [{len(self.body) - _BODY_PREVIEW_CHARS} more characters]"
            message += f"\nHTTP response body: {preview}"
        return message


class BadRequestException(ApiException):
    """400: the server rejected the request as malformed (gRPC INVALID_ARGUMENT)."""


class UnauthorizedException(ApiException):
    """401: the API key or access token is missing or not valid (gRPC UNAUTHENTICATED)."""


class InvalidApiKeyError(UnauthorizedException):
    """401 naming the app's API key: it is missing, wrong or revoked. A managed client does not
    refresh the user's token for it (a refresh cannot fix the key, and would rotate the token)."""


class ForbiddenException(ApiException):
    """403: the API key lacks a permission or the token a scope (gRPC PERMISSION_DENIED)."""


class NotFoundException(ApiException):
    """404: no such resource or path."""


class ConflictException(ApiException):
    """409: the request conflicts with the current state (gRPC ALREADY_EXISTS / ABORTED)."""


class UnprocessableEntityException(ApiException):
    """422: the server understood the request but cannot process it."""


class TooManyRequestsException(ApiException):
    """429: rate limited, still after the retries the policy allows.

    ``retry_after`` is the server's ``Retry-After`` in seconds, or None if it sent none.
    """

    def __init__(self, *args: Any, retry_after: Optional[float] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after

    def __str__(self) -> str:
        message = super().__str__()
        if self.retry_after is not None:
            message += f" (retry after {self.retry_after:g} s)"
        return message


class ServiceException(ApiException):
    """5xx: the server (or a proxy in front of it) failed."""


class ApiConnectionError(ApiException):
    """No HTTP answer: connection refused or reset, DNS or TLS failure. ``status`` is 0.

    ``stage`` says how far the request got: ``"connect"`` (no connection could be made),
    ``"tls"`` (the TLS handshake failed), ``"pool"`` (no pooled connection became free, or
    the client was closed meanwhile) or ``"send"`` (it went out, and may have been received
    and acted on). ``request_sent`` is False but for ``"send"``: sending it again cannot
    make Kenar act twice.
    """

    stage: str

    def __init__(self, message: str, *, stage: str = "send") -> None:
        super().__init__(status=0, reason=message)
        self.stage = stage

    @property
    def request_sent(self) -> bool:
        """Whether the request may have reached the server."""
        return self.stage == "send"

    def __str__(self) -> str:
        return self.reason or "connection failed"


class ApiTimeoutError(ApiConnectionError):
    """The connect or read timeout elapsed before the server answered."""


class ClientClosedError(OpenApiException, RuntimeError):
    """A call on an ``AsyncApiClient`` after ``close()``: make a new client instead."""


_EXCEPTIONS_BY_STATUS = {
    400: BadRequestException,
    401: UnauthorizedException,
    403: ForbiddenException,
    404: NotFoundException,
    409: ConflictException,
    422: UnprocessableEntityException,
    429: TooManyRequestsException,
}


def exception_class_for_status(status: int) -> Type[ApiException]:
    """The most specific ``ApiException`` subclass for an HTTP status."""
    if 500 <= status <= 599:
        return ServiceException
    return _EXCEPTIONS_BY_STATUS.get(status, ApiException)
