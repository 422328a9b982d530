"""The sandbox ``kenar-events sandbox`` runs: the demo credentials, or those its flags give."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from kenar_api_client.cli.output import UsageError

if TYPE_CHECKING:
    from kenar_api_client.sandbox import Sandbox


def new_sandbox(args: argparse.Namespace, identification_key: str) -> Sandbox:
    """A sandbox (not started) accepting the API key and access token the flags describe.

    ``--api-key`` / ``--access-token`` replace the demo key / token; ``--permission``,
    ``--user-id``, ``--scope`` and ``--post`` describe whichever is accepted.
    """
    from kenar_api_client.sandbox import (
        DEMO_ACCESS_TOKEN,
        DEMO_API_KEY,
        DEMO_API_KEY_PERMISSIONS,
        DEMO_POST_TOKEN,
        DEMO_SCOPES,
        DEMO_USER_ID,
        AccessToken,
        Sandbox,
    )
    from kenar_api_client.sandbox._scopes import check_scope

    scopes = args.scopes if args.scopes is not None else list(DEMO_SCOPES)
    for scope in scopes:
        try:
            check_scope(scope)
        except ValueError as exc:
            raise UsageError(f"--scope: {exc}") from exc
    grant = AccessToken(args.user_id or DEMO_USER_ID, scopes, args.posts or [DEMO_POST_TOKEN])
    return Sandbox(
        args.port,
        args.host,
        api_keys={args.api_key or DEMO_API_KEY: args.permissions or DEMO_API_KEY_PERMISSIONS},
        access_tokens={args.access_token or DEMO_ACCESS_TOKEN: grant},
        webhook_url=args.webhook_url,
        identification_key=identification_key,
    )
