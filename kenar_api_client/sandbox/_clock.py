"""``SandboxClock``: the time every expiry check of a sandbox reads, which tests can move forward."""

from __future__ import annotations

import math
import threading
import time
from datetime import datetime, timezone
from typing import Optional

from kenar_api_client import _clock
from kenar_api_client._times import LATEST_TIME
from kenar_api_client.sandbox._errors import SandboxError


class SandboxClock:
    """Real time plus an offset: ``advance(3600)`` makes an hour pass at once.

    Thread-safe. Times are epoch seconds, like ``time.time()``. With a ``file`` (or after
    :meth:`share`), the offset is also written to that file, now and on every change: a
    process started with ``KENAR_CLOCK_FILE=<file>`` then reads the same time from the
    SDK's default clock.
    """

    def __init__(self, file: Optional[str] = None) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self._file: Optional[str] = None
        if file is not None:
            self.share(file)

    @property
    def offset(self) -> float:
        """Seconds the clock is ahead of real time."""
        with self._lock:
            return self._offset

    @property
    def file(self) -> Optional[str]:
        """The file the offset is written to, or None."""
        return self._file

    def share(self, file: str) -> None:
        """Write the offset to ``file`` from now on, for other processes to follow."""
        if not isinstance(file, str) or not file:
            raise SandboxError("the clock file must be a path")
        with self._lock:
            self._file = file
            self._publish()

    def _publish(self) -> None:
        """Write the offset to the clock file, if there is one (with the lock held)."""
        if self._file is None:
            return
        try:
            _clock.write_offset(self._file, self._offset)
        except OSError as exc:
            raise SandboxError(f"cannot write the clock file {self._file!r}: {exc.strerror or exc}") from exc

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
            self._publish()
            return time.time() + self._offset

    def set(self, timestamp: float) -> float:
        """Set the clock to epoch time ``timestamp`` (it keeps running from there); returns it."""
        check_time(timestamp, "timestamp")
        with self._lock:
            self._offset = timestamp - time.time()
            self._publish()
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
