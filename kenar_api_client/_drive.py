"""The sync driver of a request pipeline: performs its steps in the calling thread."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, TypeVar

from kenar_api_client._request import Request
from kenar_api_client._steps import Blocking, Flow, Release, Sleep

if TYPE_CHECKING:
    from kenar_api_client._transport import SyncTransport

T = TypeVar("T")


def run(flow: Flow[T], transport: SyncTransport) -> T:
    """Drive ``flow`` to its result, doing each step here and now."""
    value: Any = None
    try:
        step = next(flow)
        while True:
            try:
                if type(step) is Request:
                    value = transport.send(step)
                elif type(step) is Sleep:
                    time.sleep(step.seconds)
                    value = None
                elif type(step) is Release:
                    transport.release(step.response)
                    value = None
                elif type(step) is Blocking:
                    value = step.function(*step.args)
                else:
                    raise TypeError(f"a pipeline yielded {step!r}, which is not a step")
            except Exception as failure:  # handed to the pipeline, which decides what it means
                step = flow.throw(failure)
                continue
            step = flow.send(value)
    except StopIteration as done:
        result: T = done.value
        return result
    except BaseException:
        flow.close()  # interrupted mid-step (KeyboardInterrupt...): let the flow end now
        raise
