"""The authorization flow for scripts and the CLI: the redirect back is caught on a loopback port."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import webbrowser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Iterator, Optional, Union
from urllib.parse import urlsplit, urlunsplit

from kenar_api_client.exceptions import ApiTimeoutError, ApiValueError
from kenar_api_client.oauth.client import OAuthClient
from kenar_api_client.oauth.scopes import Scope
from kenar_api_client.oauth.token import OAuthToken

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_PAGE = (
    "<!doctype html><meta charset=utf-8><title>Kenar</title>"
    "<p>{}</p><p>You can close this tab and go back to the terminal.</p>"
)


def authorize_on_loopback(
    oauth: OAuthClient,
    scopes: Iterable[Union[Scope, str]],
    *,
    open_url: Optional[Callable[[str], Any]] = None,
    timeout: float = 300.0,
) -> OAuthToken:
    """Run the whole authorization-code flow with the redirect caught on this machine.

    ``oauth.redirect_uri`` must be a loopback ``http://`` URI registered for the app (for
    example ``http://127.0.0.1:8400/kenar/callback``); without a port, a free one is used,
    which Kenar accepts only where loopback redirects match any port (RFC 8252). The
    authorization URL is handed to ``open_url`` (default: a graphical web browser, when
    there is one); the user consents; the redirect lands on the listener; the code is
    exchanged. Raises ``ApiTimeoutError`` if no redirect comes within ``timeout`` seconds,
    and the usual OAuth errors otherwise.
    """
    if oauth.redirect_uri is None:
        raise ApiValueError("authorize_on_loopback needs the OAuthClient's redirect_uri (KENAR_REDIRECT_URI)")
    parts = urlsplit(oauth.redirect_uri)
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK_HOSTS:
        raise ApiValueError(
            "the redirect is caught on this machine, so the redirect URI must be a loopback http:// URI "
            f"such as http://127.0.0.1:8400/kenar/callback registered for the app; got {oauth.redirect_uri!r}"
        )
    with _listener(parts.hostname or "127.0.0.1", parts.port or 0, parts.path or "/") as listener:
        netloc = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else str(parts.hostname)
        redirect_uri = urlunsplit(("http", f"{netloc}:{listener.server_port}", parts.path, "", ""))
        request = oauth.authorization_url(scopes, redirect_uri=redirect_uri)
        (open_url or open_in_browser)(request.url)
        if not listener.arrived.wait(timeout):
            raise ApiTimeoutError(f"no redirect came back to {redirect_uri} within {timeout:g} s")
    code = oauth.parse_redirect(listener.query or "", request.state)
    return oauth.exchange_code(code, redirect_uri=redirect_uri)


def open_in_browser(url: str) -> bool:
    """Open ``url`` in a graphical browser if this machine likely has one; whether it did.

    Text browsers are never started: they would take over the terminal.
    """
    graphical = sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    if not graphical:
        return False
    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False


class _Listener(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, path: str) -> None:
        self.path = path
        self.query: Optional[str] = None
        self.arrived = threading.Event()
        self.address_family = _family(host)
        super().__init__((host, port), _CallbackHandler)


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _Listener
    timeout = 10  # an idle or trickling browser connection cannot hold the listener

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path != self.server.path or self.server.arrived.is_set():
            self._answer(404, "Not the Kenar redirect this login waits for.")
            return
        self.server.query = query
        self.server.arrived.set()
        self._answer(200, "Kenar sent you back to the app.")

    def _answer(self, status: int, text: str) -> None:
        page = _PAGE.format(text).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the query holds the authorization code."""


@contextlib.contextmanager
def _listener(host: str, port: int, path: str) -> Iterator[_Listener]:
    server = _Listener(host, port, path)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _family(host: str) -> Any:
    import socket

    return socket.AF_INET6 if ":" in host else socket.AF_INET
