"""One ApiClient shared by many threads: answers never cross, and the pool bounds the connections."""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, List, Tuple

import pytest
from conftest import ACCESS_TOKEN, API_KEY
from fault_servers import wait_until
from servers import RecordedRequest, RecordingServer, Reply

from kenar_api_client import (
    ApiClient,
    ApiConnectionError,
    ApiException,
    ApiTimeoutError,
    Configuration,
    EventsApi,
)

THREADS = 32
CALLS_PER_THREAD = 200
POOL_SIZE = 8


def echo(request: RecordedRequest) -> Reply:
    """Answer with the request's own ``message`` and its credentials, so mix-ups show."""
    return Reply(
        200,
        {
            "echo": request.query["message"][0],
            "target": request.query["target_resource_id"][0],
            "key": request.headers["X-API-Key"],
        },
    )


@pytest.fixture
def echo_server() -> Iterator[RecordingServer]:
    server = RecordingServer(echo).start()
    yield server
    server.stop()


def test_a_shared_client_under_load_keeps_answers_apart_and_connections_bounded(
    echo_server: RecordingServer,
) -> None:
    configuration = Configuration(
        host=echo_server.url, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN
    )
    configuration.connection_pool_maxsize = POOL_SIZE
    configuration.timeout = (30.0, 60.0)  # safety nets: a loaded machine may hold a connection long
    start = threading.Barrier(THREADS)

    def worker(thread_index: int) -> Tuple[List[str], List[BaseException]]:
        mismatches: List[str] = []
        errors: List[BaseException] = []
        start.wait()
        for call_index in range(CALLS_PER_THREAD):
            message = f"t{thread_index}-c{call_index}-پیام"
            try:
                answer: Any = api.events_send_event(
                    message=message, target_type="USER", target_resource_id=f"user-{thread_index}"
                )
            except Exception as error:  # every failure is a test failure
                errors.append(error)
                continue
            expected = {"echo": message, "target": f"user-{thread_index}", "key": API_KEY}
            if answer != expected:
                mismatches.append(f"sent {message!r}, got {answer!r}")
        return mismatches, errors

    started = time.monotonic()
    with ApiClient(configuration) as client:
        api = EventsApi(client)
        with ThreadPoolExecutor(THREADS) as executor:
            results = list(executor.map(worker, range(THREADS)))
    elapsed = time.monotonic() - started

    mismatches = [m for thread_mismatches, _ in results for m in thread_mismatches]
    errors = [e for _, thread_errors in results for e in thread_errors]
    assert errors == [], f"{len(errors)} calls failed, first: {errors[0]!r}"
    assert mismatches == [], f"{len(mismatches)} answers crossed, first: {mismatches[0]}"
    assert len(echo_server.requests) == THREADS * CALLS_PER_THREAD
    # block=True: callers wait for a free connection rather than opening more than the pool.
    assert echo_server.max_open_connections <= POOL_SIZE
    assert echo_server.connections <= POOL_SIZE
    assert elapsed < 60  # "did not hang"; on a normal machine this takes a few seconds


def test_waiting_for_a_free_connection_is_bounded_by_the_timeout() -> None:
    """With every pooled connection busy on a slow answer, a caller gives up in time."""
    # The first answer is held back until the second caller has given up: the only
    # connection is busy for as long as that takes, however slow the machine.
    release = threading.Event()

    def held_back(request: RecordedRequest) -> Reply:
        release.wait(60)
        return Reply(200, {})

    server = RecordingServer(held_back).start()
    configuration = Configuration(host=server.url, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN)
    configuration.connection_pool_maxsize = 1
    configuration.timeout = 60.0
    try:
        with ApiClient(configuration) as client:
            api = EventsApi(client)
            with ThreadPoolExecutor(1) as executor:
                future = executor.submit(api.events_send_event, message="first")
                try:
                    # The first call holds the only connection once the server has its request.
                    assert wait_until(lambda: len(server.requests) == 1)
                    begun = time.monotonic()
                    with pytest.raises(ApiException) as caught:
                        api.events_send_event(message="second", _request_timeout=0.2)
                    waited = time.monotonic() - begun
                finally:
                    release.set()
                assert future.result() == {}
        assert isinstance(caught.value, ApiTimeoutError)
        assert "connection_pool_maxsize" in str(caught.value)
        assert waited >= 0.15  # it did wait for a connection, up to its timeout
        assert [r.query["message"][0] for r in server.requests] == ["first"]
    finally:
        server.stop()


def test_close_lets_the_calls_waiting_for_a_pooled_connection_go_on_at_once() -> None:
    """Closing a client does not strand the threads waiting for its only connection."""
    server = RecordingServer(lambda request: Reply(200, {}, delay=0.5)).start()
    configuration = Configuration(host=server.url, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN)
    configuration.connection_pool_maxsize = 1
    configuration.timeout = (15.0, 15.0)  # so a caller may wait 30 s for a free connection
    client = ApiClient(configuration)
    api = EventsApi(client)
    outcomes: List[Any] = []

    def call(index: int) -> None:
        try:
            outcomes.append(api.events_send_event(message=f"call {index}"))
        except ApiException as error:
            outcomes.append(error)

    threads = [threading.Thread(target=call, args=(index,)) for index in range(3)]
    try:
        for thread in threads:
            thread.start()
        # One call holds the only connection (the server has its request); give the other
        # two a moment to queue for it. (Whether they have queued yet or not, each must end
        # as asserted below: the moment only makes the queued case the likely one.)
        assert wait_until(lambda: len(server.requests) >= 1)
        time.sleep(0.2)
        client.close()
        for thread in threads:
            thread.join(timeout=10)  # "did not wait out the 30 s": still generous
        assert not any(thread.is_alive() for thread in threads)
        # Each either went on with a new connection or was told the client was closed.
        assert len(outcomes) == 3
        for outcome in outcomes:
            assert outcome == {} or (
                isinstance(outcome, ApiConnectionError) and not isinstance(outcome, ApiTimeoutError)
            ), outcome
    finally:
        client.close()
        server.stop()


@pytest.mark.parametrize("cls", [Configuration, ApiClient])
def test_the_default_is_created_once_however_many_threads_ask_for_it(cls: Any) -> None:
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show
    created: List[Any] = []
    try:
        for _ in range(20):
            cls.set_default(None)
            start = threading.Barrier(8)

            def ask(start: threading.Barrier = start) -> None:
                start.wait()
                created.append(cls.get_default())

            askers = [threading.Thread(target=ask) for _ in range(8)]
            for thread in askers:
                thread.start()
            for thread in askers:
                thread.join()
            assert len({id(default) for default in created[-8:]}) == 1
    finally:
        sys.setswitchinterval(switch_interval)
        for default in {id(d): d for d in created}.values():
            if isinstance(default, ApiClient):
                default.close()
