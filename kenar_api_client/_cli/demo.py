"""``kenar-events demo``: a sandbox, a listener, subscriptions, a send and every event type."""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Tuple

from kenar_api_client._cli.output import EXIT_FAILED, EXIT_OK, Output, failure_text
from kenar_api_client._cli.receiver import describe_event, make_receiver

if TYPE_CHECKING:
    from kenar_api_client.api.events_api import EventsApi
    from kenar_api_client.sandbox import Sandbox
    from kenar_api_client.webhooks import WebhookEvent

#: Each documented delivery type and the class the listener must parse it into.
EXPECTED_EVENTS: Tuple[Tuple[str, str], ...] = (
    ("NEW_MESSAGE", "NewMessageEvent"),
    ("NEW_CHATBOT_MESSAGE", "NewChatbotMessageEvent"),
    ("USER_ACCESS_REVOCATION", "UserAccessRevocationEvent"),
    ("POST_UPDATE", "PostUpdateEvent"),
    ("PAYMENT_TRANSACTION", "PaymentTransactionEvent"),
)

#: The subscriptions the demo registers, by event type, with the metadata deliveries echo.
SUBSCRIPTIONS: Dict[str, Dict[str, str]] = {
    "NEW_MESSAGE_ON_POST": {"subscription": "new-messages", "shop": "42"},
    "POST_UPDATE": {"subscription": "post-updates", "shop": "42"},
}
_DELIVERED_FOR = {"NEW_MESSAGE": "NEW_MESSAGE_ON_POST", "POST_UPDATE": "POST_UPDATE"}


class Report:
    """The demo's steps, printed as they happen and kept for the JSON report."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.steps: List[Dict[str, Any]] = []

    @property
    def ok(self) -> bool:
        """Whether every step worked."""
        return all(step["ok"] for step in self.steps)

    def record(self, name: str, ok: bool, detail: str) -> None:
        """Keep and print one step's outcome."""
        self.steps.append({"step": name, "ok": ok, "detail": detail})
        self.out.line(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}")

    def run(self, name: str, action: Callable[[], str]) -> None:
        """Run one step: its return value is the detail, an exception a failure."""
        try:
            detail = action()
        except Exception as exc:
            self.record(name, False, failure_text(exc))
        else:
            self.record(name, True, detail)


class Listener:
    """A verifying webhook receiver served from background threads on a free port."""

    def __init__(self, identification_key: str) -> None:
        self.events: List[WebhookEvent] = []
        self._lock = threading.Lock()
        self._server = make_receiver("127.0.0.1", 0, identification_key, self._handle)

    @property
    def url(self) -> str:
        """Where it receives deliveries."""
        return f"http://127.0.0.1:{self._server.server_port}/"

    def received_since(self, count: int) -> List[WebhookEvent]:
        """The events verified after the first ``count``."""
        with self._lock:
            return self.events[count:]

    def _handle(self, event: WebhookEvent) -> None:
        with self._lock:
            self.events.append(event)

    def __enter__(self) -> Listener:
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop()


def demo(args: argparse.Namespace, out: Output) -> int:
    """Run the whole event loop on this machine; exit 0 only if every step worked."""
    from kenar_api_client.sandbox import DEMO_IDENTIFICATION_KEY, Sandbox

    report = Report(out)
    out.line("kenar-events demo: the whole Kenar event loop on this machine")
    started = time.monotonic()
    with Sandbox() as sandbox, Listener(DEMO_IDENTIFICATION_KEY) as listener:
        sandbox.set_webhook(listener.url, DEMO_IDENTIFICATION_KEY)
        report.record("start sandbox", True, f"Kenar Events API at {sandbox.url}")
        report.record("start listener", True, f"verifying webhook deliveries at {listener.url}")
        _api_steps(sandbox.url, report)
        for event_type, class_name in EXPECTED_EVENTS:
            report.run(f"deliver {event_type}", _delivery_step(sandbox, listener, event_type, class_name))
    elapsed = time.monotonic() - started
    failed = [step["step"] for step in report.steps if not step["ok"]]
    if failed:
        out.line(f"{len(failed)} of {len(report.steps)} steps failed: {', '.join(failed)}")
    else:
        out.line(f"all {len(report.steps)} steps worked in {elapsed:.2f} s")
    out.document({"ok": report.ok, "steps": report.steps, "seconds": round(elapsed, 3)})
    return EXIT_OK if report.ok else EXIT_FAILED


def _api_steps(base_url: str, report: Report) -> None:
    """Register both subscriptions and send one event, through the SDK."""
    import kenar_api_client
    from kenar_api_client.sandbox import DEMO_ACCESS_TOKEN, DEMO_API_KEY

    configuration = kenar_api_client.Configuration(
        host=base_url, api_key={"APIKey": DEMO_API_KEY}, access_token=DEMO_ACCESS_TOKEN
    )
    with kenar_api_client.ApiClient(configuration) as api_client:
        events = kenar_api_client.EventsApi(api_client)
        for event_type, metadata in SUBSCRIPTIONS.items():
            report.run(f"subscribe {event_type}", _subscribe_step(events, event_type, metadata))
        report.run("send event", _send_step(events))


def _subscribe_step(events: EventsApi, event_type: str, metadata: Dict[str, str]) -> Callable[[], str]:
    from kenar_api_client.sandbox import DEMO_POST_TOKEN

    def step() -> str:
        answer = events.events_register_event_subscription(
            {"event_type": event_type, "event_resource_id": DEMO_POST_TOKEN, "metadata": metadata}
        )
        return (
            f"subscribed for post {DEMO_POST_TOKEN} with metadata {json.dumps(metadata)} (answer: {answer})"
        )

    return step


def _send_step(events: EventsApi) -> Callable[[], str]:
    from kenar_api_client.sandbox import DEMO_POST_TOKEN

    def step() -> str:
        answer = events.events_send_event(
            message="سفارش شما ثبت شد", target_type="POST", target_resource_id=DEMO_POST_TOKEN
        )
        return f"event sent to the owner of post {DEMO_POST_TOKEN} (answer: {answer})"

    return step


def _delivery_step(
    sandbox: Sandbox, listener: Listener, event_type: str, class_name: str
) -> Callable[[], str]:
    def step() -> str:
        before = len(listener.received_since(0))
        delivery = sandbox.trigger(event_type)
        if not delivery.delivered:
            raise RuntimeError(f"delivery failed after {len(delivery.attempts)} attempts: {delivery.error}")
        received = listener.received_since(before)
        if len(received) != 1:
            raise RuntimeError(f"the listener verified {len(received)} events instead of 1")
        event = received[0]
        if type(event).__name__ != class_name:
            raise RuntimeError(f"parsed as {type(event).__name__}, expected {class_name}")
        subscribed = _DELIVERED_FOR.get(event_type)
        if subscribed is not None and event.metadata != SUBSCRIPTIONS[subscribed]:
            raise RuntimeError(f"metadata {event.metadata} is not the subscription's")
        metadata = f", metadata {json.dumps(event.metadata, ensure_ascii=False)}" if event.metadata else ""
        return f"{delivery.status}, verified as {class_name}: {describe_event(event)}{metadata}"

    return step
