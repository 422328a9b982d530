"""The token manager: tokens refreshed ahead of expiry, once across threads and processes."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any, List, Tuple

import pytest
from oauth_helpers import (
    issued_token,
    manager_with_user,
    oauth_client,
    refresh_requests,
    unused_url,
    wait_until,
)
from redis_server import RedisServer
from servers import RecordingServer, Reply

import kenar_api_client
from kenar_api_client.exceptions import ApiConnectionError, UnauthorizedException
from kenar_api_client.oauth import (
    ConsentRequiredError,
    MemoryTokenStore,
    OAuthClient,
    OAuthToken,
    RedisTokenStore,
    SQLiteTokenStore,
    TokenManager,
)
from kenar_api_client.oauth.store import TokenStore
from kenar_api_client.sandbox import (
    DEMO_API_KEY,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REDIRECT_URI,
    DEMO_USER_ID,
    Sandbox,
)

USER = "user-42"


def _api_client(sandbox: Sandbox) -> kenar_api_client.ApiClient:
    return kenar_api_client.ApiClient(
        kenar_api_client.Configuration(host=sandbox.url, api_key={"APIKey": DEMO_API_KEY})
    )


def _send(api_client: kenar_api_client.ApiClient) -> object:
    return kenar_api_client.EventsApi(api_client).events_send_event(
        message="سلام", target_type="USER", target_resource_id=DEMO_USER_ID
    )


# -- handing out tokens ----------------------------------------------------------------------------


def test_a_due_token_is_handed_out_at_once_and_refreshed_in_the_background(sandbox: Sandbox) -> None:
    manager = manager_with_user(sandbox, leeway=300)
    refreshed_event = threading.Event()
    manager.on_refresh(lambda user_key, token: refreshed_event.set())
    first = manager.token(USER)
    sandbox.clock.advance(3600 - 301)
    assert manager.token(USER) == first
    assert refresh_requests(sandbox) == 0
    sandbox.clock.advance(2)  # due: less than the leeway left
    assert manager.token(USER) == first  # the call goes ahead with the valid token...
    assert refreshed_event.wait(30)  # ...while a background thread refreshes it
    refreshed = manager.token(USER)
    assert refreshed.access_token != first.access_token
    assert refresh_requests(sandbox) == 1
    assert manager.token(USER) == refreshed
    assert manager.stored(USER) == refreshed
    assert refresh_requests(sandbox) == 1


def test_refresh_listeners_hear_of_each_new_token(sandbox: Sandbox) -> None:
    manager = manager_with_user(sandbox)
    heard: List[Tuple[str, OAuthToken]] = []
    manager.on_refresh(lambda user_key, token: heard.append((user_key, token)))
    sandbox.clock.advance(3600)
    token = manager.token(USER)
    assert heard == [(USER, token)]


def test_no_token_means_consent_is_required(sandbox: Sandbox) -> None:
    manager = TokenManager(oauth_client(sandbox))
    with pytest.raises(ConsentRequiredError, match="no token is stored") as caught:
        manager.token("nobody")
    assert caught.value.user_key == "nobody"
    assert isinstance(caught.value, UnauthorizedException)


def test_invalid_grant_is_remembered_so_no_process_tries_again(sandbox: Sandbox, tmp_path: Path) -> None:
    store = SQLiteTokenStore(tmp_path / "tokens.sqlite3")
    manager = manager_with_user(sandbox, store)
    sandbox.revoke_consent(DEMO_USER_ID)
    sandbox.clock.advance(3600)
    with pytest.raises(ConsentRequiredError, match="invalid_grant"):
        manager.token(USER)
    assert refresh_requests(sandbox) == 1
    other_process = TokenManager(oauth_client(sandbox), SQLiteTokenStore(tmp_path / "tokens.sqlite3"))
    with pytest.raises(ConsentRequiredError, match="invalid_grant"):
        other_process.token(USER)
    assert refresh_requests(sandbox) == 1
    # A new consent brings the user back.
    other_process.save(USER, issued_token(sandbox))
    assert other_process.token(USER).access_token.startswith("ory_at_")


def test_a_failed_refresh_keeps_a_token_that_is_still_valid(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "kenar_api_client.oauth.manager")
    store = MemoryTokenStore()
    token = issued_token(sandbox)
    manager = TokenManager(oauth_client(sandbox, unused_url()), store)
    manager.save(USER, token)
    sandbox.clock.advance(3600 - 100)  # due, not expired
    assert manager.token(USER) == token
    wait_until(lambda: "could not refresh" in caplog.text, "the background refresh to fail")
    assert manager.token(USER) == token
    sandbox.clock.advance(200)  # expired
    with pytest.raises(ApiConnectionError):
        manager.token(USER)


def test_a_dead_processs_lease_runs_out_and_another_refreshes(sandbox: Sandbox) -> None:
    store = MemoryTokenStore()
    manager = manager_with_user(sandbox, store, lease_ttl=30)
    store.acquire_lease(f"refresh:{USER}", "a-process-that-died", 0.3)
    sandbox.clock.advance(3600)
    refreshed = manager.token(USER)
    assert refreshed.expires_at > sandbox.clock.now() + 3000
    assert refresh_requests(sandbox) == 1


# -- exactly one refresh under contention ---------------------------------------------------------


def _contend(manager: TokenManager, threads: int) -> List[str]:
    start = threading.Barrier(threads)
    results: List[str] = []
    lock = threading.Lock()

    def ask() -> None:
        start.wait()
        token = manager.access_token(USER)
        with lock:
            results.append(token)

    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    return results


def test_sixteen_threads_at_expiry_cause_one_refresh(sandbox: Sandbox) -> None:
    manager = manager_with_user(sandbox)
    original = manager.token(USER)
    sandbox.clock.advance(3601)
    results = _contend(manager, 16)
    assert refresh_requests(sandbox) == 1
    assert len(results) == 16
    assert set(results) == {manager.access_token(USER)}
    assert original.access_token not in results


def _store_from(spec: Tuple[str, ...]) -> TokenStore:
    if spec[0] == "sqlite":
        return SQLiteTokenStore(spec[1])
    return RedisTokenStore(url=spec[1], prefix=spec[2])


def _child(
    oauth_url: str, spec: Tuple[str, ...], offset: float, ready: Any, start: Any, results: Any
) -> None:
    """A worker process: two threads ask for the token at the same instant as everyone else."""
    clock = lambda: time.time() + offset  # noqa: E731 - the sandbox's clock, seen from here
    oauth = OAuthClient(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REDIRECT_URI, oauth_url, clock=clock)
    manager = TokenManager(oauth, _store_from(spec))

    def ask() -> None:
        start.wait()
        results.put(manager.access_token(USER))

    workers = [threading.Thread(target=ask) for _ in range(2)]
    for worker in workers:
        worker.start()
    ready.release()
    for worker in workers:
        worker.join(60)


def _threads_and_processes_at_expiry(sandbox: Sandbox, spec: Tuple[str, ...]) -> None:
    manager = manager_with_user(sandbox, _store_from(spec))
    original = manager.token(USER)
    sandbox.clock.advance(3601)
    offset = sandbox.clock.now() - time.time()
    context = multiprocessing.get_context("spawn")
    ready, start, results = context.Semaphore(0), context.Event(), context.Queue()
    processes = [
        context.Process(target=_child, args=(sandbox.oauth_url, spec, offset, ready, start, results))
        for _ in range(3)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        assert ready.acquire(timeout=300)
    answers: List[str] = []
    lock = threading.Lock()

    def ask() -> None:
        start.wait()
        token = manager.access_token(USER)
        with lock:
            answers.append(token)

    workers = [threading.Thread(target=ask) for _ in range(8)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(60)
    answers += [results.get(timeout=300) for _ in range(2 * len(processes))]
    for process in processes:
        process.join(60)
        assert process.exitcode == 0

    assert refresh_requests(sandbox) == 1
    assert len(answers) == 14
    stored = manager.stored(USER)
    assert stored is not None
    assert set(answers) == {stored.access_token}
    assert stored.access_token != original.access_token


def test_eight_threads_and_three_processes_on_sqlite_cause_one_refresh(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    _threads_and_processes_at_expiry(sandbox, ("sqlite", str(tmp_path / "tokens.sqlite3")))


def test_eight_threads_and_three_processes_on_redis_cause_one_refresh(
    sandbox: Sandbox, redis_server: RedisServer
) -> None:
    _threads_and_processes_at_expiry(
        sandbox, ("redis", redis_server.url, f"contention-{os.urandom(4).hex()}:")
    )


# -- the managed token on API calls ----------------------------------------------------------------


def test_one_line_gives_an_events_api_with_the_managed_token(sandbox: Sandbox) -> None:
    manager = manager_with_user(sandbox)
    with _api_client(sandbox) as api_client:
        events = kenar_api_client.EventsApi(manager.api_client_for(USER, api_client))
        assert _send(events.api_client) == {}
        sandbox.clock.advance(3601)  # expired: refreshed before the call, not after a 401
        assert _send(events.api_client) == {}
        managed = events.api_client
        assert managed.rest_client is api_client.rest_client  # one pool for every user
        managed.close()
        assert _send(api_client=manager.api_client_for(USER, api_client)) == {}
    assert refresh_requests(sandbox) == 1
    statuses = [r.status for r in sandbox.requests]
    assert statuses == [200, 200, 200]


def test_a_401_refreshes_once_and_repeats_the_call_once(sandbox: Sandbox) -> None:
    store = MemoryTokenStore()
    stale_process = manager_with_user(sandbox, store)
    other_process = TokenManager(oauth_client(sandbox), store)
    stale_process.token(USER)  # cached here
    other_process.refresh(USER)  # another process refreshed...
    sandbox.clock.advance(150)  # ...long enough ago that the old token is dead
    with _api_client(sandbox) as api_client:
        assert _send(stale_process.api_client_for(USER, api_client)) == {}
    # The store already held the new token: no second refresh, one repeat.
    assert refresh_requests(sandbox) == 1
    assert [r.status for r in sandbox.requests] == [401, 200]

    sandbox.revoke_access_token(other_process.access_token(USER))  # Kenar drops the access token alone
    with _api_client(sandbox) as api_client:
        assert _send(stale_process.api_client_for(USER, api_client)) == {}
    assert refresh_requests(sandbox) == 2
    assert [r.status for r in sandbox.requests] == [401, 200, 401, 200]


def test_a_second_401_is_not_repeated_again(sandbox: Sandbox) -> None:
    manager = manager_with_user(sandbox)
    api = RecordingServer(lambda request: Reply(401, {"code": 16, "message": "no"})).start()
    try:
        configuration = kenar_api_client.Configuration(host=api.url, api_key={"APIKey": DEMO_API_KEY})
        with kenar_api_client.ApiClient(configuration) as api_client, pytest.raises(UnauthorizedException):
            _send(manager.api_client_for(USER, api_client))
    finally:
        api.stop()
    assert len(api.requests) == 2
    first, second = (r.headers["Authorization"] for r in api.requests)
    assert first != second
    assert refresh_requests(sandbox) == 1


def test_a_401_with_the_consent_gone_raises_consent_required(sandbox: Sandbox) -> None:
    manager = manager_with_user(sandbox)
    sandbox.revoke_consent(DEMO_USER_ID)
    with _api_client(sandbox) as api_client, pytest.raises(ConsentRequiredError) as caught:
        _send(manager.api_client_for(USER, api_client))
    assert caught.value.__cause__ is not None
    assert [r.status for r in sandbox.requests] == [401]


def test_a_per_call_auth_override_is_left_alone(sandbox: Sandbox) -> None:
    manager = manager_with_user(sandbox)
    with _api_client(sandbox) as api_client:
        events = kenar_api_client.EventsApi(manager.api_client_for(USER, api_client))
        with pytest.raises(UnauthorizedException):
            events.events_send_event(
                message="x",
                target_type="USER",
                target_resource_id=DEMO_USER_ID,
                _request_auth={"in": "header", "type": "api_key", "key": "X-API-Key", "value": DEMO_API_KEY},
            )
    # Only the API key went out: 401, and no refresh was attempted for a token not sent.
    assert [r.status for r in sandbox.requests] == [401]
    assert refresh_requests(sandbox) == 0
