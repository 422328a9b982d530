"""``OAuthClient``: Kenar's authorization-code flow, code exchange and token refresh."""

from __future__ import annotations

import copy
import hmac
import json
import logging
import os
import random
import secrets
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional, Union
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from urllib3.util import Retry

from kenar_api_client import _clock, _env, rest
from kenar_api_client._redact import scrub
from kenar_api_client._version import __version__
from kenar_api_client.configuration import Configuration, normalize_host
from kenar_api_client.exceptions import (
    ApiConnectionError,
    ApiException,
    ApiValueError,
    ServiceException,
    TooManyRequestsException,
    exception_class_for_status,
)
from kenar_api_client.oauth.errors import (
    AccessDeniedError,
    OAuthRedirectError,
    StateMismatchError,
    oauth_error_class,
)
from kenar_api_client.oauth.scopes import Scope, scope_list
from kenar_api_client.oauth.token import OAuthToken

logger: logging.Logger = logging.getLogger(__name__)

DEFAULT_OAUTH_URL = "https://oauth.divar.ir"
AUTHORIZE_PATH = "/oauth2/auth"
TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a path, not a secret

ENV_APP_SLUG = _env.APP_SLUG
ENV_CLIENT_SECRET = _env.CLIENT_SECRET
ENV_REDIRECT_URI = _env.REDIRECT_URI
ENV_OAUTH_URL = _env.OAUTH_URL

#: After a refresh the old token pair keeps working this long, so a refresh whose answer
#: was lost can be sent again with the same refresh token within it.
ROTATION_GRACE = 120.0
#: How long a refresh keeps retrying a lost answer: well inside the grace period.
REFRESH_RETRY_WINDOW = 60.0
REFRESH_ATTEMPTS = 4
#: (connect, read) seconds: a token endpoint answers at once or is in trouble.
DEFAULT_OAUTH_TIMEOUT = (5.0, 15.0)

Clock = Callable[[], float]


class AuthorizationRequest(NamedTuple):
    """Where to send the user (``url``) and the ``state`` to check when they come back."""

    url: str
    state: str


def _setting(value: Optional[str], env: str) -> Optional[str]:
    if value is not None:
        return value
    return os.environ.get(env, "").strip() or None


class _OAuthTransport(rest.RESTClientObject):
    """The SDK's transport (pool, TLS, proxy, timeouts, typed errors) with bodies kept out of logs."""

    log_bodies = False


class OAuthClient:
    """Kenar's OAuth 2.0 authorization-code flow for one app.

    ``client_id`` is the app's slug in the Kenar panel. Values left out are read from
    ``KENAR_APP_SLUG``, ``KENAR_CLIENT_SECRET``, ``KENAR_REDIRECT_URI`` and
    ``KENAR_OAUTH_URL``; explicit values win. ``configuration`` lends its transport
    settings (TLS, proxy, pool size) to the token requests; its host and credentials are
    not used. ``clock`` gives the time tokens' expiries are computed with.
    """

    def __init__(
        self,
        client_id: Optional[str] = None,
        client_secret: Optional[str] = None,
        redirect_uri: Optional[str] = None,
        oauth_url: Optional[str] = None,
        *,
        configuration: Optional[Configuration] = None,
        timeout: Any = None,
        clock: Optional[Clock] = None,
    ) -> None:
        self.client_id: Optional[str] = _checked_text(_setting(client_id, ENV_APP_SLUG), "client_id")
        self._client_secret = _checked_text(_setting(client_secret, ENV_CLIENT_SECRET), "client_secret")
        redirect = _setting(redirect_uri, ENV_REDIRECT_URI)
        self.redirect_uri: Optional[str] = None if redirect is None else _checked_redirect_uri(redirect)
        oauth = _setting(oauth_url, ENV_OAUTH_URL)
        self.oauth_url: str = normalize_host(oauth, "oauth_url") if oauth is not None else DEFAULT_OAUTH_URL
        self.clock: Clock = clock if clock is not None else _clock.now

        if configuration is not None:
            transport_settings = copy.deepcopy(configuration)
            transport_settings.host = self.oauth_url
        else:
            # Explicit values, so that the API's environment (KENAR_BASE_URL...) plays no part.
            transport_settings = Configuration(host=self.oauth_url, api_key={}, access_token="")
        transport_settings.timeout = DEFAULT_OAUTH_TIMEOUT if timeout is None else timeout
        # Only failures to connect are retried below the client: the request never left.
        # A refresh retries more itself; a code exchange never does once sent.
        transport_settings.retries = Retry(
            total=2,
            connect=2,
            read=0,
            status=0,
            other=0,
            redirect=0,
            backoff_factor=0.2,
            allowed_methods=None,
        )
        self._transport = _OAuthTransport(transport_settings)

    def __repr__(self) -> str:
        return (
            f"OAuthClient(client_id={self.client_id!r}, redirect_uri={self.redirect_uri!r}, "
            f"oauth_url={self.oauth_url!r})"
        )

    def __enter__(self) -> OAuthClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections to the OAuth server."""
        self._transport.close()

    # -- step 1: send the user to Divar -----------------------------------------------------

    def authorization_url(
        self,
        scopes: Iterable[Union[Scope, str]],
        state: Optional[str] = None,
        *,
        offline: bool = True,
        redirect_uri: Optional[str] = None,
    ) -> AuthorizationRequest:
        """The URL to send the user to, and the ``state`` to keep until they come back.

        ``scopes`` are :class:`Scope` members or strings (``NAME`` or ``NAME.<id>``,
        unknown well-formed names accepted). ``offline_access`` is added unless
        ``offline=False``: without it Kenar gives no refresh token and the user must
        consent again when the access token expires (an hour). With no ``state`` a fresh
        unguessable one is made. ``redirect_uri`` overrides the client's for this
        authorization (then give the same one to :meth:`exchange_code`).
        """
        requested = scope_list(scopes)
        if offline and Scope.OFFLINE_ACCESS.value not in requested:
            requested.append(Scope.OFFLINE_ACCESS.value)
        if state is None:
            state = secrets.token_urlsafe(32)
        elif not isinstance(state, str) or not state or not state.isascii() or not state.isprintable():
            raise ApiValueError("state must be a non-empty string of printable ASCII")
        query = urlencode(
            [
                ("response_type", "code"),
                ("client_id", self._require(self.client_id, "client_id", ENV_APP_SLUG)),
                ("redirect_uri", self._redirect_uri(redirect_uri)),
                ("scope", " ".join(requested)),
                ("state", state),
            ],
            quote_via=quote,
        )
        return AuthorizationRequest(f"{self.oauth_url}{AUTHORIZE_PATH}?{query}", state)

    # -- step 2: the user comes back --------------------------------------------------------

    def parse_redirect(self, redirect: str, expected_state: str) -> str:
        """The authorization code in the redirect back (a full URL or its query string).

        Checks ``state`` against ``expected_state`` in constant time first. Raises
        :class:`StateMismatchError`, :class:`AccessDeniedError` (the user refused: an
        ``access_denied`` error or no code) or :class:`OAuthRedirectError` (another error).
        """
        if not isinstance(expected_state, str) or not expected_state:
            raise ApiValueError("expected_state must be the state the authorization URL was made with")
        params = _redirect_params(redirect)
        state = params.get("state")
        if state is None or not hmac.compare_digest(state.encode("utf-8"), expected_state.encode("utf-8")):
            raise StateMismatchError(
                "the redirect's state is missing or is not the one this authorization sent; "
                "refusing it (it may be forged)"
            )
        error = params.get("error")
        description = params.get("error_description")
        if error == "access_denied":
            raise AccessDeniedError(_redirect_error_text(error, description), error, description)
        if error:
            raise OAuthRedirectError(_redirect_error_text(error, description), error, description)
        code = params.get("code")
        if not code:
            raise AccessDeniedError("the redirect carries no code: the user did not consent")
        return code

    # -- step 3: exchange the code ----------------------------------------------------------

    def exchange_code(self, code: str, *, redirect_uri: Optional[str] = None) -> OAuthToken:
        """Exchange an authorization code for tokens. Never sent twice: a code is single use.

        ``redirect_uri``: the one the authorization URL was made with, if not the client's.
        """
        if not isinstance(code, str) or not code:
            raise ApiValueError("code must be the non-empty authorization code from the redirect")
        fields = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": self._require(self.client_id, "client_id", ENV_APP_SLUG),
            "client_secret": self._require(self._client_secret, "client_secret", ENV_CLIENT_SECRET),
            "redirect_uri": self._redirect_uri(redirect_uri),
        }
        return self._token_request(fields, secret_fields=("code", "client_secret"))

    def complete_authorization(self, redirect: str, expected_state: str) -> OAuthToken:
        """:meth:`parse_redirect` then :meth:`exchange_code`: the redirect back, turned into tokens."""
        return self.exchange_code(self.parse_redirect(redirect, expected_state))

    # -- step 5: refresh --------------------------------------------------------------------

    def refresh(self, token: OAuthToken) -> OAuthToken:
        """A new token pair for ``token`` (both tokens rotate; the old pair dies two minutes later).

        Sends Kenar's fields: the refresh token, the current access token as ``code``, and
        ``redirect_uri`` (the token's own, else this client's). A lost answer (connection
        dropped, timeout, 5xx, 429) is retried with the same refresh token, which Kenar
        still accepts within the two-minute grace period, for up to a minute.
        ``InvalidGrantError`` means the user must consent again.
        """
        if not isinstance(token, OAuthToken):
            raise ApiValueError(f"refresh() needs an OAuthToken, not {type(token).__name__}")
        if token.refresh_token is None:
            raise ApiValueError(
                "this token has no refresh token: the user did not grant offline_access, "
                "so they must authorize the app again"
            )
        fields = {
            "grant_type": "refresh_token",
            "refresh_token": token.refresh_token,
            "code": token.access_token,
            "client_id": self._require(self.client_id, "client_id", ENV_APP_SLUG),
            "client_secret": self._require(self._client_secret, "client_secret", ENV_CLIENT_SECRET),
            "redirect_uri": token.redirect_uri
            or self._require(self.redirect_uri, "redirect_uri", ENV_REDIRECT_URI),
        }
        deadline = time.monotonic() + REFRESH_RETRY_WINDOW
        attempt = 1
        while True:
            try:
                return self._token_request(fields, secret_fields=("refresh_token", "code", "client_secret"))
            except (ApiConnectionError, ServiceException, TooManyRequestsException) as error:
                delay = _retry_delay(error, attempt)
                if attempt >= REFRESH_ATTEMPTS or time.monotonic() + delay > deadline:
                    raise
                logger.warning("token refresh failed (%s); retrying in %.1f s", _one_line(error), delay)
                time.sleep(delay)
                attempt += 1

    # -- the token endpoint -----------------------------------------------------------------

    def _token_request(self, fields: Mapping[str, str], secret_fields: Iterable[str]) -> OAuthToken:
        hidden: List[str] = [fields[name] for name in secret_fields]
        url = self.oauth_url + TOKEN_PATH
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            "User-Agent": f"kenar-api-client/{__version__}/python",
        }
        started = time.monotonic()
        response = self._transport.request(
            "POST", url, headers=headers, body=urlencode(fields).encode("ascii")
        )
        try:
            raw = response.read()
        except rest._TRANSPORT_ERRORS as error:
            raise rest.transport_exception(error, "reading the answer of POST", url) from error
        received_at = self.clock()
        logger.info(
            "POST %s grant_type=%s -> %d in %.0f ms",
            url,
            fields["grant_type"],
            response.status,
            (time.monotonic() - started) * 1000,
        )
        return _token_from_answer(response, raw, received_at, hidden, fields["redirect_uri"])

    def _redirect_uri(self, override: Optional[str]) -> str:
        if override is not None:
            return _checked_redirect_uri(override)
        return self._require(self.redirect_uri, "redirect_uri", ENV_REDIRECT_URI)

    @staticmethod
    def _require(value: Optional[str], name: str, env: str) -> str:
        if value is None:
            raise ApiValueError(f"OAuthClient has no {name}: pass {name}= or set {env}")
        return value


def _token_from_answer(
    response: rest.RESTResponse, raw: bytes, received_at: float, hidden: List[str], redirect_uri: str
) -> OAuthToken:
    """The token in a 2xx answer; the typed exception for any other."""
    status = response.status
    document = _json_object(raw)
    reason = scrub(response.reason or "", hidden)
    headers = {name: scrub(value, hidden) for name, value in response.getheaders().items()}
    if 200 <= status <= 299:
        if document is None:
            raise ApiException(
                status=status, reason=f"{reason}, but the answer is not a JSON object", headers=headers
            )
        try:
            return OAuthToken.from_response(document, received_at, redirect_uri)
        except ApiValueError as exc:
            raise ApiException(status=status, reason=f"{reason}, but {exc}", headers=headers) from None
    body = scrub(raw.decode("utf-8", "replace"), hidden)
    error = document.get("error") if document is not None else None
    if isinstance(error, str) and error:
        description = document.get("error_description") if document is not None else None
        description = scrub(description, hidden) if isinstance(description, str) else None
        raise oauth_error_class(error)(
            scrub(error, hidden)[:100], description, status=status, reason=reason, body=body, headers=headers
        )
    raise exception_class_for_status(status)(status=status, reason=reason, body=body, headers=headers)


def _json_object(raw: bytes) -> Optional[Dict[str, Any]]:
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def _retry_delay(error: ApiException, attempt: int) -> float:
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, (int, float)) and retry_after >= 0:
        return float(retry_after)
    return float(min(8.0, 0.5 * 2 ** (attempt - 1)) + random.random() * 0.25)  # noqa: S311 - jitter


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:200]


def _redirect_params(redirect: str) -> Dict[str, str]:
    if not isinstance(redirect, str):
        raise ApiValueError(f"the redirect must be a URL or query string, not {type(redirect).__name__}")
    text = redirect.strip()
    if "?" in text:
        text = text.split("?", 1)[1]
    text = text.split("#", 1)[0]
    params = parse_qs(text, keep_blank_values=True)
    repeated = sorted(name for name, values in params.items() if len(values) > 1)
    if repeated:
        raise OAuthRedirectError(f"the redirect repeats {', '.join(repeated)}: refusing an ambiguous answer")
    return {name: values[0] for name, values in params.items()}


def _redirect_error_text(error: str, description: Optional[str]) -> str:
    text = f"authorization failed: {error[:100]}"
    if description:
        text += f": {' '.join(description.split())[:300]}"
    return text


def _checked_text(value: Optional[str], name: str) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str) or not value or not value.isascii() or not value.isprintable():
        raise ApiValueError(f"{name} must be a non-empty string of printable ASCII")
    return value


def _checked_redirect_uri(value: str) -> str:
    if not isinstance(value, str):
        raise ApiValueError(f"redirect_uri must be a string URL, not {type(value).__name__}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiValueError(f"redirect_uri must be an absolute http(s) URL, got {value[:200]!r}")
    if parts.query or parts.fragment or any(c.isspace() for c in value):
        raise ApiValueError(
            "redirect_uri must carry no query or fragment (Kenar refuses those); got " + repr(value[:200])
        )
    return value
