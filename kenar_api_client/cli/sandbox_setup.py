"""The sandbox ``kenar-events sandbox`` runs: the demo credentials, or those its flags give."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from kenar_api_client.cli.output import UsageError

if TYPE_CHECKING:
    from kenar_api_client.sandbox import Sandbox


def new_sandbox(args: argparse.Namespace, identification_key: str, clock_file: str) -> Sandbox:
    """A sandbox (not started) accepting the API key and access token the flags describe.

    ``--api-key`` / ``--access-token`` replace the demo key / token; ``--permission``,
    ``--user-id``, ``--scope`` and ``--post`` describe whichever is accepted; each
    ``--redirect-uri`` is registered for the demo OAuth client beside its own. The clock's
    offset is kept in ``clock_file``.
    """
    from kenar_api_client.sandbox import (
        DEMO_ACCESS_TOKEN,
        DEMO_API_KEY,
        DEMO_API_KEY_PERMISSIONS,
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        DEMO_POST_TOKEN,
        DEMO_REDIRECT_URI,
        DEMO_SCOPES,
        DEMO_USER_ID,
        AccessToken,
        RegisteredClient,
        Sandbox,
        SandboxError,
    )
    from kenar_api_client.sandbox._scopes import check_scope

    scopes = args.scopes if args.scopes is not None else list(DEMO_SCOPES)
    for scope in scopes:
        try:
            check_scope(scope)
        except ValueError as exc:
            raise UsageError(f"--scope: {exc}") from exc
    grant = AccessToken(args.user_id or DEMO_USER_ID, scopes, args.posts or [DEMO_POST_TOKEN])
    try:
        client = RegisteredClient(
            DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, [DEMO_REDIRECT_URI, *(args.redirect_uris or [])]
        )
    except SandboxError as exc:
        raise UsageError(f"--redirect-uri: {exc}") from exc
    return Sandbox(
        args.port,
        args.host,
        api_keys={args.api_key or DEMO_API_KEY: args.permissions or DEMO_API_KEY_PERMISSIONS},
        access_tokens={args.access_token or DEMO_ACCESS_TOKEN: grant},
        webhook_url=args.webhook_url,
        identification_key=identification_key,
        oauth_clients={DEMO_CLIENT_ID: client},
        clock_file=clock_file,
    )
