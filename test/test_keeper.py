"""The subscription keeper: kept subscriptions survive every token refresh, failures stay visible."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pydantic
import pytest
from oauth_helpers import issued_token, manager_with_user, oauth_client, refresh_requests
from servers import RecordingServer

import kenar_api_client
from kenar_api_client.exceptions import ApiValueError
from kenar_api_client.oauth import (
    KeptSubscription,
    MemoryTokenStore,
    SQLiteTokenStore,
    SubscriptionKeeper,
    TokenManager,
)
from kenar_api_client.sandbox import (
    DEMO_API_KEY,
    DEMO_CLIENT_SECRET,
    DEMO_IDENTIFICATION_KEY,
    DEMO_POST_TOKEN,
    DEMO_SCOPES,
    DEMO_USER_ID,
    Delivery,
    Sandbox,
    SubscriptionRequiredError,
)
from kenar_api_client.webhooks import make_wsgi_app

USER = "user-42"
ON_POST = {
    "event_type": "NEW_MESSAGE_ON_POST",
    "event_resource_id": DEMO_POST_TOKEN,
    "metadata": {"kept": "chat"},
}
POST_UPDATES = {"event_type": "POST_UPDATE", "metadata": {"kept": "posts"}}


@pytest.fixture
def receiver() -> Iterator[RecordingServer]:
    server = RecordingServer().start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(receiver: RecordingServer) -> Iterator[Sandbox]:
    with Sandbox(webhook_url=receiver.url) as running:
        yield running


@pytest.fixture
def api_client(sandbox: Sandbox) -> Iterator[kenar_api_client.ApiClient]:
    configuration = kenar_api_client.Configuration(host=sandbox.url, api_key={"APIKey": DEMO_API_KEY})
    with kenar_api_client.ApiClient(configuration) as client:
        yield client


def _message_to(sandbox: Sandbox, post: str = DEMO_POST_TOKEN) -> Delivery:
    return sandbox.trigger("NEW_MESSAGE", conversation={"post_token": post})


def _states(keeper: SubscriptionKeeper) -> Dict[str, str]:
    return {s.key: s.state for s in keeper.status(USER)}


def test_kept_subscriptions_are_registered_with_their_metadata(
    sandbox: Sandbox, api_client: Any, keeper_transport: str
) -> None:
    keeper = SubscriptionKeeper(manager_with_user(sandbox), api_client, transport=keeper_transport)
    kept = keeper.keep(USER, ON_POST)
    assert (kept.state, kept.user_key, kept.metadata) == ("pending", USER, {"kept": "chat"})
    report = keeper.renew_due()
    assert len(report.registered) == 1
    assert report.ok
    (registered,) = sandbox.subscriptions
    assert (registered.event_type, registered.event_resource_id, registered.metadata) == (
        "NEW_MESSAGE_ON_POST",
        DEMO_POST_TOKEN,
        {"kept": "chat"},
    )
    assert _message_to(sandbox).metadata == {"kept": "chat"}
    # Nothing is due until the token changes.
    assert keeper.renew_due().registered == []
    assert len(sandbox.requests) == 1


def test_a_simulated_day_of_hourly_expiries_keeps_every_kept_subscription_delivering(
    sandbox: Sandbox,
    api_client: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    keeper_transport: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    started = time.perf_counter()
    tokens = manager_with_user(sandbox, SQLiteTokenStore(tmp_path / "tokens.sqlite3"), leeway=300)
    keeper = SubscriptionKeeper(tokens, api_client, transport=keeper_transport)
    keeper.keep(USER, ON_POST)
    keeper.keep(USER, POST_UPDATES)
    keeper.renew_due()

    # A plain subscription of another user, registered once and never again.
    plain = issued_token(
        sandbox, user_id="plain-user", posts=["plainPost"], scopes=["USER_POSTS_GET", "offline_access"]
    )
    configuration = kenar_api_client.Configuration(
        host=sandbox.url, api_key={"APIKey": DEMO_API_KEY}, access_token=plain.access_token
    )
    with kenar_api_client.ApiClient(configuration) as plain_client:
        kenar_api_client.EventsApi(plain_client).events_register_event_subscription(
            {"event_type": "POST_UPDATE", "event_resource_id": "plainPost", "metadata": {"plain": True}}
        )

    missed: List[str] = []
    delivered = 0

    def probe(when: str) -> None:
        nonlocal delivered
        for deliver, metadata in (
            (lambda: _message_to(sandbox), {"kept": "chat"}),
            (lambda: sandbox.trigger("POST_UPDATE", post={"token": DEMO_POST_TOKEN}), {"kept": "posts"}),
        ):
            try:
                delivery = deliver()
            except SubscriptionRequiredError:
                missed.append(when)
                continue
            assert delivery.delivered
            assert delivery.metadata == metadata
            delivered += 1

    plain_alive_hours = 0
    secrets = [DEMO_CLIENT_SECRET]
    for hour in range(24):
        token = tokens.token(USER)
        secrets += [token.access_token, str(token.refresh_token)]
        sandbox.clock.set(token.expires_at - 300 - 1)  # the last second before the refresh is due
        probe(f"hour {hour}: before the refresh")
        if sandbox.trigger("POST_UPDATE", require_subscription=False, post={"token": "plainPost"}).metadata:
            plain_alive_hours += 1
        sandbox.clock.advance(2)
        probe(f"hour {hour}: refresh due")
        report = keeper.renew_due()  # the cron run
        assert len(report.registered) == 2, report
        probe(f"hour {hour}: just re-registered")
        sandbox.clock.advance(121)  # the previous token is dead now
        probe(f"hour {hour}: old token gone")
    elapsed = time.perf_counter() - started

    assert missed == []
    assert delivered == 24 * 4 * 2
    assert refresh_requests(sandbox) == 24
    assert plain_alive_hours == 1  # the plain subscription died with its first token
    assert {s.metadata.get("kept") for s in sandbox.subscriptions} == {"chat", "posts"}
    assert "refreshed the token of user 'user-42'" in caplog.text
    assert not [secret for secret in secrets if secret in caplog.text]
    print(f"\n  a day of hourly refreshes: {delivered} deliveries, 0 missed, {elapsed:.2f} s wall time")


def test_a_missing_scope_fails_the_subscription_and_stops_retrying_it(
    sandbox: Sandbox,
    api_client: Any,
    keeper_transport: str,
) -> None:
    keeper = SubscriptionKeeper(manager_with_user(sandbox), api_client, transport=keeper_transport)
    keeper.keep(
        USER, {"event_type": "NEW_MESSAGE_ON_POST", "metadata": {"all": "posts"}}
    )  # needs the all-chats scope
    keeper.keep(USER, POST_UPDATES)
    report = keeper.renew_due()
    assert [s.key for s in report.registered] == ["POST_UPDATE|"]
    (failed,) = report.failed
    assert failed.state == "failed"
    assert failed.error is not None
    assert "CHAT_SUPPLIER_ALL_CONVERSATIONS_READ" in failed.error  # Kenar's own message
    calls = len(sandbox.requests)
    assert not keeper.renew_due().failed  # not tried again...
    assert len(sandbox.requests) == calls
    # ...until the user grants more.
    keeper.tokens.save(
        USER,
        issued_token(
            sandbox, scopes=[*DEMO_SCOPES, "CHAT_SUPPLIER_ALL_CONVERSATIONS_READ", "offline_access"]
        ),
    )
    report = keeper.renew_due()
    assert {s.key for s in report.registered} == {"NEW_MESSAGE_ON_POST|", "POST_UPDATE|"}
    assert _states(keeper) == {"NEW_MESSAGE_ON_POST|": "registered", "POST_UPDATE|": "registered"}


def test_a_revoked_grant_marks_the_user_as_needing_consent(
    sandbox: Sandbox, api_client: Any, keeper_transport: str
) -> None:
    keeper = SubscriptionKeeper(manager_with_user(sandbox), api_client, transport=keeper_transport)
    keeper.keep(USER, ON_POST)
    keeper.renew_due()
    sandbox.revoke_consent(DEMO_USER_ID)
    sandbox.clock.advance(3600)
    report = keeper.renew_due()
    (waiting,) = report.consent_required
    assert waiting.error is not None
    assert "invalid_grant" in waiting.error
    assert _states(keeper) == {"NEW_MESSAGE_ON_POST|" + DEMO_POST_TOKEN: "consent_required"}
    refreshes = refresh_requests(sandbox)
    keeper.renew_due()
    assert refresh_requests(sandbox) == refreshes  # the dead refresh token is not tried again
    keeper.tokens.save(USER, issued_token(sandbox))  # the user consents again
    assert len(keeper.renew_due().registered) == 1


def test_transport_failures_leave_it_pending_for_the_next_round(
    sandbox: Sandbox, api_client: Any, keeper_transport: str
) -> None:
    store = MemoryTokenStore()
    tokens = manager_with_user(sandbox, store)
    unreachable = kenar_api_client.Configuration(host="http://127.0.0.1:9", api_key={"APIKey": DEMO_API_KEY})
    unreachable.retries = 0
    with kenar_api_client.ApiClient(unreachable) as down:
        report = SubscriptionKeeper(
            tokens, down, transport=keeper_transport
        ).renew_due()  # nothing declared yet
        assert report.ok
        keeper = SubscriptionKeeper(tokens, down, transport=keeper_transport)
        keeper.keep(USER, ON_POST)
        (pending,) = keeper.renew_due().pending
    assert pending.error is not None
    assert "connect" in pending.error
    assert pending.retries == 1
    # Another process sharing the store, with Kenar reachable again: it waits out the retry delay.
    later = SubscriptionKeeper(TokenManager(oauth_client(sandbox), store), api_client)
    assert later.renew_due().users == 0
    assert sandbox.requests == []
    sandbox.clock.advance(30)
    (registered,) = later.renew_due().registered
    assert registered.retries == 0


def test_a_revocation_delivery_forgets_the_user(
    sandbox: Sandbox, api_client: Any, keeper_transport: str
) -> None:
    tokens = TokenManager(oauth_client(sandbox), MemoryTokenStore())
    tokens.save(USER, issued_token(sandbox), divar_user_id=DEMO_USER_ID)
    keeper = SubscriptionKeeper(tokens, api_client, transport=keeper_transport)
    keeper.keep(USER, ON_POST)
    keeper.renew_due()

    forgotten: List[List[str]] = []
    app = make_wsgi_app(DEMO_IDENTIFICATION_KEY, lambda event: forgotten.append(keeper.handle_event(event)))

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        sandbox.set_webhook(f"http://127.0.0.1:{server.server_port}/")
        delivery = sandbox.revoke_consent(DEMO_USER_ID)
    finally:
        server.shutdown()
        server.server_close()
    assert delivery is not None
    assert delivery.delivered
    assert forgotten == [[USER]]
    assert tokens.users() == []
    assert keeper.users() == []


def test_the_background_thread_renews_by_itself(
    sandbox: Sandbox, api_client: Any, keeper_transport: str
) -> None:
    tokens = manager_with_user(sandbox, leeway=300)
    with SubscriptionKeeper(tokens, api_client, transport=keeper_transport) as keeper:
        keeper.keep(USER, ON_POST)
        assert _wait_for(lambda: _states(keeper) == {f"NEW_MESSAGE_ON_POST|{DEMO_POST_TOKEN}": "registered"})
        first = keeper.status(USER)[0].token_fingerprint
        sandbox.clock.advance(3600 - 200)
        tokens.token(USER)  # a refresh in this process wakes the keeper at once
        assert _wait_for(lambda: keeper.status(USER)[0].token_fingerprint != first)
    assert not keeper.running


def test_keep_refuses_bad_declarations(sandbox: Sandbox, api_client: Any, keeper_transport: str) -> None:
    keeper = SubscriptionKeeper(manager_with_user(sandbox), api_client, transport=keeper_transport)
    with pytest.raises(pydantic.ValidationError, match="evnt_resource_id"):
        keeper.keep(USER, {"event_type": "POST_UPDATE", "evnt_resource_id": "x"})
    with pytest.raises(ApiValueError, match="event_type"):
        keeper.keep(USER, {"metadata": {}})
    with pytest.raises(ApiValueError, match="interval"):
        keeper.start(interval=600)
    assert keeper.status() == []


def test_status_and_drop(sandbox: Sandbox, api_client: Any, keeper_transport: str) -> None:
    keeper = SubscriptionKeeper(manager_with_user(sandbox), api_client, transport=keeper_transport)
    keeper.keep(USER, ON_POST)
    keeper.keep(USER, POST_UPDATES)
    keeper.renew_due()
    statuses = keeper.status()
    assert all(isinstance(s, KeptSubscription) for s in statuses)
    assert {s.state for s in statuses} == {"registered"}
    assert all(s.valid_until and s.valid_until > sandbox.clock.now() for s in statuses)
    keeper.drop(USER, "POST_UPDATE")
    assert [s.key for s in keeper.status(USER)] == [f"NEW_MESSAGE_ON_POST|{DEMO_POST_TOKEN}"]


def _wait_for(condition: Any, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
