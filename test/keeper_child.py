"""A keeper process for the multi-process tests: ``python keeper_child.py '<settings JSON>'``.

Opens the shared store named in the settings, waits for a line on stdin if ``wait_for_go``
(so that every child starts its rounds at once), then runs rounds (on threads, or on an
event loop when the settings name a ``transport``) until one finds nothing
to do; prints one JSON line with what it did. The demo app's OAuth client talks to the
sandbox's ``oauth_url``, the API client to ``api_url`` (the sandbox, or a proxy before it).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Dict

import kenar_api_client
from kenar_api_client.oauth import (
    OAuthClient,
    RedisTokenStore,
    SQLiteTokenStore,
    SubscriptionKeeper,
    TokenManager,
)
from kenar_api_client.oauth.postgres_store import PostgresTokenStore
from kenar_api_client.sandbox import DEMO_API_KEY, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REDIRECT_URI


def open_store(settings: Dict[str, Any]) -> Any:
    kind, where, prefix = settings["store"]
    if kind == "sqlite":
        return SQLiteTokenStore(where)
    if kind == "redis":
        return RedisTokenStore(url=where, prefix=prefix)
    return PostgresTokenStore(where, table_prefix=prefix)


def main() -> None:
    settings = json.loads(sys.argv[1])
    oauth = OAuthClient(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REDIRECT_URI, settings["oauth_url"])
    tokens = TokenManager(oauth, open_store(settings))
    configuration = kenar_api_client.Configuration(host=settings["api_url"], api_key={"APIKey": DEMO_API_KEY})
    configuration.connection_pool_maxsize = settings.get("concurrency", 4)
    with kenar_api_client.ApiClient(configuration) as api_client:
        concurrency, claim_ttl = settings.get("concurrency", 4), settings.get("claim_ttl", 120)
        keeper = SubscriptionKeeper(
            tokens,
            api_client,
            concurrency=concurrency,
            claim_ttl=claim_ttl,
            transport=settings.get("transport"),
        )
        if settings.get("wait_for_go"):
            sys.stdin.readline()
        totals: Dict[str, Any] = {"users": 0, "registered": 0, "busy_rounds": 0, "rounds": 0}
        deadline = time.monotonic() + settings.get("deadline", 90)
        while time.monotonic() < deadline:
            report = keeper.renew_due()
            totals["rounds"] += 1
            totals["users"] += report.users
            totals["registered"] += len(report.registered)
            if report.errors:
                totals.setdefault("errors", {}).update(report.errors)
            if not report.users and not settings.get("until_all_done"):
                break
            if settings.get("until_all_done") and _all_done(keeper):
                break
            if not report.users:
                time.sleep(0.1)  # others hold the rest: their claims run out or they finish
    print(json.dumps(totals), flush=True)


def _all_done(keeper: SubscriptionKeeper) -> bool:
    """Whether every kept subscription is registered with its user's current token."""
    for subscription in keeper.status():
        token = keeper.tokens.stored(subscription.user_key)
        if token is None or subscription.state != "registered":
            return False
        if subscription.token_fingerprint != token.fingerprint:
            return False
    return True


if __name__ == "__main__":
    main()
