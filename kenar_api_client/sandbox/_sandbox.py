"""``Sandbox``: the sandbox's core served over HTTP on a local port, API and OAuth in one server."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Dict, Iterable, Mapping, Optional, Type

from kenar_api_client import _env
from kenar_api_client._hosts import connect_host
from kenar_api_client.sandbox._clients import RegisteredClient
from kenar_api_client.sandbox._clock import SandboxClock
from kenar_api_client.sandbox._core import SandboxCore
from kenar_api_client.sandbox._demo import (
    DEMO_ACCESS_TOKEN,
    DEMO_API_KEY,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_IDENTIFICATION_KEY,
    DEMO_REDIRECT_URI,
)
from kenar_api_client.sandbox._errors import SandboxError
from kenar_api_client.sandbox._server import SandboxHTTPServer
from kenar_api_client.sandbox._tokens import AccessToken

_POLL_INTERVAL = 0.05  # how quickly serve_forever notices stop()


class Sandbox(SandboxCore):
    """A faithful local stand-in for Kenar's Events API and OAuth server, on a real HTTP server.

    With no ``api_keys`` / ``access_tokens`` it accepts the public demo credentials
    (``DEMO_API_KEY``, ``DEMO_ACCESS_TOKEN``); pass mappings (``{}`` for none) to configure
    your own, or add them later with :meth:`add_api_key` and :meth:`add_access_token`.
    With no ``oauth_clients`` it registers the demo OAuth client (``DEMO_CLIENT_ID``).
    Every expiry check reads ``clock`` (a new :class:`SandboxClock` by default); with a
    ``clock_file``, the clock's offset is kept in that file too, so that an app in another
    process, started with ``KENAR_CLOCK_FILE`` set to it, follows the sandbox's time.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. ``port=0`` picks a
    free port; :attr:`url` is the base URL to give ``Configuration(host=...)``.
    """

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        api_keys: Optional[Mapping[str, Iterable[str]]] = None,
        access_tokens: Optional[Mapping[str, AccessToken]] = None,
        webhook_url: Optional[str] = None,
        identification_key: str = DEMO_IDENTIFICATION_KEY,
        delivery_attempts: int = 3,
        delivery_backoff: float = 0.05,
        delivery_timeout: float = 5.0,
        clock: Optional[SandboxClock] = None,
        oauth_clients: Optional[Mapping[str, RegisteredClient]] = None,
        clock_file: Optional[str] = None,
    ) -> None:
        self._address = (host, port)
        self._server: Optional[SandboxHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._last_port = port
        super().__init__(
            api_keys=api_keys,
            access_tokens=access_tokens,
            webhook_url=webhook_url,
            identification_key=identification_key,
            delivery_attempts=delivery_attempts,
            delivery_backoff=delivery_backoff,
            delivery_timeout=delivery_timeout,
            clock=clock,
            oauth_clients=oauth_clients,
            clock_file=clock_file,
        )

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Bind the port and serve in a background thread; returns the sandbox itself."""
        if self._server is not None:
            raise SandboxError("the sandbox is already running")
        server = SandboxHTTPServer(self._address, self)
        self._faults.running(True)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name=f"kenar-sandbox-{server.server_address[1]}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and free the port; does nothing if stopped."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        self._last_port = int(server.server_address[1])
        self._faults.running(False)
        server.stop()
        thread.join()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the sandbox is serving."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The port it listens on (the one picked for ``port=0`` once started, and after stop())."""
        if self._server is None:
            return self._last_port
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``; only while running."""
        if self._server is None:
            raise SandboxError("the sandbox is not running: call start() or use it in a with block")
        host = connect_host(self._address[0])
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def environment(self) -> Dict[str, str]:
        """The ``KENAR_*`` variables that point the SDK and ``kenar-events`` at this sandbox.

        ``KENAR_BASE_URL`` and ``KENAR_OAUTH_URL`` are :attr:`url`; the credentials are the
        demo ones, and ``KENAR_IDENTIFICATION_KEY`` is :attr:`identification_key`.
        ``KENAR_CLOCK_FILE`` is there when the clock is shared through a file.
        """
        clock_file = self.clock.file
        return {
            **({_env.CLOCK_FILE: clock_file} if clock_file is not None else {}),
            _env.BASE_URL: self.url,
            _env.API_KEY: DEMO_API_KEY,
            _env.ACCESS_TOKEN: DEMO_ACCESS_TOKEN,
            _env.IDENTIFICATION_KEY: self.identification_key,
            _env.OAUTH_URL: self.oauth_url,
            _env.APP_SLUG: DEMO_CLIENT_ID,
            _env.CLIENT_SECRET: DEMO_CLIENT_SECRET,
            _env.REDIRECT_URI: DEMO_REDIRECT_URI,
        }

    @property
    def oauth_url(self) -> str:
        """The base URL of the OAuth endpoints (``/oauth2/auth``, ``/oauth2/token``): :attr:`url`."""
        return self.url

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "not running"
        return f"Sandbox({where})"

    def snapshot(self) -> Dict[str, Any]:
        """Records, webhook URL and own URL as JSON-ready data, as ``GET /_sandbox/state`` answers."""
        return {"url": self.url if self.running else None, **super().snapshot()}
