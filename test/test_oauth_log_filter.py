"""OAuthCodeFilter: the code of an OAuth callback stays out of a real web server's access log."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, Iterator, List

import pytest
import urllib3

from kenar_api_client.oauth import OAuthCodeFilter
from kenar_api_client.oauth.log_filter import redact_code

CODE = "ory_ac_Zx81-secret_code.value~9"


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: List[str] = []
        self.arrived = threading.Event()
        self.port = 0  # the server's

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.arrived.set()


async def app(scope: Dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def uvicorn_access_log() -> Iterator[Kept]:
    """The access log lines of a real uvicorn, with the filter on its access logger."""
    uvicorn = pytest.importorskip("uvicorn")
    access = logging.getLogger("uvicorn.access")
    kept, code_filter = Kept(), OAuthCodeFilter()
    access.addFilter(code_filter)  # as an app does at import, before uvicorn configures logging
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="info"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30  # a safety net: uvicorn starts in well under a second
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    access.addHandler(kept)  # after uvicorn's own logging configuration, which replaces handlers
    kept.port = int(server.servers[0].sockets[0].getsockname()[1])
    try:
        yield kept
    finally:
        server.should_exit = True
        thread.join()
        access.removeHandler(kept)
        access.removeFilter(code_filter)


def test_uvicorn_logs_the_callback_without_the_code(uvicorn_access_log: Kept) -> None:
    port = uvicorn_access_log.port
    answer = urllib3.request("GET", f"http://127.0.0.1:{port}/kenar/callback?code={CODE}&state=st-1")
    assert answer.status == 200
    assert uvicorn_access_log.arrived.wait(30)

    (line,) = uvicorn_access_log.lines
    assert "/kenar/callback?code=[REDACTED]&state=st-1" in line
    assert CODE not in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"/cb?code={CODE}&state=s", "/cb?code=[REDACTED]&state=s"),
        (f"/cb?state=s&code={CODE}", "/cb?state=s&code=[REDACTED]"),
        (f'"GET /cb?code={CODE} HTTP/1.1" 200', '"GET /cb?code=[REDACTED] HTTP/1.1" 200'),
        ("/cb?error=access_denied&state=s", "/cb?error=access_denied&state=s"),
        ("/cb?zipcode=12345", "/cb?zipcode=12345"),
        (f"code={CODE}&state=s", "code=[REDACTED]&state=s"),
    ],
)
def test_only_the_code_parameter_is_blanked(text: str, expected: str) -> None:
    assert redact_code(text) == expected


def test_gunicorn_shaped_records_are_changed_in_place() -> None:
    class Atoms(dict):  # type: ignore[type-arg]
        """Like gunicorn's SafeAtoms: a dict subclass the access format reads."""

    atoms = Atoms({"r": f"GET /cb?code={CODE} HTTP/1.1", "q": f"code={CODE}", "s": "200"})
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, '"%(r)s" %(s)s', (atoms,), None)

    assert OAuthCodeFilter().filter(record)

    assert record.args is atoms  # gunicorn's own mapping, still
    assert record.getMessage() == '"GET /cb?code=[REDACTED] HTTP/1.1" 200'
    assert atoms["q"] == "code=[REDACTED]"
