"""Tests of kenar_api_client.sandbox: answers, errors, records, webhook deliveries, life cycle."""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple
from urllib.parse import urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from servers import RecordingServer, Reply

import kenar_api_client
from kenar_api_client.sandbox import (
    DEMO_ACCESS_TOKEN,
    DEMO_API_KEY,
    DEMO_IDENTIFICATION_KEY,
    DEMO_POST_TOKEN,
    DEMO_USER_ID,
    DOCUMENTED_EVENT_TYPES,
    AccessToken,
    Sandbox,
    SandboxError,
    SubscriptionRequiredError,
)
from kenar_api_client.sandbox._server import SandboxRequestHandler
from kenar_api_client.webhooks import (
    NewChatbotMessageEvent,
    NewMessageEvent,
    PaymentTransactionEvent,
    PostUpdateEvent,
    UnknownEvent,
    UserAccessRevocationEvent,
    WebhookEvent,
    make_wsgi_app,
)

SEND = "/experimental/open-platform/events/send"
SUBSCRIBE = "/v1/open-platform/events/subscriptions"

# Extra credentials for the error cases, beside the demo ones.
SEND_ONLY_KEY = "key-send-only-1c2d"
SUBSCRIBE_ONLY_KEY = "key-subscribe-only-9e8f"
NO_SCOPES_TOKEN = "token-no-scopes-5a6b"
SUPPLIER_TOKEN = "token-supplier-3c4d"
SUPPLIER_USER = "supplier-user-2b"
SUPPLIER_POSTS = ["pA1", "pB2"]
SECRETS = [
    DEMO_API_KEY,
    DEMO_ACCESS_TOKEN,
    SEND_ONLY_KEY,
    SUBSCRIBE_ONLY_KEY,
    NO_SCOPES_TOKEN,
    SUPPLIER_TOKEN,
]


def configured_sandbox(**kwargs: Any) -> Sandbox:
    sandbox = Sandbox(**kwargs)
    sandbox.add_api_key(SEND_ONLY_KEY, ["EVENTS_SEND"])
    sandbox.add_api_key(SUBSCRIBE_ONLY_KEY, ["EVENTS_REGISTER_SUBSCRIPTION"])
    sandbox.add_access_token(NO_SCOPES_TOKEN, "plain-user-1a", scopes=[], posts=["pZ9"])
    sandbox.add_access_token(
        SUPPLIER_TOKEN,
        SUPPLIER_USER,
        scopes=["SEND_EVENT", "CHAT_SUPPLIER_ALL_CONVERSATIONS_READ", "USER_POSTS_GET"],
        posts=SUPPLIER_POSTS,
    )
    return sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with configured_sandbox() as running:
        yield running


@pytest.fixture
def events(sandbox: Sandbox) -> Iterator[kenar_api_client.EventsApi]:
    configuration = kenar_api_client.Configuration(
        host=sandbox.url, api_key={"APIKey": DEMO_API_KEY}, access_token=DEMO_ACCESS_TOKEN
    )
    with kenar_api_client.ApiClient(configuration) as api_client:
        yield kenar_api_client.EventsApi(api_client)


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def auth(key: Optional[str] = DEMO_API_KEY, token: Optional[str] = DEMO_ACCESS_TOKEN) -> Dict[str, str]:
    headers = {}
    if key is not None:
        headers["X-API-Key"] = key
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def call(
    sandbox: Sandbox,
    method: str,
    path: str,
    headers: Optional[Mapping[str, str]] = None,
    body: Optional[bytes] = None,
) -> Answer:
    connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=5)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


JSON = {"Content-Type": "application/json"}


def send_path(**params: str) -> str:
    return f"{SEND}?{urlencode(params)}"


def subscribe_body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


# -- successes ------------------------------------------------------------------------------


def test_demo_credentials_send_to_the_demo_user_and_post(
    sandbox: Sandbox, events: kenar_api_client.EventsApi
) -> None:
    assert events.events_send_event(message="سلام", target_type="USER", target_resource_id=DEMO_USER_ID) == {}
    assert (
        events.events_send_event(message="hi", target_type="POST", target_resource_id=DEMO_POST_TOKEN) == {}
    )

    first, second = sandbox.sent_events
    assert (first.message, first.target_type, first.target_resource_id) == ("سلام", "USER", DEMO_USER_ID)
    assert (second.target_type, second.target_resource_id) == ("POST", DEMO_POST_TOKEN)
    assert first.api_key == DEMO_API_KEY
    assert first.user_id == DEMO_USER_ID
    assert first.at.tzinfo is timezone.utc
    assert DEMO_API_KEY not in repr(first)


def test_subscription_is_recorded_with_metadata_and_token(
    sandbox: Sandbox, events: kenar_api_client.EventsApi
) -> None:
    request = kenar_api_client.EventsRegisterEventSubscriptionRequest(
        event_type="NEW_MESSAGE_ON_POST", event_resource_id=DEMO_POST_TOKEN, metadata={"shop": "42"}
    )
    assert events.events_register_event_subscription(request) == {}

    (subscription,) = sandbox.subscriptions
    assert subscription.event_type == "NEW_MESSAGE_ON_POST"
    assert subscription.event_resource_id == DEMO_POST_TOKEN
    assert subscription.metadata == {"shop": "42"}
    assert subscription.access_token == DEMO_ACCESS_TOKEN
    assert subscription.user_id == DEMO_USER_ID
    assert DEMO_ACCESS_TOKEN not in repr(subscription)


def test_successful_answer_is_an_empty_json_object(sandbox: Sandbox) -> None:
    answer = call(sandbox, "POST", SUBSCRIBE, auth(), subscribe_body(event_type="POST_UPDATE"))
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {}


def test_subscription_body_accepts_json_names_and_ignores_unknown_fields(sandbox: Sandbox) -> None:
    body = subscribe_body(eventType="NEW_MESSAGE_ON_POST", eventResourceId=DEMO_POST_TOKEN, future_field=[1])
    assert call(sandbox, "POST", SUBSCRIBE, auth(), body).status == 200
    assert sandbox.subscriptions[0].event_resource_id == DEMO_POST_TOKEN


def test_all_posts_subscription_with_the_supplier_scope(sandbox: Sandbox) -> None:
    body = subscribe_body(event_type="NEW_MESSAGE_ON_POST")
    assert call(sandbox, "POST", SUBSCRIBE, auth(token=SUPPLIER_TOKEN), body).status == 200
    assert sandbox.subscriptions[0].event_resource_id == ""


def test_subscribing_again_replaces_the_subscription(sandbox: Sandbox) -> None:
    for shop in ("1", "2"):
        body = subscribe_body(
            event_type="POST_UPDATE", event_resource_id=DEMO_POST_TOKEN, metadata={"shop": shop}
        )
        assert call(sandbox, "POST", SUBSCRIBE, auth(), body).status == 200
    assert [s.metadata for s in sandbox.subscriptions] == [{"shop": "2"}]


def test_revoked_token_is_refused_and_loses_its_subscriptions(sandbox: Sandbox) -> None:
    call(sandbox, "POST", SUBSCRIBE, auth(), subscribe_body(event_type="POST_UPDATE"))
    sandbox.revoke_access_token(DEMO_ACCESS_TOKEN)
    assert sandbox.subscriptions == []
    answer = call(
        sandbox, "POST", send_path(message="m", target_type="USER", target_resource_id=DEMO_USER_ID), auth()
    )
    assert answer.status == 401


def test_no_configuration_means_the_demo_credentials_only() -> None:
    with Sandbox(api_keys={}, access_tokens={}) as empty:
        assert call(empty, "POST", SUBSCRIBE, auth(), subscribe_body(event_type="POST_UPDATE")).status == 401
    with Sandbox(
        api_keys={"k": ["EVENTS_SEND"]}, access_tokens={"t": AccessToken("u", ["SEND_EVENT"], ["p"])}
    ) as custom:
        path = send_path(message="m", target_type="POST", target_resource_id="p")
        assert call(custom, "POST", path, auth("k", "t")).status == 200
        assert call(custom, "POST", path, auth()).status == 401


# -- error answers --------------------------------------------------------------------------

OK_SEND = {"message": "hello", "target_type": "POST", "target_resource_id": DEMO_POST_TOKEN}
Request = Tuple[str, Dict[str, str], bytes]  # path, headers, body


def send(headers: Optional[Dict[str, str]] = None, **changes: Optional[str]) -> Request:
    """A send request: OK_SEND with ``changes`` (None drops a parameter)."""
    query = {k: v for k, v in {**OK_SEND, **changes}.items() if v is not None}
    return send_path(**query), auth() if headers is None else headers, b""


def sub(headers: Optional[Dict[str, str]] = None, **fields: Any) -> Request:
    """A subscription request with ``fields`` as its JSON body."""
    return SUBSCRIBE, auth() if headers is None else headers, subscribe_body(**fields)


UPDATES = {"event_type": "POST_UPDATE"}
ON_POST = {"event_type": "NEW_MESSAGE_ON_POST"}

ERROR_CASES: List[Tuple[str, Request, int, int, str]] = [
    # (id, request, HTTP status, gRPC code, part of the message)
    ("send-no-api-key", send(auth(key=None)), 401, 16, "missing API key"),
    ("send-unknown-api-key", send(auth(key="nope-key")), 401, 16, "API key is not valid"),
    ("send-key-lacks-permission", send(auth(key=SUBSCRIBE_ONLY_KEY)), 403, 7, "lacks permission EVENTS_SEND"),
    ("send-no-token", send(auth(token=None)), 401, 16, "missing access token"),
    ("send-unknown-token", send(auth(token="nope-token")), 401, 16, "access token is not valid"),
    ("send-token-lacks-scope", send(auth(token=NO_SCOPES_TOKEN)), 403, 7, "lacks scope SEND_EVENT"),
    ("send-no-message", send(message=None), 400, 3, "message is required"),
    ("send-empty-message", send(message=" "), 400, 3, "message must not be empty"),
    ("send-no-target-type", send(target_type=None), 400, 3, "target_type is required"),
    ("send-invalid-target-type", send(target_type="GROUP"), 400, 3, "invalid target_type 'GROUP'"),
    ("send-no-target", send(target_resource_id=None), 400, 3, "target_resource_id is required"),
    ("send-other-user", send(target_type="USER", target_resource_id="u-2"), 403, 7, "not the id of the auth"),
    ("send-post-not-owned", send(target_resource_id="notMine1"), 403, 7, "post 'notMine1' is not owned"),
    (
        "sub-key-lacks-permission",
        sub(auth(key=SEND_ONLY_KEY), **UPDATES),
        403,
        7,
        "EVENTS_REGISTER_SUBSCRIPTION",
    ),
    ("sub-no-token", sub(auth(token=None), **UPDATES), 401, 16, "missing access token"),
    ("sub-invalid-json", (SUBSCRIBE, auth(), b"{not json"), 400, 3, "not valid JSON"),
    ("sub-not-an-object", (SUBSCRIBE, auth(), b"[1]"), 400, 3, "must be a JSON object"),
    ("sub-empty-body", (SUBSCRIBE, auth(), b""), 400, 3, "event_type is required"),
    ("sub-invalid-event-type", sub(event_type="NEW_MESSAGE"), 400, 3, "invalid event_type 'NEW_MESSAGE'"),
    ("sub-event-type-not-a-string", sub(event_type=3), 400, 3, "invalid event_type"),
    (
        "sub-resource-not-a-string",
        sub(**UPDATES, event_resource_id=7),
        400,
        3,
        "event_resource_id must be a str",
    ),
    ("sub-metadata-not-an-object", sub(**UPDATES, metadata=[1]), 400, 3, "metadata must be a JSON object"),
    (
        "sub-post-scope-missing",
        sub(**ON_POST, event_resource_id="other9"),
        403,
        7,
        "CHAT_POST_CONVERSATIONS_READ.other9 or CHAT_SUPPLIER_ALL_CONVERSATIONS_READ",
    ),
    (
        "sub-all-posts-scope-missing",
        sub(**ON_POST),
        403,
        7,
        "lacks scope CHAT_SUPPLIER_ALL_CONVERSATIONS_READ",
    ),
    (
        "sub-posts-get-missing",
        sub(auth(token=NO_SCOPES_TOKEN), **UPDATES),
        403,
        7,
        "lacks scope USER_POSTS_GET",
    ),
    (
        "sub-post-not-owned",
        sub(auth(token=SUPPLIER_TOKEN), **UPDATES, event_resource_id=DEMO_POST_TOKEN),
        403,
        7,
        f"post '{DEMO_POST_TOKEN}' is not owned",
    ),
    (
        "repeated-parameter",
        (f"{send()[0]}&message=again", auth(), b""),
        400,
        3,
        "message is given more than once",
    ),
    ("unknown-path", ("/v1/open-platform/events", auth(), b""), 404, 5, "Not Found"),
]


@pytest.mark.parametrize(
    ("request_", "status", "code", "fragment"), [pytest.param(*case[1:], id=case[0]) for case in ERROR_CASES]
)
def test_error_answers_are_googlerpc_status_bodies(
    sandbox: Sandbox, request_: Request, status: int, code: int, fragment: str
) -> None:
    path, headers, body = request_
    answer = call(sandbox, "POST", path, headers, body)

    assert answer.status == status
    assert answer.headers["Content-Type"] == "application/json"
    document = answer.json()
    assert document["code"] == code
    assert fragment in document["message"]
    assert document["details"] == []
    assert not any(secret in document["message"] for secret in SECRETS)
    assert sandbox.sent_events == []
    assert sandbox.subscriptions == []
    assert (sandbox.requests[-1].status, sandbox.requests[-1].code) == (status, code)


def test_wrong_method_is_405_unimplemented_with_allow(sandbox: Sandbox) -> None:
    answer = call(sandbox, "GET", SEND, auth())
    assert answer.status == 405
    assert answer.headers["Allow"] == "POST"
    assert answer.json()["code"] == 12
    assert "accepts POST only" in answer.json()["message"]
    head = call(sandbox, "HEAD", SUBSCRIBE, auth())
    assert (head.status, head.body) == (405, b"")


def test_sdk_sees_typed_errors_with_the_grpc_status(
    sandbox: Sandbox, events: kenar_api_client.EventsApi
) -> None:
    with pytest.raises(kenar_api_client.ForbiddenException) as forbidden:
        events.events_send_event(message="hi", target_type="POST", target_resource_id="notMine1")
    assert forbidden.value.data.code == 7
    assert forbidden.value.data.code_name == "PERMISSION_DENIED"
    assert "is not owned by the authenticated user" in forbidden.value.data.message

    with pytest.raises(kenar_api_client.BadRequestException) as bad:
        events.events_send_event(message="", target_type="USER", target_resource_id=DEMO_USER_ID)
    assert bad.value.data.code_name == "INVALID_ARGUMENT"

    configuration = kenar_api_client.Configuration(host=sandbox.url, api_key={"APIKey": DEMO_API_KEY})
    with (
        kenar_api_client.ApiClient(configuration) as client,
        pytest.raises(kenar_api_client.UnauthorizedException) as unauthorized,
    ):
        kenar_api_client.EventsApi(client).events_register_event_subscription({"event_type": "POST_UPDATE"})
    assert unauthorized.value.data.code_name == "UNAUTHENTICATED"
    assert [r.status for r in sandbox.requests] == [403, 400, 401]


def test_malformed_bearer_header_is_unauthenticated(sandbox: Sandbox) -> None:
    headers = {"X-API-Key": DEMO_API_KEY, "Authorization": DEMO_ACCESS_TOKEN}
    answer = call(sandbox, "POST", send_path(**OK_SEND), headers)
    assert answer.status == 401
    assert "must be 'Bearer <access token>'" in answer.json()["message"]
    assert DEMO_ACCESS_TOKEN not in answer.json()["message"]


def test_invalid_content_length_closes_the_connection(sandbox: Sandbox) -> None:
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as raw:
        raw.sendall(f"POST {SUBSCRIBE} HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n".encode())
        answer = raw.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 400")
    assert "Connection: close" in answer


def test_keep_alive_and_chunked_bodies(sandbox: Sandbox) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=5)
    try:
        for _ in range(2):
            connection.request("POST", send_path(**OK_SEND), headers=auth())
            assert connection.getresponse().read() == b"{}"
        body = iter([b'{"event_type": ', b'"POST_UPDATE"}'])
        connection.request("POST", SUBSCRIBE, body=body, headers=auth(), encode_chunked=True)
        assert connection.getresponse().status == 200
    finally:
        connection.close()
    assert len(sandbox.sent_events) == 2
    assert len(sandbox.subscriptions) == 1


def raw_exchange(sandbox: Sandbox, request: str, timeout: float = 5.0) -> bytes:
    """Send ``request`` as latin-1 bytes, return everything read until the server closes."""
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=timeout) as raw:
        raw.sendall(request.encode("latin-1"))
        received = b""
        while True:
            data = raw.recv(65536)
            if not data:
                return received
            received += data


def chunked_request(sandbox: Sandbox, chunks: str) -> str:
    return (
        f"POST {SUBSCRIBE} HTTP/1.1\r\nHost: 127.0.0.1:{sandbox.port}\r\nX-API-Key: {DEMO_API_KEY}\r\n"
        f"Authorization: Bearer {DEMO_ACCESS_TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n{chunks}"
    )


@pytest.mark.parametrize(
    "chunks",
    [
        "-1\r\n",  # int(..., 16) takes it: read to the end of the stream, past the 1 MiB limit
        "+10\r\n",
        "0x10\r\n",
        "1_0\r\n",
        " \r\n",
        "1" * 17 + "\r\n",
        "10;" + "x" * 2000 + "\r\n",  # a size line over 1 KiB
        "2\r\n{}" + "X" * 10 + "\r\n",  # a chunk longer than its size
        "2\r\n{}\r\n0\r\n" + "T: v\r\n" * 40 + "\r\n",  # endless trailers
    ],
    ids=[
        "minus-one",
        "plus",
        "0x",
        "underscore",
        "blank",
        "17-digits",
        "long-line",
        "overlong-chunk",
        "trailers",
    ],
)
def test_malformed_chunked_bodies_are_refused_at_once(sandbox: Sandbox, chunks: str) -> None:
    # The client sends no more and keeps its side open: the answer must not wait for more data.
    answer = raw_exchange(sandbox, chunked_request(sandbox, chunks))

    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"Connection: close" in answer
    assert b"chunked request body" in answer
    assert sandbox.subscriptions == []


def test_well_formed_chunks_with_extensions_and_trailers_are_read(sandbox: Sandbox) -> None:
    body = '{"event_type": "POST_UPDATE"}'
    chunks = f"{len(body):X};ext=1\r\n{body}\r\n0\r\nX-Trailer: 1\r\n\r\n"

    answer = raw_exchange(
        sandbox, chunked_request(sandbox, chunks).replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1)
    )

    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert len(sandbox.subscriptions) == 1


@pytest.mark.parametrize("length", ["9" * 5000, "\u00b2"], ids=["5000-digits", "superscript"])
def test_absurd_content_lengths_are_answered_400(sandbox: Sandbox, length: str) -> None:
    request = (
        f"POST {SUBSCRIBE} HTTP/1.1\r\nHost: 127.0.0.1:{sandbox.port}\r\nContent-Length: {length}\r\n\r\n{{}}"
    )

    answer = raw_exchange(sandbox, request)

    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert [r.code for r in sandbox.requests] == [3]


def test_a_started_request_must_arrive_in_time_while_idle_connections_stay(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SandboxRequestHandler, "request_timeout", 0.2)
    idle = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=5)
    idle.connect()
    try:
        with socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as slow:
            slow.sendall(
                f"POST {SUBSCRIBE} HTTP/1.1\r\nHost: 127.0.0.1:{sandbox.port}\r\n"
                "Content-Length: 100\r\n\r\n{".encode()
            )
            answer = slow.recv(65536)  # the sandbox gives up on the body, answers and closes
            while chunk := slow.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert b"the request body did not arrive within 0.2 seconds" in answer
        # The idle keep-alive connection opened before is still served.
        idle.request("POST", send_path(**OK_SEND), headers=auth())
        assert idle.getresponse().status == 200
    finally:
        idle.close()


def test_control_characters_are_escaped_in_log_lines(
    sandbox: Sandbox, recorder: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kenar_api_client.sandbox")
    raw_exchange(
        sandbox,
        f"GET /\x1b[2J\x9b31m HTTP/1.1\r\nHost: 127.0.0.1:{sandbox.port}\r\nConnection: close\r\n\r\n",
    )
    sandbox.set_webhook(recorder.url)
    sandbox.trigger("EVIL\x1b]0;owned\x07\u202e", require_subscription=False)

    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("GET /\\u001b[2J\\u009b31m -> 404 NOT_FOUND")
    assert lines[1].startswith("delivery of EVIL\\u001b]0;owned\\u0007\\u202e to ")
    assert not any(ch in "".join(lines) for ch in "\x1b\x9b\x07\u202e")


def test_a_url_http_cannot_carry_gives_a_failed_delivery_not_an_exception(sandbox: Sandbox) -> None:
    sandbox.set_webhook("http://127.0.0.1:9/\u2028x")
    delivery = sandbox.trigger("PAYMENT_TRANSACTION")
    assert delivery.outcome == "failed"
    assert delivery.error is not None
    assert delivery.error.startswith("UnicodeEncodeError")


# -- webhook deliveries ---------------------------------------------------------------------


class Receiver:
    """The webhooks package's verifying WSGI app on a loopback port, keeping every event."""

    def __init__(self, key: str = DEMO_IDENTIFICATION_KEY) -> None:
        self.events: List[WebhookEvent] = []

        class Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server: WSGIServer = make_server(
            "127.0.0.1", 0, make_wsgi_app(key, self.events.append), handler_class=Quiet
        )
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/kenar/webhook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    running.thread.start()
    yield running
    running.server.shutdown()
    running.server.server_close()


@pytest.fixture
def recorder() -> Iterator[RecordingServer]:
    server = RecordingServer().start()
    yield server
    server.stop()


def subscribe_demo(sandbox: Sandbox, event_type: str, metadata: Dict[str, Any]) -> None:
    body = subscribe_body(event_type=event_type, event_resource_id=DEMO_POST_TOKEN, metadata=metadata)
    assert call(sandbox, "POST", SUBSCRIBE, auth(), body).status == 200


EXPECTED_CLASSES = {
    "NEW_MESSAGE": NewMessageEvent,
    "NEW_CHATBOT_MESSAGE": NewChatbotMessageEvent,
    "USER_ACCESS_REVOCATION": UserAccessRevocationEvent,
    "POST_UPDATE": PostUpdateEvent,
    "PAYMENT_TRANSACTION": PaymentTransactionEvent,
}


def test_every_documented_type_is_verified_and_parsed_by_the_webhooks_package(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    sandbox.set_webhook(receiver.url)
    subscribe_demo(sandbox, "NEW_MESSAGE_ON_POST", {"for": "messages"})
    subscribe_demo(sandbox, "POST_UPDATE", {"for": "posts"})

    for event_type in DOCUMENTED_EVENT_TYPES:
        delivery = sandbox.trigger(event_type)
        assert (delivery.outcome, delivery.status, len(delivery.attempts)) == ("delivered", 200, 1)

    assert [type(event) for event in receiver.events] == [EXPECTED_CLASSES[t] for t in DOCUMENTED_EVENT_TYPES]
    new_message, chatbot, revocation, post_update, payment = receiver.events
    assert isinstance(new_message, NewMessageEvent)
    assert isinstance(post_update, PostUpdateEvent)
    assert new_message.metadata == {"for": "messages"}
    assert new_message.new_message.conversation is not None
    assert new_message.new_message.conversation.post_token == DEMO_POST_TOKEN
    assert new_message.new_message.text
    assert post_update.metadata == {"for": "posts"}
    assert post_update.post_update.post is not None
    assert post_update.post_update.post.token == DEMO_POST_TOKEN
    assert isinstance(revocation, UserAccessRevocationEvent)
    assert revocation.user_access_revocation.user_id == DEMO_USER_ID
    assert chatbot.metadata == {}
    assert payment.metadata == {}
    assert len(sandbox.deliveries) == 5


def test_delivery_request_is_exactly_what_kenar_sends(sandbox: Sandbox, recorder: RecordingServer) -> None:
    sandbox.set_webhook(f"{recorder.url}/hook?app=1", "my-identification-key")
    delivery = sandbox.trigger("PAYMENT_TRANSACTION", cost_rials=990000)

    request = recorder.last
    assert (request.method, request.raw_path) == ("POST", "/hook?app=1")
    assert request.headers.get_all("Authorization") == ["my-identification-key"]
    assert request.headers["Content-Type"] == "application/json"
    assert request.json() == delivery.body
    assert request.json()["payment_transaction"]["cost_rials"] == 990000
    assert request.json()["type"] == "PAYMENT_TRANSACTION"


def test_fields_are_merged_into_the_payload(sandbox: Sandbox, receiver: Receiver) -> None:
    sandbox.set_webhook(receiver.url)
    sandbox.trigger(
        "NEW_CHATBOT_MESSAGE", type="IMAGE", sender={"side": "SELLER"}, image_data={"width_px": 10}
    )
    (event,) = receiver.events
    assert isinstance(event, NewChatbotMessageEvent)
    message = event.new_chatbot_message
    assert message.type == "IMAGE"
    assert message.text is None
    assert message.sender is not None
    assert (message.sender.side, message.sender.type) == ("SELLER", "HUMAN")
    assert message.image_data is not None
    assert (message.image_data.width_px, message.image_data.height_px) == (10, 1280)


def test_unknown_types_pass_through_for_forward_compatibility(sandbox: Sandbox, receiver: Receiver) -> None:
    sandbox.set_webhook(receiver.url)
    delivery = sandbox.trigger("SOMETHING_NEW", x=1, metadata={"m": 1})
    assert delivery.body == {"type": "SOMETHING_NEW", "metadata": {"m": 1}, "something_new": {"x": 1}}
    (event,) = receiver.events
    assert isinstance(event, UnknownEvent)
    assert event.payload == {"x": 1}


def test_subscribed_types_need_a_matching_subscription(sandbox: Sandbox, receiver: Receiver) -> None:
    sandbox.set_webhook(receiver.url)
    with pytest.raises(SubscriptionRequiredError, match="subscribed to NEW_MESSAGE_ON_POST"):
        sandbox.trigger("NEW_MESSAGE")
    subscribe_demo(sandbox, "POST_UPDATE", {"a": 1})
    with pytest.raises(SubscriptionRequiredError, match="post 'elsewhere'"):
        sandbox.trigger("POST_UPDATE", post={"token": "elsewhere"})
    assert sandbox.deliveries == []

    delivery = sandbox.trigger("NEW_MESSAGE", require_subscription=False)
    assert delivery.delivered
    assert delivery.metadata == {}


def test_all_posts_subscription_matches_the_users_posts(sandbox: Sandbox, receiver: Receiver) -> None:
    sandbox.set_webhook(receiver.url)
    body = subscribe_body(event_type="NEW_MESSAGE_ON_POST", metadata={"all": True})
    assert call(sandbox, "POST", SUBSCRIBE, auth(token=SUPPLIER_TOKEN), body).status == 200

    delivery = sandbox.trigger("NEW_MESSAGE", conversation={"post_token": SUPPLIER_POSTS[1]})
    assert delivery.metadata == {"all": True}
    default = sandbox.trigger("NEW_MESSAGE")  # about a post of the subscribed user by default
    assert default.body["new_message"]["conversation"]["post_token"] in SUPPLIER_POSTS
    with pytest.raises(SubscriptionRequiredError):
        sandbox.trigger("NEW_MESSAGE", conversation={"post_token": DEMO_POST_TOKEN})


def test_failed_answers_are_retried_and_each_attempt_recorded(
    sandbox: Sandbox, recorder: RecordingServer
) -> None:
    recorder.queue_reply(Reply(status=500), Reply(status=503))
    sandbox.set_webhook(recorder.url)

    delivery = sandbox.trigger("USER_ACCESS_REVOCATION")

    assert delivery.outcome == "delivered"
    assert [a.status for a in delivery.attempts] == [500, 503, 200]
    assert [a.number for a in delivery.attempts] == [1, 2, 3]
    assert len(recorder.requests) == 3
    assert recorder.requests[0].body == recorder.requests[2].body
    assert sandbox.deliveries == [delivery]


def test_a_receiver_that_is_down_gives_a_failed_delivery_not_an_exception(sandbox: Sandbox) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sandbox.set_webhook(f"http://127.0.0.1:{port}/")

    delivery = sandbox.trigger("NEW_CHATBOT_MESSAGE")

    assert (delivery.outcome, delivery.status, delivery.delivered) == ("failed", None, False)
    assert len(delivery.attempts) == 3
    assert delivery.error == "connection refused"
    assert sandbox.deliveries[-1].outcome == "failed"
    assert sandbox.deliveries[-1].to_dict()["attempts"][0]["error"] == "connection refused"


def test_a_receiver_that_keeps_failing_is_tried_delivery_attempts_times(recorder: RecordingServer) -> None:
    recorder.responder = lambda request: Reply(status=401)
    with Sandbox(webhook_url=recorder.url, delivery_attempts=2, delivery_backoff=0) as sandbox:
        delivery = sandbox.trigger("PAYMENT_TRANSACTION")
    assert [a.status for a in delivery.attempts] == [401, 401]
    assert delivery.error == "the receiver answered 401"


class EndlessAnswers:
    """A receiver that answers 200, then sends its body forever: fast, or one byte at a time.

    ``closed`` is set once the sandbox hung up.
    """

    def __init__(self, trickle: bool) -> None:
        self.trickle = trickle
        self.closed = threading.Event()
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/"

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(65536)
            head, _, body = request.partition(b"\r\n\r\n")
            length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
            while len(body) < length:
                body += connection.recv(65536)
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            chunk = b"1\r\nx\r\n" if self.trickle else b"2000\r\n" + b"x" * 0x2000 + b"\r\n"
            # "Endless" is 64 MiB without an end, then silence: enough to tell a bounded
            # reader from one that reads it all, without exhausting this machine.
            budget = None if self.trickle else 64 * 1024 * 1024
            try:
                while not self.stop.is_set() and (budget is None or budget > 0):
                    connection.sendall(chunk)
                    if budget is not None:
                        budget -= len(chunk)
                    if self.trickle:
                        self.stop.wait(0.05)
                self.stop.wait()  # the connection stays open, the body unfinished
            except OSError:
                self.closed.set()

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self.thread.join()


@pytest.mark.parametrize("trickle", [False, True], ids=["endless", "trickling"])
def test_a_receivers_endless_answer_is_read_only_so_far(trickle: bool) -> None:
    receiver = EndlessAnswers(trickle)
    outcome: List[Any] = []
    # A trickle keeps every read within the socket timeout: only the overall bound ends it.
    with Sandbox(webhook_url=receiver.url, delivery_attempts=1, delivery_timeout=2) as sandbox:
        worker = threading.Thread(target=lambda: outcome.append(sandbox.trigger("PAYMENT_TRANSACTION")))
        worker.start()
        worker.join(60)  # a safety net: the delivery ends by itself long before
        finished = not worker.is_alive()
        hung_up = receiver.closed.wait(60)
        receiver.close()
        worker.join()
    assert finished, "the delivery kept reading the receiver's answer"
    assert hung_up, "the sandbox never closed the connection"
    (delivery,) = outcome
    assert (delivery.outcome, delivery.status) == ("delivered", 200)


def test_trigger_without_a_webhook_url_raises(sandbox: Sandbox) -> None:
    with pytest.raises(SandboxError, match="no webhook URL"):
        sandbox.trigger("NEW_CHATBOT_MESSAGE")
    with pytest.raises(SandboxError, match="http"):
        sandbox.set_webhook("ftp://example.com/")
    with pytest.raises(SandboxError, match="identification key"):
        sandbox.set_webhook("http://127.0.0.1:1/", " padded ")


def test_deliver_sends_a_body_as_given(sandbox: Sandbox, recorder: RecordingServer) -> None:
    sandbox.set_webhook(recorder.url)
    delivery = sandbox.deliver({"type": "NEW_MESSAGE"})  # no payload: a malformed delivery
    assert recorder.last.json() == {"type": "NEW_MESSAGE"}
    assert delivery.event_type == "NEW_MESSAGE"


@pytest.mark.parametrize(
    "payload",
    [b'{"type": "POST_UPDATE",  "post_update": {"type": "RETIRE"}}', b"{not json", b"\xff\xfe", b""],
)
def test_deliver_posts_bytes_exactly_as_given(
    sandbox: Sandbox, recorder: RecordingServer, payload: bytes
) -> None:
    sandbox.set_webhook(recorder.url)

    delivery = sandbox.deliver(payload)

    assert recorder.last.body == payload
    assert recorder.last.headers["Content-Type"] == "application/json"
    assert recorder.last.headers["Authorization"] == DEMO_IDENTIFICATION_KEY
    assert delivery.delivered
    assert delivery.raw == payload
    parsed = json.loads(payload) if payload.startswith(b'{"') else {}
    assert delivery.body == parsed
    assert delivery.event_type == str(parsed.get("type"))
    assert sandbox.snapshot()["deliveries"][-1]["raw_body"] == payload.decode("utf-8", "replace")


def test_deliver_refuses_what_is_neither_a_json_object_nor_bytes(sandbox: Sandbox) -> None:
    sandbox.set_webhook("http://127.0.0.1:9/")
    with pytest.raises(SandboxError, match="a JSON object \\(a mapping\\) or bytes, not list"):
        sandbox.deliver([1, 2])  # type: ignore[arg-type]
    assert sandbox.deliveries == []


# -- admin endpoints ------------------------------------------------------------------------


def test_admin_endpoints_set_webhook_trigger_and_show_state(sandbox: Sandbox, receiver: Receiver) -> None:
    answer = call(sandbox, "POST", "/_sandbox/webhook", JSON, body=json.dumps({"url": receiver.url}).encode())
    assert answer.json() == {"url": receiver.url}
    subscribe_demo(sandbox, "NEW_MESSAGE_ON_POST", {"k": "v"})
    call(sandbox, "POST", send_path(**OK_SEND), auth())

    trigger = {"event_type": "NEW_MESSAGE", "fields": {"text": "از CLI"}}
    delivery = call(sandbox, "POST", "/_sandbox/trigger", JSON, body=json.dumps(trigger).encode()).json()
    assert (delivery["outcome"], delivery["status"], delivery["body"]["metadata"]) == (
        "delivered",
        200,
        {"k": "v"},
    )
    assert isinstance(receiver.events[0], NewMessageEvent)
    assert receiver.events[0].new_message.text == "از CLI"

    state = call(sandbox, "GET", "/_sandbox/state").json()
    assert state["webhook_url"] == receiver.url
    assert [s["event_type"] for s in state["subscriptions"]] == ["NEW_MESSAGE_ON_POST"]
    assert state["sent_events"][0]["message"] == "hello"
    assert state["deliveries"][0]["outcome"] == "delivered"
    assert [r["path"] for r in state["requests"]] == [SUBSCRIBE, SEND]
    assert not any(secret in json.dumps(state) for secret in SECRETS)

    assert call(sandbox, "POST", "/_sandbox/reset").json() == {}
    assert sandbox.sent_events == []
    assert sandbox.deliveries == []


def test_admin_errors(sandbox: Sandbox) -> None:
    no_subscription = call(sandbox, "POST", "/_sandbox/trigger", JSON, body=b'{"event_type": "POST_UPDATE"}')
    assert no_subscription.status == 400
    assert no_subscription.json()["code"] == 9  # FAILED_PRECONDITION
    no_webhook = call(
        sandbox, "POST", "/_sandbox/trigger", JSON, body=b'{"event_type": "NEW_CHATBOT_MESSAGE"}'
    )
    assert "no webhook URL" in no_webhook.json()["message"]
    assert call(sandbox, "POST", "/_sandbox/trigger", JSON, body=b'{"fields": {}}').status == 400
    assert call(sandbox, "POST", "/_sandbox/webhook", JSON, body=b'{"url": "mailto:x"}').status == 400
    wrong_method = call(sandbox, "GET", "/_sandbox/trigger")
    assert (wrong_method.status, wrong_method.headers["Allow"]) == (405, "POST")
    assert call(sandbox, "GET", "/_sandbox/nothing").status == 404
    assert sandbox.requests == []  # admin calls are not part of the API's request log


# -- refusing what a web page could send --------------------------------------------------


def webhook_url_after(sandbox: Sandbox, headers: Dict[str, str], body: bytes) -> Tuple[Answer, Optional[str]]:
    answer = call(sandbox, "POST", "/_sandbox/webhook", headers, body)
    return answer, sandbox.webhook_url


EVIL_HOOK = json.dumps({"url": "https://evil.example/steal", "identification_key": "theirs-1234"}).encode()


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain", "Origin": "https://evil.example"},  # a page's fetch(), no preflight
        {"Content-Type": "text/plain"},  # the same from a browser that sends no Origin
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": "null",
        },  # a form in a sandboxed frame
        {"Content-Type": "application/json", "Origin": "https://evil.example"},
        {"Content-Type": "application/json", "Origin": "null"},
        {},  # no Content-Type at all
    ],
    ids=[
        "text-plain-cross-site",
        "text-plain",
        "form-null-origin",
        "json-cross-site",
        "json-null-origin",
        "none",
    ],
)
def test_admin_refuses_cross_site_requests(sandbox: Sandbox, headers: Dict[str, str]) -> None:
    sandbox.set_webhook("http://127.0.0.1:9/mine")

    answer, url = webhook_url_after(sandbox, headers, EVIL_HOOK)

    assert answer.status == 403
    assert answer.headers["Content-Type"] == "application/json"
    status = answer.json()
    assert (status["code"], status["details"]) == (7, [])
    assert "Origin" in status["message"] or "Content-Type: application/json" in status["message"]
    assert url == "http://127.0.0.1:9/mine"  # deliveries still go where they went
    assert sandbox.identification_key == DEMO_IDENTIFICATION_KEY
    trigger = call(sandbox, "POST", "/_sandbox/trigger", headers, b'{"event_type": "NEW_CHATBOT_MESSAGE"}')
    assert trigger.status == 403
    assert sandbox.deliveries == []


def test_admin_accepts_json_from_local_tools_and_its_own_origin(sandbox: Sandbox) -> None:
    same_origin = {
        "Content-Type": "application/json; charset=utf-8",
        "Origin": f"http://127.0.0.1:{sandbox.port}",
    }
    answer, url = webhook_url_after(sandbox, same_origin, b'{"url": "http://127.0.0.1:9/a"}')
    assert (answer.status, url) == (200, "http://127.0.0.1:9/a")
    assert call(sandbox, "POST", "/_sandbox/reset").status == 200  # no body: no Content-Type needed
    assert (
        call(sandbox, "GET", "/_sandbox/state", {"Origin": f"http://127.0.0.1:{sandbox.port}"}).status == 200
    )


def test_admin_checks_cover_every_path_under_the_prefix(sandbox: Sandbox) -> None:
    # Endpoints added later are covered too: the checks go by prefix, before routing.
    foreign_origin = call(sandbox, "POST", "/_sandbox/added-later", {"Origin": "https://evil.example"})
    assert (foreign_origin.status, foreign_origin.json()["code"]) == (403, 7)
    text_plain = call(sandbox, "POST", "/_sandbox/added-later", {"Content-Type": "text/plain"}, b"{}")
    assert text_plain.status == 403
    assert call(sandbox, "GET", "/_sandbox/added-later", {"Host": "evil.example"}).status == 403
    assert call(sandbox, "GET", "/_sandbox/added-later").status == 404


def test_the_documented_curl_calls_work(sandbox: Sandbox, receiver: Receiver) -> None:
    shell = shutil.which("sh")
    if shell is None or shutil.which("curl") is None:
        pytest.skip("needs sh and curl")
    page = (Path(__file__).resolve().parents[1] / "docs" / "Sandbox.md").read_text(encoding="utf-8")
    script = re.search(r"```sh\n(curl .*?)```", page, re.DOTALL)
    assert script is not None
    commands = (
        script.group(1).replace("8765", str(sandbox.port)).replace("http://127.0.0.1:8000/", receiver.url)
    )
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}

    result = subprocess.run([shell, "-ec", commands], capture_output=True, text=True, env=env, timeout=300)

    assert result.returncode == 0, result.stderr
    assert '"code"' not in result.stdout  # no error answer
    assert len(receiver.events) == 1
    assert sandbox.webhook_url == receiver.url


@pytest.mark.parametrize(
    "host",
    [
        "evil.example:{port}",  # DNS rebinding: the page's own name, resolved to 127.0.0.1
        "evil.example",
        "localhost.evil.example:{port}",
        "127.0.0.1:1",  # another port
        "127.0.0.1:{port}@evil.example",
        "",
    ],
)
@pytest.mark.parametrize("path", ["/_sandbox/state", SEND], ids=["admin", "api"])
def test_every_path_refuses_a_host_that_does_not_name_the_sandbox(
    sandbox: Sandbox, host: str, path: str
) -> None:
    headers = {**auth(), "Host": host.format(port=sandbox.port)}
    query = f"?{urlencode(OK_SEND)}" if path == SEND else ""

    answer = call(sandbox, "POST" if path == SEND else "GET", path + query, headers)

    assert answer.status == 403
    assert answer.json()["code"] == 7
    assert "DNS rebinding" in answer.json()["message"]
    assert b"subscriptions" not in answer.body  # no state leaked
    assert sandbox.sent_events == []
    if path == SEND:
        assert [(r.path, r.status, r.code) for r in sandbox.requests] == [(SEND, 403, 7)]


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LocalHost:{port}", "[::1]:{port}"])
def test_loopback_names_with_the_sandbox_port_are_accepted(sandbox: Sandbox, host: str) -> None:
    headers = {**auth(), "Host": host.format(port=sandbox.port)}
    assert call(sandbox, "GET", "/_sandbox/state", headers).status == 200
    assert call(sandbox, "POST", send_path(**OK_SEND), headers).status == 200


def test_a_repeated_or_missing_host_is_refused(sandbox: Sandbox) -> None:
    good = f"Host: 127.0.0.1:{sandbox.port}\r\n"
    for headers in (good + "Host: evil.example\r\n", ""):
        answer = raw_exchange(sandbox, f"GET /_sandbox/state HTTP/1.1\r\n{headers}Connection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 403 "), answer[:200]


# -- life cycle and threads -----------------------------------------------------------------


def sandbox_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("kenar-sandbox")]


def test_start_stop_and_port_zero() -> None:
    sandbox = Sandbox()
    with pytest.raises(SandboxError, match="not running"):
        _ = sandbox.url
    assert sandbox.start() is sandbox
    assert sandbox.running
    assert sandbox.port > 0
    assert sandbox.url == f"http://127.0.0.1:{sandbox.port}"
    with pytest.raises(SandboxError, match="already running"):
        sandbox.start()
    port = sandbox.port
    sandbox.stop()
    sandbox.stop()  # idempotent
    assert not sandbox.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert repr(sandbox) == "Sandbox(not running)"


def test_context_manager_stops_even_with_an_open_keep_alive_connection() -> None:
    with Sandbox() as sandbox:
        connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=5)
        connection.request("POST", SEND, headers=auth())
        connection.getresponse().read()
        assert repr(sandbox) == f"Sandbox({sandbox.url})"
    connection.close()
    assert sandbox_threads() == []


def test_stop_ends_half_sent_requests_quietly(capfd: pytest.CaptureFixture[str]) -> None:
    before = set(threading.enumerate())
    sandbox = Sandbox().start()
    with (
        socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as half_body,
        socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as half_headers,
    ):
        half_body.sendall(f"POST {SUBSCRIBE} HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{{".encode())
        half_headers.sendall(f"POST {SUBSCRIBE} HTTP/1.1\r\nHost: 127.0.0.1".encode())
        assert call(sandbox, "GET", "/_sandbox/state").status == 200  # both are being handled by now
        started = [thread for thread in threading.enumerate() if thread not in before]
        assert all(thread.daemon for thread in started)

        sandbox.stop()

        for connection in (half_body, half_headers):
            while connection.recv(65536):  # ended, not left hanging
                pass
    for thread in started:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in started)
    assert "Traceback" not in capfd.readouterr().err


def test_fixed_port_can_be_reused_after_stop() -> None:
    with Sandbox() as first:
        port = first.port
    with Sandbox(port=port) as second:
        assert second.url.endswith(f":{port}")


def test_concurrent_sends_are_all_recorded(sandbox: Sandbox) -> None:
    configuration = kenar_api_client.Configuration(
        host=sandbox.url, api_key={"APIKey": DEMO_API_KEY}, access_token=DEMO_ACCESS_TOKEN
    )
    errors: List[BaseException] = []

    def worker(index: int) -> None:
        try:
            with kenar_api_client.ApiClient(configuration) as client:
                api = kenar_api_client.EventsApi(client)
                for n in range(5):
                    api.events_send_event(
                        message=f"{index}-{n}", target_type="USER", target_resource_id=DEMO_USER_ID
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(e.message for e in sandbox.sent_events) == sorted(
        f"{i}-{n}" for i in range(8) for n in range(5)
    )
    assert len(sandbox.requests) == 40


def test_access_token_repr_and_argument_checks() -> None:
    grant = AccessToken("u-1", ["SEND_EVENT"], ["p1"])
    assert repr(grant) == "AccessToken(user_id='u-1', scopes=['SEND_EVENT'], posts=['p1'])"
    assert grant == AccessToken("u-1", ("SEND_EVENT",), {"p1"})
    with pytest.raises(TypeError):
        AccessToken("u-1", "SEND_EVENT")
    sandbox = Sandbox()
    with pytest.raises(TypeError):
        sandbox.add_api_key("k", "EVENTS_SEND")
    with pytest.raises(SandboxError, match="non-empty"):
        sandbox.add_access_token("", "u")
    with pytest.raises(ValueError, match="delivery_attempts"):
        Sandbox(delivery_attempts=0)
