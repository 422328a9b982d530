"""Shared fixtures: a recording loopback server and clients configured to talk to it."""

from __future__ import annotations

from typing import Any, Callable, Iterator, List

import pytest
from checkout_tools import load_generator
from postgres_server import PostgresServer, start_or_skip
from redis_server import RedisServer
from servers import RecordingServer

import kenar_api_client
from kenar_api_client import ApiClient, Configuration, EventsApi
from kenar_api_client.sandbox import Sandbox

load_generator()

API_KEY = "test-api-key-4f1c9a7e"
ACCESS_TOKEN = "test-access-token-b83d2e61"


@pytest.fixture(autouse=True)
def _clean_kenar_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests must not pick up a developer's real credentials or base URL."""
    for name in (
        "KENAR_BASE_URL",
        "KENAR_API_KEY",
        "KENAR_ACCESS_TOKEN",
        "KENAR_APP_SLUG",
        "KENAR_CLIENT_SECRET",
        "KENAR_REDIRECT_URI",
        "KENAR_OAUTH_URL",
        "KENAR_TOKEN_STORE",
    ):
        monkeypatch.delenv(name, raising=False)
    yield
    kenar_api_client.Configuration.set_default(None)
    kenar_api_client.ApiClient.set_default(None)


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    recording_server = RecordingServer().start()
    yield recording_server
    recording_server.stop()


@pytest.fixture
def configuration(server: RecordingServer) -> kenar_api_client.Configuration:
    return kenar_api_client.Configuration(
        host=server.url, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN
    )


@pytest.fixture
def api_client(configuration: kenar_api_client.Configuration) -> Iterator[kenar_api_client.ApiClient]:
    with kenar_api_client.ApiClient(configuration) as client:
        yield client


@pytest.fixture
def events_api(api_client: kenar_api_client.ApiClient) -> kenar_api_client.EventsApi:
    return kenar_api_client.EventsApi(api_client)


@pytest.fixture
def make_api() -> Iterator[Callable[..., EventsApi]]:
    """``make_api(url, timeout=..., retries=...)``: an EventsApi on its own client and config.

    The default timeout is a safety net for calls meant to succeed, generous for a loaded
    machine; a test of timing out passes its own short one.
    """
    clients: List[ApiClient] = []

    def make(url: str, **settings: Any) -> EventsApi:
        configuration = Configuration(host=url, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN)
        settings.setdefault("timeout", 30.0)
        for name, value in settings.items():
            setattr(configuration, name, value)
        client = ApiClient(configuration)
        clients.append(client)
        return EventsApi(client)

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of the module's own, on a free loopback port (stopped after the module)."""
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the module's own (skipped where none is installed and none is required)."""
    server = start_or_skip()
    yield server
    server.stop()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A sandbox with its defaults for one test (modules that need another define their own)."""
    with Sandbox() as running:
        yield running


@pytest.fixture(params=["threads", "aiohttp"])
def keeper_transport(request: pytest.FixtureRequest) -> str:
    """How a subscription keeper under test runs its rounds: threads, or an event loop over aiohttp."""
    return str(request.param)
