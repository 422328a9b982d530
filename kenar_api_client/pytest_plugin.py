"""pytest fixtures for an app's tests: a running Kenar sandbox, a client for it, a webhook receiver.

Installed with the package and registered through pytest's ``pytest11`` entry point, so an
app's tests use the fixtures without any conftest code (``-p no:kenar`` turns them off):

``kenar_sandbox``
    A :class:`~kenar_api_client.sandbox.Sandbox` running for the test, with
    ``KENAR_BASE_URL``, ``KENAR_API_KEY``, ``KENAR_ACCESS_TOKEN``,
    ``KENAR_IDENTIFICATION_KEY`` and the OAuth variables pointing at it (the demo values), so
    code that builds ``Configuration()`` from the environment talks to it.
    ``@pytest.mark.kenar_sandbox(**kwargs)`` passes ``kwargs`` to ``Sandbox()``.
``kenar_client``
    An ``ApiClient`` for the sandbox with the demo credentials.
``kenar_async_client``
    An ``AsyncApiClient`` for the sandbox with the demo credentials, for async tests under
    pytest-asyncio or anyio (asyncio backend); it needs the ``async`` extra. The fixture
    itself is synchronous, so it works whichever plugin runs the test and in any mode; each
    connection is closed after its call (no keep-alive), so none outlives the test's loop.
``kenar_receiver``
    A :class:`WebhookReceiver` on a free port, the sandbox's webhook URL: it keeps the
    events it verified in ``events``, or serves your own WSGI or ASGI app (``serve``).
    ``@pytest.mark.kenar_receiver(deliveries=MemoryDeliveryLog())`` gives it a delivery log:
    then ``events`` holds each delivery once, however often the sandbox delivers it.

Only pytest and the standard library are imported until a fixture is used.
"""

from __future__ import annotations

import importlib
import inspect
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Optional

import pytest

if TYPE_CHECKING:
    from kenar_api_client.api_client import ApiClient
    from kenar_api_client.async_api_client import AsyncApiClient
    from kenar_api_client.sandbox import Sandbox
    from kenar_api_client.webhooks import DeliveryLog, WebhookEvent

__all__ = ["WebhookReceiver", "kenar_async_client", "kenar_client", "kenar_receiver", "kenar_sandbox"]

_START_TIMEOUT = 10.0  # seconds an ASGI server may take to start listening


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "kenar_sandbox(**kwargs): keyword arguments for the kenar_sandbox fixture's Sandbox()"
    )
    config.addinivalue_line(
        "markers", "kenar_receiver(deliveries=LOG): the delivery log of the kenar_receiver fixture's receiver"
    )


@pytest.fixture
def kenar_sandbox(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A sandbox running for the test, with the ``KENAR_*`` variables pointing at it."""
    from kenar_api_client.sandbox import Sandbox

    marker = request.node.get_closest_marker("kenar_sandbox")
    with Sandbox(**(marker.kwargs if marker is not None else {})) as sandbox:
        for name, value in sandbox.environment().items():
            monkeypatch.setenv(name, value)
        yield sandbox


@pytest.fixture
def kenar_client(kenar_sandbox: Sandbox) -> Iterator[ApiClient]:
    """An ``ApiClient`` for ``kenar_sandbox`` with the demo API key and access token."""
    from kenar_api_client import ApiClient, Configuration
    from kenar_api_client.sandbox import DEMO_ACCESS_TOKEN, DEMO_API_KEY

    configuration = Configuration(
        host=kenar_sandbox.url, api_key={"APIKey": DEMO_API_KEY}, access_token=DEMO_ACCESS_TOKEN
    )
    with ApiClient(configuration) as client:
        yield client


@pytest.fixture
def kenar_async_client(kenar_sandbox: Sandbox) -> AsyncApiClient:
    """An ``AsyncApiClient`` for ``kenar_sandbox`` with the demo API key and access token."""
    from kenar_api_client import AsyncApiClient, Configuration
    from kenar_api_client.sandbox import DEMO_ACCESS_TOKEN, DEMO_API_KEY

    configuration = Configuration(
        host=kenar_sandbox.url, api_key={"APIKey": DEMO_API_KEY}, access_token=DEMO_ACCESS_TOKEN
    )
    # Each test's event loop is closed before a synchronous fixture's teardown could close
    # the client on it; without keep-alive, no connection outlives its call.
    return AsyncApiClient(configuration, keepalive=False)


@pytest.fixture
def kenar_receiver(kenar_sandbox: Sandbox, request: pytest.FixtureRequest) -> Iterator[WebhookReceiver]:
    """A webhook receiver on a free port; ``kenar_sandbox`` delivers to it."""
    marker = request.node.get_closest_marker("kenar_receiver")
    receiver = WebhookReceiver(kenar_sandbox, **(marker.kwargs if marker is not None else {}))
    try:
        yield receiver
    finally:
        receiver.close()


class WebhookReceiver:
    """Where the sandbox delivers during a test.

    By default it serves ``make_wsgi_app`` with the sandbox's identification key and keeps
    every verified event in :attr:`events`; with ``deliveries`` (a delivery log), each
    delivery key once. :meth:`serve` serves your app instead.
    """

    def __init__(self, sandbox: Sandbox, *, deliveries: Optional[DeliveryLog] = None) -> None:
        from kenar_api_client.webhooks import make_wsgi_app

        self.sandbox = sandbox
        self.events: List[WebhookEvent] = []
        #: The delivery log of the default receiver, if any.
        self.deliveries = deliveries
        self._server: Optional[_Served] = None
        self.serve(make_wsgi_app(sandbox.identification_key, self.events.append, deliveries=deliveries))

    def serve(self, app: Callable[..., Any], path: str = "/", *, interface: str = "auto") -> str:
        """Serve ``app`` and point the sandbox's webhook at ``path`` on it; returns that URL.

        ``interface`` is ``"wsgi"``, ``"asgi"`` or ``"auto"``: an app whose call is a
        coroutine function (FastAPI, Starlette, Django's ASGI handler, ``make_asgi_app``)
        is served as ASGI, under uvicorn, anything else as WSGI, threaded.
        """
        if interface not in ("auto", "wsgi", "asgi"):
            raise ValueError(f"interface must be 'auto', 'wsgi' or 'asgi', got {interface!r}")
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        asgi = interface == "asgi" or (interface == "auto" and _is_asgi(app))
        self.close()
        self._server = _ServedASGI(app) if asgi else _ServedWSGI(app)
        self.sandbox.set_webhook(self.url.rstrip("/") + path)
        return self.webhook_url

    @property
    def url(self) -> str:
        """The server's base URL, ``http://127.0.0.1:<port>/``."""
        if self._server is None:
            raise RuntimeError("the receiver is closed")
        return f"http://127.0.0.1:{self._server.port}/"

    @property
    def webhook_url(self) -> str:
        """Where the sandbox delivers."""
        return str(self.sandbox.webhook_url)

    def close(self) -> None:
        """Stop serving."""
        if self._server is not None:
            server, self._server = self._server, None
            server.stop()


def _is_asgi(app: Callable[..., Any]) -> bool:
    if inspect.isfunction(app) or inspect.ismethod(app):
        return inspect.iscoroutinefunction(app)
    return inspect.iscoroutinefunction(type(app).__call__)


class _Served:
    port: int

    def stop(self) -> None:
        raise NotImplementedError


class _ServedWSGI(_Served):
    def __init__(self, app: Callable[..., Any]) -> None:
        from kenar_api_client.webhooks import make_server

        self._server = make_server("127.0.0.1", 0, app).start()
        self.port = int(self._server.server_port)

    def stop(self) -> None:
        self._server.stop()


class _ServedASGI(_Served):
    def __init__(self, app: Callable[..., Any]) -> None:
        try:
            uvicorn = importlib.import_module("uvicorn")
        except ImportError as exc:
            raise RuntimeError("serving an ASGI app needs uvicorn: pip install uvicorn") from exc
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start serving the ASGI app")
            time.sleep(0.01)
        self.port = int(self._server.servers[0].sockets[0].getsockname()[1])

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join()
