"""The sandbox's OAuth server over real HTTP: the code flow, refresh rotation, lifetimes on its clock,
subscriptions that die with their token, consent revocation, and no secret in logs or state."""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional
from urllib.parse import parse_qs, quote_plus, urlencode, urlsplit

import pytest
from servers import RecordingServer

import kenar_api_client
from kenar_api_client.sandbox import (
    ACCESS_TOKEN_LIFETIME,
    CODE_LIFETIME,
    DEMO_ACCESS_TOKEN,
    DEMO_API_KEY,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_POST_TOKEN,
    DEMO_REDIRECT_URI,
    DEMO_SCOPES,
    DEMO_USER_ID,
    REFRESH_TOKEN_LIFETIME,
    ROTATION_GRACE,
    RegisteredClient,
    Sandbox,
    SandboxClock,
    SandboxError,
    SubscriptionRequiredError,
)
from kenar_api_client.sandbox._scopes import PROTOCOL_SCOPES, SCOPE_NAMES

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "kenar-openapi.json"
CALLBACK = "http://127.0.0.1:8123/kenar/callback"  # the demo redirect URI, on the app's port
SCOPE = f"SEND_EVENT CHAT_POST_CONVERSATIONS_READ.{DEMO_POST_TOKEN} USER_POSTS_GET offline_access"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def webhook(sandbox: Sandbox) -> Iterator[RecordingServer]:
    receiver = RecordingServer().start()
    sandbox.set_webhook(f"{receiver.url}/kenar")
    yield receiver
    receiver.stop()


# -- speaking HTTP -------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def redirect(self) -> Dict[str, str]:
        """The query of the Location of a 302, one value per name."""
        assert self.status == 302, (self.status, self.body)
        query = parse_qs(urlsplit(self.headers["Location"]).query, keep_blank_values=True)
        assert all(len(values) == 1 for values in query.values())
        return {name: values[0] for name, values in query.items()}


class _DoNotFollow(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_DoNotFollow)


def http(
    url: str,
    data: Optional[bytes] = None,
    headers: Optional[Dict[str, str]] = None,
    method: Optional[str] = None,
) -> Answer:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with _OPENER.open(request, timeout=10) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Answer(error.code, error.headers, error.read())


def authorize(sandbox: Sandbox, **params: Optional[str]) -> Answer:
    """``GET /oauth2/auth`` with the usual parameters, changed by ``params`` (None: left out)."""
    query = {
        "response_type": "code",
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": CALLBACK,
        "scope": SCOPE,
        "state": "st-4a9c1e",
    }
    query.update(params)  # type: ignore[arg-type]
    sent = {name: value for name, value in query.items() if value is not None}
    return http(f"{sandbox.oauth_url}/oauth2/auth?{urlencode(sent)}")


def token_request(
    sandbox: Sandbox, form: Dict[str, Optional[str]], headers: Optional[Dict[str, str]] = None
) -> Answer:
    sent = {name: value for name, value in form.items() if value is not None}
    return http(
        f"{sandbox.oauth_url}/oauth2/token",
        urlencode(sent).encode(),
        {"Content-Type": FORM, **(headers or {})},
    )


def code_of(sandbox: Sandbox, **params: Optional[str]) -> str:
    return authorize(sandbox, **params).redirect["code"]


def exchange(sandbox: Sandbox, authorization_code: str, **changes: Optional[str]) -> Answer:
    form: Dict[str, Optional[str]] = {
        "grant_type": "authorization_code",
        "code": authorization_code,
        "redirect_uri": CALLBACK,
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
    }
    form.update(changes)
    return token_request(sandbox, form)


def refresh(sandbox: Sandbox, tokens: Dict[str, Any], **changes: Optional[str]) -> Answer:
    form: Dict[str, Optional[str]] = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "code": tokens["access_token"],
        "redirect_uri": CALLBACK,  # the one the tokens were obtained with
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
    }
    form.update(changes)
    return token_request(sandbox, form)


def flow(sandbox: Sandbox) -> Dict[str, Any]:
    """The tokens of a whole authorization-code flow."""
    answer = exchange(sandbox, code_of(sandbox))
    assert answer.status == 200, answer.body
    tokens: Dict[str, Any] = answer.json()
    return tokens


@contextmanager
def events_api(sandbox: Sandbox, access_token: str) -> Iterator[kenar_api_client.EventsApi]:
    configuration = kenar_api_client.Configuration(
        host=sandbox.url, api_key={"APIKey": DEMO_API_KEY}, access_token=access_token
    )
    with kenar_api_client.ApiClient(configuration) as api_client:
        yield kenar_api_client.EventsApi(api_client)


def send_to_demo_post(sandbox: Sandbox, access_token: str) -> None:
    with events_api(sandbox, access_token) as events:
        events.events_send_event(message="سلام", target_type="POST", target_resource_id=DEMO_POST_TOKEN)


def refused(sandbox: Sandbox, access_token: str) -> str:
    """The message of the 401 an Events call with ``access_token`` gets."""
    with pytest.raises(kenar_api_client.UnauthorizedException) as caught:
        send_to_demo_post(sandbox, access_token)
    assert caught.value.data is not None
    return str(caught.value.data.message)


def subscribe(sandbox: Sandbox, access_token: str, metadata: Dict[str, Any]) -> None:
    with events_api(sandbox, access_token) as events:
        events.events_register_event_subscription(
            {"event_type": "NEW_MESSAGE_ON_POST", "event_resource_id": DEMO_POST_TOKEN, "metadata": metadata}
        )


def invalid_grant(answer: Answer, reason: str) -> None:
    assert answer.status == 400, answer.body
    assert answer.json()["error"] == "invalid_grant"
    assert reason in answer.json()["error_description"]


# -- the code flow -------------------------------------------------------------------------------


def test_the_whole_flow_gives_tokens_the_events_api_accepts(sandbox: Sandbox) -> None:
    auth = authorize(sandbox)
    location = urlsplit(auth.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    assert auth.redirect["state"] == "st-4a9c1e"
    assert auth.redirect["code"].startswith("ory_ac_")

    answer = exchange(sandbox, auth.redirect["code"])

    assert answer.status == 200
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers.get_content_type() == "application/json"
    tokens = answer.json()
    assert set(tokens) == {"access_token", "expires_in", "scope", "token_type", "refresh_token"}
    assert tokens["access_token"].startswith("ory_at_")
    assert tokens["refresh_token"].startswith("ory_rt_")
    assert (tokens["expires_in"], tokens["token_type"], tokens["scope"]) == (
        ACCESS_TOKEN_LIFETIME,
        "bearer",
        SCOPE,
    )
    send_to_demo_post(sandbox, tokens["access_token"])
    assert [(e.user_id, e.target_resource_id) for e in sandbox.sent_events] == [
        (DEMO_USER_ID, DEMO_POST_TOKEN)
    ]


def test_state_and_code_are_percent_encoded_in_the_redirect(sandbox: Sandbox) -> None:
    state = "a b&c=d/é+"
    auth = authorize(sandbox, state=state)
    assert auth.redirect["state"] == state
    assert "a+b%26c%3Dd%2F%C3%A9%2B" in auth.headers["Location"]


def test_without_state_none_is_echoed_and_without_offline_access_no_refresh_token(sandbox: Sandbox) -> None:
    auth = authorize(sandbox, state=None, scope="SEND_EVENT")
    assert set(auth.redirect) == {"code"}
    tokens = exchange(sandbox, auth.redirect["code"]).json()
    assert "refresh_token" not in tokens
    assert tokens["scope"] == "SEND_EVENT"


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "no-such-app"},
        {"client_id": None},
        {"redirect_uri": None},
        {"redirect_uri": "http://127.0.0.1:8123/kenar/other"},
        {"redirect_uri": "http://localhost:8123/kenar/callback"},
        {"redirect_uri": "https://127.0.0.1/kenar/callback"},
        {"redirect_uri": "http://127.0.0.1/kenar/callback?next=1"},
        {"redirect_uri": "http://evil.example/kenar/callback"},
        # urlsplit() drops tabs and line breaks: these would match, then split the answer.
        {"redirect_uri": "http://127.0.0.1:8123/kenar/call\r\nSet-Cookie: a=b\r\nback"},
        {"redirect_uri": "http://127.0.0.1:8123/kenar/call\nback"},
        {"redirect_uri": "http://127.0.0.1:8123\r\n/kenar/callback"},
        {"redirect_uri": "http://127.0.0.1:8123/kenar/\tcallback"},
        {"redirect_uri": " http://127.0.0.1:8123/kenar/callback"},
        {"redirect_uri": "http://127.0.0.1:8123/kenar/callback\x00"},
        {"redirect_uri": "http://127.0.0.1:8123/kenar/callbackی"},
    ],
    ids=lambda params: "-".join(f"{k}={v!r}" for k, v in params.items()),
)
def test_unknown_client_or_redirect_uri_is_400_without_a_redirect(
    sandbox: Sandbox, params: Dict[str, Optional[str]]
) -> None:
    answer = authorize(sandbox, **params)
    assert answer.status == 400
    assert "Location" not in answer.headers
    assert answer.headers.get_content_type() == "text/plain"
    assert ("client_id" in answer.body.decode()) or ("redirect_uri" in answer.body.decode())


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "unsupported_response_type"),
        ({"scope": None}, "invalid_scope"),
        ({"scope": "  "}, "invalid_scope"),
        ({"scope": "SEND_EVENT NOT_A_SCOPE"}, "invalid_scope"),
        ({"scope": "SEND_EVENT CHAT_POST_CONVERSATIONS_READ."}, "invalid_scope"),
        ({"scope": "SEND_EVENT\tUSER_ID"}, "invalid_scope"),
    ],
)
def test_other_authorization_errors_redirect_back_with_the_state(
    sandbox: Sandbox, params: Dict[str, Optional[str]], error: str
) -> None:
    back = authorize(sandbox, **params).redirect
    assert back["error"] == error
    assert back["error_description"]
    assert back["state"] == "st-4a9c1e"
    assert "code" not in back


def test_every_scope_name_of_the_spec_and_resource_ids_are_accepted(sandbox: Sandbox) -> None:
    scopes = sorted(SCOPE_NAMES) + [f"{name}.res-{i}" for i, name in enumerate(sorted(SCOPE_NAMES))]
    back = authorize(sandbox, scope=" ".join([*scopes, "offline_access", "openid"])).redirect
    assert exchange(sandbox, back["code"]).json()["scope"].split(" ") == [*scopes, "offline_access", "openid"]


@pytest.mark.skipif(not SPEC.exists(), reason=f"the spec is not at {SPEC}")
def test_scope_names_are_those_of_the_spec() -> None:
    flows = json.loads(SPEC.read_text(encoding="utf-8"))["components"]["securitySchemes"]["OAuth"]["flows"]
    names = {scope.split(".")[0] for flow in flows.values() for scope in flow["scopes"]}
    assert names == SCOPE_NAMES | PROTOCOL_SCOPES


def test_refused_consent_redirects_with_access_denied_and_no_code(sandbox: Sandbox) -> None:
    sandbox.set_consent(refuse=True)
    back = authorize(sandbox).redirect
    assert (back["error"], back["state"]) == ("access_denied", "st-4a9c1e")
    assert "code" not in back

    sandbox.set_consent()
    assert "code" in authorize(sandbox).redirect


def test_consent_decides_the_tokens_user_and_posts(sandbox: Sandbox) -> None:
    sandbox.set_consent("sara-1", posts=["AbCd1234"])
    tokens = exchange(sandbox, code_of(sandbox, scope="SEND_EVENT")).json()
    with events_api(sandbox, tokens["access_token"]) as events:
        events.events_send_event(message="hi", target_type="USER", target_resource_id="sara-1")
        events.events_send_event(message="hi", target_type="POST", target_resource_id="AbCd1234")
        with pytest.raises(kenar_api_client.ForbiddenException, match="not owned"):
            events.events_send_event(message="hi", target_type="POST", target_resource_id=DEMO_POST_TOKEN)
    assert [e.user_id for e in sandbox.sent_events] == ["sara-1", "sara-1"]


# -- the code exchange ---------------------------------------------------------------------------


def test_a_code_is_single_use_and_its_reuse_revokes_its_tokens(sandbox: Sandbox) -> None:
    code = code_of(sandbox)
    tokens = exchange(sandbox, code).json()
    send_to_demo_post(sandbox, tokens["access_token"])

    invalid_grant(exchange(sandbox, code), "already been used")

    assert refused(sandbox, tokens["access_token"]) == "the access token has been revoked"
    invalid_grant(refresh(sandbox, tokens), "revoked")


def test_a_code_expires_after_code_lifetime(sandbox: Sandbox) -> None:
    fresh, stale = code_of(sandbox), code_of(sandbox)
    sandbox.clock.advance(CODE_LIFETIME - 30)
    assert exchange(sandbox, fresh).status == 200
    sandbox.clock.advance(30)
    invalid_grant(exchange(sandbox, stale), "expired")


def test_the_code_exchange_needs_the_same_redirect_uri_and_client(sandbox: Sandbox) -> None:
    sandbox.add_oauth_client("other-app", "other-secret", [DEMO_REDIRECT_URI])
    code = code_of(sandbox)
    invalid_grant(
        exchange(sandbox, code, redirect_uri="http://127.0.0.1:9999/kenar/callback"), "redirect_uri"
    )
    invalid_grant(exchange(sandbox, code, redirect_uri=None), "redirect_uri")
    invalid_grant(
        exchange(sandbox, code, client_id="other-app", client_secret="other-secret"), "another client"
    )
    invalid_grant(exchange(sandbox, "ory_ac_made-up"), "not known")
    assert exchange(sandbox, code).status == 200  # failed attempts do not use the code up


def test_missing_code_and_grant_type_errors(sandbox: Sandbox) -> None:
    missing = exchange(sandbox, code_of(sandbox), code=None)
    assert (missing.status, missing.json()["error"]) == (400, "invalid_request")
    assert "code" in missing.json()["error_description"]
    no_grant = exchange(sandbox, "x", grant_type=None)
    assert (no_grant.status, no_grant.json()["error"]) == (400, "invalid_request")
    password = exchange(sandbox, "x", grant_type="password")
    assert (password.status, password.json()["error"]) == (400, "unsupported_grant_type")


# -- client authentication and the request format ------------------------------------------------


def basic(client_id: str, secret: str) -> Dict[str, str]:
    credentials = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(credentials).decode()}


def test_client_secret_basic_with_form_encoded_credentials(sandbox: Sandbox) -> None:
    secret = "s3cr:et/with&odd chars"
    sandbox.add_oauth_client("app:1", secret, [DEMO_REDIRECT_URI])
    code = code_of(sandbox, client_id="app:1")
    form: Dict[str, Optional[str]] = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
    }
    answer = token_request(sandbox, form, basic("app:1", secret))
    assert answer.status == 200, answer.body
    assert sandbox.token_requests[-1].client_id == "app:1"


@pytest.mark.parametrize(
    ("changes", "headers", "challenged"),
    [
        ({"client_secret": "wrong"}, {}, False),
        ({"client_secret": None}, {}, False),
        ({"client_id": None, "client_secret": None}, {}, False),
        ({"client_id": "no-such-app"}, {}, False),
        ({"client_id": None, "client_secret": None}, basic(DEMO_CLIENT_ID, "wrong"), True),
        ({"client_id": None, "client_secret": None}, {"Authorization": "Basic !!not-base64"}, True),
    ],
)
def test_failed_client_authentication_is_401_invalid_client(
    sandbox: Sandbox, changes: Dict[str, Optional[str]], headers: Dict[str, str], challenged: bool
) -> None:
    form: Dict[str, Optional[str]] = {
        "grant_type": "authorization_code",
        "code": code_of(sandbox),
        "redirect_uri": CALLBACK,
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        **changes,
    }
    answer = token_request(sandbox, form, headers)
    assert (answer.status, answer.json()["error"]) == (401, "invalid_client")
    assert answer.headers["Cache-Control"] == "no-store"
    assert ("WWW-Authenticate" in answer.headers) is challenged
    if challenged:
        assert answer.headers["WWW-Authenticate"].startswith("Basic")


def test_two_client_authentication_methods_at_once_are_refused(sandbox: Sandbox) -> None:
    form: Dict[str, Optional[str]] = {
        "grant_type": "authorization_code",
        "code": code_of(sandbox),
        "redirect_uri": CALLBACK,
        "client_secret": DEMO_CLIENT_SECRET,
    }
    both = token_request(sandbox, form, basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET))
    assert (both.status, both.json()["error"]) == (400, "invalid_request")


def test_the_token_endpoint_wants_a_form_by_post(sandbox: Sandbox) -> None:
    form = {
        "grant_type": "authorization_code",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
    }
    as_json = http(
        f"{sandbox.url}/oauth2/token", json.dumps(form).encode(), {"Content-Type": "application/json"}
    )
    assert (as_json.status, as_json.json()["error"]) == (400, "invalid_request")
    assert "x-www-form-urlencoded" in as_json.json()["error_description"]
    twice = http(f"{sandbox.url}/oauth2/token", b"grant_type=a&grant_type=b", {"Content-Type": FORM})
    assert (twice.status, twice.json()["error"]) == (400, "invalid_request")
    by_get = http(f"{sandbox.url}/oauth2/token")
    assert (by_get.status, by_get.headers["Allow"]) == (405, "POST")
    assert http(f"{sandbox.url}/oauth2/revoke", b"", {"Content-Type": FORM}).status == 404
    assert [r.grant_type for r in sandbox.token_requests] == ["", ""]  # POSTs only, as sent
    assert sandbox.requests == []  # the OAuth endpoints are not Events calls


# -- refresh -------------------------------------------------------------------------------------


def test_refresh_rotates_both_tokens_and_keeps_the_grant(sandbox: Sandbox) -> None:
    tokens = flow(sandbox)
    answer = refresh(sandbox, tokens)
    assert answer.status == 200, answer.body
    assert answer.headers["Cache-Control"] == "no-store"
    renewed = answer.json()
    assert renewed["access_token"] != tokens["access_token"]
    assert renewed["refresh_token"] != tokens["refresh_token"]
    assert (renewed["scope"], renewed["expires_in"], renewed["token_type"]) == (SCOPE, 3600, "bearer")
    send_to_demo_post(sandbox, renewed["access_token"])
    assert sandbox.sent_events[-1].user_id == DEMO_USER_ID


def test_the_old_access_token_works_for_the_grace_period_only(sandbox: Sandbox) -> None:
    tokens = flow(sandbox)
    renewed = refresh(sandbox, tokens).json()
    sandbox.clock.advance(ROTATION_GRACE - 20)
    send_to_demo_post(sandbox, tokens["access_token"])
    sandbox.clock.advance(20)
    assert "replaced by a token refresh" in refused(sandbox, tokens["access_token"])
    send_to_demo_post(sandbox, renewed["access_token"])


def test_the_old_refresh_token_works_in_the_grace_period_and_afterwards_revokes_the_chain(
    sandbox: Sandbox,
) -> None:
    tokens = flow(sandbox)
    first = refresh(sandbox, tokens).json()
    sandbox.clock.advance(ROTATION_GRACE - 20)
    retried = refresh(sandbox, tokens)  # a retried refresh in the grace period is safe
    assert retried.status == 200, retried.body
    second = retried.json()
    assert second["access_token"] not in (tokens["access_token"], first["access_token"])
    send_to_demo_post(sandbox, first["access_token"])
    send_to_demo_post(sandbox, second["access_token"])

    sandbox.clock.advance(20)
    invalid_grant(refresh(sandbox, tokens), "every token of its authorization has been revoked")

    for access_token in (first["access_token"], second["access_token"]):
        assert refused(sandbox, access_token) == "the access token has been revoked"
    invalid_grant(refresh(sandbox, first), "revoked")


def test_concurrent_refreshes_of_one_token_all_succeed_within_the_grace(sandbox: Sandbox) -> None:
    tokens = flow(sandbox)
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: refresh(sandbox, tokens), range(4)))
    assert [a.status for a in answers] == [200] * 4
    assert len({a.json()["access_token"] for a in answers}) == 4
    for answer in answers:
        send_to_demo_post(sandbox, answer.json()["access_token"])


def test_refresh_needs_the_current_access_token_as_code(sandbox: Sandbox) -> None:
    tokens, other = flow(sandbox), flow(sandbox)
    for missing in ("code", "refresh_token"):
        answer = refresh(sandbox, tokens, **{missing: None})
        assert (answer.status, answer.json()["error"]) == (400, "invalid_request")
        assert missing in answer.json()["error_description"]
    invalid_grant(refresh(sandbox, tokens, code=other["access_token"]), "code")
    invalid_grant(refresh(sandbox, tokens, code="ory_at_made-up"), "code")
    assert refresh(sandbox, tokens).status == 200  # none of that rotated it


def test_refresh_needs_the_redirect_uri_and_client_of_the_token(sandbox: Sandbox) -> None:
    sandbox.add_oauth_client("other-app", "other-secret", [DEMO_REDIRECT_URI])
    tokens = flow(sandbox)
    invalid_grant(refresh(sandbox, tokens, redirect_uri=DEMO_REDIRECT_URI), "redirect_uri")  # another port
    invalid_grant(refresh(sandbox, tokens, redirect_uri=None), "redirect_uri")
    invalid_grant(
        refresh(sandbox, tokens, client_id="other-app", client_secret="other-secret"), "another client"
    )
    invalid_grant(refresh(sandbox, tokens, refresh_token="ory_rt_made-up"), "not known")
    assert refresh(sandbox, tokens).status == 200


def test_a_refresh_token_lives_thirty_days(sandbox: Sandbox) -> None:
    tokens, kept = flow(sandbox), flow(sandbox)
    sandbox.clock.advance(REFRESH_TOKEN_LIFETIME - 3600)
    assert "expired" in refused(sandbox, tokens["access_token"])
    assert refresh(sandbox, tokens).status == 200  # an expired access token is still the code to send
    sandbox.clock.advance(3600)
    invalid_grant(refresh(sandbox, kept), "must consent again")


def test_issue_tokens_skips_the_browser_and_refreshes_like_the_flow(sandbox: Sandbox) -> None:
    tokens = sandbox.issue_tokens()
    assert set(tokens) == {"access_token", "expires_in", "scope", "token_type", "refresh_token"}
    assert tokens["scope"] == " ".join([*DEMO_SCOPES, "offline_access"])
    invalid_grant(refresh(sandbox, tokens), "redirect_uri")
    renewed = refresh(sandbox, tokens, redirect_uri=DEMO_REDIRECT_URI)
    assert renewed.status == 200, renewed.body
    subscribe(sandbox, renewed.json()["access_token"], {})

    short = sandbox.issue_tokens(scopes=["SEND_EVENT"], expires_in=60)
    assert "refresh_token" not in short
    assert short["expires_in"] == 60
    sandbox.clock.advance(60)
    assert refused(sandbox, short["access_token"]) == "the access token has expired"


def test_issue_tokens_checks_its_arguments(sandbox: Sandbox) -> None:
    with pytest.raises(SandboxError, match="NOPE"):
        sandbox.issue_tokens(scopes=["NOPE"])
    with pytest.raises(SandboxError, match="no OAuth client"):
        sandbox.issue_tokens(client_id="ghost")
    with pytest.raises(SandboxError, match="not a redirect URI"):
        sandbox.issue_tokens(redirect_uri="http://127.0.0.1/elsewhere")
    with pytest.raises(SandboxError, match="expires_in"):
        sandbox.issue_tokens(expires_in=0)
    with pytest.raises(SandboxError, match="malformed"):
        sandbox.issue_tokens(scopes=["SEND_EVENT USER_ID"])
    with pytest.raises(SandboxError, match="expires_at"):
        sandbox.add_access_token("t-1", DEMO_USER_ID, expires_at=float("inf"))


# -- lifetimes at the Events API -----------------------------------------------------------------


def test_an_access_token_expires_after_an_hour(sandbox: Sandbox) -> None:
    tokens = flow(sandbox)
    sandbox.clock.advance(ACCESS_TOKEN_LIFETIME - 60)
    send_to_demo_post(sandbox, tokens["access_token"])
    sandbox.clock.advance(60)
    assert refused(sandbox, tokens["access_token"]) == "the access token has expired"
    assert sandbox.requests[-1].status == 401


def test_granted_scopes_are_what_the_events_api_checks(sandbox: Sandbox) -> None:
    tokens = exchange(sandbox, code_of(sandbox, scope="USER_POSTS_GET")).json()
    with events_api(sandbox, tokens["access_token"]) as events:
        with pytest.raises(kenar_api_client.ForbiddenException, match="lacks scope SEND_EVENT"):
            events.events_send_event(message="hi", target_type="USER", target_resource_id=DEMO_USER_ID)
        with pytest.raises(kenar_api_client.ForbiddenException, match="CHAT_POST_CONVERSATIONS_READ"):
            events.events_register_event_subscription(
                {"event_type": "NEW_MESSAGE_ON_POST", "event_resource_id": DEMO_POST_TOKEN}
            )
        events.events_register_event_subscription({"event_type": "POST_UPDATE"})


def test_demo_and_hand_added_tokens_never_expire_unless_told(sandbox: Sandbox) -> None:
    sandbox.add_access_token("hand-made", DEMO_USER_ID, ["SEND_EVENT"], [DEMO_POST_TOKEN])
    sandbox.add_access_token(
        "hand-made-short",
        DEMO_USER_ID,
        ["SEND_EVENT"],
        [DEMO_POST_TOKEN],
        expires_at=sandbox.clock.now() + 10,
    )
    sandbox.clock.advance(10 * 365 * 86400)
    send_to_demo_post(sandbox, DEMO_ACCESS_TOKEN)
    send_to_demo_post(sandbox, "hand-made")
    assert refused(sandbox, "hand-made-short") == "the access token has expired"
    assert refused(sandbox, "never-issued") == "the access token is not valid"


# -- subscriptions die with their token ----------------------------------------------------------


def test_a_subscription_stops_matching_when_its_token_expires(
    sandbox: Sandbox, webhook: RecordingServer
) -> None:
    tokens = flow(sandbox)
    subscribe(sandbox, tokens["access_token"], {"shop": "42"})
    assert sandbox.trigger("NEW_MESSAGE").delivered
    [live] = sandbox.subscriptions
    assert live.expires_at is not None
    assert live.expires_at.timestamp() == pytest.approx(live.at.timestamp() + ACCESS_TOKEN_LIFETIME, abs=5)
    assert sandbox.snapshot()["subscriptions"][0]["expires_at"] == live.expires_at.isoformat()

    sandbox.clock.advance(ACCESS_TOKEN_LIFETIME)

    with pytest.raises(SubscriptionRequiredError):
        sandbox.trigger("NEW_MESSAGE")
    assert sandbox.subscriptions == []
    assert sandbox.snapshot()["subscriptions"] == []
    assert [s.metadata for s in sandbox.all_subscriptions] == [{"shop": "42"}]
    assert len(webhook.requests) == 1


def test_after_a_refresh_only_registering_again_keeps_the_deliveries(
    sandbox: Sandbox, webhook: RecordingServer
) -> None:
    tokens = flow(sandbox)
    subscribe(sandbox, tokens["access_token"], {"token": "first"})
    renewed = refresh(sandbox, tokens).json()
    [old] = sandbox.subscriptions
    assert old.expires_at is not None
    assert old.expires_at.timestamp() == pytest.approx(sandbox.clock.now() + ROTATION_GRACE, abs=5)

    subscribe(sandbox, renewed["access_token"], {"token": "renewed"})
    sandbox.clock.advance(ROTATION_GRACE)

    assert [s.metadata for s in sandbox.subscriptions] == [{"token": "renewed"}]
    delivery = sandbox.trigger("NEW_MESSAGE")
    assert delivery.delivered
    assert webhook.last.json()["metadata"] == {"token": "renewed"}


def test_a_subscription_not_registered_again_dies_after_the_grace_period(
    sandbox: Sandbox, webhook: RecordingServer
) -> None:
    tokens = flow(sandbox)
    subscribe(sandbox, tokens["access_token"], {})
    refresh(sandbox, tokens)
    assert sandbox.trigger("NEW_MESSAGE").delivered
    sandbox.clock.advance(ROTATION_GRACE)
    with pytest.raises(SubscriptionRequiredError):
        sandbox.trigger("NEW_MESSAGE")


# -- revoking consent ----------------------------------------------------------------------------


def test_revoke_consent_ends_every_token_and_subscription_and_notifies(
    sandbox: Sandbox, webhook: RecordingServer
) -> None:
    tokens = flow(sandbox)
    subscribe(sandbox, tokens["access_token"], {})
    other_user = sandbox.issue_tokens(user_id="someone-else", posts=["pX1"])
    unused_code = code_of(sandbox)

    delivery = sandbox.revoke_consent(DEMO_USER_ID)

    assert delivery is not None
    assert delivery.delivered
    assert webhook.last.json()["type"] == "USER_ACCESS_REVOCATION"
    assert webhook.last.json()["user_access_revocation"] == {"user_id": DEMO_USER_ID}
    assert refused(sandbox, tokens["access_token"]) == "the access token has been revoked"
    assert refused(sandbox, DEMO_ACCESS_TOKEN) == "the access token has been revoked"
    invalid_grant(refresh(sandbox, tokens), "revoked")
    invalid_grant(exchange(sandbox, unused_code), "not known")
    assert sandbox.subscriptions == sandbox.all_subscriptions == []
    with pytest.raises(kenar_api_client.ForbiddenException):  # valid, but not the owner of the post
        send_to_demo_post(sandbox, other_user["access_token"])


def test_revoke_consent_without_the_revocation_scopes_or_webhook_delivers_nothing(sandbox: Sandbox) -> None:
    sandbox.issue_tokens(user_id="u-1", scopes=["SEND_EVENT", "USER_ID"])
    assert sandbox.revoke_consent("u-1") is None
    sandbox.issue_tokens(user_id="u-2")
    assert sandbox.revoke_consent("u-2") is None  # no webhook URL
    assert sandbox.deliveries == []


# -- records, admin endpoints, clock -------------------------------------------------------------


def test_token_requests_are_recorded_without_secrets_and_reset_clears_them(sandbox: Sandbox) -> None:
    tokens = flow(sandbox)
    refresh(sandbox, tokens, code=None)
    refresh(sandbox, tokens)
    exchange(sandbox, "x", client_secret="wrong")
    records = [(r.grant_type, r.client_id, r.status, r.error) for r in sandbox.token_requests]
    assert records == [
        ("authorization_code", DEMO_CLIENT_ID, 200, None),
        ("refresh_token", DEMO_CLIENT_ID, 400, "invalid_request"),
        ("refresh_token", DEMO_CLIENT_ID, 200, None),
        ("authorization_code", DEMO_CLIENT_ID, 401, "invalid_client"),
    ]
    state = http(f"{sandbox.url}/_sandbox/state").json()
    assert [r["status"] for r in state["token_requests"]] == [200, 400, 200, 401]
    sandbox.reset()
    assert sandbox.token_requests == []


def test_admin_clock_and_consent_endpoints(sandbox: Sandbox) -> None:
    def post(path: str, body: Dict[str, Any]) -> Answer:
        return http(f"{sandbox.url}{path}", json.dumps(body).encode(), {"Content-Type": "application/json"})

    before = http(f"{sandbox.url}/_sandbox/clock").json()["now"]
    after = post("/_sandbox/clock", {"advance": 7200}).json()["now"]
    assert after - before == pytest.approx(7200, abs=5)
    assert post("/_sandbox/clock", {"set": 2_000_000_000}).json()["now"] == pytest.approx(
        2_000_000_000, abs=5
    )
    assert sandbox.clock.now() == pytest.approx(2_000_000_000, abs=5)
    for bad in ({"advance": -1}, {"advance": "1"}, {}, {"advance": 1, "set": 1}, {"set": True}):
        assert post("/_sandbox/clock", bad).status == 400, bad

    assert post("/_sandbox/consent", {"refuse": True}).json() == {}
    assert authorize(sandbox).redirect["error"] == "access_denied"
    assert post("/_sandbox/consent", {"user_id": "sara-1", "posts": ["AbCd1234"]}).json() == {}
    tokens = exchange(sandbox, code_of(sandbox)).json()
    with events_api(sandbox, tokens["access_token"]) as events:
        events.events_send_event(message="hi", target_type="POST", target_resource_id="AbCd1234")
    for bad in ({"user_id": ""}, {"posts": "AbCd1234"}, {"refuse": "yes"}):
        assert post("/_sandbox/consent", bad).status == 400, bad


def test_no_code_token_or_secret_reaches_the_log_or_the_state(
    sandbox: Sandbox, webhook: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kenar_api_client.sandbox")
    code = code_of(sandbox)
    tokens = exchange(sandbox, code).json()
    subscribe(sandbox, tokens["access_token"], {})
    renewed = refresh(sandbox, tokens).json()
    exchange(sandbox, code)  # reuse
    refresh(sandbox, tokens, grant_type=tokens["refresh_token"])  # a token in the wrong field
    token_request(sandbox, {"grant_type": "authorization_code"}, basic(DEMO_CLIENT_ID, "wrong-secret-9f"))
    sandbox.revoke_consent(DEMO_USER_ID)

    secrets = [
        DEMO_CLIENT_SECRET,
        "wrong-secret-9f",
        code,
        tokens["access_token"],
        tokens["refresh_token"],
        renewed["access_token"],
        renewed["refresh_token"],
    ]
    state = json.dumps(http(f"{sandbox.url}/_sandbox/state").json())
    records = repr(sandbox.token_requests) + repr(sandbox.all_subscriptions) + repr(sandbox)
    for secret in secrets:
        assert secret not in caplog.text
        assert secret not in state
        assert secret not in records
    assert "POST /oauth2/token grant_type=refresh_token -> 200" in caplog.text
    assert "POST /oauth2/token grant_type=other -> 400 unsupported_grant_type" in caplog.text
    assert "GET /oauth2/auth -> 302" in caplog.text


def test_sandbox_clock_moves_forward_only() -> None:
    clock = SandboxClock()
    start = clock.now()
    assert clock.advance(0) >= start
    assert clock.advance(100) - start == pytest.approx(100, abs=5)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="finite"):
        clock.advance(float("nan"))
    clock.set(1_000_000)
    assert clock.now() == pytest.approx(1_000_000, abs=5)
    assert clock.utc().year == 1970


def test_a_shared_clock_and_own_clients() -> None:
    clock = SandboxClock()
    client = RegisteredClient("my-app", "my-secret", ["https://app.example/cb", "http://[::1]/cb"])
    assert "my-secret" not in repr(client)
    assert client.accepts_redirect_uri("http://[::1]:5000/cb")
    assert not client.accepts_redirect_uri("https://app.example:8443/cb")  # not loopback: exact only
    with Sandbox(clock=clock, oauth_clients={"my-app": client}) as sandbox:
        assert sandbox.clock is clock
        assert authorize(sandbox).status == 400  # the demo client is not registered
        tokens = sandbox.issue_tokens(client_id="my-app", redirect_uri="https://app.example/cb")
        clock.advance(ACCESS_TOKEN_LIFETIME)
        assert refused(sandbox, tokens["access_token"]) == "the access token has expired"


@pytest.mark.parametrize(
    "redirect_uris",
    [
        ["http://127.0.0.1/cb?x=1"],
        ["http://127.0.0.1/cb#top"],
        ["ftp://host/cb"],
        ["/relative"],
        "http://one/cb",
        ["http://127.0.0.1/c\r\nb"],
        ["http://127.0.0.1/c\tb"],
        ["http://127.0.0.1/c b"],
    ],
)
def test_oauth_client_redirect_uris_are_checked(redirect_uris: List[str]) -> None:
    with pytest.raises(SandboxError):
        RegisteredClient("app", "secret", redirect_uris)
