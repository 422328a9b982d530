"""The SDK's default clock: real time, or a sandbox's clock (in any process) named by ``KENAR_CLOCK_FILE``.

A sandbox whose clock was moved (``POST /_sandbox/clock {"advance": 3600}``) writes the
clock's offset from real time, in seconds, to its clock file: one line, such as
``3600.0``. A process started with ``KENAR_CLOCK_FILE`` pointing at that file reads the
same time from :func:`now`, the default clock of ``OAuthClient`` and ``TokenManager``, so
its tokens expire, and its kept subscriptions fall due, when the sandbox says they do.

Following it is cheap, a few microseconds: the file is read on every call (no cache that
could miss a change), and written by replacing it, so a reader never sees half of it. A
file that is missing or unreadable counts as no offset, and is logged once.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time

from kenar_api_client import _env

logger = logging.getLogger("kenar_api_client")

_MAX_FILE_BYTES = 64
_lock = threading.Lock()
_reported = ""  # the last clock file logged as unreadable


def now() -> float:
    """Epoch seconds, like ``time.time()``, plus the offset of the ``KENAR_CLOCK_FILE`` clock if set."""
    path = os.environ.get(_env.CLOCK_FILE, "").strip()
    if not path:
        return time.time()
    return time.time() + offset(path)


def offset(path: str) -> float:
    """The offset the clock file ``path`` holds, in seconds; 0.0 if it cannot be read."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            text = os.read(descriptor, _MAX_FILE_BYTES)
        finally:
            os.close(descriptor)
    except OSError as exc:
        return _unreadable(path, exc.strerror or type(exc).__name__)
    try:
        value = float(text)
    except ValueError:
        return _unreadable(path, "it holds no number of seconds")
    if not math.isfinite(value):
        return _unreadable(path, "it holds no finite number of seconds")
    return value


def _unreadable(path: str, why: str) -> float:
    global _reported
    with _lock:
        first, _reported = _reported != path, path
    if first:
        logger.warning("%s=%r cannot be read (%s): using real time", _env.CLOCK_FILE, path, why)
    return 0.0


def write_offset(path: str, seconds: float) -> None:
    """Write ``seconds`` to the clock file ``path`` by replacing it: a reader sees the old or the new."""
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{threading.get_ident()}")
    with open(temporary, "w", encoding="ascii") as file:
        file.write(f"{seconds!r}\n")
    os.replace(temporary, path)
