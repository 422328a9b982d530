"""The sandbox's token endpoint under faults, as an app rehearses them: Hydra's error answers,
a held or trickling answer, a rotation grace set shorter, and the record of every spent
refresh token or code sent again (the evidence that an app never replayed one)."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from typing import Any, Dict, List, Tuple
from urllib.parse import urlencode

import pytest
from oauth_helpers import wait_until

from kenar_api_client.sandbox import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REDIRECT_URI,
    Sandbox,
    SandboxError,
)

TOKEN_PATH = "/oauth2/token"


def refresh_form(pair: Dict[str, Any]) -> bytes:
    return urlencode(
        {
            "grant_type": "refresh_token",
            "refresh_token": pair["refresh_token"],
            "code": pair["access_token"],
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "redirect_uri": DEMO_REDIRECT_URI,
        }
    ).encode()


def token_post(sandbox: Sandbox, body: bytes) -> Tuple[int, Dict[str, str], Dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=30)
    try:
        connection.request(
            "POST", TOKEN_PATH, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        response = connection.getresponse()
        return response.status, dict(response.headers), json.loads(response.read())
    finally:
        connection.close()


# -- Hydra's answers to the status faults ----------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error"),
    [(500, "server_error"), (503, "temporarily_unavailable"), (429, "temporarily_unavailable")],
)
def test_status_faults_at_the_token_endpoint_answer_rfc_6749_errors(
    sandbox: Sandbox, fault: int, error: str
) -> None:
    sandbox.inject_fault("oauth2_token", fault, retry_after=3)
    status, headers, body = token_post(sandbox, refresh_form(sandbox.issue_tokens()))
    assert status == fault
    assert body["error"] == error
    assert body["error_description"].startswith("injected fault")
    assert headers["Retry-After"] == "3"
    assert headers["Content-Type"].startswith("application/json")


def test_a_processed_then_500_refresh_rotated_the_tokens_and_a_retry_within_the_grace_is_a_reuse(
    sandbox: Sandbox,
) -> None:
    pair = sandbox.issue_tokens()
    sandbox.inject_fault("oauth2_token", 500)  # takes effect first, by default
    status, _, body = token_post(sandbox, refresh_form(pair))
    assert (status, body["error"]) == (500, "server_error")
    assert sandbox.injected_faults[0].took_effect
    assert sandbox.token_reuses == []

    status, _, retried = token_post(sandbox, refresh_form(pair))  # the same refresh token, again
    assert status == 200
    (reuse,) = sandbox.token_reuses
    assert (reuse.kind, reuse.within_grace, reuse.revoked_chain) == ("refresh_token", True, False)
    assert sandbox.state.tokens.status(retried["access_token"]).grant is not None


# -- held and trickling answers --------------------------------------------------------------


def test_a_held_answer_is_on_record_while_the_client_still_waits(sandbox: Sandbox) -> None:
    sandbox.inject_fault("oauth2_token", 503, delay=60, takes_effect=False)
    pair = sandbox.issue_tokens()
    answered = threading.Event()

    def ask() -> None:
        with contextlib.suppress(OSError, http.client.HTTPException, ValueError):  # dropped at stop()
            token_post(sandbox, refresh_form(pair))
        answered.set()

    threading.Thread(target=ask, daemon=True).start()
    wait_until(lambda: sandbox.injected_faults, "the fault to be on record")
    assert not answered.is_set()  # held: the 60 s are not over
    assert sandbox.token_requests == []  # and the token endpoint never saw it
    sandbox.stop()  # cuts the wait short: the connection is dropped
    assert answered.wait(30)


def test_a_trickling_answer_sends_its_headers_then_the_body_a_byte_at_a_time(sandbox: Sandbox) -> None:
    sandbox.inject_fault("oauth2_token", "trickle", delay=60)
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=30) as sock:
        body = refresh_form(sandbox.issue_tokens())
        sock.sendall(
            f"POST /oauth2/token HTTP/1.1\r\nHost: 127.0.0.1:{sandbox.port}\r\n".encode()
            + b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(4096)
        head, _, start = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        length = int(
            next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")).split(
                b":"
            )[1]
        )
        assert length > 100
        assert len(start) < length  # the body has barely begun: a byte every ~70 ms
    (fault,) = sandbox.injected_faults
    assert (fault.fault, fault.took_effect, fault.status) == ("trickle", True, 200)
    assert [(r.grant_type, r.status) for r in sandbox.token_requests] == [("refresh_token", 200)]


def test_a_short_trickle_delivers_the_whole_answer(sandbox: Sandbox) -> None:
    sandbox.inject_fault("oauth2_token", "trickle", delay=0.2)
    status, _, body = token_post(sandbox, refresh_form(sandbox.issue_tokens()))
    assert status == 200
    assert body["access_token"].startswith("ory_at_")


# -- the rotation grace and the record of reuses ---------------------------------------------


def test_the_rotation_grace_can_be_set_shorter_and_a_reuse_after_it_revokes_the_chain(
    sandbox: Sandbox,
) -> None:
    assert sandbox.rotation_grace == 120
    sandbox.rotation_grace = 5
    pair = sandbox.issue_tokens()
    status, _, fresh = token_post(sandbox, refresh_form(pair))
    assert status == 200
    sandbox.clock.advance(6)

    status, _, refused = token_post(sandbox, refresh_form(pair))
    assert (status, refused["error"]) == (400, "invalid_grant")
    assert "5 seconds ago" in refused["error_description"]
    (reuse,) = sandbox.token_reuses
    assert (reuse.kind, reuse.within_grace, reuse.revoked_chain) == ("refresh_token", False, True)
    assert reuse.first_used_at < reuse.at
    assert sandbox.state.tokens.status(fresh["access_token"]).revoked  # the newest pair died with it

    sandbox.reset()
    assert sandbox.token_reuses == []


@pytest.mark.parametrize("bad", [0, -1, float("nan"), True, "5", 100000])
def test_a_rotation_grace_that_is_no_duration_is_refused(sandbox: Sandbox, bad: Any) -> None:
    with pytest.raises(SandboxError, match="rotation_grace"):
        sandbox.rotation_grace = bad


def test_a_code_used_twice_is_recorded_as_a_reuse_that_revoked_its_tokens(sandbox: Sandbox) -> None:
    from kenar_api_client.sandbox import consent

    query = urlencode(
        {
            "response_type": "code",
            "client_id": DEMO_CLIENT_ID,
            "redirect_uri": DEMO_REDIRECT_URI,
            "scope": "SEND_EVENT offline_access",
            "state": "s" * 20,
        }
    )
    redirect = consent(f"{sandbox.oauth_url}/oauth2/auth?{query}")
    code = redirect.split("code=")[1].split("&")[0]
    form = urlencode(
        {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "redirect_uri": DEMO_REDIRECT_URI,
        }
    ).encode()
    assert token_post(sandbox, form)[0] == 200
    assert token_post(sandbox, form)[0] == 400
    reuses: List[Any] = [(r.kind, r.within_grace, r.revoked_chain) for r in sandbox.token_reuses]
    assert reuses == [("code", False, True)]
    assert sandbox.token_reuses[0].to_dict()["kind"] == "code"
