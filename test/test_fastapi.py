"""kenar_api_client.fastapi: a FastAPI app logs a Divar user in, keeps their subscription, acts as them."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from fault_servers import wait_until
from oauth_helpers import oauth_client

from kenar_api_client import AsyncEventsApi, Configuration
from kenar_api_client.fastapi import STATE_COOKIE, KenarFastAPI
from kenar_api_client.oauth import MemoryTokenStore, TokenManager
from kenar_api_client.sandbox import DEMO_API_KEY, DEMO_POST_TOKEN, DEMO_USER_ID, Sandbox, consent

SCOPES = ["SEND_EVENT", "USER_POSTS_GET", "USER_ID"]


def make_app(sandbox: Sandbox, **login: Any) -> tuple[FastAPI, KenarFastAPI]:
    from kenar_api_client import AsyncApiClient

    tokens = TokenManager(oauth_client(sandbox), MemoryTokenStore())
    client = AsyncApiClient(Configuration(host=sandbox.url, api_key={"APIKey": DEMO_API_KEY}))
    kenar = KenarFastAPI(tokens, client, renew_every=0.05)
    app = FastAPI(lifespan=kenar.lifespan)
    app.include_router(kenar.login_router(SCOPES, **login))

    def current_user(request: Request) -> str:
        return request.headers["X-User"]

    @app.post("/notify")
    async def notify(client: Any = Depends(kenar.user_client(current_user))) -> dict:  # noqa: B008
        await AsyncEventsApi(client).events_send_event(
            message="order shipped", target_type="POST", target_resource_id=DEMO_POST_TOKEN
        )
        return {"sent": True}

    return app, kenar


def log_in(browser: TestClient) -> Any:
    started = browser.get("/kenar/login", follow_redirects=False)
    assert started.status_code == 302
    back = urlsplit(consent(started.headers["Location"]))  # the sandbox plays the user
    return browser.get(f"{back.path}?{back.query}", follow_redirects=False)


def test_a_user_logs_in_and_the_app_acts_as_them(sandbox: Sandbox) -> None:
    app, kenar = make_app(sandbox, user_key=lambda request, token: "seller-1")
    with TestClient(app) as browser:
        finished = log_in(browser)
        assert finished.status_code == 303
        assert finished.headers["Location"] == "/"
        assert kenar.tokens.stored("seller-1") is not None
        assert browser.post("/notify", headers={"X-User": "seller-1"}).json() == {"sent": True}
    (event,) = sandbox.sent_events
    assert event.message == "order shipped"
    assert kenar.api_client.closed  # the lifespan closed the shared client at shutdown


def test_the_default_user_key_is_the_divar_user_id(sandbox: Sandbox) -> None:
    sandbox.set_consent(DEMO_USER_ID)
    app, kenar = make_app(sandbox)
    with TestClient(app) as browser:
        assert log_in(browser).status_code == 303
    (user,) = kenar.tokens.users()
    assert user == DEMO_USER_ID


def test_a_callback_without_this_browser_s_state_stores_nothing(sandbox: Sandbox) -> None:
    app, kenar = make_app(sandbox, user_key=lambda request, token: "seller-1")
    with TestClient(app) as victim, TestClient(app) as attacker:
        started = attacker.get("/kenar/login", follow_redirects=False)
        back = urlsplit(consent(started.headers["Location"]))
        # The attacker's own code, planted in the victim's browser (login CSRF): refused.
        planted = victim.get(f"{back.path}?{back.query}", follow_redirects=False)
        assert planted.status_code == 400
    assert kenar.tokens.users() == []


def test_a_refused_consent_is_a_403_and_stores_nothing(sandbox: Sandbox) -> None:
    sandbox.set_consent(refuse=True)
    app, kenar = make_app(sandbox, user_key=lambda request, token: "seller-1")
    with TestClient(app) as browser:
        assert log_in(browser).status_code == 403
    assert kenar.tokens.users() == []


def test_the_state_cookie_is_httponly_and_scoped_to_the_callback(sandbox: Sandbox) -> None:
    app, _ = make_app(sandbox)
    with TestClient(app) as browser:
        started = browser.get("/kenar/login", follow_redirects=False)
    cookie = started.headers["set-cookie"]
    assert cookie.startswith(f"{STATE_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "Path=/kenar/callback" in cookie
    assert "SameSite=lax" in cookie


def test_the_lifespan_runs_the_keeper(sandbox: Sandbox) -> None:
    app, kenar = make_app(sandbox, user_key=lambda request, token: "seller-1")
    with TestClient(app) as browser:
        log_in(browser)
        assert kenar.keeper is not None
        kenar.keeper.keep("seller-1", {"event_type": "POST_UPDATE"})
        # The keeper's task runs a round every 0.05 s in the app's loop: wait for its work.
        assert wait_until(lambda: bool(sandbox.subscriptions), timeout=30)
    assert [s.event_type for s in sandbox.subscriptions] == ["POST_UPDATE"]
