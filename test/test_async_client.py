"""AsyncApiClient and the AsyncXApi classes: the same calls, requests, errors and limits as the sync client.

Every test runs its own event loop (``asyncio.run``) against real servers on 127.0.0.1,
so the suite needs no async test plugin; every test that makes calls runs over both
transports, httpx and aiohttp.
"""

from __future__ import annotations

import asyncio
import gzip
import inspect
import json
import logging
import os
import subprocess
import sys
import threading
import warnings
from typing import Any, Awaitable, Callable, Dict, Iterator, List, TypeVar

import aiohttp
import httpx
import pytest
from fault_servers import RawServer, free_port, http_response, stall
from servers import RecordingServer, Reply
from test_official_wire import RECORDS, assert_same_request
from wire_cases import ACCESS_TOKEN, API_KEY, typed

import kenar_api_client
from kenar_api_client import (
    ApiConnectionError,
    ApiTimeoutError,
    ApiValueError,
    AsyncApiClient,
    AsyncEventsApi,
    ClientClosedError,
    Configuration,
    NotFoundException,
    ServiceException,
    TooManyRequestsException,
)
from kenar_api_client.api.limited_api import AsyncLimitedApi, LimitedApi

T = TypeVar("T")
SEND = {"message": "سلام", "target_type": "POST", "target_resource_id": "wZ3kT9pQ"}


def run(coroutine: Awaitable[T]) -> T:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def config(url: str, **settings: Any) -> Configuration:
    configuration = Configuration(host=url, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN)
    for name, value in settings.items():
        setattr(configuration, name, value)
    return configuration


TRANSPORTS = ["httpx", "aiohttp"]


@pytest.fixture(params=TRANSPORTS)
def library(request: pytest.FixtureRequest) -> str:
    """The async transport a test runs over."""
    return str(request.param)


@pytest.fixture
def make_client(library: str) -> Callable[..., AsyncApiClient]:
    def make(configuration: Configuration, **options: Any) -> AsyncApiClient:
        return AsyncApiClient(configuration, transport=library, **options)  # type: ignore[arg-type]

    return make


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    started = RecordingServer().start()
    yield started
    started.stop()


# -- the surface ----------------------------------------------------------------------------


def api_class_names() -> List[str]:
    return sorted(
        name for name in kenar_api_client.__all__ if name.endswith("Api") and not name.startswith("Async")
    )


def test_every_api_class_has_an_async_twin_with_the_same_methods_in_the_same_shape() -> None:
    pairs = [
        (getattr(kenar_api_client, n), getattr(kenar_api_client, "Async" + n)) for n in api_class_names()
    ]
    pairs.append((LimitedApi, AsyncLimitedApi))
    assert len(pairs) == 10  # one per tag of the spec, and LimitedApi
    operations = 0
    for sync_class, async_class in pairs:
        sync_methods = {
            n for n, _ in inspect.getmembers(sync_class, inspect.isfunction) if not n.startswith("_")
        }
        async_methods = {
            n
            for n, _ in inspect.getmembers(async_class, inspect.iscoroutinefunction)
            if not n.startswith("_")
        }
        assert sync_methods == async_methods, sync_class.__name__
        for name in sync_methods:
            sync_parameters = list(inspect.signature(getattr(sync_class, name)).parameters)
            assert list(inspect.signature(getattr(async_class, name)).parameters) == sync_parameters
        operations += len([n for n in sync_methods if not n.endswith(("_with_http_info", "_content"))])
    assert operations == 68 + 9  # every operation, LimitedApi's nine included


@pytest.mark.parametrize("record", RECORDS, ids=[f"{r['api']}.{r['method']}" for r in RECORDS])
def test_same_call_same_request_same_result_as_the_official_client(
    record: Dict[str, Any], server: RecordingServer, make_client: Callable[..., AsyncApiClient]
) -> None:
    async def call() -> Any:
        async with make_client(config(server.url)) as client:
            if record["api"] == "LimitedApi":
                with pytest.warns(DeprecationWarning, match="use PaymentApi"):
                    api: Any = AsyncLimitedApi(client)
            else:
                api = getattr(kenar_api_client, "Async" + record["api"])(client)
            return await getattr(api, record["method"])(**record["kwargs"])

    server.queue_reply(Reply(body=record["answer"]))
    result = run(call())
    assert_same_request(server, record["request"])
    assert type(result).__name__ == record["result_type"]
    if isinstance(result, dict):  # an empty-object answer: the JSON as it came
        assert result == record["result"]
    else:
        assert typed(result.to_dict()) == record["to_dict"]


def test_the_three_forms_return_data_an_api_response_and_the_unread_answer(
    server: RecordingServer, make_client: Callable[..., AsyncApiClient], library: str
) -> None:
    server.queue_reply(Reply(body={"a": 1}), Reply(body={"a": 2}), Reply(404, {"code": 5, "message": "gone"}))

    async def call() -> Any:
        async with make_client(config(server.url)) as client:
            events = AsyncEventsApi(client)
            data = await events.events_send_event(**SEND)
            info = await events.events_send_event_with_http_info(**SEND)
            raw = await events.events_send_event_without_preload_content(**SEND)
            if isinstance(raw, httpx.Response):
                body = await raw.aread()
                await raw.aclose()
            else:
                body = await raw.read()
                raw.release()
            return data, info, raw, body

    data, info, raw, body = run(call())
    assert data == {"a": 1}
    assert (info.status_code, info.data, info.raw_data) == (200, {"a": 2}, b'{"a": 2}')
    # The transport's own answer, unread and unchecked: no exception for the 404.
    if library == "httpx":
        assert isinstance(raw, httpx.Response)
        assert raw.status_code == 404
    else:
        assert isinstance(raw, aiohttp.ClientResponse)
        assert raw.status == 404
    assert json.loads(body) == {"code": 5, "message": "gone"}


def test_importing_the_package_and_using_the_sync_client_never_loads_httpx(server: RecordingServer) -> None:
    script = (
        "import sys, kenar_api_client as k\n"
        f"c = k.Configuration(host={server.url!r}, api_key={{'APIKey': 'key-123456'}})\n"
        "k.EventsApi(k.ApiClient(c)).events_send_event(message='m')\n"
        "assert 'httpx' not in sys.modules, 'httpx was imported'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert server.last.query == {"message": ["m"]}


# -- errors, retries, limits: the same pipeline -------------------------------------------------


def test_an_error_answer_raises_the_typed_exception_with_kenars_status(
    server: RecordingServer, make_client: Callable[..., AsyncApiClient]
) -> None:
    server.queue_reply(Reply(404, {"code": 5, "message": "no such post"}))

    async def call() -> None:
        async with make_client(config(server.url)) as client:
            await AsyncEventsApi(client).events_send_event(**SEND)

    with pytest.raises(NotFoundException) as caught:
        run(call())
    assert caught.value.status == 404
    assert caught.value.data is not None
    assert caught.value.data.message == "no such post"


def test_a_500_to_a_post_is_never_sent_again(
    server: RecordingServer, make_client: Callable[..., AsyncApiClient]
) -> None:
    server.queue_reply(Reply(500, {"code": 13, "message": "boom"}))

    async def call() -> None:
        async with make_client(config(server.url)) as client:
            await AsyncEventsApi(client).events_send_event(**SEND)

    with pytest.raises(ServiceException):
        run(call())
    assert len(server.requests) == 1


def test_a_429_is_waited_out_without_blocking_the_event_loop(
    server: RecordingServer, make_client: Callable[..., AsyncApiClient]
) -> None:
    server.queue_reply(Reply(429, {"code": 8}, headers={"Retry-After": "1"}), Reply(body={"ok": True}))
    ticks: List[int] = []

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            ticks.append(1)
            await asyncio.sleep(0.01)

    async def call() -> Any:
        stop = asyncio.Event()
        ticking = asyncio.ensure_future(ticker(stop))
        async with make_client(config(server.url)) as client:
            result = await AsyncEventsApi(client).events_send_event(**SEND)
        stop.set()
        await ticking
        return result

    assert run(call()) == {"ok": True}
    assert len(server.requests) == 2
    # The loop ran other tasks while the call waited its second: a blocking sleep lets none run.
    assert len(ticks) > 5


def test_a_retry_after_beyond_the_cap_is_not_slept_through(
    server: RecordingServer, make_client: Callable[..., AsyncApiClient]
) -> None:
    server.queue_reply(Reply(429, {"code": 8}, headers={"Retry-After": "3600"}))

    async def call() -> None:
        async with make_client(config(server.url)) as client:
            await AsyncEventsApi(client).events_send_event(**SEND)

    with pytest.raises(TooManyRequestsException) as caught:
        run(call())
    assert caught.value.retry_after == 3600
    assert len(server.requests) == 1


def test_a_refused_connection_is_retried_then_raised_typed(caplog: pytest.LogCaptureFixture) -> None:
    host, port = free_port()
    configuration = config(f"http://{host}:{port}")
    configuration.retries = kenar_api_client.retry.KenarRetry.default(2)
    caplog.set_level(logging.WARNING, logger="kenar_api_client.rest")

    async def call() -> None:
        async with AsyncApiClient(configuration) as client:
            await AsyncEventsApi(client).events_send_event(**SEND)

    with pytest.raises(ApiConnectionError) as caught:
        run(call())
    assert not isinstance(caught.value, ApiTimeoutError)
    assert caught.value.stage == "connect"
    assert not caught.value.request_sent
    assert "could not connect" in str(caught.value)
    assert len([r for r in caplog.records if r.getMessage().startswith("Retrying")]) == 2


def test_a_read_timeout_is_typed_and_not_retried(make_client: Callable[..., AsyncApiClient]) -> None:
    stalling = RawServer(stall).start()
    try:

        async def call() -> None:
            async with make_client(config(stalling.url)) as client:
                await AsyncEventsApi(client).events_send_event(**SEND, _request_timeout=0.3)

        with pytest.raises(ApiTimeoutError) as caught:
            run(call())
    finally:
        stalling.stop()
    assert caught.value.request_sent
    assert stalling.connections == 1  # it may have been processed: sent once


def test_credentials_a_server_echoes_are_scrubbed_from_the_exception(
    make_client: Callable[..., AsyncApiClient],
) -> None:
    echo = RecordingServer(
        lambda request: Reply(
            400,
            {"code": 3, "message": f"bad key {request.headers['X-API-Key']}"},
            headers={"Content-Type": "application/json", "X-Echo": str(request.headers["Authorization"])},
        )
    ).start()
    try:

        async def call() -> None:
            async with make_client(config(echo.url)) as client:
                await AsyncEventsApi(client).events_send_event(**SEND)

        with pytest.raises(kenar_api_client.BadRequestException) as caught:
            run(call())
    finally:
        echo.stop()
    shown = f"{caught.value} {caught.value.body} {caught.value.headers} {caught.value.data!r}"
    assert API_KEY not in shown
    assert ACCESS_TOKEN not in shown
    assert "[REDACTED]" in shown


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(
    server: RecordingServer, make_client: Callable[..., AsyncApiClient]
) -> None:
    async def call() -> None:
        async with make_client(config(server.url)) as client:
            await AsyncEventsApi(client).events_send_event(**SEND, _headers={"X-Note": "a\r\nX-Evil: 1"})

    with pytest.raises(ApiValueError, match="line break"):
        run(call())
    assert server.requests == []


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_an_answer_over_max_response_bytes_is_refused(
    encoding: str, make_client: Callable[..., AsyncApiClient]
) -> None:
    body = b'{"x": "' + b"a" * 200_000 + b'"}'
    headers = {"Content-Type": "application/json"}
    if encoding == "gzip":
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    big = RecordingServer(lambda request: Reply(200, body, headers=headers)).start()
    try:

        async def call() -> None:
            async with make_client(config(big.url, max_response_bytes=10_000)) as client:
                await AsyncEventsApi(client).events_send_event(**SEND)

        with pytest.raises(kenar_api_client.ApiException, match="max_response_bytes"):
            run(call())
    finally:
        big.stop()


# -- life cycle: pools, cancellation, close, loops, fork -----------------------------------------


def test_the_default_pool_carries_hundreds_of_calls_at_once(
    make_client: Callable[..., AsyncApiClient],
) -> None:
    # No answer leaves the server before all 200 requests have arrived: they can only all
    # arrive if the pool opened a connection for each, whatever the machine's speed.
    all_arrived = threading.Barrier(200, timeout=120)

    def when_all_arrived(request: Any) -> Reply:
        all_arrived.wait()
        return Reply(200, {})

    slow = RecordingServer(when_all_arrived).start()
    try:

        async def call() -> List[Any]:
            async with make_client(config(slow.url)) as client:
                events = AsyncEventsApi(client)
                return await asyncio.gather(*(events.events_send_event(**SEND) for _ in range(200)))

        assert run(call()) == [{}] * 200
    finally:
        slow.stop()
    assert slow.connections == 200  # one connection per call in flight: none waited for a free one
    assert make_client(config(slow.url)).transport.max_connections == 256


def test_a_cancelled_call_gives_its_connection_back(make_client: Callable[..., AsyncApiClient]) -> None:
    release = threading.Event()
    gate = RecordingServer(lambda request: Reply(200, {}, delay=0 if release.is_set() else 30)).start()
    try:

        async def call() -> Any:
            async with make_client(config(gate.url), max_connections=1) as client:
                events = AsyncEventsApi(client)
                first = asyncio.ensure_future(events.events_send_event(**SEND))
                while not gate.requests:
                    await asyncio.sleep(0.01)
                first.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await first
                release.set()
                # With the only connection still held, this would wait for a free one and fail.
                return await events.events_send_event(**SEND, _request_timeout=10)

        assert run(call()) == {}
    finally:
        gate.stop()
    assert len(gate.requests) == 2


def test_a_closed_client_refuses_calls_clearly(
    server: RecordingServer, make_client: Callable[..., AsyncApiClient]
) -> None:
    async def call() -> None:
        client = make_client(config(server.url))
        await AsyncEventsApi(client).events_send_event(**SEND)
        await client.close()
        assert client.closed
        await AsyncEventsApi(client).events_send_event(**SEND)

    with pytest.raises(ClientClosedError, match="closed"):
        run(call())
    assert len(server.requests) == 1


def test_one_client_serves_one_event_loop_after_another(
    server: RecordingServer, make_client: Callable[..., AsyncApiClient]
) -> None:
    client = make_client(config(server.url))
    events = AsyncEventsApi(client)
    assert run(events.events_send_event(**SEND)) == {}
    assert run(events.events_send_event(**SEND)) == {}  # a new loop: no "Event loop is closed"
    assert len(server.requests) == 2


def test_nothing_happens_at_garbage_collection(server: RecordingServer) -> None:
    assert "__del__" not in vars(AsyncApiClient)
    script = (
        "import asyncio, gc, kenar_api_client as k\n"
        f"c = k.Configuration(host={server.url!r}, api_key={{'APIKey': 'key-123456'}})\n"
        "client = k.AsyncApiClient(c)\n"
        "asyncio.run(k.AsyncEventsApi(client).events_send_event(message='m'))\n"
        "del client\n"
        "gc.collect()\n"
    )
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    # An unclosed client leaves a ResourceWarning for its socket, as any unclosed socket does;
    # nothing tries to reach the closed loop.
    assert "Event loop is closed" not in done.stderr
    assert "RuntimeError" not in done.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_opens_its_own_connections(
    server: RecordingServer, make_client: Callable[..., AsyncApiClient]
) -> None:
    client = make_client(config(server.url))
    events = AsyncEventsApi(client)

    async def twice() -> None:
        await events.events_send_event(**SEND)
        await events.events_send_event(**SEND)

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(events.events_send_event(**SEND))  # the parent's pooled connection
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads alive (the server's)
            child = os.fork()
        if child == 0:  # pragma: no cover - the child process
            code = 0
            try:
                asyncio.run(twice())
            except BaseException:
                code = 1
            os._exit(code)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        loop.run_until_complete(events.events_send_event(**SEND))  # the parent's connection still works
    finally:
        loop.run_until_complete(client.close())
        loop.close()
    by_connection = [r.connection_id for r in server.requests]
    assert len(by_connection) == 4
    assert by_connection[0] == by_connection[3]  # the parent kept its connection
    assert by_connection[1] == by_connection[2] != by_connection[0]  # the child made its own


def test_an_invalid_pool_size_is_refused_naming_it(make_client: Callable[..., AsyncApiClient]) -> None:
    with pytest.raises(ApiValueError, match="max_connections"):
        make_client(config("http://127.0.0.1:9"), max_connections=0)


def test_a_http_answer_is_read_once_and_released_for_the_next_call(
    make_client: Callable[..., AsyncApiClient],
) -> None:
    answers: List[bytes] = [http_response(200, b"{}"), http_response(200, b'{"n": 2}')]

    def keep_alive(raw: RawServer, conn: Any) -> None:
        for answer in answers:
            if raw.read_request(conn) is None:
                return
            conn.sendall(answer)

    raw = RawServer(keep_alive).start()
    try:

        async def call() -> List[Any]:
            async with make_client(config(raw.url)) as client:
                events = AsyncEventsApi(client)
                return [await events.events_send_event(**SEND), await events.events_send_event(**SEND)]

        assert run(call()) == [{}, {"n": 2}]
    finally:
        raw.stop()
    assert raw.connections == 1  # keep-alive: both calls on one connection
