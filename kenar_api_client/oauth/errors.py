"""The OAuth exceptions, in one tree beside the SDK's own.

    ApiException                         (kenar_api_client.exceptions)
    ├── ApiConnectionError
    │   ├── TokenStoreError              the token store failed (Redis unreachable, SQLite locked)
    │   └── TokenUnavailableError        the token expired and refreshing it keeps failing (for now)
    ├── OAuthError                       the token endpoint answered an RFC 6749 error
    │   ├── InvalidGrantError            code or refresh token refused: the user must consent again
    │   ├── InvalidClientError           client_id / client_secret wrong
    │   └── OAuthServerError             5xx / 429 or server_error, temporarily_unavailable: retried
    └── UnauthorizedException
        └── ConsentRequiredError         no usable token for a user: send them through consent
            └── RefreshTokenSpentError   its refresh token was spent by a refresh whose answer was lost
    ApiValueError
    └── OAuthRedirectError               the redirect back cannot be used
        ├── AccessDeniedError            the user refused (error=access_denied, or no code)
        └── StateMismatchError           ``state`` missing or not the one sent (CSRF)

Transport failures are the SDK's ``ApiConnectionError`` / ``ApiTimeoutError``. No message
or attribute holds a client secret, code or token. Every class survives pickling.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple, Type, TypeVar

from kenar_api_client.exceptions import ApiConnectionError, ApiException, ApiValueError, UnauthorizedException

#: The RFC 6749 error codes that say the server, not the request, is at fault.
SERVER_ERROR_CODES = frozenset({"server_error", "temporarily_unavailable"})

_E = TypeVar("_E", bound=BaseException)


def _rebuild(cls: Type[_E], args: Tuple[Any, ...], state: Dict[str, Any]) -> _E:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class _PicklableByState:
    """Pickle by attributes: these constructors do not take back what ``args`` holds."""

    args: Tuple[Any, ...]

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class OAuthError(_PicklableByState, ApiException):
    """The OAuth token endpoint refused a request: ``error`` is the RFC 6749 code.

    ``error_description`` is the server's explanation, ``status`` the HTTP status.
    """

    def __init__(
        self,
        error: str,
        error_description: Optional[str] = None,
        *,
        status: Optional[int] = None,
        reason: Optional[str] = None,
        body: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        super().__init__(status=status, reason=reason, body=body, headers=headers)
        self.error = error
        self.error_description = error_description

    def __str__(self) -> str:
        text = f"({self.status}) {self.error}" if self.status else self.error
        return f"{text}: {self.error_description}" if self.error_description else text


class InvalidGrantError(OAuthError):
    """The code or refresh token is invalid, expired, used or revoked: the user must consent again."""


class InvalidClientError(OAuthError):
    """The app's ``client_id`` or ``client_secret`` was refused."""


class OAuthServerError(OAuthError):
    """The token endpoint failed or turned the request away (5xx or 429 with an RFC 6749 body,
    ``server_error``, ``temporarily_unavailable``): worth retrying.

    ``retry_after`` is the answer's ``Retry-After`` in seconds, or None.
    """

    def __init__(self, *args: Any, retry_after: Optional[float] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


_ERRORS_BY_CODE: Dict[str, Type[OAuthError]] = {
    "invalid_grant": InvalidGrantError,
    "invalid_client": InvalidClientError,
    **{code: OAuthServerError for code in SERVER_ERROR_CODES},
}


def oauth_error_class(error: str, status: Optional[int] = None) -> Type[OAuthError]:
    """The most specific ``OAuthError`` class for an RFC 6749 error code answered with ``status``."""
    if status is not None and (status == 429 or 500 <= status <= 599):
        return OAuthServerError
    return _ERRORS_BY_CODE.get(error, OAuthError)


class ConsentRequiredError(_PicklableByState, UnauthorizedException):
    """No usable token for ``user_key``: none was stored, or Kenar refused to refresh it.

    Send the user through the authorization flow again. The refusal, if any, is chained
    as ``__cause__`` (an ``InvalidGrantError``).
    """

    def __init__(self, user_key: str, why: str) -> None:
        super().__init__(status=401, reason=f"user {user_key!r} must authorize the app again: {why}")
        self.user_key = user_key
        self.why = why

    def __str__(self) -> str:
        return self.reason or "consent required"


class RefreshTokenSpentError(ConsentRequiredError):
    """``user_key``'s refresh token was sent at ``sent_at`` by a refresh whose new tokens never
    reached the store, and Kenar's grace period for sending it again is over.

    Sending it now would make Kenar revoke every token of the user, so it is not sent. Unless
    the process that received those tokens still stores them, the user must consent again.
    """

    def __init__(self, user_key: str, sent_at: str) -> None:
        super().__init__(
            user_key,
            f"its refresh token was sent to Kenar at {sent_at} by a refresh whose new tokens never "
            "reached the store, and Kenar's grace period for sending it again is over",
        )
        self.sent_at = sent_at


class TokenStoreError(_PicklableByState, ApiConnectionError):
    """The token store could not be read or written; the backend's error is the ``__cause__``."""


class TokenUnavailableError(_PicklableByState, ApiConnectionError):
    """``user_key``'s token has expired and refreshing it failed (the OAuth server unreachable,
    failing or turning it away: the failure is the ``__cause__`` when it just happened). It is
    tried again on a backoff schedule; until then asking again fails at once with this error.

    ``why`` is the last failure; ``retry_in`` the seconds until the next attempt.
    """

    def __init__(self, user_key: str, why: str, retry_in: float) -> None:
        super().__init__(
            f"no valid token for user {user_key!r} right now: it expired and refreshing it failed "
            f"({why}); next attempt in {max(0.0, retry_in):.0f} s"
        )
        self.user_key = user_key
        self.why = why
        self.retry_in = retry_in


class OAuthRedirectError(_PicklableByState, ApiValueError):
    """The redirect back from Kenar cannot be used; ``error`` is its OAuth error code, if any."""

    def __init__(self, message: str, error: Optional[str] = None, error_description: Optional[str] = None):
        super().__init__(message)
        self.error = error
        self.error_description = error_description


class AccessDeniedError(OAuthRedirectError):
    """The user did not consent: the redirect says ``error=access_denied`` or carries no code."""


class StateMismatchError(OAuthRedirectError):
    """The redirect's ``state`` is missing or is not the one sent: possibly a forged request."""
