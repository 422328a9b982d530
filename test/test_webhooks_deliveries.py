"""Each delivery handled once: delivery keys, the three delivery logs, and the receivers that use them."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from redis_server import RedisServer
from webhook_helpers import Recorder

from kenar_api_client.webhooks import (
    DEFAULT_CLAIM_LEASE,
    DEFAULT_DELIVERY_TTL,
    DeliveryLog,
    DeliveryLogError,
    MemoryDeliveryLog,
    NewMessageEvent,
    RedisDeliveryLog,
    SQLiteDeliveryLog,
    WebhookEvent,
    event_from_dict,
    make_asgi_app,
    make_server,
    make_wsgi_app,
    parse_event,
)
from kenar_api_client.webhooks.decoding import event_from_body

KEY = "deliveries-identification-key-0b7e"
SAMPLES = Path(__file__).resolve().parent / "webhook_samples"
DEADLINE = 60.0  # seconds: only a safety net, every wait below ends on the event it waits for


def message(message_id: str = "m-1", metadata: Optional[Dict[str, Any]] = None) -> bytes:
    return json.dumps(
        {
            "type": "NEW_MESSAGE",
            "metadata": metadata or {"shop": "42"},
            "new_message": {"id": message_id, "type": "TEXT", "text": "Is it still available?"},
        }
    ).encode()


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


# -- delivery keys --------------------------------------------------------------------------


def test_a_message_is_keyed_by_its_type_and_id_whatever_its_metadata() -> None:
    first = parse_event(message("m-7", {"shop": "1"}), {"Authorization": KEY}, KEY)
    second = parse_event(message("m-7", {"shop": "2"}), {"Authorization": KEY}, KEY)
    other = parse_event(message("m-8"), {"Authorization": KEY}, KEY)

    assert first.delivery_key == second.delivery_key == "NEW_MESSAGE:m-7"
    assert other.delivery_key == "NEW_MESSAGE:m-8"
    chatbot = event_from_dict({"type": "NEW_CHATBOT_MESSAGE", "new_chatbot_message": {"id": "m-7"}})
    assert chatbot.delivery_key == "NEW_CHATBOT_MESSAGE:m-7"


def canonical_key(data: Dict[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def test_other_events_are_keyed_by_the_digest_of_their_canonical_json() -> None:
    raw = (SAMPLES / "post_update_publish.json").read_bytes()
    event = parse_event(raw, {"Authorization": KEY}, KEY)
    assert event.delivery_key == canonical_key(event.to_dict())
    # The same body sent again, with other spacing and key order: the same key.
    resent = json.dumps(dict(reversed(list(json.loads(raw).items())))).encode()
    assert parse_event(resent, {"Authorization": KEY}, KEY).delivery_key == event.delivery_key
    # What a job queue's worker rebuilds from to_dict() has it too.
    assert event_from_dict(event.to_dict()).delivery_key == event.delivery_key
    other = event_from_dict({**json.loads(raw), "metadata": {"shop": "another"}})
    assert other.delivery_key != event.delivery_key
    no_id = parse_event(b'{"type": "NEW_MESSAGE", "new_message": {"text": "x"}}', {"Authorization": KEY}, KEY)
    assert no_id.delivery_key == canonical_key({"type": "NEW_MESSAGE", "new_message": {"text": "x"}})


def test_an_event_built_by_keyword_is_keyed_like_a_delivered_one() -> None:
    data = {"type": "POST_UPDATE", "post_update": {"type": "RETIRE", "post": {"token": "wZ3kT9pQ"}}}
    raw = json.dumps(data).encode()
    assert event_from_dict(data).delivery_key == parse_event(raw, {"Authorization": KEY}, KEY).delivery_key
    assert event_from_dict(data).delivery_key == canonical_key(data)


# -- one pass or two: the same event ---------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=12,
)
_fields = {
    "NEW_MESSAGE": (
        "new_message",
        ["id", "type", "text", "sent_at", "conversation", "sender", "location_data"],
    ),
    "POST_UPDATE": ("post_update", ["type", "post"]),
    "PAYMENT_TRANSACTION": ("transaction", ["id", "cost_rials", "state", "type"]),
    "USER_ACCESS_REVOCATION": ("user_access_revocation", ["user_id"]),
}


@st.composite
def documented_bodies(draw: Any) -> Dict[str, Any]:
    event_type = draw(st.sampled_from(sorted(_fields)))
    payload_key, names = _fields[event_type]
    payload = draw(st.dictionaries(st.sampled_from(names), _json_values | st.text(max_size=12), max_size=4))
    body: Dict[str, Any] = {"type": event_type, payload_key: payload}
    if draw(st.booleans()):
        body["metadata"] = draw(st.dictionaries(st.text(max_size=5), _json_values, max_size=3))
    return body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documented_bodies())
def test_decoding_from_bytes_gives_what_the_json_loads_path_gives(body: Dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    try:
        expected: Any = event_from_dict(json.loads(raw))
    except Exception as exc:
        expected = type(exc)
    try:
        got: Any = event_from_body(raw)
    except Exception as exc:
        got = type(exc)
    if isinstance(expected, type):
        assert got is expected
        return
    assert type(got) is type(expected)
    assert got.to_dict() == expected.to_dict()
    assert repr(got) == repr(expected)  # the same values, members and plain strings alike


# -- the logs themselves -------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "redis"])
def make_log(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., DeliveryLog]:
    """A factory of fresh logs of one backend; logs made by one call share their storage."""
    kind = request.param
    prefix = f"test:{request.node.name}:{time.monotonic_ns()}:"
    url = request.getfixturevalue("redis_server").url if kind == "redis" else ""
    shared_memory: Dict[str, MemoryDeliveryLog] = {}

    def make(**durations: float) -> DeliveryLog:
        if kind == "memory":
            return shared_memory.setdefault("log", MemoryDeliveryLog(**durations))
        if kind == "sqlite":
            return SQLiteDeliveryLog(tmp_path / "deliveries.db", **durations)
        return RedisDeliveryLog(url=url, prefix=prefix, **durations)

    return make


def test_a_key_is_claimed_once_handled_once_and_freed_by_a_release(
    make_log: Callable[..., DeliveryLog],
) -> None:
    log = make_log()
    first = log.claim("NEW_MESSAGE:m-1")
    assert first.state == "claimed"

    copy_meanwhile = log.claim("NEW_MESSAGE:m-1")
    assert copy_meanwhile.state == "busy"
    assert 0 < copy_meanwhile.retry_after <= log.lease

    log.release(first)
    again = log.claim("NEW_MESSAGE:m-1")
    assert again.state == "claimed"
    log.mark_handled(again)
    assert log.claim("NEW_MESSAGE:m-1").state == "handled"
    assert log.claim("NEW_MESSAGE:m-2").state == "claimed"  # keys are apart


def test_a_lost_claim_does_not_release_the_next_one(make_log: Callable[..., DeliveryLog]) -> None:
    log = make_log(lease=0.2)
    stale = log.claim("k")
    taken: List[Any] = []
    # Wait for the lease to end: the next claim succeeds once it has.
    wait_until(lambda: taken.append(log.claim("k")) or taken[-1].state == "claimed", "the lease to end")

    log.release(stale)  # the first handler failed late: its claim is gone, the second holds the key

    assert log.claim("k").state == "busy"


def test_a_handled_key_is_forgotten_after_the_ttl(make_log: Callable[..., DeliveryLog]) -> None:
    log = make_log(ttl=0.2)
    claim = log.claim("k")
    log.mark_handled(claim)
    assert log.claim("k").state == "handled"
    wait_until(lambda: log.claim("k").state == "claimed", "the ttl to end")


def test_logs_see_each_others_work_through_the_shared_store(make_log: Callable[..., DeliveryLog]) -> None:
    one, two = make_log(), make_log()
    claim = one.claim("k")
    assert two.claim("k").state == "busy"
    one.mark_handled(claim)
    assert two.claim("k").state == "handled"


@pytest.mark.parametrize("name", ["ttl", "lease"])
@pytest.mark.parametrize("value", [0, -1, float("inf"), float("nan"), True, "60"])
def test_durations_are_checked_by_name(tmp_path: Path, name: str, value: Any) -> None:
    for make in (MemoryDeliveryLog, lambda **kw: SQLiteDeliveryLog(tmp_path / "d.db", **kw)):
        with pytest.raises(ValueError, match=name):
            make(**{name: value})


def test_defaults_are_documented_values() -> None:
    log = MemoryDeliveryLog()
    assert (log.ttl, log.lease) == (DEFAULT_DELIVERY_TTL, DEFAULT_CLAIM_LEASE) == (259200.0, 60.0)
    assert isinstance(log, DeliveryLog)


def test_the_memory_log_keeps_at_most_max_entries() -> None:
    log = MemoryDeliveryLog(max_entries=3)
    for number in range(5):
        log.mark_handled(log.claim(f"k{number}"))
    assert len(log) == 3
    assert log.claim("k0").state == "claimed"  # the oldest was forgotten
    assert log.claim("k4").state == "handled"


def test_a_sqlite_file_that_cannot_be_opened_is_a_delivery_log_error(tmp_path: Path) -> None:
    with pytest.raises(DeliveryLogError, match="unable to open") as raised:
        SQLiteDeliveryLog(tmp_path / "missing-directory" / "d.db")
    assert isinstance(raised.value.__cause__, Exception)


def test_a_redis_outage_is_a_delivery_log_error_without_the_password() -> None:
    log = RedisDeliveryLog(url="redis://:hunter2-secret@127.0.0.1:9/0")  # nothing listens on port 9
    with pytest.raises(DeliveryLogError) as raised:
        log.claim("k")
    assert "hunter2-secret" not in str(raised.value) + repr(log)
    assert raised.value.http_status == 503


# -- receivers with a log ------------------------------------------------------------------


def post(app: Any, raw: bytes) -> Tuple[int, Dict[str, str]]:
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_LENGTH": str(len(raw)),
        "HTTP_AUTHORIZATION": KEY,
        "REMOTE_ADDR": "78.111.6.41",
        "wsgi.input": io.BytesIO(raw),
    }
    answered: Dict[str, Any] = {}

    def start_response(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
        answered.update(status=int(status.split()[0]), headers={k.lower(): v for k, v in headers})

    b"".join(app(environ, start_response))
    return answered["status"], answered["headers"]


def post_asgi(app: Any, raw: bytes) -> Tuple[int, Dict[str, str]]:
    sent: List[Dict[str, Any]] = []

    async def receive() -> Dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: Dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "headers": [(b"authorization", KEY.encode())], "client": None}
    asyncio.run(app(scope, receive, send))
    headers = {name.decode(): value.decode() for name, value in sent[0]["headers"]}
    return int(sent[0]["status"]), headers


@pytest.fixture(params=["wsgi", "asgi"])
def receiver(request: pytest.FixtureRequest) -> Callable[..., Callable[[bytes], Tuple[int, Dict[str, str]]]]:
    """Builds a receiver of either kind; returns a function posting one delivery to it."""

    def build(handler: Any, **options: Any) -> Callable[[bytes], Tuple[int, Dict[str, str]]]:
        if request.param == "wsgi":
            app = make_wsgi_app(KEY, handler, **options)
            return lambda raw: post(app, raw)
        asgi = make_asgi_app(KEY, handler, **options)
        return lambda raw: post_asgi(asgi, raw)

    return build


def test_a_redelivery_is_answered_200_without_the_handler(
    receiver: Any, make_log: Callable[..., DeliveryLog], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kenar_api_client.webhooks")
    handler = Recorder()
    deliver = receiver(handler, deliveries=make_log())

    assert deliver(message("m-1"))[0] == 200
    assert deliver(message("m-1"))[0] == 200
    assert deliver(message("m-1", {"shop": "other subscription"}))[0] == 200
    assert deliver(message("m-2"))[0] == 200

    assert [event.new_message.id for event in handler.events if isinstance(event, NewMessageEvent)] == [
        "m-1",
        "m-2",
    ]
    outcomes = [record.webhook_outcome for record in caplog.records]  # type: ignore[attr-defined]
    assert outcomes == ["handled", "duplicate", "duplicate", "handled"]
    assert "delivery_key=NEW_MESSAGE:m-1" in caplog.records[1].getMessage()


def test_without_a_log_every_copy_reaches_the_handler(receiver: Any) -> None:
    handler = Recorder()
    deliver = receiver(handler)
    for _ in range(3):
        assert deliver(message("m-1"))[0] == 200
    assert len(handler.events) == 3


def test_a_handler_that_raises_leaves_the_delivery_to_the_next_copy(
    receiver: Any, make_log: Callable[..., DeliveryLog]
) -> None:
    handler = Recorder()
    deliver = receiver(handler, deliveries=make_log())
    handler.fail = True
    assert deliver(message("m-1"))[0] == 500
    handler.fail = False
    assert deliver(message("m-1"))[0] == 200
    assert deliver(message("m-1"))[0] == 200
    assert len(handler.events) == 2  # the failed try and the one that worked


def test_a_copy_arriving_while_the_first_is_handled_gets_503_with_retry_after(
    make_log: Callable[..., DeliveryLog],
) -> None:
    entered, release = threading.Event(), threading.Event()
    calls: List[WebhookEvent] = []

    def slow(event: WebhookEvent) -> None:
        calls.append(event)
        entered.set()
        assert release.wait(DEADLINE)

    app = make_wsgi_app(KEY, slow, deliveries=make_log(lease=30))
    first: List[int] = []
    thread = threading.Thread(target=lambda: first.append(post(app, message("m-1"))[0]))
    thread.start()
    assert entered.wait(DEADLINE)

    status, headers = post(app, message("m-1"))
    release.set()
    thread.join(DEADLINE)

    assert status == 503
    assert 1 <= int(headers["retry-after"]) <= 30
    assert first == [200]
    assert len(calls) == 1
    assert post(app, message("m-1"))[0] == 200
    assert len(calls) == 1


def test_a_log_that_fails_is_503_and_the_handler_does_not_run(
    receiver: Any, caplog: pytest.LogCaptureFixture
) -> None:
    handler = Recorder()
    deliver = receiver(handler, deliveries=RedisDeliveryLog(url="redis://:pw-6d1f@127.0.0.1:9/0"))
    status, headers = deliver(message("m-1"))
    assert (status, headers["retry-after"]) == (503, "1")
    assert handler.events == []
    assert "pw-6d1f" not in caplog.text
    assert "the delivery log failed" in caplog.text


# -- across processes: a restart, a crash ----------------------------------------------------

_RECEIVER = textwrap.dedent(
    """
    import os, sys, time
    from kenar_api_client.webhooks import SQLiteDeliveryLog, make_server, make_wsgi_app

    def handle(event):
        with open(os.environ["HANDLED"], "a") as out:
            out.write(event.delivery_key + "\\n")
        if os.environ.get("HANG"):
            time.sleep(3600)  # killed here, mid-handler

    log = SQLiteDeliveryLog(os.environ["LOG"], lease=float(os.environ.get("LEASE", "60")))
    with make_server("127.0.0.1", 0, make_wsgi_app(os.environ["KEY"], handle, deliveries=log)) as server:
        print(server.server_port, flush=True)
        server.serve_forever()
    """
)


class ReceiverProcess:
    """A receiver with a SQLite delivery log in a process of its own."""

    def __init__(self, directory: Path, **env: str) -> None:
        self.handled = directory / "handled.txt"
        environment = {
            **os.environ,
            "KEY": KEY,
            "LOG": str(directory / "deliveries.db"),
            "HANDLED": str(self.handled),
            **env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-c", _RECEIVER], stdout=subprocess.PIPE, text=True, env=environment
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def deliver(self, raw: bytes, timeout: float = DEADLINE) -> int:
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("POST", "/", body=raw, headers={"Authorization": KEY})
            return connection.getresponse().status
        finally:
            connection.close()

    def handled_keys(self) -> List[str]:
        return self.handled.read_text().split() if self.handled.exists() else []

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(DEADLINE)


def test_a_restarted_receiver_remembers_what_it_handled(tmp_path: Path) -> None:
    first = ReceiverProcess(tmp_path)
    assert first.deliver(message("m-1")) == 200
    first.kill()

    second = ReceiverProcess(tmp_path)
    try:
        assert second.deliver(message("m-1")) == 200
        assert second.deliver(message("m-2")) == 200
    finally:
        second.kill()
    assert second.handled_keys() == ["NEW_MESSAGE:m-1", "NEW_MESSAGE:m-2"]


def test_a_delivery_whose_receiver_died_mid_handler_is_handled_after_the_lease(tmp_path: Path) -> None:
    crashing = ReceiverProcess(tmp_path, HANG="1", LEASE="0.5")

    def send_and_lose_the_answer() -> None:
        with pytest.raises(ConnectionError):  # the receiver is killed before it answers
            crashing.deliver(message("m-1"))

    sender = threading.Thread(target=send_and_lose_the_answer, daemon=True)
    sender.start()
    wait_until(lambda: crashing.handled_keys() == ["NEW_MESSAGE:m-1"], "the handler to start")
    crashing.kill()
    sender.join(DEADLINE)

    after = ReceiverProcess(tmp_path, LEASE="0.5")
    try:
        # Copies get 503 while the dead process's claim lasts, then one is handled.
        statuses: List[int] = []
        wait_until(lambda: statuses.append(after.deliver(message("m-1"))) or statuses[-1] == 200, "a 200")
        assert set(statuses[:-1]) <= {503}
        assert after.deliver(message("m-1")) == 200
    finally:
        after.kill()
    assert after.handled_keys() == ["NEW_MESSAGE:m-1", "NEW_MESSAGE:m-1"]  # the killed try, then one


def test_two_receivers_sharing_a_redis_log_handle_a_message_once(redis_server: RedisServer) -> None:
    handler = Recorder()
    prefix = f"shared:{time.monotonic_ns()}:"
    apps = [
        make_wsgi_app(KEY, handler, deliveries=RedisDeliveryLog(url=redis_server.url, prefix=prefix))
        for _ in range(2)
    ]
    statuses = [post(app, message("m-1"))[0] for app in apps + apps]
    assert statuses == [200, 200, 200, 200]
    assert len(handler.events) == 1


def test_the_server_serves_a_log_backed_app_over_keep_alive(tmp_path: Path) -> None:
    import http.client

    handler = Recorder()
    app = make_wsgi_app(KEY, handler, deliveries=SQLiteDeliveryLog(tmp_path / "d.db"))
    with make_server("127.0.0.1", 0, app).start() as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=DEADLINE)
        statuses = []
        for raw in (message("m-1"), message("m-1"), message("m-2")):
            connection.request("POST", "/", body=raw, headers={"Authorization": KEY})
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
        connection.close()
    assert statuses == [200, 200, 200]
    assert len(handler.events) == 2


def test_copies_of_events_are_independent_objects() -> None:
    event = parse_event(message("m-1"), {"Authorization": KEY}, KEY)
    assert copy.deepcopy(event).delivery_key == event.delivery_key


# -- the pytest plugin's receiver ------------------------------------------------------------

_PLUGIN_TESTS = """
import pytest

from kenar_api_client.webhooks import MemoryDeliveryLog


@pytest.mark.kenar_receiver(deliveries=MemoryDeliveryLog())
def test_a_redelivery_reaches_the_events_once(kenar_sandbox, kenar_receiver):
    first = kenar_sandbox.trigger("NEW_CHATBOT_MESSAGE", text="salam")
    again = kenar_sandbox.deliver(first.body)
    assert (first.status, again.status) == (200, 200)
    assert [event.new_chatbot_message.text for event in kenar_receiver.events] == ["salam"]
    assert kenar_receiver.deliveries is not None


def test_by_default_every_copy_is_kept(kenar_sandbox, kenar_receiver):
    first = kenar_sandbox.trigger("NEW_CHATBOT_MESSAGE", text="salam")
    kenar_sandbox.deliver(first.body)
    assert len(kenar_receiver.events) == 2
    assert kenar_receiver.deliveries is None
"""


def test_the_plugins_receiver_takes_a_delivery_log_from_its_marker(tmp_path: Path) -> None:
    (tmp_path / "test_app.py").write_text(_PLUGIN_TESTS, encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error::pytest.PytestUnknownMarkWarning",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
