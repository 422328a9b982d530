"""Every SDK exception survives pickling, so that one raised in a worker process reaches the parent."""

from __future__ import annotations

import inspect
import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from typing import Any, List, Type

import pytest
from fault_servers import free_port
from urllib3 import HTTPHeaderDict

import kenar_api_client.exceptions
from kenar_api_client import (
    ApiClient,
    ApiConnectionError,
    ApiException,
    ApiTypeError,
    ApiValueError,
    ClientClosedError,
    Configuration,
    EventsApi,
    GoogleRpcStatus,
    OpenApiException,
    TooManyRequestsException,
)

EXCEPTION_CLASSES: List[Type[OpenApiException]] = sorted(
    (
        cls
        for _, cls in inspect.getmembers(kenar_api_client.exceptions, inspect.isclass)
        if issubclass(cls, OpenApiException) and not cls.__name__.startswith("_")
    ),
    key=lambda cls: cls.__name__,
)


def example(cls: Type[OpenApiException]) -> OpenApiException:
    """An instance of ``cls`` with every attribute it can carry set."""
    if issubclass(cls, ApiConnectionError):
        return cls(
            "POST http://127.0.0.1:9/x: could not connect ([Errno 111] Connection refused)", stage="connect"
        )
    if cls is ClientClosedError:
        return ClientClosedError("this AsyncApiClient is closed: make a new one to go on calling")
    if issubclass(cls, ApiException):
        headers = HTTPHeaderDict()
        headers.add("Set-Cookie", "a=1")
        headers.add("Set-Cookie", "b=2")
        extra = {"retry_after": 7.5} if cls is TooManyRequestsException else {}
        return cls(
            status=429,
            reason="Too Many Requests",
            body='{"code": 8, "message": "slow down"}',
            data=GoogleRpcStatus(code=8, message="slow down", details=[{"@type": "t", "reason": "R"}]),
            headers=headers,
            **extra,
        )
    if cls is ApiTypeError:
        return ApiTypeError("wrong type", path_to_item=["items", 0], valid_classes=(str,), key_type=False)
    if cls is OpenApiException:
        return OpenApiException("something")
    return cls("wrong value", path_to_item=["items", 0, "title"])  # type: ignore[call-arg]


def test_every_exception_class_is_covered() -> None:
    names = {cls.__name__ for cls in EXCEPTION_CLASSES}
    assert {"ApiConnectionError", "ApiTimeoutError", "TooManyRequestsException", "ApiTypeError"} <= names
    assert len(names) == 18  # with ClientClosedError and InvalidApiKeyError


@pytest.mark.parametrize("cls", EXCEPTION_CLASSES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_an_exception_round_trips_through_pickle_with_all_its_attributes(
    cls: Type[OpenApiException], protocol: int
) -> None:
    original = example(cls)
    copy = pickle.loads(pickle.dumps(original, protocol=protocol))

    assert type(copy) is cls
    assert str(copy) == str(original)
    assert copy.args == original.args
    assert vars(copy).keys() == vars(original).keys()
    for name, value in vars(original).items():
        assert getattr(copy, name) == value, name
    if isinstance(original, ApiException):
        assert isinstance(copy, ApiException)
        assert (copy.status, copy.reason, copy.body) == (original.status, original.reason, original.body)
        if original.headers is not None:
            assert isinstance(copy.headers, HTTPHeaderDict)
            assert copy.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
            assert isinstance(copy.data, GoogleRpcStatus)
            assert copy.data.details is not None
            assert copy.data.details[0]["reason"] == "R"
    if isinstance(original, TooManyRequestsException):
        assert copy.retry_after == 7.5  # type: ignore[attr-defined]
    if isinstance(original, (ApiTypeError, ApiValueError)):
        assert copy.path_to_item == original.path_to_item
    if isinstance(original, ApiConnectionError):
        assert isinstance(copy, ApiConnectionError)
        assert copy.request_sent is False  # what tells a caller it is safe to send again


def send_to(url: str) -> Any:
    """Run in a worker process: one call to ``url``, which refuses the connection."""
    with ApiClient(Configuration(host=url, api_key={"APIKey": "worker-key-1234"}, retries=0)) as client:
        return EventsApi(client).events_send_event(message="from a worker")


def refused_url() -> str:
    host, port = free_port()
    return f"http://{host}:{port}"


def test_a_connection_error_in_a_process_pool_worker_reaches_the_parent() -> None:
    # Before, the parent could not unpickle it: BrokenProcessPool, and the pool was unusable.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as executor:
        future = executor.submit(send_to, refused_url())
        with pytest.raises(ApiConnectionError) as caught:
            future.result(timeout=60)
        # The pool survived: it runs the next task.
        assert executor.submit(len, "abc").result(timeout=60) == 3
    assert caught.value.status == 0
    assert "could not connect" in str(caught.value)


def test_a_connection_error_in_a_multiprocessing_pool_reaches_the_parent() -> None:
    # Before, map_async(...).get() waited forever: the result never arrived.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        pending = pool.map_async(send_to, [refused_url()])
        with pytest.raises(ApiConnectionError) as caught:
            pending.get(timeout=60)
    assert caught.value.status == 0
