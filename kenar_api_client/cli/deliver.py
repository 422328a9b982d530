"""``kenar-events deliver``: post a body from a file to a webhook URL, as Kenar delivers events."""

from __future__ import annotations

import argparse
import os
from typing import Any, Dict

from kenar_api_client.cli.inputs import json_object, read_text
from kenar_api_client.cli.output import ENV_IDENTIFICATION_KEY, Output, UsageError
from kenar_api_client.cli.sandbox_commands import report_delivery


def deliver(args: argparse.Namespace, out: Output) -> int:
    """Deliver the JSON object of ``args.file`` to ``--webhook-url`` and report the outcome."""
    from kenar_api_client.sandbox._delivery import RetryPolicy, deliver as post_delivery
    from kenar_api_client.sandbox._state import utc_now

    key = args.identification_key or os.environ.get(ENV_IDENTIFICATION_KEY, "").strip()
    if not key:
        raise UsageError(
            f"deliver needs the identification key: set {ENV_IDENTIFICATION_KEY} or pass --identification-key"
        )
    if not args.webhook_url.lower().startswith(("http://", "https://")):
        raise UsageError(f"--webhook-url must be an http:// or https:// URL, got {args.webhook_url!r}")
    body = _read_body(args.file)
    delivery = post_delivery(args.webhook_url, key, body, RetryPolicy(args.attempts), utc_now())
    return report_delivery(out, delivery.to_dict(), f"{delivery.event_type} to {args.webhook_url}")


def _read_body(path: str) -> Dict[str, Any]:
    return json_object(read_text(path, "deliver"), path, "a JSON object: the body of one delivery")
