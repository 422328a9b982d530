"""The OAuth client when the token endpoint misbehaves: which answers a refresh sends again and
when, what RFC 6749 lets an answer leave out, the redirect URI sent with the code, the times a
token may hold, and no secret in the local variables of a failure's traceback."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any, Iterator, List, Optional
from urllib.parse import parse_qs, urlsplit

import pytest
from frame_locals import failure_of, frame_names, traceback_locals
from oauth_helpers import SCOPES, browser_consent, issued_token, oauth_client, send_event
from servers import RecordedRequest, RecordingServer, Reply

from kenar_api_client import AsyncApiClient
from kenar_api_client.exceptions import ApiConnectionError, ApiException, ApiTimeoutError, ApiValueError
from kenar_api_client.oauth import (
    InvalidGrantError,
    OAuthClient,
    OAuthToken,
)
from kenar_api_client.oauth.errors import OAuthServerError
from kenar_api_client.sandbox import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REDIRECT_URI,
    DEMO_USER_ID,
    Sandbox,
    SandboxError,
)

USER = "user-42"


@pytest.fixture
def fake_kenar() -> Iterator[RecordingServer]:
    """A token endpoint whose answers the test writes; by default a good refresh answer."""
    server = RecordingServer(lambda request: Reply(200, _token_answer())).start()
    yield server
    server.stop()


def _token_answer(**fields: Any) -> dict:
    answer = {
        "access_token": "ory_at_fresh-access-token-0123456789",
        "refresh_token": "ory_rt_fresh-refresh-token-0123456789",
        "expires_in": 3600,
        "scope": "SEND_EVENT offline_access",
        "token_type": "bearer",
    }
    answer.update(fields)
    return {name: value for name, value in answer.items() if value is not None}


def _client(url: str, **kwargs: Any) -> OAuthClient:
    return OAuthClient(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REDIRECT_URI, url, **kwargs)


def _old_token(now: Optional[float] = None) -> OAuthToken:
    now = time.time() if now is None else now
    return OAuthToken(
        "ory_at_old-access-token-0123456789",
        "ory_rt_old-refresh-token-0123456789",
        now + 100,
        ["SEND_EVENT", "USER_POSTS_GET", "offline_access"],
        obtained_at=now - 3500,
        redirect_uri=DEMO_REDIRECT_URI,
    )


@pytest.fixture(params=["sync", "aiohttp", "httpx"])
def refresh_via(request: pytest.FixtureRequest) -> str:
    """How a test refreshes: ``OAuthClient.refresh``, or ``refresh_async`` through an async transport."""
    return str(request.param)


def refresh_with(client: OAuthClient, token: OAuthToken, via: str, **options: Any) -> OAuthToken:
    """``client.refresh(token, **options)``, or the same through ``refresh_async`` over ``via``."""
    if via == "sync":
        return client.refresh(token, **options)

    async def refresh() -> OAuthToken:
        configuration = client.async_configuration()  # the OAuth client's TLS, proxy, answer cap
        async with AsyncApiClient(configuration, transport=via) as api_client:  # type: ignore[arg-type]
            return await client.refresh_async(token, transport=api_client.transport, **options)

    return asyncio.run(refresh())


def _refresh_tokens_sent(requests: List[RecordedRequest]) -> List[str]:
    return [parse_qs(request.body.decode())["refresh_token"][0] for request in requests]


# -- answers that are sent again ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, "server_error"), (503, "temporarily_unavailable"), (429, "temporarily_unavailable")],
)
def test_hydras_json_5xx_and_429_are_sent_again_after_retry_after(
    fake_kenar: RecordingServer,
    status: int,
    error: str,
    refresh_via: str,
) -> None:
    fake_kenar.queue_reply(
        Reply(status, {"error": error, "error_description": "try later"}, {"Retry-After": "1"})
    )
    started = time.monotonic()
    with _client(fake_kenar.url) as client:
        refreshed = refresh_with(client, _old_token(), refresh_via)
    assert time.monotonic() - started >= 1.0  # Retry-After was waited (a lower bound only)
    assert refreshed.access_token == "ory_at_fresh-access-token-0123456789"
    assert _refresh_tokens_sent(fake_kenar.requests) == ["ory_rt_old-refresh-token-0123456789"] * 2


def test_a_retry_after_beyond_the_deadline_is_raised_at_once_with_its_seconds(
    fake_kenar: RecordingServer,
    refresh_via: str,
) -> None:
    fake_kenar.queue_reply(Reply(503, {"error": "temporarily_unavailable"}, {"Retry-After": "600"}))
    with _client(fake_kenar.url) as client, pytest.raises(OAuthServerError) as caught:
        refresh_with(client, _old_token(), refresh_via, timeout=5)
    assert (caught.value.status, caught.value.error, caught.value.retry_after) == (
        503,
        "temporarily_unavailable",
        600.0,
    )
    assert len(fake_kenar.requests) == 1


def test_a_plain_429_carries_its_retry_after_and_is_sent_again(
    fake_kenar: RecordingServer, refresh_via: str
) -> None:
    fake_kenar.queue_reply(Reply(429, b"slow down", {"Content-Type": "text/plain", "Retry-After": "0"}))
    with _client(fake_kenar.url) as client:
        refresh_with(client, _old_token(), refresh_via)
    assert len(fake_kenar.requests) == 2


@pytest.mark.parametrize("error", ["invalid_grant", "invalid_client", "invalid_request"])
def test_a_refusal_is_not_sent_again(fake_kenar: RecordingServer, error: str, refresh_via: str) -> None:
    fake_kenar.queue_reply(Reply(400 if error != "invalid_client" else 401, {"error": error}))
    with _client(fake_kenar.url) as client, pytest.raises(ApiException):
        refresh_with(client, _old_token(), refresh_via)
    assert len(fake_kenar.requests) == 1


def test_kenar_processed_the_refresh_then_answered_500_and_the_retry_within_the_grace_works(
    sandbox: Sandbox,
    refresh_via: str,
) -> None:
    token = issued_token(sandbox)
    sandbox.inject_fault("oauth2_token", 500)  # the refresh takes effect, then 500
    with oauth_client(sandbox) as client:
        refreshed = refresh_with(client, token, refresh_via)
    # Kenar processed both; the client saw the first answered 500.
    assert [r.status for r in sandbox.token_requests] == [200, 200]
    assert [(f.took_effect, f.status) for f in sandbox.injected_faults] == [(True, 500)]
    assert [(r.within_grace, r.revoked_chain) for r in sandbox.token_reuses] == [(True, False)]
    assert send_event(sandbox, refreshed.access_token) == {}


def test_a_2xx_whose_body_is_cut_short_is_sent_again_within_the_grace(
    sandbox: Sandbox, refresh_via: str
) -> None:
    token = issued_token(sandbox)
    sandbox.inject_fault("oauth2_token", "malformed")
    with oauth_client(sandbox) as client:
        refreshed = refresh_with(client, token, refresh_via)
    assert [(r.within_grace, r.revoked_chain) for r in sandbox.token_reuses] == [(True, False)]
    assert send_event(sandbox, refreshed.access_token) == {}


def test_a_trickling_answer_is_cut_off_at_the_refresh_deadline(sandbox: Sandbox, refresh_via: str) -> None:
    token = issued_token(sandbox)
    sandbox.inject_fault("oauth2_token", "trickle", delay=120)
    outcome: List[BaseException] = []

    def refresh() -> None:
        with oauth_client(sandbox) as client:
            try:
                refresh_with(client, token, refresh_via, timeout=2)
            except BaseException as error:
                outcome.append(error)

    worker = threading.Thread(target=refresh, daemon=True)
    worker.start()
    worker.join(60)  # a safety net: the trickle alone would take 120 s
    assert not worker.is_alive(), "the refresh waited for the trickling answer"
    (error,) = outcome
    assert isinstance(error, ApiTimeoutError)
    assert "deadline" in str(error)
    # Kenar did rotate the tokens: the same refresh token, within the grace, gets a new pair.
    with oauth_client(sandbox) as client:
        again = refresh_with(client, token, refresh_via)
    assert [(r.within_grace, r.revoked_chain) for r in sandbox.token_reuses] == [(True, False)]
    assert send_event(sandbox, again.access_token) == {}


def test_the_async_token_settings_are_the_oauth_clients_without_the_api_credentials() -> None:
    from kenar_api_client import Configuration

    api = Configuration(host="https://api.example.test", api_key={"APIKey": "the-api-key-0123456789"})
    api.proxy = "http://127.0.0.1:3128"
    client = _client("https://oauth.example.test", configuration=api)
    settings = client.async_configuration()
    assert (settings.host, settings.proxy, settings.max_response_bytes) == (
        "https://oauth.example.test",
        "http://127.0.0.1:3128",
        64 * 1024,
    )
    assert settings.api_key == {}
    assert not settings.access_token
    assert api.api_key == {"APIKey": "the-api-key-0123456789"}  # the app's own is left alone


def test_a_token_answer_over_64_kib_is_not_taken_but_sent_again(
    fake_kenar: RecordingServer, refresh_via: str
) -> None:
    huge = {**_token_answer(access_token="ory_at_from-the-huge-answer-0123456789"), "padding": "x" * 200_000}
    fake_kenar.queue_reply(Reply(200, huge))
    with _client(fake_kenar.url) as client:
        refreshed = refresh_with(client, _old_token(), refresh_via, timeout=10)
    # Over the cap, the answer is one that cannot be read: sent again, the next answer taken.
    assert refreshed.access_token == "ory_at_fresh-access-token-0123456789"
    assert len(fake_kenar.requests) == 2


def test_a_refresh_timeout_beyond_the_resend_window_is_refused_before_sending(
    fake_kenar: RecordingServer,
    refresh_via: str,
) -> None:
    with _client(fake_kenar.url) as client, pytest.raises(ApiValueError, match="timeout"):
        refresh_with(client, _old_token(), refresh_via, timeout=500)
    assert fake_kenar.requests == []


# -- what RFC 6749 lets a refresh answer leave out -------------------------------------------------


def test_an_answer_without_refresh_token_scope_or_expires_in_keeps_what_it_can(
    fake_kenar: RecordingServer,
) -> None:
    fake_kenar.queue_reply(Reply(200, _token_answer(refresh_token=None, scope=None, expires_in=None)))
    old = _old_token()
    before = time.time()
    with _client(fake_kenar.url) as client:
        refreshed = client.refresh(old)
    assert refreshed.access_token == "ory_at_fresh-access-token-0123456789"
    assert refreshed.refresh_token == old.refresh_token  # RFC 6749, 6: the client keeps it
    assert refreshed.scopes == old.scopes  # 5.1: the scope was not changed
    assert before + 3600 <= refreshed.expires_at <= time.time() + 3600  # Kenar's hour
    assert len(fake_kenar.requests) == 1


def test_an_empty_scope_in_the_answer_is_taken_as_given(fake_kenar: RecordingServer) -> None:
    fake_kenar.queue_reply(Reply(200, _token_answer(scope="")))
    with _client(fake_kenar.url) as client:
        assert client.refresh(_old_token()).scopes == []


# -- the redirect URI goes with the code -----------------------------------------------------------


def test_the_redirect_uri_of_the_authorization_url_is_sent_with_its_code(sandbox: Sandbox) -> None:
    other = "http://127.0.0.1:8765/kenar/callback"  # the demo client's, on another loopback port
    with oauth_client(sandbox) as client:
        request = client.authorization_url(SCOPES, redirect_uri=other)
        token = client.complete_authorization(browser_consent(request.url), request.state)
        assert token.redirect_uri == other
        assert client.refresh(token).redirect_uri == other
    assert [(r.grant_type, r.status) for r in sandbox.token_requests] == [
        ("authorization_code", 200),
        ("refresh_token", 200),
    ]


# -- the times a token may hold --------------------------------------------------------------------


@pytest.mark.parametrize("expires_at", [1e20, float("inf"), float("nan"), -5.0, 253402300800.0])
def test_a_token_time_out_of_range_is_refused_where_it_enters(expires_at: float) -> None:
    with pytest.raises(ApiValueError, match="expires_at"):
        OAuthToken("ory_at_x1234", None, expires_at, [])
    with pytest.raises(ApiValueError):
        OAuthToken.from_dict({"access_token": "ory_at_x1234", "expires_at": expires_at})
    with pytest.raises(ApiValueError):
        OAuthToken.from_response({"access_token": "ory_at_x1234", "expires_in": 3600}, expires_at)


def test_the_latest_token_time_still_shows() -> None:
    token = OAuthToken("ory_at_x1234", None, 253402300799.0, [])
    assert "9999-12-31" in repr(token)


def test_the_sandbox_clock_and_tokens_refuse_times_past_the_year_9999(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="9999"):
        sandbox.clock.set(1e12)
    with pytest.raises(ValueError, match="9999"):
        sandbox.clock.advance(1e12)
    with pytest.raises(SandboxError, match="expires_at"):
        sandbox.add_access_token("token-far-away", DEMO_USER_ID, expires_at=1e20)
    with pytest.raises(SandboxError, match="expires_in"):
        sandbox.issue_tokens(expires_in=10**20)
    assert send_event(sandbox, issued_token(sandbox).access_token) == {}  # it still serves


# -- no secret in a failure's local variables ------------------------------------------------------


def test_a_refused_refresh_leaves_no_secret_in_its_traceback_locals(
    sandbox: Sandbox, refresh_via: str
) -> None:
    token = issued_token(sandbox)
    sandbox.revoke_consent(DEMO_USER_ID)
    with oauth_client(sandbox) as client:
        error = failure_of(lambda: refresh_with(client, token, refresh_via))
    assert isinstance(error, InvalidGrantError)
    shown = traceback_locals(error, skip_file="test_oauth_refresh.py")
    assert {"_token_request", "_token_request_async"} & set(frame_names(error))  # the real frames walked
    for secret in (DEMO_CLIENT_SECRET, str(token.refresh_token), token.access_token):
        assert secret not in shown


def test_a_refresh_that_gets_no_answer_leaves_no_secret_in_its_traceback_locals(
    sandbox: Sandbox, refresh_via: str
) -> None:
    token = issued_token(sandbox)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{unused.getsockname()[1]}"
    with oauth_client(sandbox, dead) as client:
        error = failure_of(lambda: refresh_with(client, token, refresh_via, timeout=2))
    assert isinstance(error, ApiConnectionError)
    shown = traceback_locals(error, skip_file="test_oauth_refresh.py")
    for secret in (DEMO_CLIENT_SECRET, str(token.refresh_token), token.access_token):
        assert secret not in shown


def test_a_refresh_that_keeps_failing_with_500_leaves_no_secret_in_its_traceback_locals(
    sandbox: Sandbox,
    refresh_via: str,
) -> None:
    token = issued_token(sandbox)
    sandbox.inject_fault("oauth2_token", 503, times=10)
    with oauth_client(sandbox) as client:
        error = failure_of(lambda: refresh_with(client, token, refresh_via, timeout=3))
    assert isinstance(error, OAuthServerError)
    shown = traceback_locals(error, skip_file="test_oauth_refresh.py")
    for secret in (DEMO_CLIENT_SECRET, str(token.refresh_token), token.access_token):
        assert secret not in shown


def test_the_code_exchange_is_still_sent_once_and_its_form_is_kenars(fake_kenar: RecordingServer) -> None:
    with _client(fake_kenar.url) as client:
        token = client.exchange_code("ory_ac_the-code-0123456789")
    assert token.redirect_uri == DEMO_REDIRECT_URI
    (request,) = fake_kenar.requests
    assert parse_qs(request.body.decode()) == {
        "grant_type": ["authorization_code"],
        "code": ["ory_ac_the-code-0123456789"],
        "client_id": [DEMO_CLIENT_ID],
        "client_secret": [DEMO_CLIENT_SECRET],
        "redirect_uri": [DEMO_REDIRECT_URI],
    }
    assert urlsplit(request.raw_path).path == "/oauth2/token"


def test_the_new_errors_survive_pickling_and_hold_no_secret() -> None:
    import pickle

    from kenar_api_client.oauth.errors import (
        ConsentRequiredError,
        RefreshTokenSpentError,
        TokenUnavailableError,
    )

    errors = [
        OAuthServerError("server_error", "down", status=500, retry_after=3.0, headers={"Retry-After": "3"}),
        TokenUnavailableError("user-42", "POST .../oauth2/token: could not connect", 12.5),
        RefreshTokenSpentError("user-42", "2026-12-01T10:00:00+00:00"),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert vars(copy) == vars(error)
    assert isinstance(errors[2], ConsentRequiredError)
    assert "next attempt in 12 s" in str(errors[1])
