"""The keeper at scale: due index, concurrency, isolation of failures, claims, observability.

Against the sandbox (real HTTP on 127.0.0.1) and real stores; one slow user is made slow by a
proxy that holds its requests, so nothing here waits on wall time.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
from keeper_helpers import HoldingProxy, add_sellers, post_of, refreshes, registrations
from oauth_helpers import oauth_client

import kenar_api_client
from kenar_api_client.exceptions import ApiValueError
from kenar_api_client.oauth import (
    MemoryTokenStore,
    OAuthToken,
    SQLiteTokenStore,
    SubscriptionKeeper,
    TokenManager,
    TokenStoreError,
    Versioned,
)
from kenar_api_client.oauth.kept import SUBSCRIPTIONS_KEY_PREFIX, KeptSubscription, decode, encode
from kenar_api_client.oauth.renewal import RenewalPolicy
from kenar_api_client.sandbox import DEMO_API_KEY, Sandbox


def _client(url: str, pool: int = 16) -> kenar_api_client.ApiClient:
    configuration = kenar_api_client.Configuration(host=url, api_key={"APIKey": DEMO_API_KEY})
    configuration.connection_pool_maxsize = pool
    return kenar_api_client.ApiClient(configuration)


@pytest.fixture
def api_client(sandbox: Sandbox) -> Iterator[kenar_api_client.ApiClient]:
    with _client(sandbox.url) as client:
        yield client


def _keeper(sandbox: Sandbox, store: Any, api_client: Any, **kwargs: Any) -> SubscriptionKeeper:
    return SubscriptionKeeper(TokenManager(oauth_client(sandbox), store), api_client, **kwargs)


class CountingStore(MemoryTokenStore):
    """The memory store, counting reads of kept-subscription documents (what a round pays per user)."""

    def __init__(self) -> None:
        super().__init__()
        self.document_reads = 0

    def get(self, key: str) -> Optional[Versioned]:
        if key.startswith(SUBSCRIPTIONS_KEY_PREFIX):
            self.document_reads += 1
        return super().get(key)


def test_a_round_reads_only_the_users_that_are_due(
    sandbox: Sandbox, api_client: Any, keeper_transport: str
) -> None:
    store = CountingStore()
    keeper = _keeper(sandbox, store, api_client, transport=keeper_transport)
    add_sellers(sandbox, keeper.tokens, keeper, 30)
    first = keeper.renew_due()
    assert (first.users, len(first.registered)) == (30, 60)
    store.document_reads = 0
    idle = keeper.renew_due()
    assert (idle.users, store.document_reads) == (0, 0)  # nothing due: no user is read
    assert len(registrations(sandbox)) == 60
    # An hour on, every token falls due (each at its own jittered moment, within the window).
    sandbox.clock.advance(3600 - 300)
    hourly = keeper.renew_due()
    assert (hourly.users, len(hourly.registered)) == (30, 60)
    assert refreshes(sandbox) == 30
    assert store.document_reads == 30


def test_refresh_times_are_spread_by_a_stable_jitter() -> None:
    policy = RenewalPolicy(leeway=300, jitter=0.1)
    token = OAuthToken("ory_at_x", "ory_rt_x", expires_at=10_000.0, scopes=[], obtained_at=6_400.0)
    times = [policy.refresh_at(f"user-{index}", token) for index in range(1000)]
    assert all(10_000 - 300 - 360 <= at <= 10_000 - 300 for at in times)  # leeway, plus up to 10 %
    assert max(times) - min(times) > 300  # spread over the window, not in one second
    assert len({round(at) for at in times}) > 250
    assert policy.refresh_at("user-1", token) == times[1]  # every process computes the same time
    assert RenewalPolicy(leeway=300, jitter=0).refresh_at("user-1", token) == 10_000 - 300
    with pytest.raises(ApiValueError, match="jitter"):
        RenewalPolicy(leeway=300, jitter=0.9)


def test_a_refresh_comes_before_the_users_registrations(
    sandbox: Sandbox, api_client: Any, keeper_transport: str
) -> None:
    keeper = _keeper(sandbox, MemoryTokenStore(), api_client, transport=keeper_transport)
    add_sellers(sandbox, keeper.tokens, keeper, 3, expires_in=200)  # due for a refresh
    report = keeper.renew_due()
    assert len(report.registered) == 6
    for subscription in report.registered:
        current = keeper.tokens.stored(subscription.user_key)
        assert current is not None
        assert subscription.token_fingerprint == current.fingerprint  # registered with the new token
    assert refreshes(sandbox) == 3


def _unsendable(user_key: str) -> KeptSubscription:
    """A declaration written by a newer version of the app: an event type this SDK cannot send."""
    return KeptSubscription(user_key, "EVENT_FROM_A_NEWER_DEPLOY", "", {"new": True})


def test_one_unsendable_subscription_stalls_neither_its_user_nor_the_others(
    sandbox: Sandbox,
    api_client: Any,
    tmp_path: Path,
    keeper_transport: str,
) -> None:
    keeper = _keeper(
        sandbox, SQLiteTokenStore(tmp_path / "tokens.sqlite3"), api_client, transport=keeper_transport
    )
    add_sellers(sandbox, keeper.tokens, keeper, 5)
    key = SUBSCRIPTIONS_KEY_PREFIX + "seller-2"
    stored = keeper.tokens.store.get(key)
    assert stored is not None
    kept = decode("seller-2", stored.value)
    odd = _unsendable("seller-2")
    kept[odd.key] = odd
    keeper.tokens.store.put(key, encode(kept), stored.version)

    report = keeper.renew_due()
    assert len(report.registered) == 10  # every seller's two, seller 2's included
    (pending,) = report.pending
    assert pending.event_type == "EVENT_FROM_A_NEWER_DEPLOY"
    assert pending.error is not None
    assert "could not send it" in pending.error
    assert report.errors == {}
    shown = {s.key: s for s in keeper.status("seller-2")}
    assert shown[odd.key].state == "pending"
    assert shown[odd.key].error == pending.error  # where status() (and the CLI) show it
    # Retried later with a growing delay, without holding anything up meanwhile.
    assert keeper.renew_due().users == 0
    sandbox.clock.advance(31)
    (again,) = keeper.renew_due().pending
    assert again.retries == 2


class OneBrokenUserStore(MemoryTokenStore):
    """A store whose writes of one user's document fail (a bad row, a constraint in the app's database)."""

    backend_errors = (OSError,)

    def put(self, key: str, value: str, expected_version: Optional[int] = None) -> Optional[int]:
        if (
            key == SUBSCRIPTIONS_KEY_PREFIX + "seller-1"
            and json.loads(value)["subscriptions"][0]["state"] != "pending"
        ):
            raise TokenStoreError("the row of seller-1 cannot be written")
        return super().put(key, value, expected_version)


def test_a_user_whose_round_breaks_is_reported_and_the_round_goes_on(
    sandbox: Sandbox,
    api_client: Any,
    keeper_transport: str,
) -> None:
    keeper = _keeper(sandbox, OneBrokenUserStore(), api_client, transport=keeper_transport)
    add_sellers(sandbox, keeper.tokens, keeper, 4)
    report = keeper.renew_due()
    assert list(report.errors) == ["seller-1"]
    assert "cannot be written" in report.errors["seller-1"]
    assert not report.ok
    assert len(report.registered) == 6  # the three others
    assert keeper.renew_due().users == 0  # seller-1 is retried after a delay, not in a loop
    sandbox.clock.advance(31)
    assert list(keeper.renew_due().errors) == ["seller-1"]


def test_one_slow_user_does_not_hold_up_the_others(sandbox: Sandbox, keeper_transport: str) -> None:
    proxy = HoldingProxy(sandbox.url, hold=lambda path, body: post_of(3).encode() in body)
    try:
        with _client(proxy.url) as client:
            keeper = _keeper(sandbox, MemoryTokenStore(), client, concurrency=4, transport=keeper_transport)
            add_sellers(sandbox, keeper.tokens, keeper, 12)
            reports: List[Any] = []
            round_ = threading.Thread(target=lambda: reports.append(keeper.renew_due()))
            round_.start()
            assert proxy.held.wait(30)
            # While seller 3 hangs, every other seller is done.
            assert _wait_for(lambda: len(registrations(sandbox)) == 23)
            assert round_.is_alive()
            proxy.release()
            round_.join(30)
    finally:
        proxy.stop()
    (report,) = reports
    assert (report.users, len(report.registered)) == (12, 24)


def test_renew_user_says_when_another_keeper_holds_the_user_or_waits_for_it(
    sandbox: Sandbox,
    api_client: Any,
    keeper_transport: str,
) -> None:
    keeper = _keeper(sandbox, MemoryTokenStore(), api_client, transport=keeper_transport)
    add_sellers(sandbox, keeper.tokens, keeper, 1)
    store = keeper.tokens.store
    assert store.claim("seller-0", "another-keeper", keeper.tokens.clock(), 60)
    busy = keeper.renew_user("seller-0")
    assert busy.busy == ["seller-0"]
    assert (busy.users, busy.registered) == (0, [])
    assert registrations(sandbox) == []

    released = threading.Timer(0.05, lambda: store.release("seller-0", "another-keeper", None))
    released.start()
    waited = keeper.renew_user("seller-0", wait=30)
    released.join()
    assert waited.busy == []
    assert len(waited.registered) == 2
    assert keeper.renew_user("seller-0").registered == []  # nothing due any more
    with pytest.raises(ApiValueError, match="wait"):
        keeper.renew_user("seller-0", wait=-1)


def test_dead_keepers_leave_no_listener_behind(sandbox: Sandbox, api_client: Any) -> None:
    tokens = TokenManager(oauth_client(sandbox), MemoryTokenStore())
    gone = [weakref.ref(SubscriptionKeeper(tokens, api_client)) for _ in range(200)]
    gc.collect()
    assert [ref for ref in gone if ref() is not None] == []  # the token manager holds none of them
    live = SubscriptionKeeper(tokens, api_client)
    add_sellers(sandbox, tokens, live, 1)
    assert len(live.renew_due().registered) == 2  # a live keeper still hears of logins


def test_a_stop_that_times_out_does_not_let_a_second_thread_start(
    sandbox: Sandbox, keeper_transport: str
) -> None:
    proxy = HoldingProxy(sandbox.url, hold=lambda path, body: True)
    try:
        with _client(proxy.url) as client:
            keeper = _keeper(sandbox, MemoryTokenStore(), client, concurrency=2, transport=keeper_transport)
            add_sellers(sandbox, keeper.tokens, keeper, 1)
            keeper.start(interval=30)
            assert proxy.held.wait(30)  # its round is stuck on a registration
            assert keeper.stop(timeout=0.01) is False
            assert keeper.running
            with pytest.raises(ApiValueError, match="still stopping"):
                keeper.start(interval=30)
            proxy.release()
            assert keeper.stop(timeout=30) is True
            assert not keeper.running
            keeper.start(interval=30)
            assert keeper.stop(timeout=30) is True
    finally:
        proxy.stop()
    names = [thread.name for thread in threading.enumerate()]
    assert "kenar-subscription-keeper" not in names


def test_each_round_reports_its_figures_to_a_listener_the_log_and_the_store(
    sandbox: Sandbox,
    api_client: Any,
    caplog: pytest.LogCaptureFixture,
    keeper_transport: str,
) -> None:
    caplog.set_level(logging.INFO, logger="kenar_api_client.oauth.keeper")
    rounds: List[Any] = []
    keeper = _keeper(
        sandbox, MemoryTokenStore(), api_client, on_round=rounds.append, transport=keeper_transport
    )
    add_sellers(sandbox, keeper.tokens, keeper, 3)
    sandbox.clock.advance(45)  # they have been due for 45 s when the round takes them up
    report = keeper.renew_due()
    assert rounds == [report]
    assert report.lag >= 45
    (record,) = [r for r in caplog.records if r.getMessage().startswith("subscription round")]
    fields: Dict[str, Any] = {k: v for k, v in vars(record).items() if k.startswith("kenar_")}
    assert fields["kenar_users"] == 3
    assert fields["kenar_registered"] == 6
    assert fields["kenar_failed"] == fields["kenar_pending"] == fields["kenar_consent_required"] == 0
    assert fields["kenar_lag"] >= 45
    status = keeper.summary()
    assert status.users == 3
    assert status.states == {"registered": 6, "pending": 0, "failed": 0, "consent_required": 0}
    assert status.due == 0
    (last,) = status.rounds.values()
    assert (last["users"], last["registered"]) == (3, 6)


def test_keeper_settings_are_checked(sandbox: Sandbox, api_client: Any) -> None:
    tokens = TokenManager(oauth_client(sandbox), MemoryTokenStore())
    for bad in ({"concurrency": 0}, {"concurrency": 1.5}, {"claim_ttl": 0}, {"retry_delay": -1}):
        with pytest.raises(ApiValueError):
            SubscriptionKeeper(tokens, api_client, **bad)
    with pytest.raises(ApiValueError, match="transport must be 'auto', 'threads', 'aiohttp' or 'httpx'"):
        SubscriptionKeeper(tokens, api_client, transport="requests")  # type: ignore[arg-type]
    threads = SubscriptionKeeper(tokens, api_client, transport="threads")
    assert (threads.transport, threads.concurrency) == (None, 16)
    on_a_loop = SubscriptionKeeper(tokens, api_client, transport="aiohttp")
    assert (on_a_loop.transport, on_a_loop.concurrency) == ("aiohttp", 64)
    # By default: aiohttp, as it is installed here (the test extra); threads where it is not.
    assert SubscriptionKeeper(tokens, api_client).transport == "aiohttp"


def _wait_for(condition: Any, timeout: float = 30.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_round_on_an_event_loop_runs_from_async_code_too(sandbox: Sandbox, api_client: Any) -> None:
    """``renew_due()`` called where a loop already runs (an async app) takes a thread for its own loop."""
    keeper = _keeper(sandbox, MemoryTokenStore(), api_client, transport="aiohttp")
    add_sellers(sandbox, keeper.tokens, keeper, 3)

    async def in_an_async_app() -> Any:
        return keeper.renew_due()

    report = asyncio.run(in_an_async_app())
    assert (report.users, len(report.registered)) == (3, 6)
    assert len(registrations(sandbox)) == 6


class ClaimsFailAfterTheFirst(MemoryTokenStore):
    """The memory store whose due index stops answering after the round's first claim."""

    def __init__(self) -> None:
        super().__init__()
        self.claims = 0

    def claim_due(self, now: float, owner: str, ttl: float, limit: int) -> List[Any]:
        self.claims += 1
        if self.claims > 1:
            raise TokenStoreError("the store went away")
        return super().claim_due(now, owner, ttl, limit)


def test_a_claim_that_fails_mid_round_lets_the_users_under_way_finish(
    sandbox: Sandbox, api_client: Any, keeper_transport: str
) -> None:
    store = ClaimsFailAfterTheFirst()
    keeper = _keeper(sandbox, store, api_client, concurrency=2, transport=keeper_transport)
    add_sellers(sandbox, keeper.tokens, keeper, 6)
    store.claims = 0
    with pytest.raises(TokenStoreError, match="went away"):
        keeper.renew_due()
    # The two users claimed first were renewed to the end and recorded, not cut off mid-way.
    registered = [s for s in keeper.status() if s.state == "registered"]
    assert len(registered) == 4
    assert len(registrations(sandbox)) == 4


def test_a_cancelled_refresh_on_the_loop_lets_go_of_its_lease_at_once(sandbox: Sandbox) -> None:
    """Cancelled mid-request (a round cut short), the refresh lease is released, not left to run out."""
    from kenar_api_client import AsyncApiClient

    proxy = HoldingProxy(sandbox.oauth_url, hold=lambda path, body: True)
    try:
        tokens = TokenManager(oauth_client(sandbox, proxy.url), MemoryTokenStore())
        keeper = SubscriptionKeeper(tokens, transport="threads")
        add_sellers(sandbox, tokens, keeper, 1, expires_in=200)

        async def cancelled_refresh() -> BaseException:
            async with AsyncApiClient(tokens.oauth.async_configuration(), transport="aiohttp") as client:
                task = asyncio.ensure_future(tokens.refresh_async("seller-0", transport=client.transport))
                while not proxy.held.is_set():
                    await asyncio.sleep(0.01)
                task.cancel()
                with pytest.raises(asyncio.CancelledError) as cancelled:
                    await task
                return cancelled.value

        # Kept, as a log record or a report would keep it: its traceback holds the refresh's frames.
        error = asyncio.run(cancelled_refresh())
        assert error.__traceback__ is not None
        assert tokens.store.acquire_lease("refresh:seller-0", "someone-else", 30)  # free at once
        assert len(tokens._locks) == 0  # and the process's own lock for the user
    finally:
        proxy.release()
        proxy.stop()


def test_a_round_on_a_loop_leaves_the_calling_threads_event_loop_alone(
    sandbox: Sandbox, api_client: Any
) -> None:
    keeper = _keeper(sandbox, MemoryTokenStore(), api_client, transport="aiohttp")
    add_sellers(sandbox, keeper.tokens, keeper, 2)
    mine = asyncio.new_event_loop()
    asyncio.set_event_loop(mine)
    try:
        assert len(keeper.renew_due().registered) == 4
        assert asyncio.get_event_loop() is mine  # still this thread's loop, open
        assert not mine.is_closed()
    finally:
        asyncio.set_event_loop(None)
        mine.close()


def test_ctrl_c_stops_a_round_on_a_loop_after_the_users_under_way(sandbox: Sandbox) -> None:
    import signal

    # From seller 5 on, registrations wait: the round is mid-way, two users under way.
    later = [post_of(n).encode() for n in range(5, 50)]
    proxy = HoldingProxy(sandbox.url, hold=lambda path, body: any(post in body for post in later))
    try:
        with _client(proxy.url) as client:
            keeper = _keeper(sandbox, MemoryTokenStore(), client, transport="aiohttp", concurrency=2)
            add_sellers(sandbox, keeper.tokens, keeper, 50)

            def interrupt_then_release() -> None:
                assert proxy.held.wait(30)
                main = threading.main_thread().ident
                assert main is not None
                signal.pthread_kill(main, signal.SIGINT)  # as Ctrl-C reaches the main thread
                time.sleep(0.2)
                proxy.release()

            threading.Thread(target=interrupt_then_release).start()
            # Python's own Ctrl-C handler, even where the suite runs with SIGINT ignored (in the
            # background of a shell script, as CI runs a suite).
            previous = signal.signal(signal.SIGINT, signal.default_int_handler)
            try:
                with pytest.raises(KeyboardInterrupt):
                    keeper.renew_due()
            finally:
                signal.signal(signal.SIGINT, previous)
            # The round's own thread finishes the users it had begun, and claims no one more.
            store, now = keeper.tokens.store, keeper.tokens.clock()
            names = [f"seller-{n}" for n in range(50)]
            assert _wait_for(lambda: all(store.claim(name, "next-keeper", now, 1) for name in names))
    finally:
        proxy.stop()
    done = registrations(sandbox)
    assert len(done) % 2 == 0  # every user begun was finished: both of its subscriptions
    assert 2 * 5 < len(done) <= 2 * 8  # sellers 0-4, those under way at Ctrl-C, not the 50


def test_a_loop_client_that_cannot_be_made_leaves_the_claimed_users_due(sandbox: Sandbox) -> None:
    configuration = kenar_api_client.Configuration(host=sandbox.url, api_key={"APIKey": DEMO_API_KEY})
    configuration.ssl_ca_cert = "/nonexistent/ca.pem"  # unreadable: no async client can be made
    with kenar_api_client.ApiClient(configuration) as broken:
        keeper = _keeper(sandbox, MemoryTokenStore(), broken, transport="aiohttp")
        add_sellers(sandbox, keeper.tokens, keeper, 3)
        with pytest.raises(ApiValueError, match="ssl_ca_cert"):
            keeper.renew_due()
    assert registrations(sandbox) == []
    # Nobody holds them: the next keeper renews them at once, not after the claims ran out.
    with _client(sandbox.url) as client:
        other = SubscriptionKeeper(keeper.tokens, client, transport="threads")
        assert len(other.renew_due().registered) == 6
