"""The async driver of a request pipeline: performs its steps on the running event loop.

Blocking steps (a token store, the OAuth server) go to a worker thread, so the loop never
waits on them; the synchronous work before sending and after the answer takes a ticket of
the loop's pacer, so hundreds of calls started or answered together spread over turns.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, Any, Dict, Hashable, TypeVar

from kenar_api_client._loop_pacer import pacer
from kenar_api_client._request import Request
from kenar_api_client._steps import Blocking, Flow, Release, Sleep

if TYPE_CHECKING:
    from kenar_api_client._transport import AsyncTransport

T = TypeVar("T")

#: Per event loop, the keyed ``Blocking`` calls under way on it, so that concurrent tasks
#: (of any client) asking for the same thing share one call.
_flights: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Dict[Hashable, asyncio.Future[Any]]] = (
    weakref.WeakKeyDictionary()
)


async def arun(flow: Flow[T], transport: AsyncTransport) -> T:
    """Drive ``flow`` to its result on the running event loop; blocking calls go to a thread."""
    value: Any = None
    loop = asyncio.get_running_loop()
    turns = pacer(loop)
    try:
        wait = turns.ready(loop)
        if wait is not None:
            await wait
        step = next(flow)
        while True:
            try:
                if type(step) is Request:
                    value = await transport.send(step)
                    # Only a read answer waits for its turn: an unread one holds a connection,
                    # which a call cancelled while waiting would never give back.
                    wait = turns.ready(loop) if step.preload else None
                    if wait is not None:
                        await wait
                elif type(step) is Sleep:
                    await asyncio.sleep(step.seconds)
                    value = None
                elif type(step) is Release:
                    await transport.release(step.response)
                    value = None
                elif type(step) is Blocking:
                    value = await _blocking(step)
                else:
                    raise TypeError(f"a pipeline yielded {step!r}, which is not a step")
            except Exception as failure:  # handed to the pipeline, which decides what it means
                step = flow.throw(failure)
                continue
            step = flow.send(value)
    except StopIteration as done:
        result: T = done.value
        return result
    finally:
        flow.close()


async def _blocking(step: Blocking) -> Any:
    if step.flight is None:
        return await asyncio.to_thread(step.function, *step.args)
    loop = asyncio.get_running_loop()
    flights = _flights.get(loop)
    if flights is None:
        flights = _flights[loop] = {}
    running = flights.get(step.flight)
    if running is not None:
        # Another task is making this very call: wait for its outcome (shielded, so that
        # this task being cancelled does not cancel the call the others wait for).
        return await asyncio.shield(running)
    key = step.flight
    future = asyncio.ensure_future(asyncio.to_thread(step.function, *step.args))
    flights[key] = future

    def finished(done: asyncio.Future[Any]) -> None:
        flights.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved, even if every waiter was cancelled meanwhile

    future.add_done_callback(finished)
    return await asyncio.shield(future)
