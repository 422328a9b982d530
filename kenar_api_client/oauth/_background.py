"""``BackgroundTasks``: keyed jobs run at their time by a few daemon threads, started on first use.

The token manager refreshes tokens ahead of expiry, and retries failed refreshes and store
writes, here rather than in an API call's thread. One job per key is waiting at a time;
scheduling a key again keeps the earlier time. Threads start when there is work and end after
a minute without any; after a fork the child starts its own.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from typing import Callable, Dict, List, Optional, Set, Tuple

logger: logging.Logger = logging.getLogger(__name__)

Job = Callable[[], None]
#: A thread with nothing to do for this long ends: an idle manager keeps no threads.
IDLE_SECONDS = 60.0


class BackgroundTasks:
    """Runs ``job`` for ``key`` at ``when`` (``time.monotonic()``) in one of ``workers`` daemon threads."""

    def __init__(self, workers: int, name: str) -> None:
        self.workers = workers
        self.name = name
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._condition = threading.Condition(threading.Lock())
        self._heap: List[Tuple[float, int, str]] = []
        self._jobs: Dict[str, Tuple[float, Job]] = {}
        self._running: Set[str] = set()
        self._parked: Set[str] = set()  # due while a job of the same key runs
        self._threads: List[threading.Thread] = []
        self._order = itertools.count()
        self._closed = False

    def busy(self, key: str) -> bool:
        """Whether a job for ``key`` waits to run or is running."""
        return key in self._jobs or key in self._running

    def schedule(self, key: str, when: float, job: Job) -> None:
        """Run ``job`` at ``when``, unless a job for ``key`` already waits (the earlier time wins)."""
        if self._pid != os.getpid():  # a forked child: the parent's threads are not here
            self._reset()
        with self._condition:
            if self._closed:
                return
            waiting = self._jobs.get(key)
            if waiting is not None and waiting[0] <= when:
                return
            self._jobs[key] = (when, job)
            heapq.heappush(self._heap, (when, next(self._order), key))
            if len(self._threads) < self.workers:
                self._start_thread()
            self._condition.notify()

    def cancel(self, key: str) -> None:
        """Forget the job waiting for ``key``, if any (one already running finishes)."""
        with self._condition:
            self._jobs.pop(key, None)

    def close(self) -> None:
        """Stop: waiting jobs are dropped, threads end after the job they run."""
        with self._condition:
            self._closed = True
            self._jobs.clear()
            self._heap.clear()
            self._condition.notify_all()

    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._work, name=f"{self.name}-{len(self._threads) + 1}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while True:
            with self._condition:
                job = self._next_job()
                if job is None:
                    return
                key, run = job
            try:
                run()
            except Exception:
                logger.exception("a background token job failed")
            finally:
                with self._condition:
                    self._running.discard(key)
                    if key in self._parked:
                        self._parked.discard(key)
                        parked = self._jobs.get(key)
                        if parked is not None:
                            heapq.heappush(self._heap, (parked[0], next(self._order), key))
                    self._condition.notify_all()

    def _next_job(self) -> Optional[Tuple[str, Job]]:
        """The next due job, waiting for it; None once closed, or after ``IDLE_SECONDS`` with
        nothing to do (the thread ends; ``schedule`` starts another). Called holding the condition."""
        while not self._closed:
            if not self._heap:
                if not self._condition.wait(IDLE_SECONDS) and not self._heap:
                    self._threads.remove(threading.current_thread())
                    return None
                continue
            when, _, key = self._heap[0]
            job = self._jobs.get(key)
            if job is None or job[0] != when:  # cancelled or moved earlier: a stale heap entry
                heapq.heappop(self._heap)
                continue
            delay = when - time.monotonic()
            if delay > 0:
                self._condition.wait(delay)
                continue
            heapq.heappop(self._heap)
            if key in self._running:  # one job per key at a time: it runs when that one ends
                self._parked.add(key)
                continue
            del self._jobs[key]
            self._running.add(key)
            return key, job[1]
        return None
