"""``kenar-events subscriptions status``: what an operator watches about kept subscriptions.

Users and subscriptions by state, how many users are due and how late the most overdue one
is, and the latest round of each keeper process (from the store, so any process can ask).
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Dict

from kenar_api_client.cli.oauth_commands import token_manager
from kenar_api_client.cli.output import EXIT_FAILED, EXIT_OK, Output
from kenar_api_client.cli.stores import store_failures

#: A renewal this late (seconds) risks the subscriptions of the token being replaced.
LAG_WARNING = 60.0


@store_failures
def subscriptions_status(args: argparse.Namespace, out: Output) -> int:
    """Print the keepers' figures; exit 1 when something needs an operator (see docs/Subscriptions.md)."""
    from kenar_api_client.oauth import SubscriptionKeeper

    tokens, where = token_manager(args, out)
    status = SubscriptionKeeper(tokens).summary()
    states = status.states
    out.line(f"store: {where}")
    out.line(
        f"users: {status.users}; subscriptions: {states['registered']} registered, "
        f"{states['pending']} pending, {states['failed']} failed, "
        f"{states['consent_required']} waiting for consent"
    )
    out.line(f"due now: {status.due} users; the most overdue is {status.lag:.0f} s late")
    if not status.rounds:
        out.line(
            "rounds: none recorded in the last hour (is a keeper running? kenar-events subscriptions renew)"
        )
    for process, figures in sorted(status.rounds.items()):
        out.line(f"  {process}: {_round_line(figures)}")
    alerts = []
    if status.lag > LAG_WARNING:
        alerts.append(f"renewals are {status.lag:.0f} s late: keepers are behind or not running")
    if states["pending"] or states["failed"] or states["consent_required"]:
        alerts.append("some subscriptions are not registered (kenar-events subscriptions list shows why)")
    out.document(
        {
            "ok": not alerts,
            "store": where,
            "users": status.users,
            "subscriptions": states,
            "due": status.due,
            "lag": round(status.lag, 3),
            "rounds": status.rounds,
        }
    )
    for alert in alerts:
        out.error(alert)
    return EXIT_FAILED if alerts else EXIT_OK


def _round_line(figures: Dict[str, Any]) -> str:
    ago = time.time() - float(figures.get("at", 0))
    return (
        f"{ago:.0f} s ago: {figures.get('users', 0)} users, {figures.get('registered', 0)} registered, "
        f"{figures.get('failed', 0)} failed, {figures.get('pending', 0)} pending, "
        f"{figures.get('consent_required', 0)} waiting for consent, {figures.get('errors', 0)} broke off; "
        f"lag {float(figures.get('lag', 0)):.1f} s, took {float(figures.get('duration', 0)):.1f} s"
    )
