"""TLS is verified by default: against a local HTTPS server whose certificate comes from a test CA."""

from __future__ import annotations

import logging
import ssl
import warnings
from pathlib import Path
from typing import Any, Iterator, List

import pytest
import trustme
from conftest import ACCESS_TOKEN, API_KEY
from fault_servers import HTTPSRecordingServer
from servers import RecordingServer
from urllib3.exceptions import HTTPWarning, InsecureRequestWarning, SSLError

from kenar_api_client import (
    ApiClient,
    ApiConnectionError,
    ApiTimeoutError,
    Configuration,
    EventsApi,
)

SEND_ARGS = {"message": "hello", "target_type": "USER", "target_resource_id": "u-1"}
REST_LOGGER = "kenar_api_client.rest"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def https_server(ca: trustme.CA) -> Iterator[HTTPSRecordingServer]:
    server = HTTPSRecordingServer(ca)
    server.start()
    yield server
    server.stop()


class TestVerification:
    def test_a_certificate_from_an_unknown_ca_is_refused(
        self, https_server: HTTPSRecordingServer, make_api: Any
    ) -> None:
        api = make_api(https_server.url)
        with pytest.raises(ApiConnectionError) as caught:
            api.events_send_event(**SEND_ARGS)
        error = caught.value
        assert not isinstance(error, ApiTimeoutError)
        assert error.status == 0
        assert isinstance(error.__cause__, SSLError)
        assert any(isinstance(e, ssl.SSLCertVerificationError) for e in _chain(error))
        assert "TLS failed" in str(error)
        assert "certificate verify failed" in str(error)
        # Nothing, credentials included, went over the unverified connection.
        assert https_server.requests == []

    def test_ssl_ca_cert_pointing_at_the_ca_makes_it_pass(
        self, https_server: HTTPSRecordingServer, make_api: Any, ca_file: str
    ) -> None:
        api = make_api(https_server.url, ssl_ca_cert=ca_file)
        for _ in range(3):
            assert api.events_send_event(**SEND_ARGS) == {}
        assert len(https_server.requests) == 3
        assert https_server.last.headers["X-API-Key"] == API_KEY
        assert https_server.connections == 1  # kept alive across calls

    def test_the_ca_as_pem_text_makes_it_pass(
        self, https_server: HTTPSRecordingServer, make_api: Any, ca: trustme.CA
    ) -> None:
        api = make_api(https_server.url, ca_cert_data=ca.cert_pem.bytes().decode("ascii"))
        assert api.events_send_event(**SEND_ARGS) == {}

    def test_a_certificate_for_another_name_is_refused(
        self, ca: trustme.CA, make_api: Any, ca_file: str
    ) -> None:
        server = HTTPSRecordingServer(ca, names=("api.kenar.test",)).start()
        try:
            api = make_api(server.url, ssl_ca_cert=ca_file)
            with pytest.raises(ApiConnectionError) as caught:
                api.events_send_event(**SEND_ARGS)
            assert isinstance(caught.value.__cause__, SSLError)
            assert server.requests == []

            # Told which name to expect, the client accepts it.
            api = make_api(server.url, ssl_ca_cert=ca_file, assert_hostname="api.kenar.test")
            assert api.events_send_event(**SEND_ARGS) == {}
            assert len(server.requests) == 1
        finally:
            server.stop()

    def test_verify_ssl_false_works_and_warns_exactly_once(self, https_server: HTTPSRecordingServer) -> None:
        configuration = Configuration(
            host=https_server.url, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN
        )
        configuration.verify_ssl = False
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with ApiClient(configuration) as client:
                api = EventsApi(client)
                for _ in range(5):
                    assert api.events_send_event(**SEND_ARGS) == {}
        insecure = [w for w in caught if issubclass(w.category, InsecureRequestWarning)]
        assert len(insecure) == 1, [str(w.message) for w in caught]
        # No other urllib3 warning either (urllib3 alone would warn on every request).
        assert len([w for w in caught if issubclass(w.category, HTTPWarning)]) == 1
        assert "verify_ssl=False" in str(insecure[0].message)
        # The warning points at the caller's line, not into the SDK.
        assert insecure[0].filename == __file__
        assert len(https_server.requests) == 5


class TestPlainHttpWarning:
    def test_credentials_over_http_to_a_remote_host_are_warned_about(
        self, make_api: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger=REST_LOGGER)
        # .invalid never resolves (RFC 2606): the pool is made, the warning logged, and
        # the request then fails without touching the network.
        api = make_api("http://kenar-sdk-test.invalid", retries=0)
        for _ in range(2):
            with pytest.raises(ApiConnectionError):
                api.events_send_event(**SEND_ARGS)
        warned = [r for r in caplog.records if r.name == REST_LOGGER and r.levelno == logging.WARNING]
        assert len(warned) == 1  # once per pool, not once per call
        assert "plain http://" in warned[0].getMessage()
        assert "kenar-sdk-test.invalid" in warned[0].getMessage()
        assert API_KEY not in caplog.text

    @pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
    def test_loopback_is_not_warned_about(
        self, server: RecordingServer, make_api: Any, caplog: pytest.LogCaptureFixture, host: str
    ) -> None:
        caplog.set_level(logging.WARNING)
        port = server.address[1]
        make_api(f"http://{host}:{port}").events_send_event(**SEND_ARGS)
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    def test_no_credentials_no_warning(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.WARNING, logger=REST_LOGGER)
        configuration = Configuration(host="http://kenar-sdk-test.invalid")
        configuration.retries = 0
        with ApiClient(configuration) as client, pytest.raises(ApiConnectionError):
            EventsApi(client).events_send_event(**SEND_ARGS)
        assert not [r for r in caplog.records if r.name == REST_LOGGER]

    def test_https_to_a_remote_host_is_not_warned_about(
        self, make_api: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger=REST_LOGGER)
        api = make_api("https://kenar-sdk-test.invalid", retries=0)
        with pytest.raises(ApiConnectionError):
            api.events_send_event(**SEND_ARGS)
        assert not [r for r in caplog.records if r.name == REST_LOGGER]


def _chain(error: BaseException) -> List[BaseException]:
    chain: List[BaseException] = []
    current: Any = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain
