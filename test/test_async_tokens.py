"""The TokenManager from async code: the user's token on every call, its I/O off the event loop, once.

Also what a 401 does in a managed client, sync and async: one refresh, and none for a
refused API key or for a token a refresh did not help.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, List, Optional

import pytest
from oauth_helpers import manager_with_user, refresh_requests
from servers import RecordingServer, Reply

import kenar_api_client
from kenar_api_client import (
    AsyncApiClient,
    AsyncEventsApi,
    Configuration,
    InvalidApiKeyError,
    UnauthorizedException,
)
from kenar_api_client.oauth import MemoryTokenStore, SubscriptionKeeper, TokenManager
from kenar_api_client.oauth.keeper_async import AsyncSubscriptionKeeper
from kenar_api_client.oauth.managed_async import AsyncManagedApiClient
from kenar_api_client.oauth.store import Versioned
from kenar_api_client.sandbox import DEMO_API_KEY, DEMO_POST_TOKEN, Sandbox

USER = "user-42"
SEND = {"message": "hi", "target_type": "POST", "target_resource_id": DEMO_POST_TOKEN}


def configuration(url: str, api_key: str = DEMO_API_KEY) -> Configuration:
    return Configuration(host=url, api_key={"APIKey": api_key})


class WatchedStore(MemoryTokenStore):
    """A memory store that notes the thread of every read and write (a real store blocks)."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: List[threading.Thread] = []

    def get(self, key: str) -> Optional[Versioned]:
        self.threads.append(threading.current_thread())
        return super().get(key)

    def put(self, key: str, value: str, expected_version: Optional[int] = None) -> Optional[int]:
        self.threads.append(threading.current_thread())
        return super().put(key, value, expected_version)


def test_many_tasks_share_one_refresh_and_the_store_is_never_used_on_the_loop(sandbox: Sandbox) -> None:
    store = WatchedStore()
    tokens = manager_with_user(sandbox, store)
    sandbox.clock.advance(3600 - 60)  # the token is due for its refresh-ahead
    fresh_process = TokenManager(tokens.oauth, store)  # nothing in memory: reads the store
    loop_threads: List[threading.Thread] = []

    async def main() -> List[Any]:
        loop_threads.append(threading.current_thread())
        async with AsyncApiClient(configuration(sandbox.url)) as api_client:
            client = fresh_process.api_client_for(USER, api_client)
            assert isinstance(client, AsyncManagedApiClient)
            events = AsyncEventsApi(client)
            return await asyncio.gather(*(events.events_send_event(**SEND) for _ in range(50)))

    store.threads.clear()
    assert asyncio.run(main()) == [{}] * 50
    assert refresh_requests(sandbox) == 1  # fifty tasks, one refresh
    assert len(sandbox.sent_events) == 50
    assert store.threads, "the store was used"
    assert loop_threads[0] not in store.threads  # every read and write ran in a worker thread


def test_a_fresh_token_in_memory_costs_no_store_read(sandbox: Sandbox) -> None:
    store = WatchedStore()
    tokens = manager_with_user(sandbox, store)
    tokens.token(USER)  # in this process's memory now
    store.threads.clear()

    async def main() -> None:
        async with AsyncApiClient(configuration(sandbox.url)) as api_client:
            events = AsyncEventsApi(tokens.api_client_for(USER, api_client))
            for _ in range(5):
                await events.events_send_event(**SEND)

    asyncio.run(main())
    assert store.threads == []
    assert len(sandbox.sent_events) == 5


def test_a_401_to_the_user_s_token_refreshes_once_and_sends_again(sandbox: Sandbox) -> None:
    tokens = manager_with_user(sandbox)
    sandbox.revoke_access_token(tokens.access_token(USER))  # Kenar drops the access token alone

    async def main() -> Any:
        async with AsyncApiClient(configuration(sandbox.url)) as api_client:
            return await AsyncEventsApi(tokens.api_client_for(USER, api_client)).events_send_event(**SEND)

    assert asyncio.run(main()) == {}
    assert refresh_requests(sandbox) == 1
    assert [r.status for r in sandbox.requests] == [401, 200]


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_refused_api_key_raises_its_own_error_and_never_refreshes(sandbox: Sandbox, flavour: str) -> None:
    tokens = manager_with_user(sandbox)
    bad = configuration(sandbox.url, api_key="not-the-app-s-key-123")

    def call() -> None:
        if flavour == "sync":
            with kenar_api_client.ApiClient(bad) as api_client:
                events = kenar_api_client.EventsApi(tokens.api_client_for(USER, api_client))
                events.events_send_event(**SEND)
            return

        async def send() -> None:
            async with AsyncApiClient(bad) as api_client:
                await AsyncEventsApi(tokens.api_client_for(USER, api_client)).events_send_event(**SEND)

        asyncio.run(send())

    for _ in range(3):
        with pytest.raises(InvalidApiKeyError) as caught:
            call()
    assert caught.value.status == 401
    assert "not-the-app-s-key-123" not in str(caught.value)
    assert refresh_requests(sandbox) == 0  # the user's token was never rotated for it


def test_a_401_a_refresh_does_not_fix_costs_one_refresh_not_one_per_call(sandbox: Sandbox) -> None:
    tokens = manager_with_user(sandbox)
    refusing = RecordingServer(lambda request: Reply(401, {"code": 16, "message": "unauthenticated"})).start()
    try:
        with kenar_api_client.ApiClient(configuration(refusing.url)) as api_client:
            for _ in range(5):
                with pytest.raises(UnauthorizedException):
                    kenar_api_client.EventsApi(tokens.api_client_for(USER, api_client)).events_send_event(
                        **SEND
                    )
    finally:
        refusing.stop()
    assert refresh_requests(sandbox) == 1
    assert len(refusing.requests) == 6  # the first call sent twice, then once each


def test_the_async_keeper_runs_rounds_off_the_loop(sandbox: Sandbox) -> None:
    tokens = manager_with_user(sandbox)
    with kenar_api_client.ApiClient(configuration(sandbox.url)) as api_client:
        keeper = SubscriptionKeeper(tokens, api_client)
        keeper.keep(USER, {"event_type": "POST_UPDATE"})

        async def main() -> Any:
            rounds = AsyncSubscriptionKeeper(keeper)
            report = await rounds.renew_due()
            async with rounds.running_every(0.01):
                assert rounds.running
                await asyncio.sleep(0.05)
            assert not rounds.running
            return report

        report = asyncio.run(main())
    assert report.ok
    assert [s.event_type for s in sandbox.subscriptions] == ["POST_UPDATE"]
