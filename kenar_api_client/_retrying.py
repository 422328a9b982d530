"""Sending a request with the retry policy: the one place both clients decide to try again.

The policy is a ``urllib3.Retry`` (``KenarRetry`` by default, see ``retry.py``), asked
the same questions urllib3 asks it; the waiting is a ``Sleep`` step, so the async client
waits without blocking its event loop.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable, FrozenSet, List, Mapping, Optional

from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, ProtocolError, ReadTimeoutError, SSLError
from urllib3.util import Retry

from kenar_api_client import _call_log
from kenar_api_client._steps import Flow, Release, Sleep
from kenar_api_client.exceptions import ApiConnectionError, ApiTimeoutError

if TYPE_CHECKING:
    from kenar_api_client._request import Request
    from kenar_api_client._transport import Answer

SecretsOf = Callable[[Optional[Mapping[str, Any]]], List[str]]


class _AnswerView:
    """The little of an answer ``Retry.increment`` reads: status and headers, no redirect."""

    __slots__ = ("headers", "status")

    def __init__(self, status: int, headers: Mapping[str, str]) -> None:
        self.status = status
        self.headers = headers

    def get_redirect_location(self) -> bool:
        return False


class RetryPolicy:
    """A client's ``urllib3.Retry``, with what every call asks of it worked out once."""

    __slots__ = ("maybe_retried", "retry")

    def __init__(self, retry: Retry) -> None:
        self.retry = retry
        #: The statuses it may retry at all (``status_forcelist``, or with ``Retry-After``):
        #: any other answer is final, whatever its headers.
        self.maybe_retried: FrozenSet[int] = frozenset(retry.status_forcelist or ()) | frozenset(
            retry.RETRY_AFTER_STATUS_CODES
        )


class Attempts:
    """The retry budget of one call, spent as failures and retryable answers come."""

    __slots__ = ("_method", "_retry", "_url")

    def __init__(self, retry: Retry, request: Request) -> None:
        self._retry = retry
        self._method = request.method
        self._url = request.url

    def after_failure(self, failure: ApiConnectionError) -> Optional[float]:
        """Seconds to wait before trying again after ``failure``; None: give up."""
        # The same classes urllib3 would hand the policy: connect errors (the request never
        # left) against ``connect``, a TLS failure against ``other``, anything after sending
        # against ``read``.
        error: Exception
        if failure.stage == "pool":
            return None  # no connection became free (or the client closed): waiting more is the timeout's job
        if failure.stage == "connect":
            error = ConnectTimeoutError(str(failure))
        elif failure.stage == "tls":
            error = SSLError(str(failure))
        elif isinstance(failure, ApiTimeoutError):
            error = ReadTimeoutError(None, self._url, str(failure))  # type: ignore[arg-type]
        else:
            error = ProtocolError(str(failure))
        try:
            self._retry = self._retry.increment(self._method, self._url, error=error)
        except Exception:  # exhausted (MaxRetryError), or not retryable (the error re-raised)
            return None
        return self._retry.get_backoff_time()

    def after_answer(self, answer: Answer) -> Optional[float]:
        """Seconds to wait before asking again after this answer; None: it is the final one."""
        headers = answer.getheaders()
        has_retry_after = "Retry-After" in headers
        if not self._retry.is_retry(self._method, answer.status, has_retry_after):
            return None
        view = _AnswerView(answer.status, headers)
        try:
            self._retry = self._retry.increment(self._method, self._url, response=view)  # type: ignore[arg-type]
        except MaxRetryError:
            return None  # out of retries (or Retry-After beyond the cap): this answer stands
        if self._retry.respect_retry_after_header and has_retry_after:
            retry_after = self._retry.get_retry_after(view)  # type: ignore[arg-type]
            if retry_after is not None:
                return retry_after
        return self._retry.get_backoff_time()


def send(request: Request, policy: RetryPolicy, secrets_of: SecretsOf, log_bodies: bool) -> Flow[Answer]:
    """Send ``request``, again while the policy says so; the final answer, or its exception.

    A yielded ``Request`` is sent by the driver (the other steps are in ``_steps``).
    """
    info = _call_log.logger.isEnabledFor(logging.INFO)
    debug = info and _call_log.logger.isEnabledFor(logging.DEBUG)
    if info:
        started = time.perf_counter()
        if debug:
            _call_log.request_line(request, secrets_of(request.headers), log_bodies)
    attempts: Optional[Attempts] = None  # made on the first failure or retryable answer only
    while True:
        try:
            answer: Answer = yield request
        except ApiConnectionError as failure:
            if attempts is None:
                attempts = Attempts(policy.retry, request)
            delay = attempts.after_failure(failure)
            if delay is None:
                if info:
                    _call_log.logger.info("%s", failure)
                raise
            _call_log.logger.warning("Retrying in %.2f s after: %s", delay, failure)
            yield Sleep(delay)
            continue
        if answer.status not in policy.maybe_retried:
            break  # most answers: final, whatever their headers
        if attempts is None:
            attempts = Attempts(policy.retry, request)
        delay = attempts.after_answer(answer)
        if delay is None:
            break
        _call_log.logger.debug("Retrying %s in %.2f s after a %d answer", request.where, delay, answer.status)
        yield Release(answer)
        yield Sleep(delay)
    if info:
        elapsed_ms = (time.perf_counter() - started) * 1000
        if debug:
            _call_log.answer_line(answer, elapsed_ms, log_bodies, secrets_of(request.headers))
        else:
            _call_log.logger.info("%s -> %d in %.1f ms", request.where, answer.status, elapsed_ms)
    return answer
