"""The sandbox clock reaching an app in another process: KENAR_CLOCK_FILE and the SDK's default clock."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple

import pytest
import urllib3

import kenar_api_client
from kenar_api_client import _clock
from kenar_api_client.cli import main
from kenar_api_client.oauth import OAuthClient, SubscriptionKeeper, TokenManager
from kenar_api_client.sandbox import (
    DEMO_API_KEY,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_POST_TOKEN,
    DEMO_REDIRECT_URI,
    Sandbox,
    SandboxClock,
    consent,
)

# -- the SDK's default clock ------------------------------------------------------------------------


def test_without_kenar_clock_file_it_is_real_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KENAR_CLOCK_FILE", raising=False)
    before = time.time()
    assert before <= _clock.now() <= time.time()


def test_it_follows_every_change_of_the_file_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = SandboxClock(file=str(tmp_path / "clock"))
    monkeypatch.setenv("KENAR_CLOCK_FILE", clock.file or "")
    for _ in range(20):  # faster than any file timestamp's resolution: no change may be missed
        clock.advance(1800)
        assert _clock.now() == pytest.approx(clock.now(), abs=1)
    assert clock.offset == 20 * 1800
    assert (tmp_path / "clock").read_text() == "36000.0\n"
    assert [p.name for p in tmp_path.iterdir()] == ["clock"]  # no temporary file left behind


@pytest.mark.parametrize("content", [None, "not a number", "nan", "inf", ""])
def test_an_unreadable_file_means_real_time_and_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, content: Any
) -> None:
    path = tmp_path / f"clock-{content!r}"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("KENAR_CLOCK_FILE", str(path))
    with caplog.at_level(logging.WARNING, logger="kenar_api_client"):
        readings = [_clock.now() - time.time() for _ in range(3)]
    assert all(abs(reading) < 5 for reading in readings)
    warnings = [r for r in caplog.records if "KENAR_CLOCK_FILE" in r.getMessage()]
    assert len(warnings) == 1
    assert "using real time" in warnings[0].getMessage()


def test_oauth_client_and_token_manager_default_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    oauth = OAuthClient("app", "secret", DEMO_REDIRECT_URI, "http://127.0.0.1:9")
    assert oauth.clock is _clock.now
    assert TokenManager(oauth).clock is _clock.now


def test_the_sandbox_environment_names_its_clock_file(tmp_path: Path) -> None:
    with Sandbox(clock_file=str(tmp_path / "clock")) as sandbox:
        assert sandbox.environment()["KENAR_CLOCK_FILE"] == str(tmp_path / "clock")
    with Sandbox() as sandbox:
        assert "KENAR_CLOCK_FILE" not in sandbox.environment()


# -- a sandbox in its own process, an app in this one --------------------------------------------------


def start_sandbox() -> Tuple[subprocess.Popen[str], Dict[str, Any]]:
    """``kenar-events --json sandbox`` in a subprocess, and its banner."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KENAR_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "kenar_api_client.cli", "--json", "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    banner: Dict[str, Any] = json.loads(process.stdout.readline())
    return process, banner


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == 0


@pytest.fixture
def sandbox_process() -> Iterator[Dict[str, Any]]:
    """A sandbox in its own process; its JSON banner."""
    process, banner = start_sandbox()
    try:
        yield banner
    finally:
        stop(process)


def admin_state(url: str) -> Dict[str, Any]:
    state: Dict[str, Any] = urllib3.request("GET", f"{url}/_sandbox/state").json()
    return state


def test_an_app_in_another_process_follows_the_sandbox_clock(
    sandbox_process: Dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url, clock_file = sandbox_process["url"], sandbox_process["clock_file"]
    assert os.path.exists(clock_file)
    monkeypatch.setenv("KENAR_CLOCK_FILE", clock_file)  # what the app's environment holds
    tokens = TokenManager(OAuthClient(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REDIRECT_URI, url))
    request = tokens.oauth.authorization_url(["SEND_EVENT", "USER_POSTS_GET"])
    tokens.complete_authorization("user-1", consent(request.url), request.state)
    configuration = kenar_api_client.Configuration(host=url, api_key={"APIKey": DEMO_API_KEY})
    with kenar_api_client.ApiClient(configuration) as api_client:
        keeper = SubscriptionKeeper(tokens, api_client)
        keeper.keep("user-1", {"event_type": "POST_UPDATE", "event_resource_id": DEMO_POST_TOKEN})
        assert [s.state for s in keeper.renew_due().registered] == ["registered"]

        assert main(["sandbox", "clock", "--advance", "3600", "--base-url", url]) == 0
        assert "+3600 s from real time" in capsys.readouterr().out

        # The app sees the hour pass: its token is due, and so is its kept subscription.
        renewed = keeper.renew_due()
        assert [s.state for s in renewed.registered] == ["registered"]
        kenar_api_client.EventsApi(tokens.api_client_for("user-1", api_client)).events_send_event(
            message="hi", target_type="POST", target_resource_id=DEMO_POST_TOKEN
        )

    state = admin_state(url)
    assert [r["grant_type"] for r in state["token_requests"]] == ["authorization_code", "refresh_token"]
    assert [r["status"] for r in state["requests"]] == [200, 200, 200]  # no call got a 401 first
    (live,) = state["subscriptions"]  # the one registered with the refreshed token
    sandbox_now = urllib3.request("GET", f"{url}/_sandbox/clock").json()["now"]
    assert datetime.fromisoformat(live["expires_at"]).timestamp() > sandbox_now


def test_sandbox_clock_shows_sets_and_refuses(
    sandbox_process: Dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    url = sandbox_process["url"]
    assert main(["--json", "sandbox", "clock", "--base-url", url]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["ok"] is True
    assert shown["offset"] == 0
    assert shown["file"] == sandbox_process["clock_file"]

    assert main(["sandbox", "clock", "--set", "2031-01-01T00:00:00Z", "--base-url", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sandbox clock: 2031-01-01T00:00")
    assert f"KENAR_CLOCK_FILE={sandbox_process['clock_file']}" in out
    assert _clock.offset(sandbox_process["clock_file"]) > 0

    assert main(["sandbox", "clock", "--advance", "-5", "--base-url", url]) == 1
    assert "only moves forward" in capsys.readouterr().err
    assert main(["sandbox", "clock", "--set", "next tuesday", "--base-url", url]) == 2
    assert "neither epoch seconds nor an ISO 8601 date-time" in capsys.readouterr().err


def test_the_temporary_clock_file_is_removed_when_the_sandbox_stops() -> None:
    process, banner = start_sandbox()
    assert os.path.exists(banner["clock_file"])
    stop(process)
    assert not os.path.exists(os.path.dirname(banner["clock_file"]))
