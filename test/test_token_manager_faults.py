"""The token manager under single faults, in one process: the OAuth server silent or losing
answers, the store down or refusing a write at the worst moment, a code sent twice; and what a
call holding a valid token sees meanwhile (it never waits). The multi-process faults, with
processes killed at each step, are in test_token_fault_matrix.py."""

from __future__ import annotations

import logging
import sqlite3
import threading
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional

import pytest
from fault_servers import RawServer, stall
from frame_locals import failure_of, traceback_locals
from oauth_helpers import (
    SCOPES,
    browser_consent,
    issued_token,
    manager_with_user,
    oauth_client,
    refresh_requests,
    send_event,
    unused_url,
    wait_until,
)
from redis_server import RedisServer

from kenar_api_client.exceptions import ApiConnectionError, ApiValueError
from kenar_api_client.oauth import (
    ConsentRequiredError,
    InvalidGrantError,
    MemoryTokenStore,
    OAuthToken,
    RedisTokenStore,
    SQLiteTokenStore,
    SubscriptionKeeper,
    TokenManager,
    TokenStoreError,
    errors as oauth_errors,
)
from kenar_api_client.sandbox import DEMO_CLIENT_SECRET, DEMO_USER_ID, Sandbox

USER = "user-42"
MANAGER_LOGGER = "kenar_api_client.oauth.manager"


class AtStep(logging.Handler):
    """Runs ``action`` in the refreshing thread when the manager logs ``step`` (a ``kenar_step``)."""

    def __init__(self, step: str, action: Callable[[], Any]) -> None:
        super().__init__(logging.DEBUG)
        self.step = step
        self.action = action

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "kenar_step", None) == self.step:
            self.action()


@pytest.fixture
def at_step() -> Iterator[Callable[[str, Callable[[], Any]], None]]:
    logger = logging.getLogger(MANAGER_LOGGER)
    level = logger.level
    handlers: List[logging.Handler] = []

    def install(step: str, action: Callable[[], Any]) -> None:
        handler = AtStep(step, action)
        handlers.append(handler)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)

    yield install
    for handler in handlers:
        logger.removeHandler(handler)
    logger.setLevel(level)


class FileLock:
    """Another process's write transaction on a SQLite file: every write waits, then fails."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)

    def take(self) -> None:
        self.connection.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.connection.execute("ROLLBACK")


def _stored_access_token(store: Any, user_key: str = USER) -> Optional[str]:
    manager_view = TokenManager(_any_oauth(), store)  # another process: no memory of its own
    stored = manager_view.stored(user_key)
    return stored.access_token if stored is not None else None


def _any_oauth() -> Any:
    from kenar_api_client.oauth import OAuthClient

    return OAuthClient("slug", "secret-0123456789", "http://127.0.0.1/kenar/callback", unused_url())


def _no_replay_after_the_grace(sandbox: Sandbox) -> None:
    assert [r for r in sandbox.token_reuses if not r.within_grace] == []


# -- a call holding a valid token never waits ------------------------------------------------------


def test_calls_with_a_valid_token_never_wait_on_a_silent_oauth_server(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, MANAGER_LOGGER)
    silent = RawServer(stall).start()
    try:
        manager = TokenManager(oauth_client(sandbox, silent.url), lease_ttl=2, retry_interval=600)
        token = issued_token(sandbox)
        manager.save(USER, token)
        sandbox.clock.advance(3600 - 100)  # due for a refresh, valid for 100 s more
        handed: List[OAuthToken] = []
        calls = threading.Thread(target=lambda: handed.extend(manager.token(USER) for _ in range(50)))
        calls.start()
        calls.join(30)  # a safety net: the silent server would hold each call 15 s or more
        assert not calls.is_alive(), "the calls waited on the OAuth server"
        assert handed == [token] * 50
        wait_until(lambda: len(silent.requests) == 1, "the background refresh to reach the server")
        # It fails at its deadline, and is retried on the backoff schedule, not per call.
        wait_until(lambda: "could not refresh" in caplog.text, "the background refresh to fail")
        assert [manager.token(USER) for _ in range(50)] == [token] * 50
        assert silent.connections == 1
    finally:
        silent.stop()


def test_with_the_store_down_the_valid_token_in_memory_is_used(sandbox: Sandbox) -> None:
    redis = RedisServer()
    try:
        manager = manager_with_user(sandbox, RedisTokenStore(url=redis.url), retry_interval=600)
        token = manager.token(USER)
        sandbox.clock.advance(3600 - 100)  # due: the store would be read for a refresh
        redis.stop()
        assert [manager.token(USER) for _ in range(20)] == [token] * 20
        assert manager.token(USER, reload=True) == token  # even when asked to read the store
        assert refresh_requests(sandbox) == 0  # nothing is sent that could not be stored
        sandbox.clock.advance(200)  # expired: no valid token can be had
        with pytest.raises(TokenStoreError):
            manager.token(USER)
    finally:
        redis.stop()


def test_an_expired_token_whose_refresh_just_failed_fails_at_once_until_the_next_attempt(
    sandbox: Sandbox,
) -> None:
    dead = unused_url()
    manager = TokenManager(oauth_client(sandbox, dead), retry_interval=600)
    manager.save(USER, issued_token(sandbox))
    sandbox.clock.advance(3601)
    with pytest.raises(oauth_errors.TokenUnavailableError) as first:
        manager.token(USER)
    assert isinstance(first.value, ApiConnectionError)
    assert isinstance(first.value.__cause__, ApiConnectionError)  # the failure that just happened
    with pytest.raises(oauth_errors.TokenUnavailableError) as again:
        manager.token(USER)
    assert again.value.user_key == USER
    assert 500 < again.value.retry_in <= 660
    assert "could not connect" in again.value.why


def test_a_token_that_lives_shorter_than_the_leeway_is_refreshed_at_half_its_life(sandbox: Sandbox) -> None:
    manager = TokenManager(oauth_client(sandbox), leeway=300)
    manager.save(USER, OAuthToken.from_response(sandbox.issue_tokens(expires_in=60), sandbox.clock.now()))
    refreshed = threading.Event()
    manager.on_refresh(lambda user_key, token: refreshed.set())
    assert [manager.token(USER) for _ in range(10)]
    assert refresh_requests(sandbox) == 0
    sandbox.clock.advance(31)
    manager.token(USER)
    assert refreshed.wait(30)
    for _ in range(20):
        manager.token(USER)
    assert refresh_requests(sandbox) == 1


# -- a store write that fails right after the answer -----------------------------------------------


def test_a_store_write_failing_right_after_a_refresh_keeps_the_new_pair(
    sandbox: Sandbox, tmp_path: Path, at_step: Any
) -> None:
    path = tmp_path / "tokens.sqlite3"
    manager = manager_with_user(sandbox, SQLiteTokenStore(path, busy_timeout=0.2), retry_interval=0.2)
    old = manager.token(USER)
    lock = FileLock(path)
    at_step("refresh-answered", lock.take)  # another process takes the file right then
    sandbox.clock.advance(3601)

    new = manager.token(USER)  # expired: this call refreshes, and the write fails
    assert new.access_token != old.access_token
    assert send_event(sandbox, new.access_token) == {}
    assert [manager.token(USER) for _ in range(5)] == [new] * 5  # kept in memory, never the spent pair
    assert manager.refresh(USER, stale=old) == new  # a caller holding the old one gets it too
    assert _stored_access_token(SQLiteTokenStore(path)) == old.access_token  # not stored yet

    lock.release()
    wait_until(
        lambda: _stored_access_token(SQLiteTokenStore(path)) == new.access_token,
        "the new pair to be written once the store takes writes again",
    )
    other_process = TokenManager(oauth_client(sandbox), SQLiteTokenStore(path))
    assert other_process.token(USER) == new
    assert refresh_requests(sandbox) == 1
    _no_replay_after_the_grace(sandbox)
    assert sandbox.token_reuses == []


def test_a_store_write_failing_right_after_the_code_exchange_keeps_the_tokens(
    sandbox: Sandbox, tmp_path: Path, at_step: Any
) -> None:
    path = tmp_path / "tokens.sqlite3"
    manager = TokenManager(
        oauth_client(sandbox), SQLiteTokenStore(path, busy_timeout=0.2), retry_interval=0.2
    )
    lock = FileLock(path)
    at_step("exchange-answered", lock.take)
    request = manager.oauth.authorization_url(SCOPES)

    token = manager.complete_authorization(USER, browser_consent(request.url), request.state)
    assert send_event(sandbox, token.access_token) == {}
    assert manager.token(USER) == token
    assert _stored_access_token(SQLiteTokenStore(path)) is None

    lock.release()
    wait_until(
        lambda: _stored_access_token(SQLiteTokenStore(path)) == token.access_token,
        "the tokens to be written once the store takes writes again",
    )


def test_refresh_with_a_stale_token_refreshes_once_per_generation(sandbox: Sandbox) -> None:
    manager = manager_with_user(sandbox)
    first = manager.token(USER)
    results: List[OAuthToken] = []
    start = threading.Barrier(8)

    def report_stale() -> None:
        start.wait()
        results.append(manager.refresh(USER, stale=first))

    workers = [threading.Thread(target=report_stale) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert refresh_requests(sandbox) == 1
    (second,) = set(token.access_token for token in results)
    assert second != first.access_token
    assert manager.refresh(USER, stale=first).access_token == second  # an older generation: no refresh
    assert refresh_requests(sandbox) == 1


# -- a spent refresh token is never replayed after the grace ---------------------------------------


def test_a_refresh_token_whose_answers_were_all_lost_is_not_sent_again_after_the_grace(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    path = tmp_path / "tokens.sqlite3"
    manager = manager_with_user(sandbox, SQLiteTokenStore(path))
    sandbox.inject_fault("oauth2_token", "drop-after-read", times=20)  # Kenar rotates; no answer arrives
    sandbox.clock.advance(3600 - 100)
    token = manager.token(USER, reload=True)  # refreshes now, fails, keeps the valid token
    sent = refresh_requests(sandbox)
    assert sent >= 1
    _no_replay_after_the_grace(sandbox)
    sandbox.clear_faults()

    sandbox.clock.advance(200)  # the grace is over (and the token expired)
    other_process = TokenManager(oauth_client(sandbox), SQLiteTokenStore(path))
    with pytest.raises(oauth_errors.RefreshTokenSpentError) as caught:
        other_process.token(USER)
    assert isinstance(caught.value, ConsentRequiredError)  # send the user through consent
    assert refresh_requests(sandbox) == sent  # not sent again: Kenar would revoke the user's chain
    _no_replay_after_the_grace(sandbox)
    assert token.access_token


def test_a_trickling_refresh_is_cut_off_and_the_next_one_reuses_its_refresh_token_within_the_grace(
    sandbox: Sandbox,
) -> None:
    manager = manager_with_user(sandbox, lease_ttl=2, retry_interval=0.2)
    sandbox.inject_fault("oauth2_token", "trickle", delay=120)
    sandbox.clock.advance(3601)
    outcome: List[Any] = []
    asking = threading.Thread(target=lambda: outcome.append(_outcome(lambda: manager.token(USER))))
    asking.start()
    asking.join(60)  # a safety net: the trickle alone takes 120 s
    assert not asking.is_alive(), "the refresh outlived its share of the lease"
    assert isinstance(outcome[0], ApiConnectionError)
    wait_until(lambda: _outcome(lambda: manager.token(USER)).__class__ is OAuthToken, "the next attempt")
    token = manager.token(USER)
    assert send_event(sandbox, token.access_token) == {}
    assert [(r.within_grace, r.revoked_chain) for r in sandbox.token_reuses] == [(True, False)]


def _outcome(action: Callable[[], Any]) -> Any:
    try:
        return action()
    except Exception as error:
        return error


# -- a code is sent once ---------------------------------------------------------------------------


def test_a_code_is_sent_once_across_processes(sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "tokens.sqlite3"
    first = TokenManager(oauth_client(sandbox), SQLiteTokenStore(path))
    second = TokenManager(oauth_client(sandbox), SQLiteTokenStore(path))
    request = first.oauth.authorization_url(SCOPES)
    redirect = browser_consent(request.url)
    token = first.complete_authorization(USER, redirect, request.state)
    with pytest.raises(InvalidGrantError, match="already sent"):
        second.complete_authorization(USER, redirect, request.state)  # the browser came back twice
    assert len(sandbox.token_requests) == 1
    assert sandbox.token_reuses == []
    assert send_event(sandbox, token.access_token) == {}  # Kenar did not revoke it


# -- the memory a manager keeps -------------------------------------------------------------------


def _store_reads(redis_url: str) -> int:
    import redis

    stats = redis.Redis.from_url(redis_url).info("commandstats")
    return int(stats.get("cmdstat_hmget", {}).get("calls", 0))


def test_the_cache_keeps_the_most_recently_used_users_and_reads_no_store_for_them(
    sandbox: Sandbox, redis_server: RedisServer
) -> None:
    import redis

    store = RedisTokenStore(url=redis_server.url, prefix=f"lru-{id(sandbox)}:")
    manager = TokenManager(oauth_client(sandbox), store, cache_size=2)
    for user_key in ("a", "b", "c"):
        manager.save(user_key, issued_token(sandbox))
    redis.Redis.from_url(redis_server.url).config_resetstat()
    for _ in range(100):
        manager.token("b")
        manager.token("c")
    assert _store_reads(redis_server.url) == 0  # the hot path reads nothing
    manager.token("a")  # the least recently used one had gone: read once
    assert _store_reads(redis_server.url) == 1
    manager.token("a")
    manager.token("c")
    assert _store_reads(redis_server.url) == 1
    manager.token("b")  # evicted by "a"
    assert _store_reads(redis_server.url) == 2


def test_the_memory_a_manager_keeps_is_bounded_by_its_cache_size(sandbox: Sandbox, tmp_path: Path) -> None:
    manager = TokenManager(
        oauth_client(sandbox), SQLiteTokenStore(tmp_path / "tokens.sqlite3"), cache_size=50
    )
    token = issued_token(sandbox)
    tracemalloc.start()
    try:

        def kept_after(users: int) -> int:
            for number in range(users):
                manager.save(f"user-{number}", token)
                manager.token(f"user-{number}")
            snapshot = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(True, "*oauth/manager.py"), tracemalloc.Filter(True, "*oauth/token.py")]
            )
            return sum(stat.size for stat in snapshot.statistics("filename"))

        after_200 = kept_after(200)
        after_2000 = kept_after(2000)
    finally:
        tracemalloc.stop()
    assert after_2000 < after_200 * 1.2  # 10x the users, about the same memory


# -- user keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "a\nb", "\ud800", "x" * 201, 42, None])
def test_every_entry_point_refuses_a_user_key_save_refuses(
    sandbox: Sandbox, tmp_path: Path, bad: Any
) -> None:
    manager = TokenManager(oauth_client(sandbox), SQLiteTokenStore(tmp_path / "tokens.sqlite3"))
    keeper = SubscriptionKeeper(manager)
    calls: List[Callable[[], Any]] = [
        lambda: manager.save(bad, issued_token(sandbox)),
        lambda: manager.token(bad),
        lambda: manager.token(bad, reload=True),
        lambda: manager.access_token(bad),
        lambda: manager.refresh(bad),
        lambda: manager.stored(bad),
        lambda: manager.divar_user_id(bad),
        lambda: manager.forget(bad),
        lambda: manager.api_client_for(bad),
        lambda: manager.exchange_code(bad, "a-code-0123"),
        lambda: keeper.keep(bad, {"event_type": "POST_UPDATE"}),
        lambda: keeper.drop(bad, "POST_UPDATE"),
    ]
    if bad is not None:  # status(None) is every user's
        calls.append(lambda: keeper.status(bad))
    for call in calls:
        with pytest.raises(ApiValueError, match="user_key"):
            call()
    assert sandbox.token_requests == []


# -- listeners and the background ------------------------------------------------------------------


def test_refresh_listeners_run_in_the_background_thread_and_a_failing_one_changes_nothing(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    manager = manager_with_user(sandbox)
    heard: List[str] = []
    done = threading.Event()

    def failing(user_key: str, token: OAuthToken) -> None:
        raise RuntimeError("a listener bug")

    def recording(user_key: str, token: OAuthToken) -> None:
        heard.append(threading.current_thread().name)
        done.set()

    manager.on_refresh(failing)
    remove = manager.on_refresh(recording)
    sandbox.clock.advance(3600 - 100)
    manager.token(USER)
    assert done.wait(30)
    assert heard[0].startswith("kenar-token-refresh")
    assert "a token refresh listener failed" in caplog.text
    remove()
    sandbox.clock.advance(3600)
    manager.token(USER)
    assert len(heard) == 1


def test_close_stops_the_background_refreshes(sandbox: Sandbox) -> None:
    manager = manager_with_user(sandbox)
    manager.close()
    sandbox.clock.advance(3600 - 100)
    token = manager.token(USER)  # still handed out; nothing runs behind it any more
    assert token.access_token
    assert refresh_requests(sandbox) == 0


# -- no secret in a failure's local variables ------------------------------------------------------


def test_the_token_manager_sends_the_authorization_urls_redirect_uri_too(sandbox: Sandbox) -> None:
    other = "http://127.0.0.1:8766/kenar/callback"
    manager = TokenManager(oauth_client(sandbox))
    request = manager.oauth.authorization_url(SCOPES, redirect_uri=other)
    redirect = browser_consent(request.url)
    assert manager.complete_authorization(USER, redirect, request.state).redirect_uri == other
    # Another process did not make the URL: it is told the redirect URI.
    elsewhere = TokenManager(oauth_client(sandbox))
    request = manager.oauth.authorization_url(SCOPES, redirect_uri=other)
    token = elsewhere.complete_authorization(
        "user-43", browser_consent(request.url), request.state, redirect_uri=other
    )
    assert token.redirect_uri == other
    assert [r.status for r in sandbox.token_requests] == [200, 200]


def test_a_failed_managed_refresh_and_code_exchange_leave_no_secret_in_their_traceback_locals(
    sandbox: Sandbox,
) -> None:
    manager = manager_with_user(sandbox)
    stored = manager.token(USER)
    sandbox.revoke_consent(DEMO_USER_ID)
    sandbox.clock.advance(3600)
    error = failure_of(lambda: manager.token(USER))
    assert isinstance(error, ConsentRequiredError)
    assert isinstance(error.__cause__, InvalidGrantError)
    shown = traceback_locals(error, skip_file="test_token_manager_faults.py")
    for secret in (DEMO_CLIENT_SECRET, str(stored.refresh_token), stored.access_token):
        assert secret not in shown

    sandbox.set_consent()
    request = manager.oauth.authorization_url(SCOPES)
    redirect = browser_consent(request.url)
    code = manager.oauth.parse_redirect(redirect, request.state)
    unreachable = TokenManager(oauth_client(sandbox, unused_url()), MemoryTokenStore())
    error = failure_of(lambda: unreachable.complete_authorization(USER, redirect, request.state))
    assert isinstance(error, ApiConnectionError)
    shown = traceback_locals(error, skip_file="test_token_manager_faults.py")
    for secret in (DEMO_CLIENT_SECRET, code):
        assert secret not in shown
