"""The ``kenar-events`` argument parser: every command, its flags, and the module that runs it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from kenar_api_client._async_libraries import EXTRA_OF

PROG = "kenar-events"
DEFAULT_SANDBOX_PORT = 8765
DEFAULT_LISTEN_PORT = 8000
_IDENTIFICATION_KEY_ENV = "$KENAR_IDENTIFICATION_KEY"

# -- argument types -------------------------------------------------------------------------


def _json_object(text: str) -> Dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('must be a JSON object, e.g. {"shop": "42"}')
    return value


def _assignment(text: str) -> Tuple[List[str], Any]:
    """``a.b=value`` as (["a", "b"], value); the value is JSON if it parses, else a string."""
    name, sep, raw = text.partition("=")
    if not sep or not name or any(not part for part in name.split(".")):
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (KEY may be dotted: a.b=1), got {text!r}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return name.split("."), value


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, got {text!r}")
    return int(text)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


class _EventTypes:
    """The delivery event types ``WebhookEventType`` documents, loaded when first needed.

    Building the parser imports no webhooks module: the enum is read only for ``--help`` or
    when ``--events`` is given. ``in`` takes the list one ``--events`` value parses to.
    """

    def __iter__(self) -> Iterator[str]:
        from kenar_api_client.webhooks import WebhookEventType

        return iter([member.value for member in WebhookEventType])

    def __contains__(self, value: object) -> bool:
        known = set(self)
        return isinstance(value, list) and all(item in known for item in value)


def _event_types(text: str) -> List[str]:
    """``NEW_MESSAGE,POST_UPDATE`` as a list of names (checked against the enum by ``choices``)."""
    names = [name.strip().upper() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected event types separated by commas, e.g. NEW_MESSAGE")
    known = list(_EventTypes())
    unknown = [name for name in names if name not in known]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown event type {', '.join(unknown)}: choose from {', '.join(known)}"
        )
    return names


# -- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``kenar-events`` argument parser with all its commands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Send, subscribe to, receive and simulate Kenar events. "
        "Try 'kenar-events demo' to see the whole event loop on this machine.",
    )
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help="show the version and where it is installed, and exit (1 if mixed with the official SDK)",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    # Every command takes --json too, without overriding a --json given before the command.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print machine-readable JSON"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_sandbox(commands, common)
    _add_send(commands, common)
    _add_subscribe(commands, common)
    _add_api(commands, common)
    _add_listen(commands, common)
    _add_trigger(commands, common)
    _add_deliver(commands, common)
    _add_demo(commands, common)
    _add_login(commands, common)
    _add_token(commands, common)
    _add_subscriptions(commands, common)
    return parser


class _ExitAction(argparse.Action):
    """An option that prints something and exits at once, like ``--help``: see :meth:`run`."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: Optional[str] = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: Optional[str] = None,
    ) -> None:
        parser.exit(self.run(parser))

    def run(self, parser: argparse.ArgumentParser) -> int:
        """Print, and return the exit status."""
        raise NotImplementedError


class _VersionAction(_ExitAction):
    """``--version``: this SDK's version and location; a mix with the official SDK is an error."""

    def run(self, parser: argparse.ArgumentParser) -> int:
        from kenar_api_client._install_check import describe_installation
        from kenar_api_client._version import __version__

        line, problems = describe_installation()
        print(f"{PROG} {__version__}\n{line}")
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1 if problems else 0


class _ListOperations(_ExitAction):
    """``kenar-events api --help``: the usage, then every operation (loaded only now)."""

    def run(self, parser: argparse.ArgumentParser) -> int:
        from kenar_api_client.cli.operation_command import operations

        lines = [parser.format_help(), "operations (each has its own --help):"]
        lines += [f"  {operation.name:<42} {operation.http}" for operation in operations()]
        print("\n".join(lines))
        return 0


def _command(
    commands: Any, common: argparse.ArgumentParser, name: str, run: str, summary: str, description: str
) -> argparse.ArgumentParser:
    """Add command ``name``; ``run`` names its function as ``module:function`` in this package."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, parents=[common], help=summary, description=description
    )
    parser.set_defaults(run=run)
    return parser


def connection_flags(parser: argparse.ArgumentParser, *, token: bool = True) -> None:
    """``--base-url`` and ``--api-key``; with ``token``, ``--access-token``, ``--user`` and ``--store``."""
    group = parser.add_argument_group(
        "connection", "Flags win over the environment. Prefer the environment for secrets."
    )
    group.add_argument(
        "--base-url", metavar="URL", help="API base URL (default: $KENAR_BASE_URL, else Kenar's)"
    )
    group.add_argument("--api-key", metavar="KEY", help="the app's API key (default: $KENAR_API_KEY)")
    if not token:
        return
    group.add_argument(
        "--access-token", metavar="TOKEN", help="the user's access token (default: $KENAR_ACCESS_TOKEN)"
    )
    group.add_argument(
        "--user",
        metavar="KEY",
        help="instead of an access token, use the token 'kenar-events login' stored for this user "
        "(refreshed as needed; see --store and the OAuth variables)",
    )
    _store_flags(group, user=False)


def _oauth_flags(parser: argparse.ArgumentParser, *, user: bool = True) -> None:
    group = parser.add_argument_group(
        "OAuth", "Flags win over the environment. Prefer the environment for the client secret."
    )
    group.add_argument(
        "--app-slug", metavar="SLUG", help="the app's slug, its OAuth client_id ($KENAR_APP_SLUG)"
    )
    group.add_argument(
        "--client-secret", metavar="SECRET", help="the app's OAuth client secret ($KENAR_CLIENT_SECRET)"
    )
    group.add_argument(
        "--redirect-uri", metavar="URI", help="the app's registered redirect URI ($KENAR_REDIRECT_URI)"
    )
    group.add_argument(
        "--oauth-url", metavar="URL", help="the OAuth server (default: $KENAR_OAUTH_URL, else oauth.divar.ir)"
    )
    _store_flags(group, user=user)


def _store_flags(group: Any, *, user: bool = True) -> None:
    group.add_argument(
        "--store",
        metavar="PATH_OR_URL",
        help="where tokens are kept: a SQLite file, a redis:// or a postgresql:// URL "
        "(default: $KENAR_TOKEN_STORE, else ~/.config/kenar-events/tokens.sqlite3)",
    )
    if user:
        group.add_argument(
            "--user",
            default="default",
            metavar="KEY",
            help="the user key the tokens are stored under (default: default)",
        )


def _listen_flags(parser: argparse.ArgumentParser, default_port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=_port,
        default=default_port,
        help=f"port to listen on, 0 for a free one (default: {default_port})",
    )


def _add_sandbox(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = _command(
        commands,
        common,
        "sandbox",
        "sandbox_commands:run_sandbox",
        "run a local Kenar Events sandbox in the foreground",
        "Run a local Kenar Events sandbox until Ctrl+C. Prints its URL and the public demo "
        "credentials it accepts, then logs each request and delivery on stderr.",
    )
    _listen_flags(parser, DEFAULT_SANDBOX_PORT)
    parser.add_argument("--webhook-url", metavar="URL", help="deliver triggered events to this URL")
    parser.add_argument(
        "--identification-key",
        metavar="KEY",
        help="the Authorization value of deliveries (default: the demo identification key)",
    )
    _sandbox_credential_flags(parser)
    parser.add_argument(
        "--redirect-uri",
        dest="redirect_uris",
        action="append",
        metavar="URI",
        help="also register this redirect URI for the demo OAuth client, e.g. your app's "
        "http://127.0.0.1:8000/oauth/callback (repeatable; the first is printed as KENAR_REDIRECT_URI)",
    )
    parser.add_argument(
        "--clock-file",
        metavar="PATH",
        help="keep the sandbox clock's offset in this file, for KENAR_CLOCK_FILE "
        "(default: a temporary file, removed on exit)",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    for name, run, summary in (
        ("state", "sandbox_admin:state", "show what a running sandbox recorded"),
        ("reset", "sandbox_admin:reset", "make a running sandbox forget its records and fault rules"),
        ("faults", "sandbox_admin:faults", "show a running sandbox's fault rules and injected faults"),
    ):
        action = _command(actions, common, name, run, summary, summary[0].upper() + summary[1:] + ".")
        _sandbox_url_flag(action)
        if name == "faults":
            action.add_argument("--clear", action="store_true", help="drop the rules that have not fired")
    _add_fault(actions, common)
    _add_clock(actions, common)


def _sandbox_credential_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "credentials",
        "What the sandbox accepts instead of the demo values, to try permission and scope errors. "
        "Values you pass are not printed.",
    )
    group.add_argument("--api-key", metavar="KEY", help="accept this API key instead of the demo one")
    group.add_argument(
        "--permission",
        dest="permissions",
        action="append",
        metavar="PERMISSION",
        help="a permission of the API key (repeatable; default: every permission the spec names)",
    )
    group.add_argument(
        "--access-token", metavar="TOKEN", help="accept this access token instead of the demo one"
    )
    group.add_argument("--user-id", metavar="ID", help="the access token's user (default: the demo user)")
    group.add_argument(
        "--scope",
        dest="scopes",
        action="append",
        metavar="SCOPE",
        help="an OAuth scope of the access token, NAME or NAME.<id> (repeatable; default: the demo scopes)",
    )
    group.add_argument(
        "--post",
        dest="posts",
        action="append",
        metavar="POST_TOKEN",
        help="a post the user owns (repeatable; default: the demo post)",
    )


def _sandbox_url_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", metavar="URL", help="the sandbox's base URL (default: $KENAR_BASE_URL)")


def _add_fault(actions: Any, common: argparse.ArgumentParser) -> None:
    parser = _command(
        actions,
        common,
        "fault",
        "sandbox_admin:fault",
        "make a running sandbox fail calls of an operation on purpose",
        "Make the next calls (or a fraction of calls) of an operation fail: 429, 500, 502, 503, 504, "
        "a slow answer, a dropped connection or a malformed body. See docs/Sandbox.md#fault-injection.",
    )
    parser.add_argument(
        "operation",
        metavar="OPERATION",
        help="an SDK method name (events_send_event), oauth2_token, oauth2_auth, "
        "or a pattern ('*', 'events_*')",
    )
    parser.add_argument(
        "fault",
        metavar="FAULT",
        help="429, 500, 502, 503, 504, slow, trickle, drop-before-read, drop-after-read or malformed",
    )
    parser.add_argument("--times", type=_positive_int, metavar="N", help="fail the next N calls (default: 1)")
    parser.add_argument(
        "--fraction", type=float, metavar="F", help="fail each call with probability F (0 < F <= 1)"
    )
    parser.add_argument("--seed", type=int, metavar="N", help="with --fraction: a repeatable draw")
    parser.add_argument(
        "--retry-after", type=int, metavar="SECONDS", help="answer with a Retry-After header, in seconds"
    )
    parser.add_argument(
        "--retry-after-date", action="store_true", help="give --retry-after as an HTTP date instead"
    )
    parser.add_argument(
        "--delay",
        type=float,
        metavar="SECONDS",
        help="slow: how late; trickle: over how long (default: 1); other faults: hold the answer this long",
    )
    effect = parser.add_mutually_exclusive_group()
    effect.add_argument(
        "--takes-effect",
        dest="takes_effect",
        action="store_const",
        const=True,
        help="the operation runs before the fault (default for 500, 502, 504, drop-after-read)",
    )
    effect.add_argument(
        "--no-effect",
        dest="takes_effect",
        action="store_const",
        const=False,
        help="the operation does not run (default for 429 and 503)",
    )
    _sandbox_url_flag(parser)


def _add_clock(actions: Any, common: argparse.ArgumentParser) -> None:
    parser = _command(
        actions,
        common,
        "clock",
        "sandbox_admin:clock",
        "show or move a running sandbox's clock",
        "Show the time of a running sandbox's clock, or move it: tokens expire, subscriptions "
        "lapse and kept subscriptions fall due on it. Apps started with the KENAR_CLOCK_FILE "
        "it printed follow it.",
    )
    move = parser.add_mutually_exclusive_group()
    move.add_argument("--advance", type=float, metavar="SECONDS", help="move the clock this far forward")
    move.add_argument(
        "--set",
        dest="set_to",
        metavar="TIME",
        help="set the clock to this time: epoch seconds or an ISO 8601 date-time (2030-01-01T00:00:00Z)",
    )
    _sandbox_url_flag(parser)


def _add_send(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = _command(
        commands,
        common,
        "send",
        "api_commands:send",
        "send an event to a Divar user (events_send_event)",
        "Send an event to the authenticated user, or to the owner of one of their posts.",
    )
    parser.add_argument("-m", "--message", required=True, help="the text shown to the user")
    parser.add_argument(
        "--target-type", required=True, choices=("USER", "POST"), help="whom the event targets"
    )
    parser.add_argument(
        "--target-resource-id",
        required=True,
        metavar="ID",
        help="the user's id (USER) or the token of a post they own (POST)",
    )
    connection_flags(parser)


def _add_subscribe(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = _command(
        commands,
        common,
        "subscribe",
        "api_commands:subscribe",
        "register an event subscription (events_register_event_subscription)",
        "Subscribe the app to an event kind; Kenar then delivers those events to its webhook.",
    )
    parser.add_argument(
        "--event-type",
        required=True,
        choices=("NEW_MESSAGE_ON_POST", "POST_UPDATE"),
        help="what to be told about",
    )
    parser.add_argument(
        "--resource-id", metavar="POST_TOKEN", help="the post it is about (default: all of the user's posts)"
    )
    parser.add_argument(
        "--metadata", type=_json_object, metavar="JSON", help="a JSON object echoed back in every delivery"
    )
    connection_flags(parser)


def _add_api(commands: Any, common: argparse.ArgumentParser) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "api",
        parents=[common],
        add_help=False,
        help="call any operation of the API (kenar-events api OPERATION --help)",
        description="Call any operation of Kenar's API: its path and query values as --param NAME=VALUE, "
        "its body as --json-body JSON. 'kenar-events api OPERATION --help' shows what the "
        "operation takes and needs, from Kenar's OpenAPI document.",
    )
    parser.set_defaults(run="operation_command:run")
    parser.add_argument("-h", "--help", action=_ListOperations, help="list every operation, and exit")
    parser.add_argument(
        "operation", nargs="?", metavar="OPERATION", help="an SDK method name, e.g. assets_get_cities"
    )
    parser.add_argument(
        "arguments",
        nargs=argparse.REMAINDER,
        metavar="...",
        help="the operation's flags: --param NAME=VALUE, --json-body JSON, --base-url, --api-key, "
        "--access-token, --user",
    )


def _add_listen(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = _command(
        commands,
        common,
        "listen",
        "receiver:listen",
        "receive webhook deliveries, verify them and print each event",
        "Serve a local webhook receiver: each delivery's Authorization header is checked "
        "against the identification key and its body printed as a typed event.",
    )
    _listen_flags(parser, DEFAULT_LISTEN_PORT)
    parser.add_argument(
        "--identification-key",
        metavar="KEY",
        help=f"the key deliveries must carry (default: {_IDENTIFICATION_KEY_ENV})",
    )
    parser.add_argument("--count", type=_positive_int, metavar="N", help="exit after N verified events")
    parser.add_argument(
        "--forward-to",
        metavar="URL",
        help="post each verified delivery on to URL, headers and body as received, and print the answer",
    )
    parser.add_argument(
        "--events",
        type=_event_types,
        action="extend",
        choices=_EventTypes(),
        metavar="TYPE,...",
        help="print, count and forward only these event types (%(choices)s); others are answered 200 "
        "and dropped; repeatable",
    )
    parser.add_argument(
        "--headers", action="store_true", help="print each delivery's headers (Authorization masked)"
    )
    parser.add_argument(
        "--deliveries",
        metavar="LOG",
        help="handle each delivery once with a delivery log: 'memory', a SQLite file path or a redis:// "
        "URL; a redelivery is answered 200 and not printed or forwarded again",
    )
    parser.add_argument(
        "--skip-verify",
        action="store_true",
        help="UNSAFE: check nothing and relay every request to --forward-to, whose app checks the key "
        "itself; its answer goes back to the sender",
    )


def _add_trigger(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = _command(
        commands,
        common,
        "trigger",
        "sandbox_commands:trigger",
        "ask a running sandbox to deliver an event to its webhook",
        "Ask a sandbox (see 'kenar-events sandbox') to deliver one event to its webhook URL. "
        "NEW_MESSAGE and POST_UPDATE need a matching subscription, as on Kenar.",
    )
    parser.add_argument(
        "event_type",
        metavar="EVENT_TYPE",
        help="NEW_MESSAGE, NEW_CHATBOT_MESSAGE, USER_ACCESS_REVOCATION, POST_UPDATE, "
        "PAYMENT_TRANSACTION, or any other type (delivered as is)",
    )
    parser.add_argument(
        "--set",
        dest="assignments",
        type=_assignment,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a payload field; dotted keys nest, values may be JSON: --set text=hi (repeatable)",
    )
    parser.add_argument("--fields", type=_json_object, metavar="JSON", help="payload fields as a JSON object")
    parser.add_argument(
        "--metadata",
        type=_json_object,
        metavar="JSON",
        help="the body's metadata instead of the subscription's",
    )
    parser.add_argument(
        "--no-subscription-check",
        action="store_true",
        help="deliver NEW_MESSAGE / POST_UPDATE even without a matching subscription",
    )
    parser.add_argument("--webhook-url", metavar="URL", help="first point the sandbox's webhook at URL")
    parser.add_argument(
        "--identification-key",
        metavar="KEY",
        help=f"with --webhook-url: the key to deliver with (default: {_IDENTIFICATION_KEY_ENV}, "
        "else the sandbox's)",
    )
    parser.add_argument("--base-url", metavar="URL", help="the sandbox's base URL (default: $KENAR_BASE_URL)")


def _add_deliver(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = _command(
        commands,
        common,
        "deliver",
        "deliver:deliver",
        "post a webhook body from a file to a webhook URL, as Kenar does",
        "Post the JSON object in FILE to a webhook URL the way Kenar delivers events: "
        "Content-Type: application/json, the identification key as Authorization, retries "
        "after a failure. No sandbox needed.",
    )
    parser.add_argument("file", metavar="FILE", help="a JSON file with the body to deliver ('-': stdin)")
    parser.add_argument("--webhook-url", required=True, metavar="URL", help="where to deliver")
    parser.add_argument(
        "--identification-key",
        metavar="KEY",
        help=f"the Authorization value (default: {_IDENTIFICATION_KEY_ENV})",
    )
    parser.add_argument(
        "--attempts", type=_positive_int, default=3, metavar="N", help="tries in all (default: 3)"
    )


def _add_login(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = _command(
        commands,
        common,
        "login",
        "oauth_commands:login",
        "authorize the app as a Divar user (OAuth) and store the tokens",
        "Run Kenar's OAuth authorization-code flow: print the authorization URL (and open a "
        "browser where there is one), catch the redirect on the loopback redirect URI, exchange "
        "the code and store the tokens. Against a local sandbox it completes unattended.",
    )
    parser.add_argument(
        "--scope",
        dest="scopes",
        action="append",
        metavar="SCOPE",
        help="a scope to ask for, NAME or NAME.<id> (repeatable; default: SEND_EVENT USER_POSTS_GET "
        "NOTIFICATION_ACCESS_REVOCATION USER_ID); offline_access is always added",
    )
    parser.add_argument("--no-browser", action="store_true", help="only print the URL; do not open a browser")
    parser.add_argument(
        "--timeout", type=float, default=300.0, metavar="SECONDS", help="how long to wait for the redirect"
    )
    _oauth_flags(parser)


def _add_token(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "token",
        parents=[common],
        help="show or refresh a stored OAuth token",
        description="Show (redacted) or refresh the OAuth token stored for a user.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, run, summary in (
        ("show", "oauth_commands:token_show", "show the stored token, redacted"),
        ("refresh", "oauth_commands:token_refresh", "refresh the stored token now"),
    ):
        _oauth_flags(_command(actions, common, name, run, summary, summary[0].upper() + summary[1:] + "."))


def _add_subscriptions(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "subscriptions",
        parents=[common],
        help="keep subscriptions registered across token refreshes",
        description="A subscription lives only as long as the access token it was made with. Declare "
        "the subscriptions to keep, then run 'renew' every minute (cron): it refreshes tokens ahead "
        "of expiry and registers each kept subscription again with the new token.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    keep = _command(
        actions,
        common,
        "keep",
        "oauth_commands:subscriptions_keep",
        "declare a subscription to keep for a user",
        "Declare a subscription to keep registered for a user (stored with their tokens).",
    )
    keep.add_argument("--event-type", required=True, choices=("NEW_MESSAGE_ON_POST", "POST_UPDATE"))
    keep.add_argument(
        "--resource-id", metavar="POST_TOKEN", help="the post (default: all of the user's posts)"
    )
    keep.add_argument("--metadata", type=_json_object, metavar="JSON", help="echoed back in every delivery")
    _oauth_flags(keep)
    listing = _command(
        actions,
        common,
        "list",
        "oauth_commands:subscriptions_list",
        "list kept subscriptions and where each stands",
        "List the kept subscriptions of every user (or --user) and their states.",
    )
    group = listing.add_argument_group("store")
    _store_flags(group, user=False)
    group.add_argument("--user", metavar="KEY", help="only this user's")
    renew = _command(
        actions,
        common,
        "renew",
        "oauth_commands:subscriptions_renew",
        "register the kept subscriptions that are due (run it from cron)",
        "Refresh tokens that are about to expire and register every kept subscription whose "
        "token changed. Exits 1 if any subscription failed or is still pending.",
    )
    _oauth_flags(renew, user=False)
    connection_flags(renew, token=False)
    renew.add_argument(
        "--transport",
        choices=("auto", "threads", *EXTRA_OF),
        default="auto",
        help="send on an event loop over aiohttp or httpx, or on a pool of threads; auto "
        "(default): aiohttp if installed, else threads (docs/Subscriptions.md, 'Many users')",
    )
    status = _command(
        actions,
        common,
        "status",
        "subscription_status:subscriptions_status",
        "what the keepers did and what is due (for monitoring)",
        "Users and kept subscriptions by state, the users due now and how late the most overdue "
        "is, and each keeper process's latest round. Exits 1 when renewals run late or "
        "subscriptions are not registered.",
    )
    _store_flags(status.add_argument_group("store"), user=False)


def _add_demo(commands: Any, common: argparse.ArgumentParser) -> None:
    _command(
        commands,
        common,
        "demo",
        "demo:demo",
        "run the whole event loop on this machine and check every step",
        "Start a sandbox and a webhook listener on free ports, register subscriptions, send an "
        "event, trigger one delivery of each documented event type and check that the listener "
        "verified and parsed each one. Exits 0 only if every step worked.",
    )
