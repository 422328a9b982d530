"""``kenar-events login``, ``token`` and ``subscriptions``, and the loopback flow behind login."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import List, Tuple

import pytest
import urllib3
from oauth_helpers import browser_consent, oauth_client, refresh_requests
from servers import RecordingServer, Reply

from kenar_api_client.cli import main
from kenar_api_client.exceptions import ApiTimeoutError, ApiValueError
from kenar_api_client.oauth import OAuthClient, SQLiteTokenStore, TokenManager
from kenar_api_client.oauth.loopback import authorize_on_loopback
from kenar_api_client.sandbox import (
    DEMO_API_KEY,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_POST_TOKEN,
    DEMO_REDIRECT_URI,
    Sandbox,
)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "tokens.sqlite3"


@pytest.fixture
def env(sandbox: Sandbox, store_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    for name, value in {
        "KENAR_BASE_URL": sandbox.url,
        "KENAR_API_KEY": DEMO_API_KEY,
        "KENAR_OAUTH_URL": sandbox.oauth_url,
        "KENAR_APP_SLUG": DEMO_CLIENT_ID,
        "KENAR_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "KENAR_REDIRECT_URI": DEMO_REDIRECT_URI,
        "KENAR_TOKEN_STORE": str(store_path),
    }.items():
        monkeypatch.setenv(name, value)
    return sandbox


def run(capsys: pytest.CaptureFixture[str], store_path: Path, *argv: str) -> Tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    secrets: List[str] = [DEMO_CLIENT_SECRET]
    if store_path.exists():
        stored = TokenManager(OAuthClient("reader"), SQLiteTokenStore(store_path))
        for token in filter(None, map(stored.stored, stored.users())):
            secrets += [token.access_token, str(token.refresh_token)]
    assert not any(secret in out + err for secret in secrets), "a secret was printed"
    return status, out, err


def test_login_completes_unattended_against_a_sandbox(
    env: Sandbox, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, store_path, "login", "--scope", "SEND_EVENT", "--scope", "USER_POSTS_GET")
    assert status == 0, out
    assert "logged in: tokens of user 'default' stored in" in out
    assert "scopes: SEND_EVENT USER_POSTS_GET offline_access" in out
    assert [r.grant_type for r in env.token_requests] == ["authorization_code"]
    token = TokenManager(oauth_client(env), SQLiteTokenStore(store_path)).stored("default")
    assert token is not None
    assert token.refreshable


def test_token_show_refresh_and_send_with_the_stored_token(
    env: Sandbox, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, store_path, "login", "--user", "sara")[0] == 0
    status, out, _ = run(capsys, store_path, "token", "show", "--user", "sara")
    assert status == 0
    assert "access_token='ory_at_[REDACTED]'" in out
    assert "refreshable" in out

    status, out, _ = run(capsys, store_path, "--json", "token", "refresh", "--user", "sara")
    assert status == 0
    document = json.loads(out)
    assert document["ok"] is True
    assert set(document["token"]) == {"expires_at", "expires_in", "refreshable", "scopes", "fingerprint"}
    assert refresh_requests(env) == 1

    send = [
        "send",
        "--user",
        "sara",
        "-m",
        "hi",
        "--target-type",
        "POST",
        "--target-resource-id",
        DEMO_POST_TOKEN,
    ]
    status, out, _ = run(capsys, store_path, *send)
    assert status == 0, out
    assert env.sent_events[0].message == "hi"


def test_token_show_without_a_login_says_what_to_do(
    env: Sandbox, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, store_path, "token", "show")
    assert status == 1
    assert "run kenar-events login" in err


@pytest.mark.parametrize("transport", ["threads", "aiohttp", "httpx"])
def test_kept_subscriptions_from_the_command_line(
    env: Sandbox, store_path: Path, capsys: pytest.CaptureFixture[str], transport: str
) -> None:
    assert run(capsys, store_path, "login", "--scope", "USER_POSTS_GET")[0] == 0
    status, out, _ = run(
        capsys,
        store_path,
        "subscriptions",
        "keep",
        "--event-type",
        "POST_UPDATE",
        "--metadata",
        '{"shop": "42"}',
    )
    assert status == 0
    assert "keeping POST_UPDATE (all posts) for user 'default'" in out
    status, out, _ = run(capsys, store_path, "subscriptions", "renew", "--transport", transport)
    assert status == 0, out
    assert "1 registered" in out
    assert env.subscriptions[0].metadata == {"shop": "42"}
    status, out, _ = run(capsys, store_path, "--json", "subscriptions", "list")
    (listed,) = json.loads(out)["subscriptions"]
    assert (listed["state"], listed["event_type"], listed["metadata"]) == (
        "registered",
        "POST_UPDATE",
        {"shop": "42"},
    )

    # A subscription the token has no scope for fails, visibly, and renew says so.
    run(capsys, store_path, "subscriptions", "keep", "--event-type", "NEW_MESSAGE_ON_POST")
    status, out, err = run(capsys, store_path, "subscriptions", "renew", "--transport", transport)
    assert status == 1
    assert "NEW_MESSAGE_ON_POST (all posts)  failed: 403" in out
    assert "renewal incomplete" in err


def test_a_refused_consent_fails_the_login(
    env: Sandbox, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env.set_consent(refuse=True)
    status, _, err = run(capsys, store_path, "login")
    assert status == 1
    assert "access_denied" in err


def test_login_needs_a_loopback_redirect_uri(
    env: Sandbox, store_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KENAR_REDIRECT_URI")
    status, _, err = run(capsys, store_path, "login")
    assert status == 2
    assert "KENAR_REDIRECT_URI" in err
    status, _, err = run(capsys, store_path, "login", "--redirect-uri", "https://app.example/kenar/callback")
    assert status == 2
    assert "loopback" in err
    bad_scope = ["login", "--redirect-uri", DEMO_REDIRECT_URI, "--scope", "CHAT_POST_CONVERSATIONS_READ"]
    status, _, err = run(capsys, store_path, *bad_scope)
    assert status == 2
    assert "granted for one resource" in err
    assert env.token_requests == []


def test_login_prints_the_consent_url_for_a_local_oauth_server_that_is_no_sandbox(
    env: Sandbox, store_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real OAuth server on this machine (a local Hydra, a tunnel): nobody consents for the user.
    oauth_server = RecordingServer(lambda request: Reply(404, b"not here")).start()
    try:
        monkeypatch.setenv("KENAR_OAUTH_URL", oauth_server.url)
        status, out, err = run(capsys, store_path, "login", "--no-browser", "--timeout", "0.5")
    finally:
        oauth_server.stop()

    assert status == 1
    assert "Open this address to let the app act for you on Divar:" in out
    assert f"  {oauth_server.url}/oauth2/auth?response_type=code" in out
    assert "no redirect came back" in err
    assert [r.path for r in oauth_server.requests] == ["/_sandbox/info"]  # asked, never driven


def test_login_against_a_sandbox_says_it_consents_by_itself(
    env: Sandbox, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, store_path, "login")
    assert status == 0
    assert "a local Kenar sandbox: consenting without a browser" in out


def test_login_on_a_busy_redirect_port_is_one_clear_line(
    env: Sandbox, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        uri = f"http://127.0.0.1:{port}/kenar/callback"
        status, out, err = run(capsys, store_path, "login", "--redirect-uri", uri)
    assert status == 2
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{port} for the redirect back: ")
    assert len(err.splitlines()) == 1
    assert "Traceback" not in out + err
    assert env.token_requests == []


# -- the loopback flow itself -----------------------------------------------------------------------


def test_authorize_on_loopback_is_exported_where_the_docs_say() -> None:
    from kenar_api_client import oauth

    assert oauth.authorize_on_loopback is authorize_on_loopback
    assert "authorize_on_loopback" in oauth.__all__


def test_only_the_redirect_with_this_logins_state_ends_the_wait(sandbox: Sandbox) -> None:
    stray_answers: List[int] = []

    def strays_then_the_user(url: str) -> None:
        back = browser_consent(url)  # where the sandbox sends the user, code and state in it
        callback = back.partition("?")[0]
        http = urllib3.PoolManager(retries=False)
        for stray in (callback, f"{callback}?code=forged", f"{callback}?code=forged&state=other", back + "x"):
            stray_answers.append(http.request("GET", stray).status)
        # Then the real redirect comes, in the user's browser.
        threading.Thread(target=lambda: _visit(back), daemon=True).start()

    token = authorize_on_loopback(oauth_client(sandbox), ["SEND_EVENT"], open_url=strays_then_the_user)

    assert stray_answers == [404, 404, 404, 404]
    assert token.scopes == ["SEND_EVENT", "offline_access"]
    assert [r.grant_type for r in sandbox.token_requests] == ["authorization_code"]


def test_a_busy_redirect_port_is_a_typed_error(sandbox: Sandbox) -> None:
    client = oauth_client(sandbox)
    with socket.create_server(("127.0.0.1", 0)) as busy:
        client.redirect_uri = f"http://127.0.0.1:{busy.getsockname()[1]}/kenar/callback"
        with pytest.raises(ApiValueError, match=r"cannot listen on 127\.0\.0\.1:"):
            authorize_on_loopback(client, ["SEND_EVENT"], open_url=lambda url: None)


def test_the_loopback_flow_with_a_user_in_a_browser(sandbox: Sandbox) -> None:
    opened: List[str] = []

    def user_consents_in_their_browser(url: str) -> None:
        opened.append(url)
        threading.Thread(target=lambda: _visit(browser_consent(url)), daemon=True).start()

    token = authorize_on_loopback(
        oauth_client(sandbox), ["SEND_EVENT"], open_url=user_consents_in_their_browser
    )
    assert len(opened) == 1
    assert token.scopes == ["SEND_EVENT", "offline_access"]
    assert token.redirect_uri is not None
    assert token.redirect_uri.startswith("http://127.0.0.1:")  # the port it listened on
    assert token.redirect_uri.endswith("/kenar/callback")
    # The token refreshes with the redirect URI it was obtained with.
    assert oauth_client(sandbox).refresh(token).access_token != token.access_token


def test_the_loopback_flow_gives_up_when_nobody_comes_back(sandbox: Sandbox) -> None:
    with pytest.raises(ApiTimeoutError, match="no redirect came back"):
        authorize_on_loopback(oauth_client(sandbox), ["SEND_EVENT"], open_url=lambda url: None, timeout=0.2)


def test_the_loopback_flow_refuses_a_redirect_it_cannot_catch(sandbox: Sandbox) -> None:
    client = oauth_client(sandbox)
    client.redirect_uri = "https://app.example/callback"
    with pytest.raises(ApiValueError, match="loopback"):
        authorize_on_loopback(client, ["SEND_EVENT"], open_url=lambda url: None)


def _visit(url: str) -> None:
    import urllib3

    urllib3.PoolManager().request("GET", url, redirect=False)


# -- token stores the CLI cannot use: one line each, nothing created by a read ---------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    "command",
    [["token", "show"], ["token", "refresh"], ["subscriptions", "list"], ["subscriptions", "renew"]],
    ids=" ".join,
)
def test_a_read_creates_no_store(
    env: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: List[str]
) -> None:
    missing = tmp_path / "not" / "yet" / "tokens.sqlite3"
    status, _, err = run(capsys, missing, *command, "--store", str(missing))
    assert status == 1
    assert err == f"error: there is no token store at {missing}: run kenar-events login first\n"
    assert not (tmp_path / "not").exists()


def test_a_typo_in_the_store_url_is_refused_not_a_local_file(
    env: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for command in (["token", "show"], ["login"]):
        status, _, err = run(capsys, tmp_path / "none", *command, "--store", "rdis://127.0.0.1:6379/0")
        assert status == 2
        assert "the token store URL scheme 'rdis' is unknown" in err
    assert list(tmp_path.iterdir()) == []
    assert env.token_requests == []


@pytest.mark.parametrize("content", [b"not a database at all", b"SQLite format 3\x00" + b"\xff" * 200])
def test_a_file_that_is_no_token_store_is_one_line(
    env: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    corrupt = tmp_path / "tokens.sqlite3"
    corrupt.write_bytes(content)
    for command in (["token", "show"], ["subscriptions", "list"], ["login"]):
        status, out, err = run(capsys, tmp_path / "none", *command, "--store", str(corrupt))
        assert status == 1, command
        assert err.startswith(f"error: cannot open the token store {corrupt}: ")
        assert len(err.splitlines()) == 1
        assert "Traceback" not in out + err
    assert corrupt.read_bytes() == content
    assert env.token_requests == []


def test_a_directory_as_the_store_is_a_usage_error(
    env: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, tmp_path / "none", "token", "show", "--store", str(tmp_path))
    assert status == 2
    assert "is a directory: name a file" in err


@pytest.mark.parametrize("command", [["token", "show"], ["subscriptions", "list"], ["login"]], ids=" ".join)
def test_a_redis_store_that_is_down_is_one_line(
    env: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: List[str]
) -> None:
    pytest.importorskip("redis")
    url = f"redis://:pw-7c1e@127.0.0.1:{free_port()}/0"
    status, out, err = run(capsys, tmp_path / "none", "--json", *command, "--store", url)
    assert status == 1
    assert "ConnectionError" in err
    assert len(err.splitlines()) == 1
    assert json.loads(out.splitlines()[-1])["ok"] is False
    assert "Traceback" not in out + err
    assert "pw-7c1e" not in out + err


def test_a_redis_password_is_never_printed(
    env: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from redis_server import RedisServer

    server = RedisServer(password="s3cret-redis-pw")
    try:
        for url in (
            f"redis://:s3cret-redis-pw@127.0.0.1:{server.port}/0",
            f"redis://127.0.0.1:{server.port}/0?password=s3cret-redis-pw",
        ):
            status, out, err = run(capsys, tmp_path / "none", "login", "--store", url)
            assert status == 0, err
            assert f"stored in redis://127.0.0.1:{server.port}/0" in out
            status, out2, err2 = run(capsys, tmp_path / "none", "--json", "token", "show", "--store", url)
            assert status == 0
            assert json.loads(out2)["store"] == f"redis://127.0.0.1:{server.port}/0"
            assert "s3cret-redis-pw" not in out + err + out2 + err2
    finally:
        server.stop()
