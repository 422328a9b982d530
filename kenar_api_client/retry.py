"""The retry policy: which failures are retried, how long to wait, and when to stop.

The rule is that a retry must never make Kenar act twice. ``events_send_event`` notifies a
Divar user; sending it again because an answer was lost would notify them twice. So by
default the SDK retries only when the request certainly was not processed:

* the connection could not be established (refused, DNS failure, connect timeout), and
* the server answered 429 Too Many Requests or 503 Service Unavailable, which say the
  request was turned away, not processed.

It does not retry read timeouts, connections dropped after the request was sent, or other
5xx answers: the server may have acted on those. Between attempts it waits
``backoff_factor * 2 ** (n - 1)`` seconds (n = 1, 2, ...), capped at ``backoff_max``, plus a
random jitter of up to ``backoff_jitter`` seconds, so that many clients do not retry in
lockstep. When the answer carries ``Retry-After`` (seconds or an HTTP date) the SDK waits
exactly that long instead, if it is at most ``retry_after_max`` seconds; a longer
``Retry-After`` is not slept through: the SDK stops retrying and raises at once, and the
exception's ``retry_after`` says how long the server asked for.
"""

from __future__ import annotations

import email.utils
import random
import time
from itertools import takewhile
from typing import Any, Collection, Optional, Union

from typing_extensions import Self
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from kenar_api_client.exceptions import ApiValueError

DEFAULT_RETRIES = 2
DEFAULT_BACKOFF_FACTOR = 0.5
DEFAULT_BACKOFF_MAX = 8.0
DEFAULT_BACKOFF_JITTER = 0.25
DEFAULT_RETRY_AFTER_MAX = 60.0
RETRYABLE_STATUSES = frozenset({429, 503})


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or HTTP date); None if invalid."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit alone also accepts "²" or "٣"
        return float(value)
    try:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        retry_at = email.utils.mktime_tz(parsed)
    except (ValueError, OverflowError):  # a date no clock can reach, such as year 99999
        return None
    return max(0.0, retry_at - (time.time() if now is None else now))


class KenarRetry(Retry):
    """urllib3's ``Retry`` with the SDK's backoff and its cap on ``Retry-After``."""

    # urllib3 would also retry a 413 that carries Retry-After; only these two mean "not processed".
    RETRY_AFTER_STATUS_CODES = RETRYABLE_STATUSES

    def __init__(
        self,
        total: Union[bool, int, None] = DEFAULT_RETRIES,
        *,
        retry_after_max: float = DEFAULT_RETRY_AFTER_MAX,
        **kwargs: Any,
    ) -> None:
        # urllib3 >= 2.5 has its own ``retry_after_max`` (it sleeps the cap and retries);
        # ours stops instead, so the name is kept away from the base class.
        kwargs.pop("retry_after_max", None)
        super().__init__(total, **kwargs)
        self.kenar_retry_after_max = retry_after_max

    @classmethod
    def default(
        cls,
        total: int = DEFAULT_RETRIES,
        *,
        retry_after_max: float = DEFAULT_RETRY_AFTER_MAX,
        statuses: Collection[int] = RETRYABLE_STATUSES,
    ) -> KenarRetry:
        """The documented default policy with ``total`` retries."""
        return cls(
            total=total,
            connect=total,
            read=0,
            status=total,
            other=0,
            redirect=0,
            allowed_methods=None,  # POST too: only failures that were never processed count
            status_forcelist=frozenset(statuses),
            backoff_factor=DEFAULT_BACKOFF_FACTOR,
            backoff_max=DEFAULT_BACKOFF_MAX,
            backoff_jitter=DEFAULT_BACKOFF_JITTER,
            raise_on_status=False,
            raise_on_redirect=False,
            retry_after_max=retry_after_max,
        )

    def new(self, **kwargs: Any) -> Self:
        retry = super().new(**kwargs)
        retry.kenar_retry_after_max = self.kenar_retry_after_max
        return retry

    def get_backoff_time(self) -> float:
        # urllib3 does not wait before the first retry; a refused connection or a 503
        # retried at once mostly fails again, so we back off from the first one on.
        errors = len(list(takewhile(lambda h: h.redirect_location is None, reversed(self.history))))
        if errors == 0:
            return 0.0
        delay = min(self.backoff_max, self.backoff_factor * 2 ** (errors - 1))
        return float(delay + random.random() * self.backoff_jitter)  # noqa: S311 - jitter, not crypto

    def get_retry_after(self, response: Any) -> Optional[float]:
        return parse_retry_after(response.headers.get("Retry-After"))

    def increment(
        self,
        method: Optional[str] = None,
        url: Optional[str] = None,
        response: Any = None,
        error: Optional[Exception] = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Self:
        if response is not None and error is None:
            retry_after = self.get_retry_after(response)
            if retry_after is not None and retry_after > self.kenar_retry_after_max:
                # Waiting longer than the cap is not what a caller wants, and retrying sooner
                # than the server asked would only be refused again: give the answer back.
                raise MaxRetryError(_pool, url or "", ResponseError("Retry-After exceeds the cap"))
        return super().increment(method, url, response, error, _pool, _stacktrace)


def build_retry(retries: Union[int, Retry, None], retry_after_max: float) -> Retry:
    """The policy for ``Configuration.retries``: None → default, int → default with n retries.

    A ``urllib3.Retry`` given by the user is used as it is, except that it never raises on
    the last status or redirect itself: the SDK turns that final answer into a typed
    exception (``TooManyRequestsException``, ``ServiceException``...).
    """
    if (
        not isinstance(retry_after_max, (int, float))
        or isinstance(retry_after_max, bool)
        or not 0 <= retry_after_max < float("inf")
    ):
        raise ApiValueError(
            f"retry_after_max must be a non-negative finite number of seconds, not {retry_after_max!r}"
        )
    if retries is None:
        return KenarRetry.default(retry_after_max=retry_after_max)
    if isinstance(retries, Retry):
        return retries.new(raise_on_status=False, raise_on_redirect=False)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ApiValueError(f"retries must be a non-negative int or a urllib3.Retry, not {retries!r}")
    return KenarRetry.default(retries, retry_after_max=retry_after_max)
