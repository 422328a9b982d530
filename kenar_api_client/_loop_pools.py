"""One connection pool per event loop and per process, as the async transports keep them.

An async HTTP library's connections belong to the event loop that opened them, and after
a fork to the parent: each running loop (and each process) gets its own pool, made on
first use there. So a client made at import time, or shared by tests that each run their
own loop, just works; nothing is closed at garbage collection.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from typing import Callable, Generic, List, Optional, Tuple, TypeVar

from kenar_api_client.exceptions import ClientClosedError

P = TypeVar("P")


class LoopPools(Generic[P]):
    """The pools of one async client, by event loop; ``close()`` refuses later use."""

    def __init__(self, make: Callable[[], P]) -> None:
        self._make = make
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, P] = weakref.WeakKeyDictionary()
        self._pid = os.getpid()
        self._inherited: List[object] = []
        self.closed = False

    def current(self) -> P:
        """The running loop's pool, made now if it has none; ``ClientClosedError`` once closed."""
        if self.closed:
            raise ClientClosedError("this AsyncApiClient is closed: make a new one to go on calling")
        if os.getpid() != self._pid:
            # Forked: the parent's sockets are not ours to use, nor to close. The parent's pools
            # are kept, untouched: collected, they would unregister their sockets from the
            # epoll instance the two processes share, and the parent would wait forever.
            self._inherited.append(list(self._pools.values()))
            self._pools = weakref.WeakKeyDictionary()
            self._pid = os.getpid()
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = self._make()
        return pool

    def close(self) -> Tuple[Optional[P], List[P]]:
        """Refuse later use; the running loop's pool (to close there) and the other loops' (dropped)."""
        self.closed = True
        pools, self._pools = list(self._pools.items()), weakref.WeakKeyDictionary()
        try:
            running: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        here = [pool for loop, pool in pools if loop is running]
        return (here[0] if here else None), [pool for loop, pool in pools if loop is not running]
