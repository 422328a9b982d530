"""Serving in the foreground until Ctrl+C, SIGTERM or the command's own stop()."""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any, Dict, Optional, Type

from kenar_api_client.cli.output import EXIT_INTERRUPTED, EXIT_OK

_POLL_SECONDS = 0.1  # how soon wait() notices a signal


class Foreground:
    """Within the block, SIGINT and SIGTERM only note that the command must stop.

    Servers handle requests in their own threads while the main thread sits in :meth:`wait`,
    so a signal never lands inside a request (where a WSGI server would swallow it as an
    application error) and never leaves a traceback; one signal is enough. Outside the main
    thread no handler can be installed: then only :meth:`stop` ends the wait.
    """

    def __init__(self) -> None:
        self.signal: Optional[int] = None
        self._stopped = threading.Event()
        self._previous: Dict[int, Any] = {}

    def __enter__(self) -> Foreground:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._note)
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()

    def _note(self, signum: int, frame: Optional[FrameType]) -> None:
        # Runs between any two bytecodes of the main thread, maybe inside a lock: take none.
        self.signal = signum

    def stop(self) -> None:
        """End :meth:`wait` (from any thread), e.g. once enough events arrived."""
        self._stopped.set()

    def wait(self) -> int:
        """Block until a signal or :meth:`stop`; the exit status: 130 after Ctrl+C, else 0."""
        while self.signal is None and not self._stopped.wait(_POLL_SECONDS):
            pass
        return EXIT_INTERRUPTED if self.signal == signal.SIGINT else EXIT_OK
