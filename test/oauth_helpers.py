"""Helpers for the OAuth tests: a browser that consents at the sandbox, and a lossy proxy."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Dict, List, Optional

import urllib3
from servers import loopback_server

import kenar_api_client
from kenar_api_client.oauth import OAuthClient, OAuthToken, Scope, TokenManager
from kenar_api_client.oauth.store import TokenStore
from kenar_api_client.sandbox import (
    DEMO_API_KEY,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_POST_TOKEN,
    DEMO_REDIRECT_URI,
    DEMO_SCOPES,
    Sandbox,
)

_http = urllib3.PoolManager()

#: Everything the demo user may grant, plus a refresh token.
SCOPES: List[str] = [*DEMO_SCOPES, Scope.OFFLINE_ACCESS.value]


def browser_consent(authorization_url: str) -> str:
    """Do what the user's browser does: open the URL, consent, and return where Kenar redirects."""
    response = _http.request("GET", authorization_url, redirect=False)
    assert response.status == 302, (response.status, response.data[:200])
    location = response.headers["Location"]
    assert isinstance(location, str)
    return location


def oauth_client(sandbox: Sandbox, oauth_url: Optional[str] = None, **kwargs: Any) -> OAuthClient:
    """The demo app's OAuth client, against ``sandbox`` (or ``oauth_url``), on the sandbox clock."""
    return OAuthClient(
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        DEMO_REDIRECT_URI,
        oauth_url or sandbox.oauth_url,
        clock=sandbox.clock.now,
        **kwargs,
    )


def issued_token(sandbox: Sandbox, **kwargs: Any) -> OAuthToken:
    """A fresh token pair for the demo user, as if they had just consented."""
    return OAuthToken.from_response(sandbox.issue_tokens(**kwargs), sandbox.clock.now())


def manager_with_user(
    sandbox: Sandbox, store: Optional[TokenStore] = None, user_key: str = "user-42", **kwargs: Any
) -> TokenManager:
    """A token manager holding a freshly issued token for ``user_key``."""
    manager = TokenManager(oauth_client(sandbox), store, **kwargs)
    manager.save(user_key, issued_token(sandbox))
    return manager


def send_event(sandbox: Sandbox, access_token: str) -> object:
    """``events_send_event`` to the demo post with ``access_token``: it works only while the token does."""
    configuration = kenar_api_client.Configuration(
        host=sandbox.url, api_key={"APIKey": DEMO_API_KEY}, access_token=access_token
    )
    with kenar_api_client.ApiClient(configuration) as api_client:
        return kenar_api_client.EventsApi(api_client).events_send_event(
            message="سلام", target_type="POST", target_resource_id=DEMO_POST_TOKEN
        )


def unused_url() -> str:
    """An http:// URL on a loopback port nothing listens on."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{unused.getsockname()[1]}"


def wait_until(condition: Callable[[], Any], what: str, seconds: float = 60.0) -> None:
    """Wait for ``condition`` to hold; the deadline is only a safety net against a hang."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def refresh_requests(sandbox: Sandbox) -> int:
    """How many refresh requests the sandbox's token endpoint received."""
    return sum(1 for record in sandbox.token_requests if record.grant_type == "refresh_token")


class LossyProxy:
    """Forwards requests to ``target``, but for the first ``lose`` of them drops the answer.

    Kenar processed the request (the sandbox acted on it); the client never hears back,
    as when a connection breaks after the request went out.
    """

    def __init__(self, target: str, lose: int) -> None:
        self.target = target
        self.lose = lose
        self.forwarded = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers: Dict[str, str] = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                answer = _http.request("POST", proxy.target + self.path, body=body, headers=headers)
                with proxy._lock:
                    proxy.forwarded += 1
                    lost = proxy.forwarded <= proxy.lose
                if lost:
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for name in ("Content-Type", "Cache-Control"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("Content-Length", str(len(answer.data)))
                self.end_headers()
                self.wfile.write(answer.data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd, self._thread = loopback_server(Handler)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> LossyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
