"""One app process of the fault matrix (test_token_fault_matrix.py), run in a real subprocess.

It asks a ``TokenManager`` on the shared store for a user's token (or completes a login), and
when the manager or the OAuth client logs the step named ``pause_at`` (their ``kenar_step``
records) it tells the test and blocks on the pause pipe: the test then SIGKILLs it there, or
makes that step fail and lets it go on. It reports what each call returned (with
``until_token``, asking again until it has a token, as an app would), then keeps running
(background refreshes and store writes go on) until the test tells it to exit.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Dict, List, Optional

from kenar_api_client.oauth import (
    OAuthClient,
    OAuthToken,
    RedisTokenStore,
    SQLiteTokenStore,
    TokenManager,
    TokenStore,
)
from kenar_api_client.sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REDIRECT_URI

STEP_LOGGERS = ("kenar_api_client.oauth.manager", "kenar_api_client.oauth.client")


def open_store(spec: Dict[str, Any]) -> TokenStore:
    """The store a spec names: ``{"kind": "sqlite", "path"}`` or ``{"kind": "redis", "url", "prefix"}``."""
    if spec["kind"] == "sqlite":
        return SQLiteTokenStore(spec["path"], busy_timeout=spec.get("busy_timeout", 30.0))
    import redis

    client = redis.Redis.from_url(spec["url"], socket_timeout=5)
    return RedisTokenStore(client, prefix=spec["prefix"])


def describe(outcome: Any) -> Dict[str, Any]:
    """What a call gave, as plain data the test can compare."""
    if isinstance(outcome, OAuthToken):
        return {"token": outcome.access_token}
    return {"error": type(outcome).__name__, "message": str(outcome)[:300]}


class Steps(logging.Handler):
    """Blocks the thread that logs ``pause_at`` (once) until the test answers on ``pipe``, and
    tells the test of each ``notify_at`` step as it is logged."""

    def __init__(self, pause_at: Optional[str], notify_at: List[str], pipe: Any) -> None:
        super().__init__(logging.DEBUG)
        self.pause_at = pause_at
        self.notify_at = set(notify_at)
        self.pipe = pipe
        self._lock = threading.Lock()
        self._paused = False

    def emit(self, record: logging.LogRecord) -> None:
        step = getattr(record, "kenar_step", None)
        if step in self.notify_at:
            with self._lock:
                self.pipe.send(("saw", step))
        if step is None or step != self.pause_at:
            return
        with self._lock:
            if self._paused:
                return
            self._paused = True
            self.pipe.send(("at", step))
        self.pipe.recv()  # "go" (the step then fails, or goes on), or a SIGKILL


def run(config: Dict[str, Any], pause: Any, control: Any) -> None:
    """The process's main: see the module docstring. ``config`` says what to do.

    ``pause`` carries ("at", step) / ("saw", step) to the test and "go" back; ``control``
    carries ("done", outcomes) to the test and "exit" back.
    """
    logging.basicConfig(
        level=logging.WARNING, format=f"[{config['name']}] %(threadName)s %(name)s: %(message)s"
    )
    logging.getLogger().handlers[0].setLevel(logging.WARNING)  # the step records are for the test
    if config.get("pause_at") or config.get("notify_at"):
        handler = Steps(config.get("pause_at"), list(config.get("notify_at") or ()), pause)
        for name in STEP_LOGGERS:
            step_logger = logging.getLogger(name)
            step_logger.addHandler(handler)
            step_logger.setLevel(logging.DEBUG)
    offset = float(config["clock_offset"])

    def clock() -> float:
        return time.time() + offset  # the sandbox's clock, followed from this process

    oauth = OAuthClient(
        DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REDIRECT_URI, config["oauth_url"], clock=clock
    )
    manager = TokenManager(
        oauth,
        open_store(config["store"]),
        lease_ttl=config["lease_ttl"],
        retry_interval=config["retry_interval"],
    )
    outcomes: List[Dict[str, Any]] = []
    for _ in range(int(config.get("calls", 1))):
        outcomes.append(describe(_outcome(lambda: _act(manager, config))))
    # An app goes on: it asks again a moment later, until it has a token (or a minute passed).
    deadline = time.monotonic() + 60
    while config.get("until_token") and "token" not in outcomes[-1] and time.monotonic() < deadline:
        time.sleep(0.2)
        outcomes.append(describe(_outcome(lambda: _act(manager, config))))
    control.send(("done", outcomes))
    control.recv()  # "exit": until then background refreshes and writes go on
    manager.close()


def _act(manager: TokenManager, config: Dict[str, Any]) -> OAuthToken:
    if config["action"] == "login":
        return manager.complete_authorization(config["user"], config["redirect"], config["state"])
    return manager.token(config["user"])


def _outcome(action: Any) -> Any:
    try:
        return action()
    except Exception as error:  # reported to the test, which judges it
        return error


def stored_token(config: Dict[str, Any]) -> Optional[str]:
    """Helper for the test: the access token the store holds for the user, if any."""
    manager = TokenManager(
        OAuthClient(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REDIRECT_URI, config["oauth_url"]),
        open_store(config["store"]),
    )
    stored = manager.stored(config["user"])
    return stored.access_token if stored is not None else None
