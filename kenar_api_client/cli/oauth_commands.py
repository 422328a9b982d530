"""``kenar-events login``, ``token`` and ``subscriptions``: OAuth tokens and kept subscriptions."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Dict, List, Tuple

from kenar_api_client import _clock
from kenar_api_client.cli.output import EXIT_FAILED, EXIT_OK, Output, UsageError, failure_text
from kenar_api_client.cli.stores import open_store, store_failures

if TYPE_CHECKING:
    from kenar_api_client.api_client import ApiClient
    from kenar_api_client.oauth import KeptSubscription, OAuthClient, OAuthToken, TokenManager

DEFAULT_USER = "default"
#: What ``login`` asks for unless told otherwise: enough to send events and follow posts.
DEFAULT_SCOPES = ("SEND_EVENT", "USER_POSTS_GET", "NOTIFICATION_ACCESS_REVOCATION", "USER_ID")


def token_manager(args: argparse.Namespace, out: Output, *, create: bool = False) -> Tuple[TokenManager, str]:
    """A token manager over the command's store, with the OAuth settings of its flags.

    ``create``: the command writes, and may create the store's file (only ``login`` and
    ``subscriptions keep`` do).
    """
    from kenar_api_client.oauth import TokenManager

    store, where = open_store(getattr(args, "store", None), out, create=create)
    return TokenManager(oauth_client(args), store), where


def oauth_client(args: argparse.Namespace) -> OAuthClient:
    """The app's OAuth client from the flags, else the environment."""
    from kenar_api_client.exceptions import ApiValueError
    from kenar_api_client.oauth import OAuthClient

    try:
        return OAuthClient(
            getattr(args, "app_slug", None),
            getattr(args, "client_secret", None),
            getattr(args, "redirect_uri", None),
            getattr(args, "oauth_url", None),
        )
    except ApiValueError as exc:
        raise UsageError(str(exc)) from exc


def api_client(args: argparse.Namespace) -> ApiClient:
    """A client for the API with the command's base URL and API key."""
    import kenar_api_client
    from kenar_api_client.exceptions import ApiValueError

    try:
        configuration = kenar_api_client.Configuration(
            host=args.base_url, api_key={"APIKey": args.api_key} if args.api_key else None
        )
    except ApiValueError as exc:
        raise UsageError(str(exc)) from exc
    if not configuration.api_key:
        raise UsageError("the API key is missing: set KENAR_API_KEY or pass --api-key")
    return kenar_api_client.ApiClient(configuration)


# -- login --------------------------------------------------------------------------------------


@store_failures
def login(args: argparse.Namespace, out: Output) -> int:
    """Run the authorization-code flow and store the user's tokens."""
    from kenar_api_client.cli.sandbox_commands import is_sandbox
    from kenar_api_client.exceptions import ApiException, ApiValueError
    from kenar_api_client.oauth import OAuthRedirectError, authorize_on_loopback
    from kenar_api_client.sandbox import SandboxError

    tokens, where = token_manager(args, out, create=True)
    oauth = tokens.oauth
    if oauth.redirect_uri is None:
        raise UsageError(
            "login needs the app's redirect URI: set KENAR_REDIRECT_URI or pass --redirect-uri "
            "(a loopback URI registered for the app, e.g. http://127.0.0.1:8400/kenar/callback)"
        )
    scopes: List[str] = list(args.scopes or DEFAULT_SCOPES)
    # Only a sandbox consents by itself; any other OAuth server needs the user.
    unattended = is_sandbox(oauth.oauth_url)

    def show(url: str) -> None:
        if unattended:
            out.line("The OAuth server is a local Kenar sandbox: consenting without a browser.")
            follow_consent(url)
            return
        out.line("Open this address to let the app act for you on Divar:")
        out.line(f"  {url}")
        from kenar_api_client.oauth.loopback import open_in_browser

        if not args.no_browser and open_in_browser(url):
            out.line("(opened in your browser)")
        out.line("Waiting for Divar to send you back...")

    try:
        token = authorize_on_loopback(oauth, scopes, open_url=show, timeout=args.timeout)
    except (ApiException, OAuthRedirectError, SandboxError) as exc:
        out.error(f"login failed: {failure_text(exc)}")
        out.document({"ok": False, "error": {"message": failure_text(exc)}})
        return EXIT_FAILED
    except ApiValueError as exc:  # a scope or the redirect URI: nothing was sent
        raise UsageError(str(exc)) from exc
    tokens.save(args.user, token)
    out.line(f"logged in: tokens of user {args.user!r} stored in {where}")
    out.line(f"  {describe_token(token)}")
    out.document({"ok": True, "user": args.user, "store": where, "token": token_document(token)})
    return EXIT_OK


def follow_consent(url: str) -> None:
    """Act as the browser against a local sandbox: consent, then follow the redirect back."""
    import urllib3

    from kenar_api_client.sandbox import consent

    urllib3.PoolManager(timeout=10.0, retries=False).request("GET", consent(url), redirect=False)


# -- token show / refresh -----------------------------------------------------------------------


def describe_token(token: OAuthToken) -> str:
    """One line about a token, with neither token in it (times on the SDK's clock)."""
    left = token.expires_in(_clock.now())
    when = f"expires in {left / 60:.0f} min" if left > 0 else f"expired {-left / 60:.0f} min ago"
    refresh = "refreshable" if token.refreshable else "no refresh token"
    expiry = token.expires_at_datetime.isoformat(timespec="seconds")
    return f"{when} ({expiry}), {refresh}, scopes: {' '.join(token.scopes)}"


def token_document(token: OAuthToken) -> Dict[str, Any]:
    """The JSON form of a token, without the tokens themselves."""
    return {
        "expires_at": token.expires_at_datetime.isoformat(),
        "expires_in": round(token.expires_in(_clock.now())),
        "refreshable": token.refreshable,
        "scopes": token.scopes,
        "fingerprint": token.fingerprint,
    }


@store_failures
def token_show(args: argparse.Namespace, out: Output) -> int:
    """Show a stored token, redacted."""
    tokens, where = token_manager(args, out)
    token = tokens.stored(args.user)
    if token is None:
        out.error(f"no usable token for user {args.user!r} in {where}: run kenar-events login")
        out.document({"ok": False, "user": args.user, "error": {"message": "no token"}})
        return EXIT_FAILED
    out.line(f"user {args.user!r} ({where}): {token!r}")
    out.line(f"  {describe_token(token)}")
    out.document({"ok": True, "user": args.user, "store": where, "token": token_document(token)})
    return EXIT_OK


@store_failures
def token_refresh(args: argparse.Namespace, out: Output) -> int:
    """Refresh a stored token now."""
    from kenar_api_client.exceptions import ApiException

    tokens, where = token_manager(args, out)
    try:
        token = tokens.refresh(args.user)
    except ApiException as exc:
        out.error(f"refresh failed: {failure_text(exc)}")
        out.document({"ok": False, "user": args.user, "error": {"message": failure_text(exc)}})
        return EXIT_FAILED
    out.line(f"refreshed the token of user {args.user!r}: {describe_token(token)}")
    out.document({"ok": True, "user": args.user, "store": where, "token": token_document(token)})
    return EXIT_OK


# -- subscriptions ------------------------------------------------------------------------------


def _subscription_line(subscription: KeptSubscription) -> str:
    about = subscription.event_resource_id or "all posts"
    line = f"{subscription.user_key}  {subscription.event_type} ({about})  {subscription.state}"
    if subscription.valid_until:
        left = (subscription.valid_until - _clock.now()) / 60
        line += f", valid {left:.0f} min more" if left > 0 else ", lapsed"
    return line + (f": {subscription.error}" if subscription.error else "")


def _subscription_document(subscription: KeptSubscription) -> Dict[str, Any]:
    return {
        "user": subscription.user_key,
        "event_type": subscription.event_type,
        "event_resource_id": subscription.event_resource_id,
        "metadata": subscription.metadata,
        "state": subscription.state,
        "valid_until": subscription.valid_until,
        "error": subscription.error,
    }


@store_failures
def subscriptions_keep(args: argparse.Namespace, out: Output) -> int:
    """Declare a subscription to keep registered for a user."""
    from kenar_api_client.oauth import SubscriptionKeeper

    tokens, _ = token_manager(args, out, create=True)
    request: Dict[str, Any] = {"event_type": args.event_type, "metadata": args.metadata or {}}
    if args.resource_id:
        request["event_resource_id"] = args.resource_id
    kept = SubscriptionKeeper(tokens).keep(args.user, request)
    out.line(f"keeping {kept.event_type} ({kept.event_resource_id or 'all posts'}) for user {args.user!r}")
    out.line(
        "It is registered at the next 'kenar-events subscriptions renew' (run it every minute from cron)."
    )
    out.document({"ok": True, "subscription": _subscription_document(kept)})
    return EXIT_OK


@store_failures
def subscriptions_list(args: argparse.Namespace, out: Output) -> int:
    """List kept subscriptions and their states."""
    from kenar_api_client.oauth import SubscriptionKeeper

    tokens, where = token_manager(args, out)
    kept = SubscriptionKeeper(tokens).status(args.user)
    if not kept:
        out.line(f"no kept subscriptions in {where}")
    for subscription in kept:
        out.line(_subscription_line(subscription))
    out.document({"ok": True, "subscriptions": [_subscription_document(s) for s in kept]})
    return EXIT_OK


@store_failures
def subscriptions_renew(args: argparse.Namespace, out: Output) -> int:
    """Register every kept subscription that is due (refreshing tokens as needed); for cron."""
    from kenar_api_client.oauth import SubscriptionKeeper

    tokens, _ = token_manager(args, out)
    with api_client(args) as client:
        report = SubscriptionKeeper(tokens, client, transport=args.transport).renew_due()
    for subscription in report.registered + report.failed + report.pending + report.consent_required:
        out.line(_subscription_line(subscription))
    out.line(f"renewal: {report}")
    out.document(
        {
            "ok": report.ok,
            **{
                state: [_subscription_document(s) for s in getattr(report, state)]
                for state in ("registered", "failed", "pending", "consent_required")
            },
        }
    )
    if not report.ok:
        out.error(f"renewal incomplete: {report}")
        return EXIT_FAILED
    return EXIT_OK
