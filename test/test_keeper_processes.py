"""Keepers in several real processes share one store and do each refresh and registration once.

Each child is a separate interpreter (test/keeper_child.py) over the same SQLite file, Redis
or PostgreSQL database, against one sandbox that counts what it receives. One is SIGKILLed
mid-round at a known point; the others take over its users once its claim runs out.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any, List, Tuple

import pytest
from keeper_helpers import (
    HoldingProxy,
    add_sellers,
    child_result,
    post_of,
    refreshes,
    registrations,
    run_child,
)
from oauth_helpers import oauth_client

import kenar_api_client
from kenar_api_client.oauth import RedisTokenStore, SQLiteTokenStore, SubscriptionKeeper, TokenManager
from kenar_api_client.oauth.postgres_store import PostgresTokenStore
from kenar_api_client.sandbox import DEMO_API_KEY, Sandbox


def _shared_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Tuple[Any, List[str]]:
    """A fresh store of ``kind`` and how a child opens it (``[kind, where, prefix]``)."""
    tag = os.urandom(4).hex()
    if kind == "sqlite":
        path = str(tmp_path / "tokens.sqlite3")
        return SQLiteTokenStore(path), [kind, path, ""]
    if kind == "redis":
        url = request.getfixturevalue("redis_server").url
        return RedisTokenStore(url=url, prefix=f"procs-{tag}:"), [kind, url, f"procs-{tag}:"]
    url = request.getfixturevalue("postgres_server").url
    return PostgresTokenStore(url, table_prefix=f"p{tag}_"), [kind, url, f"p{tag}_"]


def _app(sandbox: Sandbox, store: Any) -> Tuple[TokenManager, SubscriptionKeeper, kenar_api_client.ApiClient]:
    """The app's own process: it logs sellers in and declares their subscriptions; it runs no round."""
    tokens = TokenManager(oauth_client(sandbox), store)
    client = kenar_api_client.ApiClient(
        kenar_api_client.Configuration(host=sandbox.url, api_key={"APIKey": DEMO_API_KEY})
    )
    return tokens, SubscriptionKeeper(tokens, client), client


def _assert_every_seller_kept_once(sandbox: Sandbox, keeper: SubscriptionKeeper, sellers: int) -> None:
    accepted = registrations(sandbox)
    assert len(accepted) == len(set(accepted)), "a subscription was registered twice with one token"
    assert len(accepted) == 2 * sellers
    assert refreshes(sandbox) == sellers, "a token was refreshed twice"
    assert [r for r in sandbox.token_requests if r.error is not None] == []  # no replay, no revoked chain
    kept = keeper.status()
    assert len(kept) == 2 * sellers
    for subscription in kept:
        token = keeper.tokens.stored(subscription.user_key)
        assert token is not None
        assert subscription.state == "registered", subscription
        assert subscription.token_fingerprint == token.fingerprint  # with the refreshed token


@pytest.mark.parametrize("kind", ["sqlite", "redis", "postgres"])
def test_four_keeper_processes_refresh_and_register_each_user_once(
    kind: str, keeper_transport: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    sellers = 48
    store, where = _shared_store(kind, request, tmp_path)
    with Sandbox() as sandbox:
        tokens, keeper, client = _app(sandbox, store)
        add_sellers(sandbox, tokens, keeper, sellers, expires_in=200)  # every token due for its refresh
        settings = {"store": where, "oauth_url": sandbox.oauth_url, "api_url": sandbox.url}
        settings.update(wait_for_go=True, transport=keeper_transport)
        children = [run_child({**settings, "concurrency": 4}, stdin=-1) for _ in range(4)]
        for child in children:  # all started: let them go at once
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            child.stdin.flush()
        results = [child_result(child) for child in children]
        client.close()
        assert sum(result["users"] for result in results) == sellers
        assert not [result for result in results if result.get("errors")]
        _assert_every_seller_kept_once(sandbox, keeper, sellers)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_keeper_killed_mid_round_leaves_its_users_to_the_others_after_its_claim(
    kind: str, keeper_transport: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    sellers = 16
    store, where = _shared_store(kind, request, tmp_path)
    with Sandbox() as sandbox:
        tokens, keeper, client = _app(sandbox, store)
        add_sellers(sandbox, tokens, keeper, sellers, expires_in=200)
        # Seller 7's second registration never reaches Kenar: the first keeper is killed waiting for it,
        # with seller 7's token refreshed and their first subscription registered and recorded.
        proxy = HoldingProxy(sandbox.url, hold=lambda path, body: post_of(7).encode() in body)
        settings = {
            "store": where,
            "oauth_url": sandbox.oauth_url,
            "claim_ttl": 4,
            "transport": keeper_transport,
        }
        first = run_child({**settings, "api_url": proxy.url, "concurrency": 1})
        try:
            assert proxy.held.wait(60), "the first keeper never reached seller 7's second registration"
            os.kill(first.pid, signal.SIGKILL)
            first.wait(30)
        finally:
            proxy.stop()  # the held request is dropped unanswered: it never reached the sandbox
        assert first.returncode == -signal.SIGKILL
        done_before = len(registrations(sandbox))
        assert done_before % 2 == 1  # mid-user: seller 7 has one of its two registrations
        others = [
            run_child({**settings, "api_url": sandbox.url, "concurrency": 4, "until_all_done": True})
            for _ in range(2)
        ]
        results = [child_result(child) for child in others]
        client.close()
        assert sum(result["users"] for result in results) >= sellers - done_before // 2
        _assert_every_seller_kept_once(sandbox, keeper, sellers)
