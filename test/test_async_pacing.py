"""Many async calls at once share the event loop: their synchronous work is spread over its turns.

A task that counts the loop's turns (``await asyncio.sleep(0)`` once per turn) runs beside
the calls; an ``Auth`` records the turn in which each call is built and in which it sees
its answer. Nothing here is timed: the assertions are about turns, which a slow machine
does not change.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from typing import Any, Iterator, List

import pytest
from servers import RecordingServer, Reply
from wire_cases import ACCESS_TOKEN, API_KEY

from kenar_api_client import AsyncApiClient, AsyncEventsApi, Configuration
from kenar_api_client._loop_pacer import DEFAULT_PER_TURN, LoopPacer, pacer
from kenar_api_client.auth import Auth, SendFlow

CALLS = 120


class TurnCounter:
    """Counts the turns of the running loop while it runs."""

    def __init__(self) -> None:
        self.turn = 0
        self._stop = False

    async def run(self) -> None:
        while not self._stop:
            self.turn += 1
            await asyncio.sleep(0)

    def stop(self) -> None:
        self._stop = True


class RecordingTurns(Auth):
    """Records the turn at which each call is built and at which its answer is seen."""

    def __init__(self, counter: TurnCounter) -> None:
        self.counter = counter
        self.built: List[int] = []
        self.answered: List[int] = []

    def auth_flow(self, request: Any, send: SendFlow) -> Any:
        self.built.append(self.counter.turn)
        answer = yield from send(request)
        self.answered.append(self.counter.turn)
        return answer


@pytest.fixture(params=["httpx", "aiohttp"])
def library(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server_answering_together() -> Iterator[RecordingServer]:
    """Holds every answer until ``CALLS`` requests have arrived, then answers them all at once."""
    arrived = threading.Barrier(CALLS, timeout=60)

    def together(request: Any) -> Reply:
        arrived.wait()
        return Reply()

    started = RecordingServer(together).start()
    yield started
    started.stop()


def most_in_one_turn(turns: List[int]) -> int:
    return max(collections.Counter(turns).values())


def calls_at_once(url: str, library: str, count: int) -> RecordingTurns:
    configuration = Configuration(host=url, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN)

    async def main() -> RecordingTurns:
        counter = TurnCounter()
        recorder = RecordingTurns(counter)
        ticking = asyncio.ensure_future(counter.run())
        async with AsyncApiClient(configuration, transport=library, auth=recorder) as client:  # type: ignore[arg-type]
            events = AsyncEventsApi(client)
            send = {"message": "hello", "target_type": "POST", "target_resource_id": "wZ3kT9pQ"}
            calls = [events.events_send_event(**send) for _ in range(count)]
            results = await asyncio.wait_for(asyncio.gather(*calls), 120)
        counter.stop()
        await ticking
        assert len(results) == count
        return recorder

    return asyncio.run(main())


def test_calls_started_together_are_built_a_few_per_turn_with_other_tasks_running_between(
    library: str, server_answering_together: RecordingServer
) -> None:
    recorder = calls_at_once(server_answering_together.url, library, CALLS)

    assert len(recorder.built) == CALLS
    assert len(server_answering_together.requests) == CALLS
    assert most_in_one_turn(recorder.built) <= DEFAULT_PER_TURN
    # The other task ran between the batches: the builds span many turns.
    assert len(set(recorder.built)) >= CALLS // DEFAULT_PER_TURN


def test_answers_arriving_together_are_read_a_few_per_turn(
    library: str, server_answering_together: RecordingServer
) -> None:
    recorder = calls_at_once(server_answering_together.url, library, CALLS)

    assert len(recorder.answered) == CALLS
    assert most_in_one_turn(recorder.answered) <= DEFAULT_PER_TURN


def test_a_call_alone_on_the_loop_never_waits_for_a_turn(library: str) -> None:
    server = RecordingServer().start()
    try:
        recorder = calls_at_once(server.url, library, 1)
    finally:
        server.stop()
    assert recorder.built == [recorder.built[0]]


def test_cancelled_waiting_calls_give_their_tickets_up() -> None:
    async def main() -> List[str]:
        loop = asyncio.get_running_loop()
        pacer = LoopPacer(loop, per_turn=2)
        order: List[str] = []

        async def call(name: str) -> None:
            wait = pacer.ready()
            if wait is not None:
                await wait
            order.append(name)

        first = [asyncio.ensure_future(call(f"a{i}")) for i in range(6)]
        await asyncio.sleep(0)  # a0 and a1 got tickets; a2..a5 wait
        for task in first[2:]:
            task.cancel()
        later = [asyncio.ensure_future(call(f"b{i}")) for i in range(3)]
        await asyncio.wait_for(asyncio.gather(*later, return_exceptions=True), 10)
        await asyncio.gather(*first, return_exceptions=True)
        return order

    order = asyncio.run(main())
    assert order == ["a0", "a1", "b0", "b1", "b2"]


def test_clients_on_one_loop_share_its_tickets_and_each_loop_has_its_own() -> None:
    async def main() -> LoopPacer:
        loop = asyncio.get_running_loop()
        assert pacer(loop) is pacer(loop)
        return pacer(loop)

    assert asyncio.run(main()) is not asyncio.run(main())
