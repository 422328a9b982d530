"""The OAuth client against the sandbox's OAuth server: authorization URL, redirect, exchange, refresh."""

from __future__ import annotations

import logging
import pickle
import socket
import threading
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from oauth_helpers import SCOPES, LossyProxy, browser_consent, issued_token, oauth_client, send_event

import kenar_api_client
from kenar_api_client.exceptions import ApiConnectionError, ApiException, ApiTimeoutError, ApiValueError
from kenar_api_client.oauth import (
    AccessDeniedError,
    ConsentRequiredError,
    InvalidClientError,
    InvalidGrantError,
    OAuthClient,
    OAuthError,
    OAuthRedirectError,
    OAuthToken,
    Scope,
    StateMismatchError,
    scope,
)
from kenar_api_client.sandbox import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REDIRECT_URI,
    DEMO_USER_ID,
    Sandbox,
)


@pytest.fixture
def oauth(sandbox: Sandbox) -> Iterator[OAuthClient]:
    with oauth_client(sandbox) as client:
        yield client


# -- configuration ------------------------------------------------------------------------------


def test_settings_come_from_the_environment_and_explicit_values_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KENAR_APP_SLUG", "env-slug")
    monkeypatch.setenv("KENAR_CLIENT_SECRET", "env-secret-value")
    monkeypatch.setenv("KENAR_REDIRECT_URI", "https://app.example/callback")
    monkeypatch.setenv("KENAR_OAUTH_URL", "http://127.0.0.1:9")
    from_env = OAuthClient()
    assert (from_env.client_id, from_env.redirect_uri, from_env.oauth_url) == (
        "env-slug",
        "https://app.example/callback",
        "http://127.0.0.1:9",
    )
    explicit = OAuthClient(
        "my-slug", redirect_uri="https://app.example/other", oauth_url="https://oauth.example"
    )
    assert (explicit.client_id, explicit.redirect_uri, explicit.oauth_url) == (
        "my-slug",
        "https://app.example/other",
        "https://oauth.example",
    )


def test_the_default_oauth_host_is_divars() -> None:
    assert OAuthClient("slug").oauth_url == "https://oauth.divar.ir"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"redirect_uri": "https://app.example/cb?x=1"}, "no query"),
        ({"redirect_uri": "app.example/cb"}, "absolute"),
        ({"oauth_url": "oauth.divar.ir"}, "oauth_url"),
        ({"client_id": "slug\r\nX: 1"}, "client_id"),
        ({"client_secret": ""}, "client_secret"),
    ],
)
def test_bad_settings_are_refused_at_once(kwargs: dict, message: str) -> None:
    with pytest.raises(ApiValueError, match=message):
        OAuthClient(**{"client_id": "slug", **kwargs})


def test_a_missing_setting_is_named_with_its_variable(sandbox: Sandbox) -> None:
    client = OAuthClient(redirect_uri=DEMO_REDIRECT_URI, oauth_url=sandbox.oauth_url)
    with pytest.raises(ApiValueError, match="KENAR_APP_SLUG"):
        client.authorization_url([Scope.SEND_EVENT])
    client = OAuthClient(DEMO_CLIENT_ID, redirect_uri=DEMO_REDIRECT_URI, oauth_url=sandbox.oauth_url)
    with pytest.raises(ApiValueError, match="KENAR_CLIENT_SECRET"):
        client.exchange_code("some-code")
    assert sandbox.token_requests == []  # nothing was sent


# -- step 1: the authorization URL ----------------------------------------------------------------


def test_the_authorization_url_carries_every_parameter(oauth: OAuthClient, sandbox: Sandbox) -> None:
    url, state = oauth.authorization_url(
        [Scope.SEND_EVENT, Scope.CHAT_POST_CONVERSATIONS_READ.on("wZ3kT9pQ")]
    )
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{sandbox.oauth_url}/oauth2/auth"
    assert parse_qs(parts.query) == {
        "response_type": ["code"],
        "client_id": [DEMO_CLIENT_ID],
        "redirect_uri": [DEMO_REDIRECT_URI],
        "scope": ["SEND_EVENT CHAT_POST_CONVERSATIONS_READ.wZ3kT9pQ offline_access"],
        "state": [state],
    }
    assert "%20" in parts.query  # scopes are separated by an encoded space


def test_a_fresh_unguessable_state_is_made_each_time(oauth: OAuthClient) -> None:
    states = {oauth.authorization_url([Scope.SEND_EVENT]).state for _ in range(50)}
    assert len(states) == 50
    assert all(len(state) >= 40 for state in states)


def test_a_given_state_is_kept_and_offline_access_can_be_left_out(oauth: OAuthClient) -> None:
    url, state = oauth.authorization_url(["SEND_EVENT"], state="my-state-123", offline=False)
    assert state == "my-state-123"
    assert parse_qs(urlsplit(url).query)["scope"] == ["SEND_EVENT"]


def test_every_scope_name_of_the_spec_is_a_constant() -> None:
    import json
    from pathlib import Path

    spec = Path(__file__).resolve().parents[2] / "shared" / "spec" / "kenar-openapi.json"
    if not spec.exists():
        pytest.skip("../shared/spec is not beside the checkout")
    listed = json.loads(spec.read_text())["components"]["securitySchemes"]["OAuth"]["flows"]
    names = listed["authorizationCode"]["scopes"]
    assert {name.split(".")[0] for name in names} == {member.value for member in Scope}
    bound = {name.split(".")[0] for name in names if name.endswith(".resource_id")}
    assert {member.value for member in Scope if member.needs_resource} == bound


@pytest.mark.parametrize(
    ("scopes", "message"),
    [
        (["CHAT_POST_CONVERSATIONS_READ"], "granted for one resource"),
        (["SEND_EVENT.wZ3kT9pQ"], "takes no resource"),
        (["SEND EVENT"], "malformed"),
        (["SEND_EVENT\n"], "malformed"),
        ([], "at least one"),
        ([42], "string"),
    ],
)
def test_bad_scopes_are_refused_before_anything_is_built(
    oauth: OAuthClient, scopes: list, message: str
) -> None:
    with pytest.raises(ApiValueError, match=message):
        oauth.authorization_url(scopes)


def test_unknown_well_formed_scopes_are_accepted(oauth: OAuthClient) -> None:
    url, _ = oauth.authorization_url(["A_SCOPE_KENAR_ADDED_LATER", "ANOTHER.res-1"], offline=False)
    assert parse_qs(urlsplit(url).query)["scope"] == ["A_SCOPE_KENAR_ADDED_LATER ANOTHER.res-1"]
    assert scope(Scope.POST_EDIT, "abc") == "POST_EDIT.abc"


# -- steps 2 and 3: the redirect back and the code exchange -----------------------------------------


def test_the_whole_flow_gives_a_token_that_works_on_the_events_api(
    oauth: OAuthClient, sandbox: Sandbox
) -> None:
    request = oauth.authorization_url(SCOPES)
    redirect = browser_consent(request.url)
    before = sandbox.clock.now()
    token = oauth.complete_authorization(redirect, request.state)
    after = sandbox.clock.now()

    assert token.access_token.startswith("ory_at_")
    assert token.refresh_token is not None
    assert token.refresh_token.startswith("ory_rt_")
    assert isinstance(token.scopes, list)
    assert set(token.scopes) == set(SCOPES)
    assert before + 3600 <= token.expires_at <= after + 3600
    assert send_event(sandbox, token.access_token) == {}
    assert sandbox.sent_events[0].user_id == DEMO_USER_ID
    (record,) = sandbox.token_requests
    assert (record.grant_type, record.status) == ("authorization_code", 200)


def test_the_redirect_may_be_a_full_url_or_its_query(oauth: OAuthClient) -> None:
    assert oauth.parse_redirect("https://app.example/cb?state=s1&code=c1", "s1") == "c1"
    assert oauth.parse_redirect("state=s1&code=c1", "s1") == "c1"
    assert oauth.parse_redirect("?code=c1&state=s1#frag", "s1") == "c1"


@pytest.mark.parametrize(
    "redirect",
    [
        "https://app.example/cb?state=other&code=c1",
        "https://app.example/cb?code=c1",
        "https://app.example/cb?state=&code=c1",
        "https://app.example/cb?state=s1x&code=c1",
        "https://app.example/cb?state=other&error=access_denied",
    ],
)
def test_a_state_that_is_not_ours_is_refused(oauth: OAuthClient, redirect: str) -> None:
    with pytest.raises(StateMismatchError, match="state"):
        oauth.parse_redirect(redirect, "s1")


def test_a_state_mismatch_from_a_real_redirect_sends_nothing(oauth: OAuthClient, sandbox: Sandbox) -> None:
    redirect = browser_consent(oauth.authorization_url(SCOPES).url)
    other = oauth.authorization_url(SCOPES)  # e.g. another browser tab's attempt
    with pytest.raises(StateMismatchError):
        oauth.complete_authorization(redirect, other.state)
    assert sandbox.token_requests == []


def test_a_refused_consent_is_access_denied(oauth: OAuthClient, sandbox: Sandbox) -> None:
    sandbox.set_consent(refuse=True)
    request = oauth.authorization_url(SCOPES)
    redirect = browser_consent(request.url)
    with pytest.raises(AccessDeniedError) as caught:
        oauth.complete_authorization(redirect, request.state)
    assert caught.value.error == "access_denied"
    assert sandbox.token_requests == []


def test_no_code_is_access_denied_and_other_errors_are_typed(oauth: OAuthClient) -> None:
    with pytest.raises(AccessDeniedError, match="no code"):
        oauth.parse_redirect("state=s1", "s1")
    with pytest.raises(OAuthRedirectError) as caught:
        oauth.parse_redirect("state=s1&error=invalid_scope&error_description=unknown+scope", "s1")
    assert not isinstance(caught.value, AccessDeniedError)
    assert (caught.value.error, caught.value.error_description) == ("invalid_scope", "unknown scope")
    with pytest.raises(OAuthRedirectError, match="repeats code"):
        oauth.parse_redirect("state=s1&code=a&code=b", "s1")


def test_a_code_works_once(oauth: OAuthClient, sandbox: Sandbox) -> None:
    request = oauth.authorization_url(SCOPES)
    code = oauth.parse_redirect(browser_consent(request.url), request.state)
    token = oauth.exchange_code(code)
    with pytest.raises(InvalidGrantError) as caught:
        oauth.exchange_code(code)
    assert caught.value.status == 400
    assert caught.value.error == "invalid_grant"
    assert isinstance(caught.value, OAuthError)
    assert isinstance(caught.value, ApiException)
    assert code not in str(caught.value)
    # Standard OAuth: the tokens of a reused code are revoked.
    with pytest.raises(kenar_api_client.UnauthorizedException):
        send_event(sandbox, token.access_token)


def test_a_wrong_client_secret_is_invalid_client(sandbox: Sandbox) -> None:
    client = OAuthClient(DEMO_CLIENT_ID, "not-the-secret", DEMO_REDIRECT_URI, sandbox.oauth_url)
    request = client.authorization_url(SCOPES)
    with pytest.raises(InvalidClientError) as caught:
        client.complete_authorization(browser_consent(request.url), request.state)
    assert caught.value.status == 401


# -- step 5: refresh -----------------------------------------------------------------------------


def test_a_refresh_rotates_both_tokens_and_sends_kenars_fields(oauth: OAuthClient, sandbox: Sandbox) -> None:
    token = issued_token(sandbox)
    sandbox.clock.advance(1800)
    refreshed = oauth.refresh(token)
    assert refreshed.access_token != token.access_token
    assert refreshed.refresh_token not in (None, token.refresh_token)
    assert refreshed.scopes == token.scopes
    assert refreshed.expires_at == pytest.approx(sandbox.clock.now() + 3600, abs=5)
    # The sandbox refuses a refresh without code=<access token> or redirect_uri; it answered 200.
    assert [(r.grant_type, r.status) for r in sandbox.token_requests] == [("refresh_token", 200)]


def test_the_old_pair_works_for_two_minutes_then_only_the_new_one(
    oauth: OAuthClient, sandbox: Sandbox
) -> None:
    token = issued_token(sandbox)
    refreshed = oauth.refresh(token)
    sandbox.clock.advance(100)
    assert send_event(sandbox, token.access_token) == {}
    sandbox.clock.advance(30)
    with pytest.raises(kenar_api_client.UnauthorizedException):
        send_event(sandbox, token.access_token)
    assert send_event(sandbox, refreshed.access_token) == {}


def test_a_rotated_refresh_token_after_the_grace_is_invalid_grant_and_kills_the_chain(
    oauth: OAuthClient, sandbox: Sandbox
) -> None:
    token = issued_token(sandbox)
    refreshed = oauth.refresh(token)
    sandbox.clock.advance(121)
    with pytest.raises(InvalidGrantError):
        oauth.refresh(token)
    # Why refreshes must be coordinated: the new pair died with the chain.
    with pytest.raises(kenar_api_client.UnauthorizedException):
        send_event(sandbox, refreshed.access_token)


def test_a_lost_refresh_answer_is_retried_within_the_grace(sandbox: Sandbox) -> None:
    token = issued_token(sandbox)
    with LossyProxy(sandbox.oauth_url, lose=1) as proxy, oauth_client(sandbox, proxy.url) as client:
        refreshed = client.refresh(token)
    assert proxy.forwarded == 2
    # Kenar acted on both: the second used the old refresh token inside its grace.
    assert [(r.grant_type, r.status) for r in sandbox.token_requests] == [("refresh_token", 200)] * 2
    assert send_event(sandbox, refreshed.access_token) == {}


def test_a_lost_code_exchange_answer_is_never_retried(oauth: OAuthClient, sandbox: Sandbox) -> None:
    request = oauth.authorization_url(SCOPES)
    code = oauth.parse_redirect(browser_consent(request.url), request.state)
    with LossyProxy(sandbox.oauth_url, lose=1) as proxy, oauth_client(sandbox, proxy.url) as client:  # noqa: SIM117
        with pytest.raises(ApiConnectionError):
            client.exchange_code(code)
    assert proxy.forwarded == 1
    assert [r.grant_type for r in sandbox.token_requests] == ["authorization_code"]


def test_a_token_without_refresh_token_cannot_be_refreshed(oauth: OAuthClient, sandbox: Sandbox) -> None:
    scopes_without_offline = [s for s in SCOPES if s != "offline_access"]
    token = issued_token(sandbox, scopes=scopes_without_offline)
    assert not token.refreshable
    with pytest.raises(ApiValueError, match="offline_access"):
        oauth.refresh(token)
    assert sandbox.token_requests == []


# -- transport discipline ------------------------------------------------------------------------


def test_an_unreachable_oauth_server_is_a_typed_connection_error(sandbox: Sandbox) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    client = oauth_client(sandbox, f"http://127.0.0.1:{port}")
    with pytest.raises(ApiConnectionError) as caught:
        client.exchange_code("a-code-value")
    assert caught.value.status == 0
    assert "a-code-value" not in str(caught.value)


def test_a_silent_oauth_server_times_out(sandbox: Sandbox) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    try:
        client = oauth_client(sandbox, f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=0.3)
        with pytest.raises(ApiTimeoutError):
            client.exchange_code("a-code-value")
    finally:
        listener.close()


# -- secrets -------------------------------------------------------------------------------------


def test_no_secret_reaches_logs_reprs_or_errors(
    oauth: OAuthClient, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    request = oauth.authorization_url(SCOPES)
    code = oauth.parse_redirect(browser_consent(request.url), request.state)
    token = oauth.exchange_code(code)
    refreshed = oauth.refresh(token)
    sandbox.clock.advance(200)
    with pytest.raises(InvalidGrantError) as refused:
        oauth.refresh(token)
    with pytest.raises(InvalidGrantError) as reused:
        oauth.exchange_code(code)

    secrets = [
        DEMO_CLIENT_SECRET,
        code,
        token.access_token,
        str(token.refresh_token),
        refreshed.access_token,
        str(refreshed.refresh_token),
    ]
    shown = "\n".join(
        [
            caplog.text,
            repr(oauth),
            repr(token),
            str(refreshed),
            *(str(error.value) for error in (refused, reused)),
            *(repr(vars(error.value)) for error in (refused, reused)),
        ]
    )
    assert "grant_type=refresh_token -> 200" in caplog.text  # the calls were logged...
    for secret in secrets:
        assert secret not in shown  # ...without a secret


def test_every_oauth_error_survives_pickling() -> None:
    errors = [
        InvalidGrantError("invalid_grant", "refresh token used", status=400, body="{}", headers={"A": "b"}),
        InvalidClientError("invalid_client", None, status=401),
        OAuthError("invalid_scope", "nope", status=400),
        ConsentRequiredError("user-42", "no token is stored for this user"),
        AccessDeniedError("refused", "access_denied", "the user said no"),
        StateMismatchError("state mismatch"),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert vars(copy) == vars(error)


def test_a_token_round_trips_through_its_stored_form(sandbox: Sandbox) -> None:
    token = issued_token(sandbox)
    assert OAuthToken.from_dict(token.to_dict()) == token
    with pytest.raises(ApiValueError):
        OAuthToken.from_dict({"access_token": "x"})


def test_the_apis_environment_plays_no_part_in_the_oauth_client(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KENAR_BASE_URL", "not a URL")
    monkeypatch.setenv("KENAR_API_KEY", "an-api-key-value")
    with oauth_client(sandbox) as client:
        token = client.refresh(issued_token(sandbox))
    assert token.access_token.startswith("ory_at_")
