"""Many async calls at once share the event loop: their synchronous work is spread over its turns.

The calls run on an event loop that counts its turns (each run of the loop's step that
runs the callbacks ready then); an ``Auth`` records the turn in which each call is built
and in which it sees its answer. Nothing here is timed: the assertions are about turns,
which a slow machine does not change.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import random
import threading
import warnings
import weakref
from typing import Any, Coroutine, Dict, Iterator, List, TypeVar

import pytest
from servers import RecordingServer, Reply
from wire_cases import ACCESS_TOKEN, API_KEY

from kenar_api_client import AsyncApiClient, AsyncEventsApi, Configuration
from kenar_api_client._loop_pacer import DEFAULT_PER_TURN, LoopPacer, pacer
from kenar_api_client.auth import Auth, SendFlow

CALLS = 120
SEND = {"message": "hello", "target_type": "POST", "target_resource_id": "wZ3kT9pQ"}
T = TypeVar("T")


class TurnCountingLoop(asyncio.SelectorEventLoop):
    """An asyncio loop that counts its turns (``_run_once`` runs one: the callbacks ready then)."""

    turn = 0

    def _run_once(self) -> None:
        self.turn += 1
        super()._run_once()  # type: ignore[misc]


def on_counting_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    loop = TurnCountingLoop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def turn() -> int:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, TurnCountingLoop)
    return loop.turn


class RecordingTurns(Auth):
    """Records the turn at which each call is built and at which its answer is seen."""

    def __init__(self) -> None:
        self.built: List[int] = []
        self.answered: List[int] = []

    def auth_flow(self, request: Any, send: SendFlow) -> Any:
        self.built.append(turn())
        answer = yield from send(request)
        self.answered.append(turn())
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
        recorder = RecordingTurns()
        async with AsyncApiClient(configuration, transport=library, auth=recorder) as client:  # type: ignore[arg-type]
            events = AsyncEventsApi(client)
            calls = [events.events_send_event(**SEND) for _ in range(count)]
            results = await asyncio.wait_for(asyncio.gather(*calls), 120)
        assert len(results) == count
        return recorder

    return on_counting_loop(main())


def test_calls_started_together_are_built_a_few_per_turn_with_other_tasks_running_between(
    library: str, server_answering_together: RecordingServer
) -> None:
    recorder = calls_at_once(server_answering_together.url, library, CALLS)

    assert len(recorder.built) == CALLS
    assert len(server_answering_together.requests) == CALLS
    assert most_in_one_turn(recorder.built) <= DEFAULT_PER_TURN
    # The builds span many turns: between the batches, the loop ran whatever else was ready.
    assert len(set(recorder.built)) >= CALLS // DEFAULT_PER_TURN


def test_answers_arriving_together_are_read_a_few_per_turn(
    library: str, server_answering_together: RecordingServer
) -> None:
    recorder = calls_at_once(server_answering_together.url, library, CALLS)

    assert len(recorder.answered) == CALLS
    assert most_in_one_turn(recorder.answered) <= DEFAULT_PER_TURN


def test_calls_one_after_another_never_wait_for_a_ticket() -> None:
    async def main() -> List[bool]:
        pacer = LoopPacer(per_turn=2)
        waited = []
        for _ in range(20):
            wait = pacer.ready(asyncio.get_running_loop())
            waited.append(wait is not None)
            if wait is not None:
                await wait
            await asyncio.sleep(0.001)  # a call's network wait: several turns
        return waited

    assert not any(on_counting_loop(main()))


def test_pieces_of_one_turn_never_exceed_the_tickets_whatever_the_order_of_arrivals() -> None:
    # Callers arrive at every point of every turn, in bursts and alone, each asking for a
    # few tickets (as a call does: before building, after its answer, again on a retry):
    # 500 such patterns, fixed by their seeds. In no turn do more than per_turn go on.
    async def pattern(seed: int) -> Dict[int, int]:
        chance = random.Random(seed)  # noqa: S311 - a reproducible pattern, not a secret
        pacer = LoopPacer(per_turn=3)
        went_on: Dict[int, int] = collections.defaultdict(int)

        async def caller(pauses: List[int]) -> None:
            for pause in pauses:
                for _ in range(pause):
                    await asyncio.sleep(0)
                wait = pacer.ready(asyncio.get_running_loop())
                if wait is not None:
                    await wait
                went_on[turn()] += 1

        callers = [
            [chance.randrange(4) for _ in range(chance.randrange(1, 5))]
            for _ in range(chance.randrange(2, 12))
        ]
        await asyncio.gather(*(caller(pauses) for pauses in callers))
        assert sum(went_on.values()) == sum(len(pauses) for pauses in callers)
        return went_on

    busiest = [max(on_counting_loop(pattern(seed)).values()) for seed in range(500)]
    assert max(busiest) == 3


def test_cancelled_waiting_calls_give_their_tickets_up() -> None:
    async def main() -> List[str]:
        pacer = LoopPacer(per_turn=2)
        order: List[str] = []

        async def call(name: str) -> None:
            wait = pacer.ready(asyncio.get_running_loop())
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

    order = on_counting_loop(main())
    assert order == ["a0", "a1", "b0", "b1", "b2"]


def test_clients_on_one_loop_share_its_tickets_and_each_loop_has_its_own() -> None:
    async def main() -> LoopPacer:
        loop = asyncio.get_running_loop()
        assert pacer(loop) is pacer(loop)
        return pacer(loop)

    assert asyncio.run(main()) is not asyncio.run(main())


def test_a_finished_loop_is_not_kept_alive_by_its_pacer(library: str) -> None:
    # Apps and tests run many short loops (asyncio.run per job, a loop per test): a loop
    # whose calls went through the pacer is freed once it is closed and dropped.
    server = RecordingServer().start()
    configuration = Configuration(host=server.url, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN)
    loops: List[weakref.ReferenceType[asyncio.AbstractEventLoop]] = []

    async def main() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        async with AsyncApiClient(configuration, transport=library) as client:  # type: ignore[arg-type]
            await asyncio.gather(*(AsyncEventsApi(client).events_send_event(**SEND) for _ in range(20)))

    try:
        for _ in range(3):
            asyncio.run(main())
    finally:
        server.stop()
    gc.collect()
    assert [loop() for loop in loops] == [None, None, None]


def test_a_loop_that_ends_while_calls_wait_for_their_turn_is_freed(library: str) -> None:
    server = RecordingServer().start()
    configuration = Configuration(host=server.url, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN)
    loops: List[weakref.ReferenceType[asyncio.AbstractEventLoop]] = []

    async def main() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        client = AsyncApiClient(configuration, transport=library, keepalive=False)  # type: ignore[arg-type]
        # Not awaited: asyncio.run cancels them, most of them still waiting for a ticket.
        pending = [asyncio.ensure_future(AsyncEventsApi(client).events_send_event(**SEND)) for _ in range(60)]
        await asyncio.sleep(0)
        assert not any(task.done() for task in pending)

    try:
        # httpx's happy-eyeballs connect, cancelled at its start, leaves a coroutine never
        # awaited; pytest would keep the warning, and through it that coroutine's loop.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for _ in range(3):
                asyncio.run(main())
            gc.collect()
    finally:
        server.stop()
    assert [loop() for loop in loops] == [None, None, None]
