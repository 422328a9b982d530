"""``KENAR_LOG=debug|info``: the SDK's own records on stderr, redacted, from a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ACCESS_TOKEN, API_KEY
from servers import RecordingServer

SEND_EVENT = """
import kenar_api_client

configuration = kenar_api_client.Configuration(
    host={url!r}, api_key={{"APIKey": {api_key!r}}}, access_token={token!r}
)
with kenar_api_client.ApiClient(configuration) as client:
    kenar_api_client.EventsApi(client).events_send_event(
        message="secret-order-17", target_type="USER", target_resource_id="u-1"
    )
print("sent")
"""


def send_with(server: RecordingServer, kenar_log: str) -> subprocess.CompletedProcess[str]:
    """Run a script sending one event, with ``KENAR_LOG`` set (when not empty)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KENAR_")}
    if kenar_log:
        env["KENAR_LOG"] = kenar_log
    code = SEND_EVENT.format(url=server.url, api_key=API_KEY, token=ACCESS_TOKEN)
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "sent\n"
    assert len(server.requests) == 1
    return result


def assert_no_credentials(text: str) -> None:
    assert API_KEY not in text
    assert ACCESS_TOKEN not in text


def test_debug_logs_each_request_and_answer_redacted(server: RecordingServer) -> None:
    stderr = send_with(server, "debug").stderr

    request_lines = [line for line in stderr.splitlines() if "request: POST" in line]
    assert len(request_lines) == 1
    assert "DEBUG kenar_api_client.rest:" in request_lines[0]
    assert "'X-API-Key': '[REDACTED]'" in request_lines[0]
    assert "'Authorization': '[REDACTED]'" in request_lines[0]
    assert "response: 200" in stderr
    assert_no_credentials(stderr)


def test_info_logs_one_line_per_call_without_the_query(server: RecordingServer) -> None:
    stderr = send_with(server, "INFO").stderr

    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "INFO kenar_api_client.rest: POST " in lines[0]
    assert f"{server.url}/experimental/open-platform/events/send -> 200 in " in lines[0]
    assert "secret-order-17" not in stderr  # the message travels in the query string
    assert_no_credentials(stderr)


def test_without_kenar_log_the_sdk_prints_nothing(server: RecordingServer) -> None:
    assert send_with(server, "").stderr == ""


def test_an_unknown_level_is_ignored_with_a_warning(server: RecordingServer) -> None:
    stderr = send_with(server, "verbose").stderr

    assert "KENAR_LOG='verbose' is ignored: use 'debug' or 'info'" in stderr
    assert "POST" not in stderr
