"""``KeyedLocks``: one lock per key, alive only while some thread holds or waits for it."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Dict, Iterator


class _Slot:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0


class KeyedLocks:
    """``with locks.hold(key):`` serializes the threads working on ``key``, and only those.

    A key's lock exists while in use, so memory is bounded by the threads, not by every key seen.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._slots: Dict[str, _Slot] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Hold ``key``'s lock for the ``with`` block."""
        with self._guard:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot()
            slot.users += 1
        try:
            with slot.lock:
                yield
        finally:
            with self._guard:
                slot.users -= 1
                if slot.users == 0:
                    del self._slots[key]

    def try_hold(self, key: str) -> bool:
        """Take ``key``'s lock if it is free, without waiting; then :meth:`release` it."""
        with self._guard:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._slots[key] = _Slot()
            if not slot.lock.acquire(blocking=False):
                if slot.users == 0:
                    del self._slots[key]
                return False
            slot.users += 1
            return True

    def release(self, key: str) -> None:
        """Let go of a lock taken with :meth:`try_hold`."""
        with self._guard:
            slot = self._slots[key]
            slot.lock.release()
            slot.users -= 1
            if slot.users == 0:
                del self._slots[key]

    def __len__(self) -> int:
        with self._guard:
            return len(self._slots)
