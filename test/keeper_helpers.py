"""Helpers for the keeper-at-scale tests: sellers in a sandbox, a proxy that holds requests, child keepers.

``HoldingProxy`` stands between a keeper and the sandbox's API and holds every request a
test picks (it never reaches the sandbox until released), so a test can see a keeper
stuck on one user, or kill a keeper process at a known point of its round.
``run_child`` starts ``keeper_child.py`` in a real subprocess over a shared store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Dict, List, Optional, Tuple

import urllib3
from servers import loopback_server

from kenar_api_client.oauth import OAuthToken, SubscriptionKeeper, TokenManager
from kenar_api_client.sandbox import Sandbox

_http = urllib3.PoolManager(maxsize=32)
CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keeper_child.py")


def post_of(index: int) -> str:
    return f"post{index:04d}kz"


def add_sellers(
    sandbox: Sandbox, tokens: TokenManager, keeper: SubscriptionKeeper, count: int, **kw: Any
) -> None:
    """``count`` sellers ``seller-<i>``, each with a token about to expire and two kept subscriptions."""
    for index in range(count):
        post = post_of(index)
        answer = sandbox.issue_tokens(
            user_id=f"divar-{index}",
            scopes=["USER_POSTS_GET", f"CHAT_POST_CONVERSATIONS_READ.{post}", "offline_access"],
            posts=[post],
            **kw,
        )
        tokens.save(f"seller-{index}", OAuthToken.from_response(answer, sandbox.clock.now()))
        keeper.keep(f"seller-{index}", {"event_type": "POST_UPDATE", "metadata": {"seller": index}})
        keeper.keep(
            f"seller-{index}",
            {"event_type": "NEW_MESSAGE_ON_POST", "event_resource_id": post, "metadata": {"seller": index}},
        )


def registrations(sandbox: Sandbox) -> List[Tuple[str, str, str]]:
    """Every registration the sandbox accepted: (access token, event type, resource)."""
    return [(s.access_token, s.event_type, s.event_resource_id) for s in sandbox.all_subscriptions]


def refreshes(sandbox: Sandbox) -> int:
    """Refresh requests the sandbox answered with a new pair."""
    return sum(1 for r in sandbox.token_requests if r.grant_type == "refresh_token" and r.status == 200)


class HoldingProxy:
    """Forwards requests to ``target``; holds those ``hold(path, body)`` picks until released.

    ``held`` is set when the first held request arrives (``held_requests`` lists them).
    After :meth:`release`, held requests are forwarded if ``forward`` was True, else
    their connection is closed unanswered (the request never reached the target).
    """

    def __init__(self, target: str, hold: Callable[[str, bytes], bool]) -> None:
        self.target = target
        self.hold = hold
        self.held = threading.Event()
        self.held_requests: List[Tuple[str, bytes]] = []
        self._released = threading.Event()
        self._forward_held = True
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.hold(self.path, body):
                    with proxy._lock:
                        proxy.held_requests.append((self.path, body))
                    proxy.held.set()
                    proxy._released.wait(120)
                    if not proxy._forward_held:
                        self.close_connection = True
                        return
                headers: Dict[str, str] = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                answer = _http.request("POST", proxy.target + self.path, body=body, headers=headers)
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(answer.data)))
                self.end_headers()
                self.wfile.write(answer.data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd, self._thread = loopback_server(Handler)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def release(self, forward: bool = True) -> None:
        self._forward_held = forward
        self._released.set()

    def stop(self) -> None:
        self.release(forward=False)
        self._httpd.shutdown()
        self._httpd.server_close()


def run_child(settings: Dict[str, Any], stdin: Optional[int] = None) -> subprocess.Popen[bytes]:
    """``keeper_child.py`` with ``settings`` (JSON), in its own interpreter."""
    return subprocess.Popen(
        [sys.executable, CHILD, json.dumps(settings)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=stdin,
        env={**os.environ, "PYTHONPATH": os.path.dirname(CHILD)},
    )


def child_result(process: subprocess.Popen[bytes], timeout: float = 120) -> Dict[str, Any]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    result: Dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result
