"""The authorization flow for scripts and the CLI: the redirect back is caught on a loopback port."""

from __future__ import annotations

import contextlib
import hmac
import os
import sys
import threading
import webbrowser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Iterator, Optional, Union
from urllib.parse import parse_qs, urlsplit, urlunsplit

from kenar_api_client._hosts import is_loopback_ip
from kenar_api_client.exceptions import ApiTimeoutError, ApiValueError
from kenar_api_client.oauth.client import OAuthClient
from kenar_api_client.oauth.scopes import Scope
from kenar_api_client.oauth.token import OAuthToken

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
    exchanged. Only the redirect that carries this login's ``state`` ends the wait: any
    other request to the port (a stray browser tab, another local program) is answered
    404 and the listener keeps waiting. Raises ``ApiTimeoutError`` if no redirect comes
    within ``timeout`` seconds, ``ApiValueError`` if the redirect URI cannot be listened
    on (not loopback, or its port taken), and the usual OAuth errors otherwise.
    """
    if oauth.redirect_uri is None:
        raise ApiValueError("authorize_on_loopback needs the OAuthClient's redirect_uri (KENAR_REDIRECT_URI)")
    parts = urlsplit(oauth.redirect_uri)
    host = parts.hostname or ""
    if parts.scheme != "http" or not (host == "localhost" or is_loopback_ip(host)):
        raise ApiValueError(
            "the redirect is caught on this machine, so the redirect URI must be a loopback http:// URI "
            f"such as http://127.0.0.1:8400/kenar/callback registered for the app; got {oauth.redirect_uri!r}"
        )
    with _listener(host, parts.port or 0, parts.path or "/") as listener:
        netloc = f"[{host}]" if ":" in host else host
        redirect_uri = urlunsplit(("http", f"{netloc}:{listener.server_port}", parts.path, "", ""))
        request = oauth.authorization_url(scopes, redirect_uri=redirect_uri)
        listener.expect(request.state)
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
    """Waits for the one redirect that carries the expected ``state``, and keeps its query."""

    daemon_threads = True

    def __init__(self, host: str, port: int, path: str) -> None:
        self.path = path
        self.query: Optional[str] = None
        self.arrived = threading.Event()
        self._lock = threading.Lock()
        self._state: Optional[str] = None
        self.redirect_thread: Optional[threading.Thread] = None
        self.address_family = _family(host)
        super().__init__((host, port), _CallbackHandler)

    def expect(self, state: str) -> None:
        """Wait for the redirect carrying ``state`` (the authorization URL's)."""
        with self._lock:
            self._state = state

    def take(self, path: str, query: str) -> bool:
        """Keep ``query`` if it is the awaited redirect (the path, and exactly our state).

        The wait ends (:attr:`arrived`) once the handler has answered the browser: see
        :meth:`answered`.
        """
        states = parse_qs(query, keep_blank_values=True).get("state", [])
        with self._lock:
            expected = self._state
            if self.query is not None or expected is None or path != self.path or len(states) != 1:
                return False
            if not hmac.compare_digest(states[0].encode("utf-8"), expected.encode("utf-8")):
                return False
            self.query = query
            self.redirect_thread = threading.current_thread()
            return True

    def answered(self) -> None:
        """The browser got its page: end the wait."""
        self.arrived.set()


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _Listener
    timeout = 10  # an idle or trickling browser connection cannot hold the listener

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if not self.server.take(path, query):
            self._answer(404, "Not the Kenar redirect this login waits for.")
            return
        try:
            self._answer(200, "Kenar sent you back to the app.")
        finally:
            self.server.answered()

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
    try:
        server = _Listener(host, port, path)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise ApiValueError(
            f"cannot listen on {where} for the redirect back: {exc.strerror or exc} "
            "(is another program using the port? stop it, or register a redirect URI with another port)"
        ) from exc
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        if server.redirect_thread is not None:  # it has answered: it only has to return
            server.redirect_thread.join()


def _family(host: str) -> Any:
    import socket

    return socket.AF_INET6 if ":" in host else socket.AF_INET
