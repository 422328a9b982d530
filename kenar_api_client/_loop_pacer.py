"""Bounds how many calls do their synchronous work in one turn of an event loop.

A call's work between two suspensions (building and serializing the request, the HTTP
library's bookkeeping up to the socket, reading and typing the answer) is short, but
``asyncio.gather`` of hundreds of calls, or hundreds of answers arriving together, runs
all of it in one turn of the loop, and every other task on the loop (a health check, a
webhook delivery) waits for the whole turn. A call asks for a ticket at each of those
points: up to ``per_turn`` tickets are handed out in a turn at once; the rest wait, in
order, for later turns. A call alone on a loop does not wait (at most a turn, right after
another call): the ticket costs a counter.
"""

from __future__ import annotations

import asyncio
import collections
import weakref
from typing import Deque, Optional

#: Tickets per turn of the loop. A call's piece of work costs about 0.1 to 0.5 ms of CPU,
#: so a turn holding this many stays well under 50 ms, and throughput is unchanged (the
#: same work, in more turns).
DEFAULT_PER_TURN = 8


class LoopPacer:
    """The tickets of one event loop; make it with :func:`pacer`.

    Tickets are counted per period, from one run of ``_next_turn`` (a callback run once per
    turn while there is work) to the next. A period's tickets go to waiters (who run in the
    next turn) or, only when the period before handed out none, to callers at once. So the
    pieces of work run in any one turn of the loop, from two periods at most, never number
    more than ``per_turn``.
    """

    # No reference to the loop: the pacers are values of a weak dictionary keyed by it.
    __slots__ = ("_carried", "_given", "_per_turn", "_reset_scheduled", "_waiting")

    def __init__(self, per_turn: int = DEFAULT_PER_TURN) -> None:
        self._per_turn = per_turn
        self._given = 0  # tickets of this period
        self._carried = 0  # tickets of the period before, some of them used in this turn
        self._waiting: Deque[asyncio.Future[None]] = collections.deque()
        self._reset_scheduled = False

    def ready(self, loop: asyncio.AbstractEventLoop) -> Optional[asyncio.Future[None]]:
        """None if the caller may go on in this turn of ``loop`` (this pacer's); else a future to await."""
        if not self._carried and self._given < self._per_turn and not self._waiting:
            self._given += 1
            self._schedule_reset(loop)
            return None
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiting.append(waiter)
        self._schedule_reset(loop)
        return waiter

    def _schedule_reset(self, loop: asyncio.AbstractEventLoop) -> None:
        # Called in a turn, call_soon runs in the next one.
        if not self._reset_scheduled:
            self._reset_scheduled = True
            loop.call_soon(self._next_turn, loop)

    def _next_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        self._reset_scheduled = False
        self._carried, self._given = self._given, 0
        waiting = self._waiting
        while waiting and self._given < self._per_turn:
            waiter = waiting.popleft()
            if not waiter.done():  # a cancelled call gives its ticket up
                waiter.set_result(None)
                self._given += 1
        if waiting or self._given or self._carried:
            self._schedule_reset(loop)


_pacers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopPacer] = weakref.WeakKeyDictionary()


def pacer(loop: asyncio.AbstractEventLoop) -> LoopPacer:
    """The pacer of ``loop``, shared by every client on it (they share its turns)."""
    found = _pacers.get(loop)
    if found is None:
        found = _pacers[loop] = LoopPacer()
    return found
