"""``kenar-events sandbox state | reset | fault | faults | clock``: inspect and steer a running sandbox."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from typing import Any, Dict, List

from kenar_api_client.cli.output import EXIT_FAILED, EXIT_OK, Output, UsageError
from kenar_api_client.cli.sandbox_commands import AdminError, admin_call, sandbox_url


def state(args: argparse.Namespace, out: Output) -> int:
    """Print what the sandbox recorded: subscriptions, sends, requests, deliveries, faults."""
    return _call(args, out, "sandbox state", "GET", "/_sandbox/state", None, _print_state)


def reset(args: argparse.Namespace, out: Output) -> int:
    """Make the sandbox forget its records and fault rules (credentials stay)."""

    def done(out: Output, answer: Dict[str, Any]) -> None:
        out.line("reset: records and fault rules forgotten")

    return _call(args, out, "sandbox reset", "POST", "/_sandbox/reset", {}, done)


def faults(args: argparse.Namespace, out: Output) -> int:
    """Print the fault rules and the faults injected so far; ``--clear`` drops the rules first."""
    if args.clear:
        try:
            admin_call(sandbox_url(args, "sandbox faults"), "/_sandbox/faults", None, "DELETE")
        except AdminError as exc:
            out.error(str(exc))
            out.document(exc.document())
            return EXIT_FAILED
    return _call(args, out, "sandbox faults", "GET", "/_sandbox/faults", None, _print_faults)


def fault(args: argparse.Namespace, out: Output) -> int:
    """Add a fault rule to the sandbox."""
    request: Dict[str, Any] = {"operation": args.operation, "fault": args.fault}
    for name in ("times", "fraction", "seed", "retry_after", "delay", "takes_effect"):
        value = getattr(args, name)
        if value is not None:
            request[name] = value
    if args.retry_after_date:
        request["retry_after_as_date"] = True

    def added(out: Output, rule: Dict[str, Any]) -> None:
        out.line(f"fault rule added: {_rule_line(rule)}")

    return _call(args, out, "sandbox fault", "POST", "/_sandbox/faults", request, added)


def clock(args: argparse.Namespace, out: Output) -> int:
    """Show the sandbox's clock, or move it (``--advance``, ``--set``)."""
    if args.advance is not None:
        method, request = "POST", {"advance": args.advance}
    elif args.set_to is not None:
        method, request = "POST", {"set": _epoch_seconds(args.set_to)}
    else:
        method, request = "GET", None

    def show(out: Output, answer: Dict[str, Any]) -> None:
        now = datetime.fromtimestamp(float(answer.get("now") or 0), timezone.utc)
        ahead = float(answer.get("offset") or 0)
        out.line(f"sandbox clock: {now.isoformat(timespec='seconds')} ({ahead:+.0f} s from real time)")
        if answer.get("file"):
            out.line(f"  apps follow it with KENAR_CLOCK_FILE={answer['file']}")

    return _call(args, out, "sandbox clock", method, "/_sandbox/clock", request, show)


def _epoch_seconds(text: str) -> float:
    """``--set``: epoch seconds, or an ISO 8601 date-time (UTC unless it says otherwise)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise UsageError(f"--set: {text!r} is neither epoch seconds nor an ISO 8601 date-time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _call(
    args: argparse.Namespace,
    out: Output,
    command: str,
    method: str,
    path: str,
    document: Any,
    show: Any,
) -> int:
    base_url = sandbox_url(args, command)
    try:
        answer = admin_call(base_url, path, document, method)
    except AdminError as exc:
        out.error(str(exc))
        out.document(exc.document())
        return EXIT_FAILED
    out.document({"ok": True, **answer})
    show(out, answer)
    return EXIT_OK


def _print_state(out: Output, snapshot: Dict[str, Any]) -> None:
    out.line(f"sandbox at {snapshot.get('url')}, webhook URL: {snapshot.get('webhook_url') or 'none'}")
    _section(out, "subscriptions", snapshot.get("subscriptions"), _subscription_line)
    _section(out, "sent events", snapshot.get("sent_events"), _sent_line)
    _section(out, "conversations", snapshot.get("conversations"), _conversation_line)
    _section(out, "sent messages", snapshot.get("sent_messages"), _message_line)
    _section(out, "requests", snapshot.get("requests"), _request_line)
    _section(out, "token requests", snapshot.get("token_requests"), _token_request_line)
    _section(out, "deliveries", snapshot.get("deliveries"), _delivery_line)
    _print_faults(out, snapshot)


def _print_faults(out: Output, answer: Dict[str, Any]) -> None:
    _section(out, "fault rules", answer.get("fault_rules"), _rule_line)
    _section(out, "injected faults", answer.get("injected_faults"), _injected_line)


def _section(out: Output, title: str, items: Any, line: Any) -> None:
    records: List[Dict[str, Any]] = list(items or [])
    out.line(f"{title} ({len(records)})" + (":" if records else ""))
    for record in records:
        out.line(f"  {line(record)}")


def _subscription_line(s: Dict[str, Any]) -> str:
    about = f"post {s['event_resource_id']}" if s.get("event_resource_id") else "all posts"
    metadata = json.dumps(s.get("metadata") or {}, ensure_ascii=False)
    expiry = f", until {s['expires_at']}" if s.get("expires_at") else ""
    return f"{s.get('event_type')} for {about} of user {s.get('user_id')}, metadata {metadata}{expiry}"


def _sent_line(e: Dict[str, Any]) -> str:
    return f"to {e.get('target_type')} {e.get('target_resource_id')}: {e.get('message')!r}"


def _conversation_line(c: Dict[str, Any]) -> str:
    about = f"about post {c.get('post_token')}" if c.get("type") == "POST" else "with the chatbot"
    return f"{c.get('id')}: {c.get('type')} {about}, user {c.get('user_id')}"


def _message_line(m: Dict[str, Any]) -> str:
    what = repr(m.get("text")) if m.get("text") else f"media {m.get('media_token')}"
    grids = m.get("buttons") or {}
    captions = [
        str(button.get("caption"))
        for grid in grids.values()
        if isinstance(grid, dict)
        for row in grid.get("rows") or []
        if isinstance(row, dict)
        for button in row.get("buttons") or []
        if isinstance(button, dict)
    ]
    buttons = f" [buttons: {' | '.join(captions)}]" if captions else ""
    return f"to conversation {m.get('conversation_id')} ({m.get('operation')}): {what}{buttons}"


def _request_line(r: Dict[str, Any]) -> str:
    outcome = "" if r.get("message") is None else f" ({r.get('code')}): {r.get('message')}"
    return f"{r.get('method')} {r.get('path')} -> {r.get('status')}{outcome}"


def _token_request_line(r: Dict[str, Any]) -> str:
    error = f" {r['error']}" if r.get("error") else ""
    return f"{r.get('grant_type') or '(no grant_type)'} by {r.get('client_id')} -> {r.get('status')}{error}"


def _delivery_line(d: Dict[str, Any]) -> str:
    attempts = len(d.get("attempts") or [])
    error = f": {d['error']}" if d.get("error") else ""
    tries = f"{attempts} attempt{'' if attempts == 1 else 's'}"
    outcome = f"{d.get('outcome')}, {d.get('status')} after {tries}{error}"
    return f"{d.get('event_type')} to {d.get('url')}: {outcome}"


def _rule_line(rule: Dict[str, Any]) -> str:
    limit = "no limit" if rule.get("remaining") is None else f"{rule['remaining']} more"
    fraction = f", fraction {rule['fraction']}" if rule.get("fraction") is not None else ""
    retry = f", Retry-After {rule['retry_after']} s" if rule.get("retry_after") is not None else ""
    date = " as a date" if rule.get("retry_after_as_date") else ""
    delay = f", {rule.get('delay')} s late" if rule.get("fault") == "slow" else ""
    effect = "takes effect" if rule.get("takes_effect") else "no effect"
    return f"{rule.get('operation')}: {rule.get('fault')} ({limit}{fraction}{retry}{date}{delay}; {effect})"


def _injected_line(f: Dict[str, Any]) -> str:
    answered = "no answer" if f.get("status") is None else f"answered {f['status']}"
    effect = "took effect" if f.get("took_effect") else "no effect"
    return (
        f"{f.get('operation')}: {f.get('fault')} on {f.get('method')} {f.get('path')}, {answered}, {effect}"
    )
