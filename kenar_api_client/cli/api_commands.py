"""``kenar-events send`` and ``subscribe`` (the two Events operations), and calling any operation."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

from kenar_api_client.cli.output import (
    EXIT_FAILED,
    EXIT_OK,
    Output,
    UsageError,
    api_error_document,
    api_error_text,
)

if TYPE_CHECKING:
    from kenar_api_client.api.events_api import EventsApi
    from kenar_api_client.api_client import ApiClient


def call_api(
    args: argparse.Namespace,
    out: Output,
    call: Callable[[ApiClient], object],
    *,
    needs_token: bool = True,
) -> Optional[object]:
    """``call(api_client)`` with credentials from the flags or the environment.

    With ``--user``, the access token is the one ``kenar-events login`` stored for that
    user, refreshed as needed. An API error is printed as one line (and as JSON with
    ``--json``); then None is returned. An argument the SDK refuses before sending is a
    usage error. ``needs_token=False``: the operation takes the API key alone.
    """
    import pydantic

    import kenar_api_client
    from kenar_api_client.exceptions import ApiException, ApiValueError

    if args.user and args.access_token:
        raise UsageError("pass either --user or --access-token, not both")
    try:
        configuration = kenar_api_client.Configuration(
            host=args.base_url,
            api_key={"APIKey": args.api_key} if args.api_key else None,
            access_token=args.access_token,
        )
    except ApiValueError as exc:
        raise UsageError(str(exc)) from exc
    if not configuration.api_key:
        raise UsageError("the API key is missing: set KENAR_API_KEY or pass --api-key")
    if needs_token and not args.user and not configuration.access_token:
        raise UsageError(
            "the access token is missing: set KENAR_ACCESS_TOKEN, pass --access-token, "
            "or --user KEY for a token 'kenar-events login' stored"
        )
    out.hide(configuration.api_key.get("APIKey"), configuration.access_token)
    with kenar_api_client.ApiClient(configuration) as api_client:
        try:
            if args.user:
                from kenar_api_client.cli.oauth_commands import token_manager

                return call(token_manager(args, out)[0].api_client_for(args.user, api_client))
            return call(api_client)
        except ApiException as exc:
            out.error(api_error_text(exc))
            out.document(api_error_document(exc))
            return None
        except (pydantic.ValidationError, ApiValueError) as exc:  # refused before anything was sent
            raise UsageError(" ".join(str(exc).split())) from exc


def _events(client: ApiClient) -> EventsApi:
    from kenar_api_client.api.events_api import EventsApi

    return EventsApi(client)


def send(args: argparse.Namespace, out: Output) -> int:
    """Send an event to a user or to the owner of a post."""

    def call(client: ApiClient) -> object:
        return _events(client).events_send_event(
            message=args.message, target_type=args.target_type, target_resource_id=args.target_resource_id
        )

    answer = call_api(args, out, call)
    if answer is None:
        return EXIT_FAILED
    out.line(f"ok: event sent to {args.target_type} {args.target_resource_id}")
    out.document(
        {
            "ok": True,
            "operation": "events_send_event",
            "target_type": args.target_type,
            "target_resource_id": args.target_resource_id,
            "response": answer,
        }
    )
    return EXIT_OK


def subscribe(args: argparse.Namespace, out: Output) -> int:
    """Register an event subscription."""
    request: Dict[str, Any] = {"event_type": args.event_type}
    if args.resource_id is not None:
        request["event_resource_id"] = args.resource_id
    if args.metadata is not None:
        request["metadata"] = args.metadata

    def call(client: ApiClient) -> object:
        return _events(client).events_register_event_subscription(request)

    answer = call_api(args, out, call)
    if answer is None:
        return EXIT_FAILED
    about = f"post {args.resource_id}" if args.resource_id else "all of the user's posts"
    out.line(f"ok: subscribed to {args.event_type} for {about}")
    out.document(
        {"ok": True, "operation": "events_register_event_subscription", **request, "response": answer}
    )
    return EXIT_OK
