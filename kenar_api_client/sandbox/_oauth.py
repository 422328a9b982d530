"""The OAuth endpoints, as Kenar's authorization server (Ory Hydra) answers them.

``GET /oauth2/auth`` stands for the browser step: the configured consent is given (or
refused) at once and the user agent is redirected back to the app. ``POST /oauth2/token``
exchanges codes and refresh tokens. Errors are RFC 6749 errors; nothing logged or
recorded carries a code, a token or a secret.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass, field
from email.message import Message
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qs, unquote_plus, urlencode

from kenar_api_client.sandbox._clients import RegisteredClient
from kenar_api_client.sandbox._oauth_errors import OAuthError, invalid_request
from kenar_api_client.sandbox._rpc import quoted
from kenar_api_client.sandbox._scopes import parse_scope
from kenar_api_client.sandbox._state import SandboxState, TokenRequestRecord
from kenar_api_client.sandbox._tokens import AccessToken

logger = logging.getLogger("kenar_api_client.sandbox")

PREFIX = "/oauth2/"
AUTH_PATH = "/oauth2/auth"
TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a path, not a secret

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# The grant types OAuth defines (RFC 6749, RFC 8628, RFC 7523, RFC 8693). A grant_type is
# logged and recorded as sent if it is one of them, else as "other": a token pasted into the
# wrong field must not reach the log or the state.
KNOWN_GRANT_TYPES = (
    "",
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "password",
    "implicit",
    "urn:ietf:params:oauth:grant-type:device_code",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "urn:ietf:params:oauth:grant-type:token-exchange",
)
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_INVALID_CLIENT = (
    "Client authentication failed (e.g., unknown client, no client authentication included, "
    "or unsupported authentication method)."
)


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, headers (Content-Type included) and body."""

    status: int
    headers: Dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def handle(state: SandboxState, method: str, path: str, query: str, headers: Message, body: bytes) -> Answer:
    """Answer a request to a path under ``/oauth2/``; never raises."""
    try:
        if path == AUTH_PATH:
            return _authorize(state, method, query)
        if path == TOKEN_PATH:
            return _token(state, method, headers, body)
    except Exception:
        logger.exception("the sandbox failed on %s %s", method, path)
        return _json_error(OAuthError("server_error", "internal sandbox error", 500))
    logger.info("%s %s... -> 404", method, PREFIX)  # the rest of the path is the caller's text
    return _json_error(
        OAuthError("not_found", "Not Found: the OAuth endpoints are /oauth2/auth and /oauth2/token", 404)
    )


# -- GET /oauth2/auth ---------------------------------------------------------------------------


class _Refused(Exception):
    """The authorization request cannot be answered with a redirect (RFC 6749, 4.1.2.1)."""

    def __init__(self, explanation: str, logged_as: str) -> None:
        super().__init__(explanation)
        self.explanation = explanation
        self.logged_as = logged_as  # a fixed phrase: the log gets none of the caller's text


def _authorize(state: SandboxState, method: str, query: str) -> Answer:
    if method != "GET":
        logger.info("%s %s -> 405", method, AUTH_PATH)
        return _page(405, f"{AUTH_PATH} accepts GET only.", {"Allow": "GET"})
    params = parse_qs(query, keep_blank_values=True)
    try:
        client, redirect_uri = _client_and_redirect_uri(state, params)
    except _Refused as refused:
        logger.info("GET %s -> 400 (no redirect: %s)", AUTH_PATH, refused.logged_as)
        return _page(400, refused.explanation)

    state_values = params.get("state") or []
    back: Dict[str, str] = {}
    try:
        repeated = sorted(name for name, values in params.items() if len(values) > 1)
        if repeated:
            raise invalid_request(f"The parameter {repeated[0]} is included more than once.")
        response_type = _single(params, "response_type")
        if response_type != "code":
            raise OAuthError(
                "unsupported_response_type",
                "The authorization server does not support obtaining a token using this method. "
                f"Use response_type=code (got {_shown(response_type)}).",
            )
        try:
            scopes = parse_scope(_single(params, "scope") or "")
        except ValueError as exc:
            raise OAuthError(
                "invalid_scope", f"The requested scope is invalid, unknown, or malformed. {exc}."
            ) from exc
        consent = state.consent()
        if consent.refuse:
            raise OAuthError(
                "access_denied", "The resource owner or authorization server denied the request."
            )
        grant = AccessToken(consent.user_id, scopes, consent.posts)
        back["code"] = state.tokens.issue_code(client.client_id, redirect_uri, scopes, grant)
        outcome = "code"
    except OAuthError as error:
        back = {"error": error.error, "error_description": error.description}
        outcome = f"error={error.error}"
    if state_values:
        back["state"] = state_values[0]
    logger.info("GET %s -> 302 %s", AUTH_PATH, outcome)
    return Answer(302, {"Location": f"{redirect_uri}?{urlencode(back)}", **_NO_STORE})


def _client_and_redirect_uri(
    state: SandboxState, params: Dict[str, List[str]]
) -> Tuple[RegisteredClient, str]:
    """The client and redirect URI, or ``_Refused`` when either is missing, repeated or unknown."""
    client_ids = params.get("client_id") or []
    if len(client_ids) != 1 or not client_ids[0]:
        raise _Refused("The request must carry exactly one client_id.", "client_id")
    client = state.oauth_client(client_ids[0])
    if client is None:
        raise _Refused("The client_id is not a registered OAuth client.", "unknown client")
    redirect_uris = params.get("redirect_uri") or []
    if len(redirect_uris) != 1 or not redirect_uris[0]:
        raise _Refused("The request must carry exactly one redirect_uri.", "redirect_uri")
    if not client.accepts_redirect_uri(redirect_uris[0]):
        raise _Refused(
            "The redirect_uri is not one of the redirect URIs registered for this client "
            "(it must match exactly; a loopback one may differ in its port only).",
            "redirect_uri not registered",
        )
    return client, redirect_uris[0]


def _page(status: int, text: str, headers: Optional[Dict[str, str]] = None) -> Answer:
    """A short plain-text explanation, for a user agent that cannot be sent back to the app."""
    body = f"{text}\n".encode()
    return Answer(status, {"Content-Type": "text/plain; charset=utf-8", **_NO_STORE, **(headers or {})}, body)


# -- POST /oauth2/token -------------------------------------------------------------------------


def _token(state: SandboxState, method: str, headers: Message, body: bytes) -> Answer:
    if method != "POST":
        logger.info("%s %s -> 405", method, TOKEN_PATH)
        error = invalid_request(f"{TOKEN_PATH} accepts POST only.")
        return _json_error(OAuthError(error.error, error.description, 405, {"Allow": "POST"}))
    grant_type, client_id = "", None
    try:
        form = _form(headers, body)
        grant_type = form.get("grant_type", "")
        credentials = _client_credentials(headers, form)
        client_id = credentials.client_id
        client = _authenticate_client(state, credentials)
        answer = _grant(state, client, grant_type, form)
    except OAuthError as error:
        _record(state, grant_type, client_id, error.status, error.error)
        return _json_error(error)
    _record(state, grant_type, client_id, 200, None)
    return Answer(200, {"Content-Type": "application/json;charset=UTF-8", **_NO_STORE}, _json(answer))


def _form(headers: Message, body: bytes) -> Dict[str, str]:
    """The form fields of the body; a field given twice or an unreadable body is an error."""
    content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != FORM_CONTENT_TYPE:
        raise invalid_request(f"The request must be form-encoded: Content-Type: {FORM_CONTENT_TYPE}.")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise invalid_request("The request body is not valid UTF-8 form data.") from exc
    repeated = sorted(name for name, values in parsed.items() if len(values) > 1)
    if repeated:
        raise invalid_request(f"The parameter {_shown(repeated[0])} is included more than once.")
    return {name: values[0] for name, values in parsed.items()}


@dataclass(frozen=True)
class _Credentials:
    client_id: Optional[str]
    secret: Optional[str] = field(repr=False)
    basic: bool  # sent as client_secret_basic: a failure is answered with a Basic challenge


def _client_credentials(headers: Message, form: Dict[str, str]) -> _Credentials:
    """The client's id and secret, from HTTP Basic (client_secret_basic) or the form (_post)."""
    basic = _basic_credentials(headers)
    if basic is None:
        return _Credentials(form.get("client_id") or None, form.get("client_secret"), basic=False)
    client_id, secret = basic
    if "client_secret" in form:
        raise invalid_request(
            "The client authenticated with both HTTP Basic and client_secret in the form; use one method."
        )
    if form.get("client_id") not in (None, client_id):
        raise invalid_request("The client_id of the form differs from the one of the Authorization header.")
    return _Credentials(client_id, secret, basic=True)


def _authenticate_client(state: SandboxState, credentials: _Credentials) -> RegisteredClient:
    """The registered client whose secret was sent; else 401 ``invalid_client``."""
    challenge = {"WWW-Authenticate": 'Basic realm="kenar-sandbox"'} if credentials.basic else {}
    if credentials.client_id is None:
        raise OAuthError("invalid_client", f"{_INVALID_CLIENT} No client_id was sent.", 401, challenge)
    client = state.oauth_client(credentials.client_id)
    if client is None:
        raise OAuthError("invalid_client", f"{_INVALID_CLIENT} The client is not known.", 401, challenge)
    if not credentials.secret:
        raise OAuthError("invalid_client", f"{_INVALID_CLIENT} No client_secret was sent.", 401, challenge)
    if not client.secret_matches(credentials.secret):
        raise OAuthError("invalid_client", f"{_INVALID_CLIENT} The client secret is wrong.", 401, challenge)
    return client


def _basic_credentials(headers: Message) -> Optional[Tuple[str, str]]:
    """The id and secret of an ``Authorization: Basic`` header (RFC 6749, 2.3.1), or None."""
    scheme, _, encoded = (headers.get("Authorization") or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthError(
            "invalid_client",
            f"{_INVALID_CLIENT} The Authorization header is not valid HTTP Basic credentials.",
            401,
            {"WWW-Authenticate": 'Basic realm="kenar-sandbox"'},
        ) from exc
    client_id, _, secret = decoded.partition(":")
    return unquote_plus(client_id), unquote_plus(secret)


def _grant(
    state: SandboxState, client: RegisteredClient, grant_type: str, form: Dict[str, str]
) -> Dict[str, object]:
    if grant_type == "authorization_code":
        code = _required(form, "code")
        return state.tokens.redeem_code(client.client_id, code, form.get("redirect_uri"))
    if grant_type == "refresh_token":
        refresh_token = _required(form, "refresh_token")
        access_token = _required(form, "code", " Kenar requires the current access token as code.")
        return state.tokens.refresh(client.client_id, refresh_token, form.get("redirect_uri"), access_token)
    if not grant_type:
        raise invalid_request("The request is missing the required parameter grant_type.")
    raise OAuthError(
        "unsupported_grant_type",
        "The authorization grant type is not supported by the authorization server: "
        "use authorization_code or refresh_token.",
    )


def _required(form: Dict[str, str], name: str, why: str = "") -> str:
    value = form.get(name)
    if not value:
        raise invalid_request(f"The request is missing the required parameter {name}.{why}")
    return value


def _record(
    state: SandboxState, grant_type: str, client_id: Optional[str], status: int, error: Optional[str]
) -> None:
    shown = grant_type if grant_type in KNOWN_GRANT_TYPES else "other"
    state.add_token_request(TokenRequestRecord(shown, client_id, status, error, state.now()))
    logger.info("POST %s grant_type=%s -> %d%s", TOKEN_PATH, shown, status, f" {error}" if error else "")


# -- answers ------------------------------------------------------------------------------------


def _json(document: Dict[str, object]) -> bytes:
    return json.dumps(document).encode("utf-8")


def _json_error(error: OAuthError) -> Answer:
    headers = {"Content-Type": "application/json;charset=UTF-8", **_NO_STORE, **error.headers}
    return Answer(error.status, headers, error.body())


def _single(params: Dict[str, List[str]], name: str) -> Optional[str]:
    values = params.get(name)
    return values[0] if values else None


def _shown(value: Optional[str]) -> str:
    """A caller's value for a message: quoted and shortened, or "nothing"."""
    return "nothing" if value is None else quoted(value)
