"""``kenar-events demo``: a sandbox, a listener, subscriptions, a send and every event type."""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Tuple

from kenar_api_client.cli.output import EXIT_FAILED, EXIT_OK, Output, failure_text
from kenar_api_client.cli.receiver import describe_event, make_receiver
from kenar_api_client.sandbox._demo import DEMO_POST_TOKEN

if TYPE_CHECKING:
    from kenar_api_client.api.events_api import EventsApi
    from kenar_api_client.api_client import ApiClient
    from kenar_api_client.oauth import SubscriptionKeeper, TokenManager
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
    from kenar_api_client.sandbox import DEMO_IDENTIFICATION_KEY, DEMO_POST_TOKEN, DEMO_USER_ID, Sandbox

    report = Report(out)
    out.line("kenar-events demo: the whole Kenar event loop on this machine")
    started = time.monotonic()
    with Sandbox() as sandbox, Listener(DEMO_IDENTIFICATION_KEY) as listener:
        sandbox.set_webhook(listener.url, DEMO_IDENTIFICATION_KEY)
        sandbox.set_consent(DEMO_USER_ID, posts=(DEMO_POST_TOKEN, PLAIN_POST))
        report.record("start sandbox", True, f"Kenar Events API and OAuth at {sandbox.url}")
        report.record("start listener", True, f"verifying webhook deliveries at {listener.url}")
        lifecycle = Lifecycle(sandbox)
        try:
            report.run("log in through OAuth", lifecycle.log_in)
            if report.ok:
                for event_type, metadata in SUBSCRIPTIONS.items():
                    report.run(f"keep {event_type} subscription", lifecycle.keep_step(event_type, metadata))
                report.run("plain subscription", lifecycle.plain_subscription)
                report.run("send event", lifecycle.send_event)
            for event_type, class_name in EXPECTED_EVENTS:
                report.run(f"deliver {event_type}", _delivery_step(sandbox, listener, event_type, class_name))
            if report.ok:
                report.run("an hour passes", lifecycle.an_hour_passes)
                report.run("plain subscription lapsed", lifecycle.plain_lapsed)
                for event_type, class_name in EXPECTED_EVENTS:
                    if event_type in _DELIVERED_FOR:
                        report.run(
                            f"kept {event_type} still delivered",
                            _delivery_step(sandbox, listener, event_type, class_name),
                        )
        finally:
            lifecycle.close()
    elapsed = time.monotonic() - started
    failed = [step["step"] for step in report.steps if not step["ok"]]
    if failed:
        out.line(f"{len(failed)} of {len(report.steps)} steps failed: {', '.join(failed)}")
    else:
        out.line(f"all {len(report.steps)} steps worked in {elapsed:.2f} s")
    out.document({"ok": report.ok, "steps": report.steps, "seconds": round(elapsed, 3)})
    return EXIT_OK if report.ok else EXIT_FAILED


class Lifecycle:
    """The OAuth side of the demo: log in, keep subscriptions, let an hour pass."""

    USER = "demo"

    def __init__(self, sandbox: Sandbox) -> None:
        import kenar_api_client
        from kenar_api_client.oauth import MemoryTokenStore, OAuthClient, SubscriptionKeeper, TokenManager
        from kenar_api_client.sandbox import (
            DEMO_API_KEY,
            DEMO_CLIENT_ID,
            DEMO_CLIENT_SECRET,
            DEMO_REDIRECT_URI,
        )

        self.sandbox = sandbox
        oauth = OAuthClient(
            DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REDIRECT_URI, sandbox.oauth_url, clock=sandbox.clock.now
        )
        self.tokens: TokenManager = TokenManager(oauth, MemoryTokenStore())
        configuration = kenar_api_client.Configuration(host=sandbox.url, api_key={"APIKey": DEMO_API_KEY})
        self.api_client: ApiClient = kenar_api_client.ApiClient(configuration)
        self.keeper: SubscriptionKeeper = SubscriptionKeeper(self.tokens, self.api_client)
        self.events: EventsApi = kenar_api_client.EventsApi(
            self.tokens.api_client_for(self.USER, self.api_client)
        )

    def close(self) -> None:
        """Close the demo's connections."""
        self.tokens.oauth.close()
        self.api_client.close()

    def log_in(self) -> str:
        from kenar_api_client.cli.oauth_commands import follow_consent
        from kenar_api_client.oauth import Scope
        from kenar_api_client.oauth.loopback import authorize_on_loopback
        from kenar_api_client.sandbox import DEMO_POST_TOKEN

        scopes = [
            Scope.SEND_EVENT,
            Scope.USER_POSTS_GET,
            Scope.CHAT_POST_CONVERSATIONS_READ.on(DEMO_POST_TOKEN),
            Scope.CHAT_POST_CONVERSATIONS_READ.on(PLAIN_POST),
        ]
        token = authorize_on_loopback(self.tokens.oauth, scopes, open_url=follow_consent, timeout=10)
        self.tokens.save(self.USER, token)
        return (
            f"consented through /oauth2/auth, code exchanged; access token valid "
            f"{token.expires_in(self.sandbox.clock.now()) / 60:.0f} min, refresh token kept"
        )

    def keep_step(self, event_type: str, metadata: Dict[str, str]) -> Callable[[], str]:
        from kenar_api_client.sandbox import DEMO_POST_TOKEN

        def step() -> str:
            self.keeper.keep(
                self.USER,
                {"event_type": event_type, "event_resource_id": DEMO_POST_TOKEN, "metadata": metadata},
            )
            report = self.keeper.renew_due()
            if not report.ok:
                raise RuntimeError(f"renewal: {report}")
            return f"registered for post {DEMO_POST_TOKEN} with metadata {json.dumps(metadata)}, kept"

        return step

    def plain_subscription(self) -> str:
        self.events.events_register_event_subscription(
            {"event_type": "NEW_MESSAGE_ON_POST", "event_resource_id": PLAIN_POST, "metadata": PLAIN_METADATA}
        )
        return f"registered once for post {PLAIN_POST}, not kept"

    def send_event(self) -> str:
        from kenar_api_client.sandbox import DEMO_POST_TOKEN

        answer = self.events.events_send_event(
            message="سفارش شما ثبت شد", target_type="POST", target_resource_id=DEMO_POST_TOKEN
        )
        return f"event sent to the owner of post {DEMO_POST_TOKEN} (answer: {answer})"

    def an_hour_passes(self) -> str:
        clock = self.sandbox.clock
        expires_at = self.tokens.token(self.USER).expires_at
        clock.set(expires_at - self.tokens.leeway + 1)
        report = self.keeper.renew_due()  # what cron (or keeper.start()) does every minute
        clock.set(expires_at + 1)
        refreshes = sum(1 for r in self.sandbox.token_requests if r.grant_type == "refresh_token")
        if refreshes != 1 or len(report.registered) != len(SUBSCRIPTIONS):
            raise RuntimeError(f"expected 1 refresh and {len(SUBSCRIPTIONS)} renewals: {refreshes}, {report}")
        return (
            "the sandbox clock moved past the first token's expiry; the keeper refreshed the token "
            f"once and registered {len(report.registered)} kept subscriptions again"
        )

    def plain_lapsed(self) -> str:
        from kenar_api_client.sandbox import SubscriptionRequiredError

        try:
            delivery = self.sandbox.trigger("NEW_MESSAGE", conversation={"post_token": PLAIN_POST})
        except SubscriptionRequiredError:
            return (
                f"no more NEW_MESSAGE deliveries for post {PLAIN_POST}: it died with its token, as on Kenar"
            )
        raise RuntimeError(f"the plain subscription still delivered ({delivery.outcome})")


PLAIN_POST = "pLa1nPst"
_ABOUT_THE_DEMO_POST: Dict[str, Dict[str, Any]] = {
    "NEW_MESSAGE": {"conversation": {"post_token": DEMO_POST_TOKEN}},
    "POST_UPDATE": {"post": {"token": DEMO_POST_TOKEN}},
}
PLAIN_METADATA = {"subscription": "plain"}


def _delivery_step(
    sandbox: Sandbox, listener: Listener, event_type: str, class_name: str
) -> Callable[[], str]:
    def step() -> str:
        before = len(listener.received_since(0))
        delivery = sandbox.trigger(event_type, **_ABOUT_THE_DEMO_POST.get(event_type, {}))
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
