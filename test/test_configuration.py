"""Configuration: defaults, the environment, explicit values, auth settings and the default instances."""

from __future__ import annotations

import copy
import logging

import pytest
from servers import RecordingServer

import kenar_api_client
from kenar_api_client import ApiClient, ApiTypeError, ApiValueError, Configuration, EventsApi


def test_defaults_without_environment() -> None:
    configuration = Configuration()
    assert configuration.host == "https://open-api.divar.ir"
    assert configuration.api_key == {}
    assert configuration.access_token is None
    assert configuration.auth_settings() == {}
    assert configuration.verify_ssl is True
    assert configuration.timeout == (10.0, 60.0)
    assert configuration.client_side_validation is True


def test_environment_fills_what_was_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KENAR_BASE_URL", "http://127.0.0.1:9999/")
    monkeypatch.setenv("KENAR_API_KEY", "env-key")
    monkeypatch.setenv("KENAR_ACCESS_TOKEN", "env-token")

    configuration = Configuration()

    assert configuration.host == "http://127.0.0.1:9999"
    assert configuration.api_key == {"APIKey": "env-key"}
    assert configuration.access_token == "env-token"


def test_explicit_values_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KENAR_BASE_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("KENAR_API_KEY", "env-key")
    monkeypatch.setenv("KENAR_ACCESS_TOKEN", "env-token")

    configuration = Configuration(
        host="https://example.test", api_key={"APIKey": "mine"}, access_token="my-token"
    )
    assert configuration.host == "https://example.test"
    assert configuration.api_key == {"APIKey": "mine"}
    assert configuration.access_token == "my-token"

    configuration = Configuration()
    configuration.api_key["APIKey"] = "assigned"
    assert configuration.get_api_key_with_prefix("APIKey") == "assigned"


def test_environment_is_used_on_the_wire(monkeypatch: pytest.MonkeyPatch, server: RecordingServer) -> None:
    monkeypatch.setenv("KENAR_BASE_URL", server.url)
    monkeypatch.setenv("KENAR_API_KEY", "env-key")
    monkeypatch.setenv("KENAR_ACCESS_TOKEN", "env-token")

    with ApiClient(Configuration()) as client:
        EventsApi(client).events_send_event(message="m")

    assert server.last.headers["X-API-Key"] == "env-key"
    assert server.last.headers["Authorization"] == "Bearer env-token"


@pytest.mark.parametrize(
    "host",
    [
        "open-api.divar.ir",
        "ftp://open-api.divar.ir",
        "https://",
        "https://user:pw@open-api.divar.ir",
        "https://a.b/?q=1",
        42,
        "https://open-api.divar.ir:99999",
        "https://open-api.divar.ir:-1",
        "https://open-api.divar.ir\r\nX-Evil: 1",
        "https://open\n-api.divar.ir",
        "https://:443",
        "http://[::1",
        "http://[::1]x",
        "https://open api.divar.ir",
    ],
)
def test_an_invalid_host_is_refused_at_once(host: object) -> None:
    with pytest.raises(ApiValueError):
        Configuration(host=host)  # type: ignore[arg-type]
    configuration = Configuration()
    with pytest.raises(ApiValueError):
        configuration.host = host  # type: ignore[assignment]
    assert configuration.host == "https://open-api.divar.ir"


def test_a_host_with_a_password_is_refused_without_quoting_it() -> None:
    with pytest.raises(ApiValueError) as raised:
        Configuration(host="https://user:s3cret-pw@open api.divar.ir")
    assert "s3cret-pw" not in str(raised.value)


@pytest.mark.parametrize(
    ("host", "normalized"),
    [
        ("HTTPS://Open-API.Divar.IR/", "https://open-api.divar.ir"),
        ("http://[::1]", "http://[::1]"),
        ("http://[::1]:8080/kenar/", "http://[::1]:8080/kenar"),
        ("https://127.0.0.1:65535", "https://127.0.0.1:65535"),
    ],
)
def test_a_valid_host_is_kept_in_urllib3s_normal_form(host: str, normalized: str) -> None:
    assert Configuration(host=host).host == normalized


def test_an_invalid_base_url_in_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KENAR_BASE_URL", "open-api.divar.ir")
    with pytest.raises(ApiValueError, match="KENAR_BASE_URL"):
        Configuration()


def test_a_host_with_a_base_path_is_kept(server: RecordingServer) -> None:
    with ApiClient(Configuration(host=server.url + "/kenar/")) as client:
        EventsApi(client).events_send_event(message="m")
    assert server.last.path == "/kenar/experimental/open-platform/events/send"


@pytest.mark.parametrize("token", [b"token-as-bytes", 42, ["t"]])
def test_an_access_token_that_is_not_a_string_is_refused_when_set(token: object) -> None:
    # bytes used to go out as "Bearer b'...'" and break the error path with a TypeError.
    with pytest.raises(ApiTypeError, match="access_token") as raised:
        Configuration(access_token=token)  # type: ignore[arg-type]
    assert "token-as-bytes" not in str(raised.value)
    configuration = Configuration(access_token="good-token")
    with pytest.raises(ApiTypeError, match="access_token"):
        configuration.access_token = token  # type: ignore[assignment]
    assert configuration.access_token == "good-token"
    configuration.access_token = None
    assert configuration.auth_settings() == {}


@pytest.mark.parametrize("api_key", [{"APIKey": b"key-as-bytes"}, {"APIKey": 42}, "key", None])
def test_an_api_key_that_is_not_a_dict_of_strings_is_refused_when_set(api_key: object) -> None:
    with pytest.raises(ApiTypeError, match="api_key") as raised:
        Configuration(host="https://example.test").api_key = api_key  # type: ignore[assignment]
    assert "key-as-bytes" not in str(raised.value)


def test_auth_settings_list_only_configured_schemes() -> None:
    configuration = Configuration(api_key={"APIKey": "k"}, access_token="t")
    configuration.api_key_prefix["APIKey"] = "Token"
    assert configuration.auth_settings() == {
        "APIKey": {"type": "api_key", "in": "header", "key": "X-API-Key", "value": "Token k"},
        "OAuth": {"type": "oauth2", "in": "header", "key": "Authorization", "value": "Bearer t"},
    }


def test_default_configuration_can_be_replaced_and_copied() -> None:
    first = Configuration.get_default()
    assert Configuration.get_default() is first

    mine = Configuration(host="https://example.test")
    Configuration.set_default(mine)
    assert Configuration.get_default() is mine

    clone = Configuration.get_default_copy()
    clone.host = "https://other.test"
    clone.api_key["APIKey"] = "k"
    assert mine.host == "https://example.test"
    assert mine.api_key == {}
    assert clone.logger["package_logger"] is mine.logger["package_logger"]


def test_deepcopy_is_independent() -> None:
    configuration = Configuration(api_key={"APIKey": "k"})
    clone = copy.deepcopy(configuration)
    clone.api_key["APIKey"] = "other"
    assert configuration.api_key["APIKey"] == "k"


def test_default_api_client_can_be_replaced(server: RecordingServer) -> None:
    client = ApiClient(Configuration(host=server.url))
    ApiClient.set_default(client)
    assert ApiClient.get_default() is client
    assert EventsApi().api_client is client
    client.close()


def test_debug_switches_package_logging_and_restores_it() -> None:
    package_logger = logging.getLogger("kenar_api_client")
    package_logger.setLevel(logging.INFO)
    configuration = Configuration()
    configuration.debug = True
    assert package_logger.level == logging.DEBUG
    configuration.debug = False
    assert package_logger.level == logging.INFO
    package_logger.setLevel(logging.NOTSET)


def test_logger_file_receives_records(tmp_path: object, server: RecordingServer) -> None:
    log_file = f"{tmp_path}/kenar.log"
    configuration = Configuration(host=server.url, api_key={"APIKey": "file-secret-key"})
    configuration.logger_file = log_file
    configuration.debug = True
    try:
        with ApiClient(configuration) as client:
            EventsApi(client).events_send_event(message="logged")
    finally:
        configuration.debug = False
        configuration.logger_file = None
    with open(log_file, encoding="utf-8") as handle:
        text = handle.read()
    assert "/experimental/open-platform/events/send" in text
    assert "file-secret-key" not in text


def test_a_copy_changing_logger_file_leaves_the_originals_file_alone(tmp_path: object) -> None:
    original = Configuration()
    original.logger_file = f"{tmp_path}/original.log"
    clone = copy.deepcopy(original)
    clone.logger_file = f"{tmp_path}/clone.log"
    package_logger = logging.getLogger("kenar_api_client")
    try:
        package_logger.warning("after the copy changed its file")
    finally:
        clone.logger_file = None
        original.logger_file = None
    with open(f"{tmp_path}/original.log", encoding="utf-8") as handle:
        assert "after the copy changed its file" in handle.read()
    with open(f"{tmp_path}/clone.log", encoding="utf-8") as handle:
        assert "after the copy changed its file" in handle.read()
    # Both files were detached; only the library's own NullHandler stays.
    assert all(type(handler) is logging.NullHandler for handler in package_logger.handlers)


def test_debug_report_names_versions_not_secrets() -> None:
    configuration = Configuration(api_key={"APIKey": "report-secret"}, access_token="report-token")
    report = configuration.to_debug_report()
    assert kenar_api_client.__version__ in report
    assert "report-secret" not in report
    assert "report-token" not in report
    assert "[REDACTED]" in report


def test_user_agent_and_default_headers(server: RecordingServer) -> None:
    with ApiClient(Configuration(host=server.url), header_name="X-App", header_value="shop-bot") as client:
        assert client.user_agent == f"kenar-api-client/{kenar_api_client.__version__}/python"
        client.user_agent = "shop-bot/2.0"
        client.set_default_header("X-Tenant", "t-1")
        EventsApi(client).events_send_event(message="m")
    assert server.last.headers["User-Agent"] == "shop-bot/2.0"
    assert server.last.headers["X-App"] == "shop-bot"
    assert server.last.headers["X-Tenant"] == "t-1"
