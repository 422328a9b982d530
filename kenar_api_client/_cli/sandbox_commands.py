"""``kenar-events sandbox`` (run one in the foreground) and ``trigger`` (ask one to deliver)."""

from __future__ import annotations

import argparse
import json
import logging
import os
from typing import TYPE_CHECKING, Any, Dict

from kenar_api_client._cli.foreground import Foreground
from kenar_api_client._cli.output import (
    ENV_BASE_URL,
    ENV_IDENTIFICATION_KEY,
    EXIT_FAILED,
    EXIT_OK,
    Output,
    UsageError,
)
from kenar_api_client._cli.receiver import stderr_logging

if TYPE_CHECKING:
    from kenar_api_client.sandbox import Sandbox

SANDBOX_LOGGER = "kenar_api_client.sandbox"
# A triggered delivery may retry a slow receiver a few times before the sandbox answers.
ADMIN_TIMEOUT = 60.0


class AdminError(Exception):
    """A sandbox admin call failed; the message is one line."""


def run_sandbox(args: argparse.Namespace, out: Output) -> int:
    """Serve a sandbox until Ctrl+C or SIGTERM, logging each request and delivery on stderr."""
    from kenar_api_client.sandbox import DEMO_IDENTIFICATION_KEY, Sandbox, SandboxError

    key = args.identification_key or DEMO_IDENTIFICATION_KEY
    with Foreground() as foreground:
        try:
            sandbox = Sandbox(
                args.port, args.host, webhook_url=args.webhook_url, identification_key=key
            ).start()
        except (OSError, SandboxError) as exc:
            out.error(f"cannot start the sandbox on {args.host}:{args.port}: {exc}")
            return EXIT_FAILED
        try:
            with stderr_logging(SANDBOX_LOGGER, logging.INFO):
                _print_banner(sandbox, out, show_key=args.identification_key is None)
                status = foreground.wait()
        finally:
            sandbox.stop()
    out.line("stopped")
    return status


def _print_banner(sandbox: Sandbox, out: Output, show_key: bool) -> None:
    """The URL and the demo credentials; they are public values, so printing them is fine."""
    from kenar_api_client import sandbox as sb

    identification_key = sb.DEMO_IDENTIFICATION_KEY if show_key else None
    out.document(
        {
            "url": sandbox.url,
            "api_key": sb.DEMO_API_KEY,
            "access_token": sb.DEMO_ACCESS_TOKEN,
            "identification_key": identification_key,
            "user_id": sb.DEMO_USER_ID,
            "post_token": sb.DEMO_POST_TOKEN,
            "webhook_url": sandbox.webhook_url,
            "oauth_url": sandbox.oauth_url,
            "app_slug": sb.DEMO_CLIENT_ID,
            "client_secret": sb.DEMO_CLIENT_SECRET,
            "redirect_uri": sb.DEMO_REDIRECT_URI,
        }
    )
    out.line(f"Kenar sandbox running at {sandbox.url}")
    out.line("It accepts these public demo values (not secrets: they work nowhere else):")
    out.line(f"  export {ENV_BASE_URL}={sandbox.url}")
    out.line(f"  export KENAR_API_KEY={sb.DEMO_API_KEY}")
    out.line(f"  export KENAR_ACCESS_TOKEN={sb.DEMO_ACCESS_TOKEN}")
    if identification_key is not None:
        out.line(f"  export {ENV_IDENTIFICATION_KEY}={identification_key}")
    out.line(f"  export KENAR_OAUTH_URL={sandbox.oauth_url}")
    out.line(f"  export KENAR_APP_SLUG={sb.DEMO_CLIENT_ID}")
    out.line(f"  export KENAR_CLIENT_SECRET={sb.DEMO_CLIENT_SECRET}")
    out.line(f"  export KENAR_REDIRECT_URI={sb.DEMO_REDIRECT_URI}")
    out.line(f"  demo user {sb.DEMO_USER_ID}, owner of post {sb.DEMO_POST_TOKEN}")
    webhook = sandbox.webhook_url or "none yet (kenar-events trigger --webhook-url URL ... sets one)"
    out.line(f"Webhook URL: {webhook}")
    out.line("Press Ctrl+C to stop.")


def admin_call(base_url: str, path: str, document: Dict[str, Any]) -> Dict[str, Any]:
    """POST ``document`` to a sandbox admin endpoint; raise ``AdminError`` with one line."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - the caller checked it is an http(s) URL
        f"{base_url.rstrip('/')}{path}",
        data=json.dumps(document).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=ADMIN_TIMEOUT) as response:  # noqa: S310
            answer: Dict[str, Any] = json.loads(response.read().decode("utf-8"))
            return answer
    except urllib.error.HTTPError as exc:
        raise AdminError(_status_text(exc.code, exc.read())) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AdminError(f"no answer from the sandbox at {base_url}: {reason}") from exc


def _status_text(status: int, body: bytes) -> str:
    """``400 FAILED_PRECONDITION (9): <message>`` from a googlerpcStatus body."""
    from kenar_api_client.models import GoogleRpcStatus

    raw = body[:200].decode("utf-8", "replace")
    try:
        rpc_status = GoogleRpcStatus.from_json(body.decode("utf-8"))
    except Exception:
        return f"{status} {raw}"
    if rpc_status is None or rpc_status.code is None:
        return f"{status} {raw}"
    return f"{status} {rpc_status.code_name or 'code'} ({rpc_status.code}): {rpc_status.message or ''}"


def _fields(args: argparse.Namespace) -> Dict[str, Any]:
    """``--fields`` with every ``--set a.b=value`` applied on top."""
    fields: Dict[str, Any] = dict(args.fields or {})
    for path, value in args.assignments:
        target = fields
        for part in path[:-1]:
            child = target.get(part)
            if not isinstance(child, dict):
                child = target[part] = {}
            target = child
        target[path[-1]] = value
    return fields


def trigger(args: argparse.Namespace, out: Output) -> int:
    """Ask a running sandbox to deliver one event and report the outcome."""
    base_url = args.base_url or os.environ.get(ENV_BASE_URL, "").strip()
    if not base_url.lower().startswith(("http://", "https://")):
        raise UsageError(f"trigger needs the sandbox's URL: pass --base-url or set {ENV_BASE_URL}")
    request = {
        "event_type": args.event_type,
        "fields": _fields(args),
        "metadata": args.metadata,
        "require_subscription": not args.no_subscription_check,
    }
    try:
        if args.webhook_url:
            key = args.identification_key or os.environ.get(ENV_IDENTIFICATION_KEY, "").strip() or None
            admin_call(base_url, "/_sandbox/webhook", {"url": args.webhook_url, "identification_key": key})
        delivery = admin_call(base_url, "/_sandbox/trigger", request)
    except AdminError as exc:
        out.error(str(exc))
        out.document({"ok": False, "error": {"message": str(exc)}})
        return EXIT_FAILED
    delivered = delivery.get("outcome") == "delivered"
    out.document({"ok": delivered, "delivery": delivery})
    attempts = len(delivery.get("attempts") or [])
    tries = f"{attempts} attempt{'' if attempts == 1 else 's'}"
    where = f"{args.event_type} to {delivery.get('url')}"
    if not delivered:
        out.error(f"delivery of {where} failed after {tries}: {delivery.get('error')}")
        return EXIT_FAILED
    out.line(f"delivered {where}: {delivery.get('status')} after {tries}")
    return EXIT_OK
