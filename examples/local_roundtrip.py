"""Send an event and register a subscription against a stand-in Kenar server on 127.0.0.1.

Run: python examples/local_roundtrip.py
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import kenar_api_client
from kenar_api_client import EventsRegisterEventSubscriptionRequest


class StandInKenar(BaseHTTPRequestHandler):
    """Answers every POST with ``{}`` and prints what it received."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        has_key = "yes" if self.headers.get("X-API-Key") else "no"
        print(f"  server got: POST {self.path} (API key: {has_key}) body={body.decode() or '-'}")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandInKenar)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    configuration = kenar_api_client.Configuration(
        host=f"http://127.0.0.1:{server.server_address[1]}",
        api_key={"APIKey": "local-demo-key"},
        access_token="local-demo-token",  # noqa: S106 - a stand-in for a local server
    )
    with kenar_api_client.ApiClient(configuration) as api_client:
        api = kenar_api_client.EventsApi(api_client)
        print("send an event:")
        print(
            "  answer:",
            json.dumps(
                api.events_send_event(
                    message="سلام از کنار", target_type="USER", target_resource_id="demo-user"
                )
            ),
        )
        print("register a subscription:")
        request = EventsRegisterEventSubscriptionRequest(event_type="POST_UPDATE", metadata={"shop": "42"})
        print("  answer:", json.dumps(api.events_register_event_subscription(request)))
    server.shutdown()
    print("ok")


if __name__ == "__main__":
    main()
