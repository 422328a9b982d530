"""``kenar-events sandbox`` (run one in the foreground) and ``trigger`` (ask one to deliver)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional

from kenar_api_client.cli.foreground import Foreground
from kenar_api_client.cli.output import (
    ENV_BASE_URL,
    ENV_IDENTIFICATION_KEY,
    EXIT_FAILED,
    EXIT_OK,
    Output,
    UsageError,
)
from kenar_api_client.cli.receiver import stderr_logging
from kenar_api_client.cli.sandbox_setup import new_sandbox

if TYPE_CHECKING:
    from kenar_api_client.sandbox import Sandbox

SANDBOX_LOGGER = "kenar_api_client.sandbox"
# A triggered delivery may retry a slow receiver a few times before the sandbox answers.
ADMIN_TIMEOUT = 60.0


class AdminError(Exception):
    """A sandbox admin call failed; the message is one line.

    ``status``, ``code`` and ``code_name`` come from the sandbox's answer (None when there
    was none); ``reason`` is the answer's message, or why no answer came.
    """

    def __init__(
        self,
        text: str,
        reason: str,
        status: Optional[int] = None,
        code: Optional[int] = None,
        code_name: Optional[str] = None,
    ) -> None:
        super().__init__(text)
        self.reason = reason
        self.status = status
        self.code = code
        self.code_name = code_name

    def document(self) -> Dict[str, Any]:
        """The JSON form, shaped as the API errors of ``send`` and ``subscribe``."""
        error = {
            "status": self.status,
            "code": self.code,
            "code_name": self.code_name,
            "message": self.reason,
        }
        return {"ok": False, "error": error}


def run_sandbox(args: argparse.Namespace, out: Output) -> int:
    """Serve a sandbox until Ctrl+C or SIGTERM, logging each request and delivery on stderr."""
    from kenar_api_client.sandbox import DEMO_IDENTIFICATION_KEY, SandboxError

    key = args.identification_key or DEMO_IDENTIFICATION_KEY
    with Foreground() as foreground, _clock_file(args.clock_file) as clock_file:
        try:
            sandbox = new_sandbox(args, key, clock_file).start()
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


@contextlib.contextmanager
def _clock_file(path: Optional[str]) -> Iterator[str]:
    """``path``, or a new file in a private temporary directory removed afterwards."""
    if path is not None:
        yield path
        return
    directory = tempfile.mkdtemp(prefix="kenar-sandbox-")
    try:
        yield os.path.join(directory, "clock")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _print_banner(sandbox: Sandbox, out: Output, show_key: bool) -> None:
    """The URL and the credentials it accepts: the demo ones are public values, printing them is
    fine; an API key or access token given on the command line is not printed."""
    from kenar_api_client import _env, sandbox as sb

    identification_key = sb.DEMO_IDENTIFICATION_KEY if show_key else None
    api_key = sb.DEMO_API_KEY if sandbox.state.permissions(sb.DEMO_API_KEY) is not None else None
    access_token = sb.DEMO_ACCESS_TOKEN if sandbox.state.tokens.status(sb.DEMO_ACCESS_TOKEN).grant else None
    grant = sandbox.state.tokens.first_grant()
    user_id = grant.user_id if grant is not None else None
    posts = sorted(grant.posts) if grant is not None else []
    client = sandbox.state.oauth_client(sb.DEMO_CLIENT_ID)
    redirect_uris = list(client.redirect_uris) if client is not None else [sb.DEMO_REDIRECT_URI]
    # The demo URI has no port (any port matches): the first given with --redirect-uri is the app's.
    redirect_uri = redirect_uris[1] if len(redirect_uris) > 1 else redirect_uris[0]
    out.document(
        {
            "url": sandbox.url,
            "api_key": api_key,
            "access_token": access_token,
            "identification_key": identification_key,
            "user_id": user_id,
            "post_token": posts[0] if posts else None,
            "posts": posts,
            "scopes": sorted(grant.scopes) if grant is not None else [],
            "webhook_url": sandbox.webhook_url,
            "oauth_url": sandbox.oauth_url,
            "app_slug": sb.DEMO_CLIENT_ID,
            "client_secret": sb.DEMO_CLIENT_SECRET,
            "redirect_uri": redirect_uri,
            "redirect_uris": redirect_uris,
            "clock_file": sandbox.clock.file,
        }
    )
    exports = {
        _env.BASE_URL: sandbox.url,
        _env.API_KEY: api_key or "<the key you passed with --api-key>",
        _env.ACCESS_TOKEN: access_token or "<the token you passed with --access-token>",
        _env.IDENTIFICATION_KEY: identification_key,
        _env.OAUTH_URL: sandbox.oauth_url,
        _env.APP_SLUG: sb.DEMO_CLIENT_ID,
        _env.CLIENT_SECRET: sb.DEMO_CLIENT_SECRET,
        _env.REDIRECT_URI: redirect_uri,
        _env.CLOCK_FILE: sandbox.clock.file,
    }
    out.line(f"Kenar sandbox running at {sandbox.url}")
    out.line("It accepts these public demo values (not secrets: they work nowhere else):")
    for name, value in exports.items():
        if value is not None:
            out.line(f"  export {name}={value}")
    if len(redirect_uris) == 1:
        out.line(
            f"  # {_env.REDIRECT_URI} matches any port: for your app's own callback set its port, "
            "e.g. http://127.0.0.1:8000/kenar/callback (--redirect-uri registers another path)"
        )
    if grant is not None:
        owner = f", owner of post{'s' if len(posts) > 1 else ''} {' '.join(posts)}" if posts else ", no posts"
        out.line(f"  user {user_id}{owner}; scopes: {' '.join(sorted(grant.scopes)) or 'none'}")
    webhook = sandbox.webhook_url or "none yet (kenar-events trigger --webhook-url URL ... sets one)"
    out.line(f"Webhook URL: {webhook}")
    out.line("Press Ctrl+C to stop.")


def admin_call(
    base_url: str,
    path: str,
    document: Optional[Dict[str, Any]] = None,
    method: str = "POST",
    timeout: float = ADMIN_TIMEOUT,
) -> Dict[str, Any]:
    """Call a sandbox admin endpoint (with ``document`` as its JSON body); raise ``AdminError``."""
    import urllib.error
    import urllib.request

    data = None if document is None else json.dumps(document).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 - the caller checked it is an http(s) URL
        f"{base_url.rstrip('/')}{path}",
        data=data,
        headers={} if data is None else {"Content-Type": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            answer: Dict[str, Any] = json.loads(response.read().decode("utf-8"))
            return answer
    except urllib.error.HTTPError as exc:
        raise _status_error(exc.code, exc.read()) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = f"no answer from the sandbox at {base_url}: {getattr(exc, 'reason', exc)}"
        raise AdminError(reason, reason) from exc


def is_sandbox(url: str) -> bool:
    """Whether ``url`` is a Kenar sandbox: a server on this machine that says so at
    ``GET /_sandbox/info``. Nothing is sent anywhere else."""
    from urllib.parse import urlsplit

    from kenar_api_client._hosts import is_loopback
    from kenar_api_client.sandbox._admin import SERVER_NAME

    if not is_loopback(urlsplit(url).hostname or ""):
        return False
    try:
        return admin_call(url, "/_sandbox/info", None, "GET", timeout=5.0).get("server") == SERVER_NAME
    except AdminError:
        return False


def sandbox_url(args: argparse.Namespace, command: str) -> str:
    """The running sandbox's URL from ``--base-url`` or the environment; else a usage error."""
    base_url = args.base_url or os.environ.get(ENV_BASE_URL, "").strip()
    if not base_url.lower().startswith(("http://", "https://")):
        raise UsageError(f"{command} needs the sandbox's URL: pass --base-url or set {ENV_BASE_URL}")
    return str(base_url)


def _status_error(status: int, body: bytes) -> AdminError:
    """``400 FAILED_PRECONDITION (9): <message>`` from a googlerpcStatus body."""
    from kenar_api_client.models import GoogleRpcStatus

    raw = body[:200].decode("utf-8", "replace")
    try:
        rpc_status = GoogleRpcStatus.from_json(body.decode("utf-8"))
    except Exception:
        rpc_status = None
    if rpc_status is None or rpc_status.code is None:
        return AdminError(f"{status} {raw}", raw, status)
    message = rpc_status.message or ""
    text = f"{status} {rpc_status.code_name or 'code'} ({rpc_status.code}): {message}"
    return AdminError(text, message, status, rpc_status.code, rpc_status.code_name)


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
    base_url = sandbox_url(args, "trigger")
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
        out.document(exc.document())
        return EXIT_FAILED
    return report_delivery(out, delivery, f"{args.event_type} to {delivery.get('url')}")


def report_delivery(out: Output, delivery: Dict[str, Any], what: str) -> int:
    """Print a delivery record (a ``Delivery.to_dict()``); the exit status: 0 if delivered."""
    delivered = delivery.get("outcome") == "delivered"
    out.document({"ok": delivered, "delivery": delivery})
    attempts = delivery.get("attempts") or []
    tries = f"{len(attempts)} attempt{'' if len(attempts) == 1 else 's'}"
    if not delivered:
        out.error(f"delivery of {what} failed after {tries}: {delivery.get('error')}")
        return EXIT_FAILED
    out.line(f"delivered {what}: {delivery.get('status')} after {tries}")
    return EXIT_OK
