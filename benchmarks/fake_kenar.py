"""A loopback fake of Kenar's token and subscription endpoints for the keeper benchmark.

It runs in its own process (asyncio, HTTP/1.1 keep-alive), answers every request after a
configurable delay, and counts what it was asked, so the benchmark can tell the requests
that were needed from those sent twice:

* ``POST /oauth2/token`` (refresh grant): refresh token ``rt.<user>.<n>`` gets
  ``at.<user>.<n+1>`` / ``rt.<user>.<n+1>``, valid an hour. Presenting a refresh token a
  second time is a duplicate refresh.
* ``POST /v1/open-platform/events/subscriptions``: registering the same event type and
  resource with the same access token a second time is a duplicate registration.
* ``GET /_stats``: the counts as JSON; ``POST /_reset`` forgets them.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
from collections import Counter
from typing import Any, Dict, Tuple
from urllib.parse import parse_qs

TOKEN_PATH = "/oauth2/token"
SUBSCRIBE_PATH = "/v1/open-platform/events/subscriptions"
SCOPES = "USER_POSTS_GET CHAT_POST_CONVERSATIONS_READ offline_access"


def _answer(status: int, body: bytes) -> bytes:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


class FakeKenar:
    """The counting handler; one per server process."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.refreshes: Counter[str] = Counter()
        self.registrations: Counter[Tuple[str, str, str]] = Counter()

    def stats(self) -> Dict[str, Any]:
        return {
            "refreshes": sum(self.refreshes.values()),
            "duplicate_refreshes": sum(n - 1 for n in self.refreshes.values()),
            "registrations": sum(self.registrations.values()),
            "duplicate_registrations": sum(n - 1 for n in self.registrations.values()),
            "users_registered": len({token.split(".")[1] for token, _, _ in self.registrations}),
        }

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head.decode("latin-1").split("\r\n")
                method, path = request_line.split(" ")[:2]
                headers = {}
                for line in lines:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                if method == "GET" and path == "/_stats":
                    writer.write(_answer(200, json.dumps(self.stats()).encode()))
                    continue
                if method == "POST" and path == "/_reset":
                    self.refreshes.clear()
                    self.registrations.clear()
                    writer.write(_answer(200, b"{}"))
                    continue
                if self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(self.route(method, path, headers, body))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def route(self, method: str, path: str, headers: Dict[str, str], body: bytes) -> bytes:
        if method == "POST" and path == TOKEN_PATH:
            form = {name: values[0] for name, values in parse_qs(body.decode("ascii")).items()}
            refresh_token = form.get("refresh_token", "")
            parts = refresh_token.split(".")
            if form.get("grant_type") != "refresh_token" or len(parts) != 3 or parts[0] != "rt":
                return _answer(400, b'{"error": "invalid_request"}')
            self.refreshes[refresh_token] += 1
            generation = int(parts[2]) + 1
            return _answer(
                200,
                json.dumps(
                    {
                        "access_token": f"at.{parts[1]}.{generation}",
                        "refresh_token": f"rt.{parts[1]}.{generation}",
                        "expires_in": 3600,
                        "scope": SCOPES,
                        "token_type": "bearer",
                    }
                ).encode(),
            )
        if method == "POST" and path == SUBSCRIBE_PATH:
            token = headers.get("authorization", "").removeprefix("Bearer ")
            request = json.loads(body or b"{}")
            key = (token, str(request.get("event_type")), str(request.get("event_resource_id") or ""))
            self.registrations[key] += 1
            return _answer(200, b"{}")
        return _answer(404, b'{"message": "not found"}')


def _serve(delay: float, ports: Any) -> None:
    async def main() -> None:
        fake = FakeKenar(delay)
        server = await asyncio.start_server(fake.handle, "127.0.0.1", 0, backlog=1024)
        ports.put(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def start(delay: float) -> Tuple[multiprocessing.Process, str]:
    """Start the fake in a new process; (the process, its base URL)."""
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    process = context.Process(target=_serve, args=(delay, ports), daemon=True)
    process.start()
    return process, f"http://127.0.0.1:{ports.get(timeout=30)}"
