"""Calls through an HTTP proxy: absolute-form forwarding for http://, a CONNECT tunnel for https://."""

from __future__ import annotations

import http.client
import select
import socket
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Iterator, List, Tuple
from urllib.parse import urlsplit

import pytest
import trustme
import urllib3
from conftest import ACCESS_TOKEN, API_KEY
from fault_servers import HTTPSRecordingServer
from servers import RecordingServer, loopback_server

from kenar_api_client import (
    ApiClient,
    ApiConnectionError,
    ApiTypeError,
    ApiValueError,
    Configuration,
    EventsApi,
)

SEND_ARGS = {"message": "از طریق پراکسی", "target_type": "USER", "target_resource_id": "demo-user-7f3a"}


class ForwardProxy:
    """A small real proxy: forwards absolute-form requests and tunnels CONNECT, recording both."""

    def __init__(self) -> None:
        self.seen: List[Tuple[str, str, Any]] = []  # (method, target, headers)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                proxy.seen.append((self.command, self.path, self.headers))
                target = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if not k.lower().startswith("proxy-")}
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
                path = target.path + (f"?{target.query}" if target.query else "")
                upstream.request(self.command, path, body=body, headers=headers)
                answer = upstream.getresponse()
                payload = answer.read()
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.getheader("Content-Type") or "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                upstream.close()

            def do_CONNECT(self) -> None:
                proxy.seen.append((self.command, self.path, self.headers))
                host, port = self.path.rsplit(":", 1)
                upstream = socket.create_connection((host, int(port)), timeout=5)
                self.send_response(200, "Connection established")
                self.end_headers()
                self._pipe(self.connection, upstream)
                self.close_connection = True

            @staticmethod
            def _pipe(client: socket.socket, upstream: socket.socket) -> None:
                sockets = [client, upstream]
                try:
                    while True:
                        readable, _, _ = select.select(sockets, [], [], 5)
                        if not readable:
                            return
                        for source in readable:
                            data = source.recv(65536)
                            if not data:
                                return
                            (upstream if source is client else client).sendall(data)
                finally:
                    upstream.close()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd, self._thread = loopback_server(Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> ForwardProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.stop()


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    running = ForwardProxy().start()
    yield running
    running.stop()


def proxied_api(host: str, proxy: ForwardProxy, **settings: Any) -> Tuple[ApiClient, EventsApi]:
    configuration = Configuration(host=host, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN)
    configuration.proxy = proxy.url
    configuration.proxy_headers = urllib3.make_headers(proxy_basic_auth="proxy-user:proxy-pass")
    for name, value in settings.items():
        setattr(configuration, name, value)
    client = ApiClient(configuration)
    return client, EventsApi(client)


def test_http_calls_go_through_the_proxy_in_absolute_form(
    proxy: ForwardProxy, server: RecordingServer
) -> None:
    client, api = proxied_api(server.url, proxy)
    with client:
        assert api.events_send_event(**SEND_ARGS) == {}

    method, target, proxy_headers = proxy.seen[0]
    assert method == "POST"
    assert target.startswith(f"{server.url}/experimental/open-platform/events/send?")
    assert proxy_headers["Proxy-Authorization"] == "Basic cHJveHktdXNlcjpwcm94eS1wYXNz"
    assert server.last.query["message"] == [SEND_ARGS["message"]]
    assert server.last.headers["X-API-Key"] == API_KEY
    assert server.last.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"


def test_https_calls_tunnel_through_the_proxy_and_still_verify_tls(
    proxy: ForwardProxy, tmp_path: Path
) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    target = HTTPSRecordingServer(ca).start()
    try:
        client, api = proxied_api(target.url, proxy, ssl_ca_cert=str(ca_file))
        with client:
            api.events_register_event_subscription({"event_type": "POST_UPDATE"})
        method, connect_target, proxy_headers = proxy.seen[0]
        assert (method, connect_target) == ("CONNECT", target.url.removeprefix("https://"))
        assert proxy_headers["Proxy-Authorization"].startswith("Basic ")
        # Credentials travel inside the tunnel only: the proxy never saw them.
        assert proxy_headers.get("X-API-Key") is None
        assert target.last.json() == {"event_type": "POST_UPDATE"}
        assert target.last.headers["X-API-Key"] == API_KEY

        untrusting_client, untrusting_api = proxied_api(target.url, proxy)
        with untrusting_client, pytest.raises(ApiConnectionError) as raised:
            untrusting_api.events_send_event(**SEND_ARGS)
        assert raised.value.status == 0
    finally:
        target.stop()


def test_an_unreachable_proxy_is_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configuration = Configuration(host="http://127.0.0.1:9", retries=0)
    configuration.proxy = f"http://127.0.0.1:{port}"
    with ApiClient(configuration) as client, pytest.raises(ApiConnectionError) as raised:
        EventsApi(client).events_send_event(message="m")
    assert "proxy" in str(raised.value)


def test_credentials_in_the_proxy_url_are_sent_as_proxy_authorization(
    proxy: ForwardProxy, server: RecordingServer
) -> None:
    configuration = Configuration(host=server.url, api_key={"APIKey": API_KEY})
    configuration.proxy = proxy.url.replace("http://", "http://proxy-user:proxy-pass@")
    with ApiClient(configuration) as client:
        assert EventsApi(client).events_send_event(**SEND_ARGS) == {}
    _, _, proxy_headers = proxy.seen[0]
    assert proxy_headers["Proxy-Authorization"] == "Basic cHJveHktdXNlcjpwcm94eS1wYXNz"
    assert server.last.headers.get("Proxy-Authorization") is None


def test_an_explicit_proxy_authorization_wins_over_the_urls_credentials(
    proxy: ForwardProxy, server: RecordingServer
) -> None:
    configuration = Configuration(host=server.url)
    configuration.proxy = proxy.url.replace("http://", "http://url-user:url-pass@")
    configuration.proxy_headers = {"proxy-authorization": "Basic ZXhwbGljaXQ6MQ=="}
    with ApiClient(configuration) as client:
        EventsApi(client).events_send_event(**SEND_ARGS)
    _, _, proxy_headers = proxy.seen[0]
    assert proxy_headers.get_all("Proxy-Authorization") == ["Basic ZXhwbGljaXQ6MQ=="]


@pytest.mark.parametrize(
    "headers",
    [{"Proxy-Authorization": "Basic c2VjcmV0\r\nX-Evil: 1"}, {"X-Bad\nName": "v"}, {"X-Ok": b"bytes"}],
)
def test_proxy_headers_that_could_inject_headers_are_refused_when_the_client_is_made(
    headers: Any,
) -> None:
    configuration = Configuration(host="http://127.0.0.1:9")
    configuration.proxy = "http://127.0.0.1:3128"
    configuration.proxy_headers = headers
    with pytest.raises((ApiValueError, ApiTypeError), match="proxy_headers") as raised:
        ApiClient(configuration)
    assert "c2VjcmV0" not in str(raised.value)
    assert "X-Evil" not in str(raised.value)


def test_the_proxy_password_stays_out_of_a_proxy_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configuration = Configuration(host="http://127.0.0.1:9", retries=0)
    configuration.proxy = f"http://user:pr0xy-pw-8d1@127.0.0.1:{port}"
    with ApiClient(configuration) as client, pytest.raises(ApiConnectionError) as raised:
        EventsApi(client).events_send_event(message="m")
    assert "pr0xy-pw-8d1" not in str(raised.value)
    assert "pr0xy-pw-8d1" not in repr(client.rest_client._proxy_manager.proxy)  # type: ignore[union-attr]
