"""What a token endpoint answer means, and whether a failed refresh is sent again: decisions, no I/O.

:func:`interpret_token_answer` turns an answer (status, reason, headers, body) into an
``OAuthToken`` or the typed exception, whichever HTTP layer received it;
:func:`refresh_retry_delay` says whether a refresh that failed is sent again, and when.

A refresh may be sent again with the same refresh token only because Kenar (Ory Hydra)
still accepts a rotated refresh token for ``ROTATION_GRACE`` seconds; after that, the same
request revokes every token of the user. So a refresh is retried when its answer was lost
or says "not now" (no answer, a 5xx, a 429, ``server_error``, ``temporarily_unavailable``,
or a 2xx whose body cannot be read: Kenar may have rotated the tokens all the same), and
only while the caller's deadline, which ends well inside that grace, allows.
"""

from __future__ import annotations

import json
import random
from typing import Any, Dict, Mapping, Optional, Sequence, Union

from kenar_api_client._redact import scrub, secret_list
from kenar_api_client.exceptions import (
    ApiConnectionError,
    ApiException,
    ApiValueError,
    TooManyRequestsException,
    exception_class_for_status,
)
from kenar_api_client.oauth._hidden import Hidden
from kenar_api_client.oauth.errors import OAuthError, OAuthServerError, oauth_error_class
from kenar_api_client.oauth.token import OAuthToken
from kenar_api_client.retry import parse_retry_after

#: Attempts a refresh makes at most, the first included.
REFRESH_ATTEMPTS = 4
#: The longest ``Retry-After`` a refresh waits; a longer one is waited this long.
RETRY_AFTER_CAP = 30.0
#: Time an attempt needs at the least: a retry that could not get this much is not made.
MIN_ATTEMPT_SECONDS = 0.5


def interpret_token_answer(
    status: int,
    reason: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    received_at: float,
    secrets: Sequence[Hidden],
    redirect_uri: Optional[str],
    previous: Optional[OAuthToken] = None,
) -> OAuthToken:
    """The token in a 2xx answer; else raise the typed exception for the answer.

    ``secrets`` (the request's code, refresh token, client secret) are scrubbed from every
    text the exception keeps. ``previous``: the token a refresh was made for, whose refresh
    token and scopes an answer without them keeps (RFC 6749, sections 5.1 and 6).
    """
    document = _json_object(body)
    verdict: Union[OAuthToken, ApiException]
    if 200 <= status <= 299:
        verdict = _token_or_error(
            document, status, reason, headers, secrets, received_at, redirect_uri, previous
        )
    else:
        verdict = _refusal(document, status, reason, headers, body, secrets)
    # The answer may carry tokens: no frame of a raised error keeps it (error trackers record locals).
    del body, document
    if isinstance(verdict, OAuthToken):
        return verdict
    raise verdict


def refresh_retry_delay(error: BaseException, attempt: int, remaining: float) -> Optional[float]:
    """Seconds to wait before sending a refresh again after ``error``, or None: do not.

    ``attempt`` is the number of the attempt that failed (1 for the first); ``remaining``
    the seconds the caller's deadline leaves. ``Retry-After`` is honoured up to
    ``RETRY_AFTER_CAP``; otherwise the wait grows 0.5, 1, 2... seconds, with jitter.
    """
    if attempt >= REFRESH_ATTEMPTS or not is_retryable_refresh_failure(error):
        return None
    retry_after = _retry_after(error)
    if retry_after is not None:
        delay = min(retry_after, RETRY_AFTER_CAP)
    else:
        delay = min(8.0, 0.5 * 2 ** (attempt - 1)) + random.random() * 0.25  # noqa: S311 - jitter
    if delay + MIN_ATTEMPT_SECONDS > remaining:
        return None
    return delay


def is_retryable_refresh_failure(error: BaseException) -> bool:
    """Whether a refresh that failed with ``error`` may be sent again with the same refresh token.

    Yes when the answer was lost or says "not now": no answer, a 5xx, a 429, an RFC 6749
    ``server_error`` / ``temporarily_unavailable``, a 2xx that cannot be read. No for every
    other refusal (``invalid_grant``, ``invalid_client``, a 4xx): sending it again changes nothing.
    """
    if isinstance(error, OAuthServerError):
        return True
    if isinstance(error, OAuthError) or not isinstance(error, ApiException):
        return False
    if isinstance(error, ApiConnectionError):
        return True
    status = error.status or 0
    return status == 429 or 500 <= status <= 599 or 200 <= status <= 299


def _token_or_error(
    document: Optional[Dict[str, Any]],
    status: int,
    reason: str,
    headers: Mapping[str, str],
    secrets: Sequence[Hidden],
    received_at: float,
    redirect_uri: Optional[str],
    previous: Optional[OAuthToken],
) -> Union[OAuthToken, ApiException]:
    """The token of a 2xx answer, or the error to raise (made outside any ``except``: nothing chained)."""
    problem = "the answer is not a JSON object"
    if document is not None:
        try:
            return OAuthToken.from_response(document, received_at, redirect_uri, previous)
        except ApiValueError as exc:
            problem = str(exc)
    return ApiException(
        status=status,
        reason=f"{_scrubbed(reason, secrets)}, but {problem}",
        headers=_scrubbed_headers(headers, secrets),
    )


def _refusal(
    document: Optional[Dict[str, Any]],
    status: int,
    reason: str,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[Hidden],
) -> ApiException:
    """The typed exception for an answer that is not a 2xx: an RFC 6749 error, else by status."""
    fields: Dict[str, Any] = {
        "status": status,
        "reason": _scrubbed(reason, secrets),
        "body": _scrubbed(body.decode("utf-8", "replace"), secrets),
        "headers": _scrubbed_headers(headers, secrets),
    }
    retry_after = parse_retry_after(_header(headers, "Retry-After"))
    error = document.get("error") if document is not None else None
    if isinstance(error, str) and error:
        description = document.get("error_description") if document is not None else None
        shown_description = _scrubbed(description, secrets) if isinstance(description, str) else None
        error_class = oauth_error_class(error, status)
        if issubclass(error_class, OAuthServerError):
            fields["retry_after"] = retry_after
        return error_class(_scrubbed(error, secrets)[:100], shown_description, **fields)
    status_class = exception_class_for_status(status)
    if issubclass(status_class, TooManyRequestsException):
        fields["retry_after"] = retry_after
    return status_class(**fields)


def _scrubbed_headers(headers: Mapping[str, str], secrets: Sequence[Hidden]) -> Dict[str, str]:
    return {name: _scrubbed(value, secrets) for name, value in headers.items()}


def _retry_after(error: BaseException) -> Optional[float]:
    value = getattr(error, "retry_after", None)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    headers = getattr(error, "headers", None)
    return parse_retry_after(_header(headers, "Retry-After")) if isinstance(headers, Mapping) else None


def _header(headers: Mapping[str, str], name: str) -> Optional[str]:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def _json_object(raw: bytes) -> Optional[Dict[str, Any]]:
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def _scrubbed(text: str, secrets: Sequence[Hidden]) -> str:
    return scrub(text, secret_list(secret.reveal() for secret in secrets))
