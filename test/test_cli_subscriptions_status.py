"""``kenar-events subscriptions status`` and ``KENAR_TOKEN_STORE=postgresql://...`` from the command line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Tuple

import pytest
from postgres_server import PostgresServer

from kenar_api_client.cli import main
from kenar_api_client.oauth import SQLiteTokenStore
from kenar_api_client.sandbox import (
    DEMO_API_KEY,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REDIRECT_URI,
    Sandbox,
)


def _environment(sandbox: Sandbox, store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "KENAR_BASE_URL": sandbox.url,
        "KENAR_API_KEY": DEMO_API_KEY,
        "KENAR_OAUTH_URL": sandbox.oauth_url,
        "KENAR_APP_SLUG": DEMO_CLIENT_ID,
        "KENAR_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "KENAR_REDIRECT_URI": DEMO_REDIRECT_URI,
        "KENAR_TOKEN_STORE": store,
    }.items():
        monkeypatch.setenv(name, value)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> Tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert DEMO_CLIENT_SECRET not in out + err
    return status, out, err


def _login_keep_renew(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "login")[0] == 0
    assert _run(capsys, "subscriptions", "keep", "--event-type", "POST_UPDATE")[0] == 0
    status, out, _ = _run(capsys, "subscriptions", "renew")
    assert status == 0, out


def test_status_prints_the_figures_operators_watch(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _environment(sandbox, str(tmp_path / "tokens.sqlite3"), monkeypatch)
    # A read creates no store: status on one that is not there says so.
    status, _, err = _run(capsys, "subscriptions", "status")
    assert status == 1
    assert "there is no token store" in err
    assert not (tmp_path / "tokens.sqlite3").exists()

    SQLiteTokenStore(tmp_path / "tokens.sqlite3")  # an empty store, as a first deploy has
    status, out, _ = _run(capsys, "subscriptions", "status")
    assert status == 0
    assert "users: 0" in out
    assert "rounds: none recorded" in out

    _login_keep_renew(capsys)
    status, out, err = _run(capsys, "subscriptions", "status")
    assert status == 0, err
    assert "users: 1; subscriptions: 1 registered, 0 pending, 0 failed, 0 waiting for consent" in out
    assert "due now: 0 users" in out
    assert "1 users, 1 registered, 0 failed" in out  # the renew's round, recorded in the store
    status, out, _ = _run(capsys, "--json", "subscriptions", "status")
    document = json.loads(out)
    assert document["ok"] is True
    assert document["subscriptions"]["registered"] == 1
    (round_,) = document["rounds"].values()
    assert round_["users"] == 1

    # A subscription Kenar refuses: status says so and exits 1, for a monitoring check.
    _run(capsys, "subscriptions", "keep", "--event-type", "NEW_MESSAGE_ON_POST")
    _run(capsys, "subscriptions", "renew")
    status, out, err = _run(capsys, "subscriptions", "status")
    assert status == 1
    assert "1 failed" in out
    assert "not registered" in err


def test_a_postgresql_url_as_the_token_store(
    sandbox: Sandbox,
    postgres_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = postgres_server.fresh_database(f"cli_{os.urandom(3).hex()}")
    with_password = url.replace("kenar@", "kenar:pg-s3cret@")  # trust auth: the password is not checked
    _environment(sandbox, with_password, monkeypatch)
    _login_keep_renew(capsys)
    status, out, err = _run(capsys, "subscriptions", "status")
    assert status == 0, err
    assert "users: 1; subscriptions: 1 registered" in out
    assert "store: postgresql://127.0.0.1:" in out
    status, out, err = _run(capsys, "token", "show")
    assert status == 0
    assert "pg-s3cret" not in out + err
    assert sandbox.subscriptions[0].event_type == "POST_UPDATE"
