"""``SandboxClock``: the time every expiry check of a sandbox reads, which tests can move forward."""

from __future__ import annotations

import math
import threading
import time
from datetime import datetime, timezone

from kenar_api_client._times import LATEST_TIME


class SandboxClock:
    """Real time plus an offset: ``advance(3600)`` makes an hour pass at once.

    Thread-safe. Times are epoch seconds, like ``time.time()``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0

    def now(self) -> float:
        """The sandbox's current time in epoch seconds."""
        with self._lock:
            return time.time() + self._offset

    def utc(self) -> datetime:
        """The sandbox's current time as an aware UTC ``datetime``."""
        return as_utc(self.now())

    def advance(self, seconds: float) -> float:
        """Move the clock ``seconds`` forward (never back) and return the new time."""
        check_seconds(seconds, "seconds")
        if seconds < 0:
            raise ValueError(f"the clock only moves forward: cannot advance by {seconds} seconds")
        with self._lock:
            if time.time() + self._offset + seconds > LATEST_TIME:
                raise ValueError(f"advancing by {seconds} seconds would take the clock past the year 9999")
            self._offset += seconds
            return time.time() + self._offset

    def set(self, timestamp: float) -> float:
        """Set the clock to epoch time ``timestamp`` (it keeps running from there); returns it."""
        check_time(timestamp, "timestamp")
        with self._lock:
            self._offset = timestamp - time.time()
            return time.time() + self._offset

    def __repr__(self) -> str:
        return f"SandboxClock({self.utc().isoformat()})"


def as_utc(timestamp: float) -> datetime:
    """Epoch seconds as an aware UTC ``datetime``."""
    return datetime.fromtimestamp(timestamp, timezone.utc)


def check_time(value: float, name: str) -> None:
    """Raise ``ValueError`` unless ``value`` is epoch seconds from 1970 to the year 9999."""
    check_seconds(value, name)
    if not 0 <= value <= LATEST_TIME:
        raise ValueError(f"{name} must be a time from 1970 to the year 9999 in epoch seconds, got {value!r}")


def check_seconds(value: float, name: str) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
