"""``OAuthClient``: Kenar's authorization-code flow, code exchange and token refresh."""

from __future__ import annotations

import copy
import hmac
import http.client
import logging
import math
import os
import secrets
import threading
import time
from collections import OrderedDict
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Generator,
    Iterable,
    List,
    NamedTuple,
    Optional,
    Tuple,
    TypeVar,
    Union,
)
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import urllib3
from urllib3.util import Retry, Timeout

from kenar_api_client import _clock, _env, rest
from kenar_api_client._steps import Sleep
from kenar_api_client._transport_settings import to_timeout
from kenar_api_client._version import __version__
from kenar_api_client.configuration import Configuration, normalize_host
from kenar_api_client.exceptions import ApiException, ApiTimeoutError, ApiValueError
from kenar_api_client.oauth._hidden import Hidden
from kenar_api_client.oauth.answers import interpret_token_answer, refresh_retry_delay
from kenar_api_client.oauth.errors import AccessDeniedError, OAuthRedirectError, StateMismatchError
from kenar_api_client.oauth.scopes import Scope, scope_list
from kenar_api_client.oauth.token import OAuthToken

if TYPE_CHECKING:
    from kenar_api_client._transport import AsyncTransport

logger: logging.Logger = logging.getLogger(__name__)

DEFAULT_OAUTH_URL = "https://oauth.divar.ir"
AUTHORIZE_PATH = "/oauth2/auth"
TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a path, not a secret

ENV_APP_SLUG = _env.APP_SLUG
ENV_CLIENT_SECRET = _env.CLIENT_SECRET
ENV_REDIRECT_URI = _env.REDIRECT_URI
ENV_OAUTH_URL = _env.OAUTH_URL

#: After a refresh the old token pair keeps working this long, so a refresh whose answer
#: was lost can be sent again with the same refresh token within it (Kenar: two minutes).
ROTATION_GRACE = 120.0
#: How long a refresh keeps retrying a lost answer by default: well inside the grace period.
REFRESH_RETRY_WINDOW = 60.0
#: (connect, read) seconds: a token endpoint answers at once or is in trouble.
DEFAULT_OAUTH_TIMEOUT = (5.0, 15.0)
#: The largest token answer read; a token answer is well under a kilobyte.
MAX_TOKEN_ANSWER_BYTES = 64 * 1024
#: How many authorization URLs made with their own ``redirect_uri`` this client remembers.
_REMEMBERED_AUTHORIZATIONS = 1024
# Anything urllib3, http.client or the socket layer may raise while the answer is read.
_READ_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)
_TOKEN_HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded",
    "Accept": "application/json",
    "User-Agent": f"kenar-api-client/{__version__}/python",
}

Clock = Callable[[], float]


def resend_window(rotation_grace: float) -> float:
    """Seconds after a refresh token is first sent during which it may be sent again.

    The grace period less a margin for clock skew between machines and time in transit
    (10 s, or a sixth of a short grace): a refresh token is never sent after this.
    """
    return rotation_grace - min(10.0, rotation_grace / 6)


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


class _TokenForm:
    """The form of one token request, its secrets hidden until it is encoded to be sent."""

    __slots__ = ("_fields", "grant_type", "redirect_uri")

    def __init__(self, grant_type: str, redirect_uri: str, **fields: Union[str, Hidden]) -> None:
        self.grant_type = grant_type
        self.redirect_uri = redirect_uri
        self._fields = fields

    def encode(self) -> bytes:
        """The urlencoded body: pass it on at once, do not keep it in a variable."""
        pairs = [("grant_type", self.grant_type)]
        pairs += [
            (name, value.reveal() if isinstance(value, Hidden) else value)
            for name, value in self._fields.items()
        ]
        pairs.append(("redirect_uri", self.redirect_uri))
        return urlencode(pairs).encode("ascii")

    def secrets(self) -> List[Hidden]:
        """What no message about this request may show."""
        return [value for value in self._fields.values() if isinstance(value, Hidden)]

    def __repr__(self) -> str:
        return f"_TokenForm(grant_type={self.grant_type!r}, fields={sorted(self._fields)})"


class _Answer:
    """A token endpoint's answer as read; its body (tokens, on success) never shown."""

    __slots__ = ("body", "headers", "reason", "status")

    def __init__(self, status: int, reason: str, headers: Dict[str, str], body: bytes) -> None:
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def __repr__(self) -> str:
        return f"_Answer(status={self.status}, {len(self.body)} bytes)"


class TokenPost(NamedTuple):
    """Step: one POST of ``form`` to the token endpoint, its answer read by ``deadline`` (monotonic)."""

    form: _TokenForm
    deadline: float
    previous: Optional[OAuthToken]


T = TypeVar("T")
#: Steps to the token endpoint (and waits) that end in a ``T``: what ``run_steps`` drives.
TokenFlow = Generator[Union[TokenPost, Sleep], Any, T]


class OAuthClient:
    """Kenar's OAuth 2.0 authorization-code flow for one app.

    ``client_id`` is the app's slug in the Kenar panel. Values left out are read from
    ``KENAR_APP_SLUG``, ``KENAR_CLIENT_SECRET``, ``KENAR_REDIRECT_URI`` and
    ``KENAR_OAUTH_URL``; explicit values win. ``configuration`` lends its transport
    settings (TLS, proxy, pool size) to the token requests; its host and credentials are
    not used. ``clock`` gives the time tokens' expiries are computed with (default
    ``time.time``). ``rotation_grace``: how long the OAuth server accepts a rotated refresh
    token again (Kenar: 120 s); a refresh is never sent again after it.
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
        rotation_grace: float = ROTATION_GRACE,
    ) -> None:
        self.client_id: Optional[str] = _checked_text(_setting(client_id, ENV_APP_SLUG), "client_id")
        secret = _checked_text(_setting(client_secret, ENV_CLIENT_SECRET), "client_secret")
        self._client_secret = None if secret is None else Hidden(secret)
        del secret  # held only as Hidden from here on
        redirect = _setting(redirect_uri, ENV_REDIRECT_URI)
        self.redirect_uri: Optional[str] = None if redirect is None else _checked_redirect_uri(redirect)
        oauth = _setting(oauth_url, ENV_OAUTH_URL)
        self.oauth_url: str = normalize_host(oauth, "oauth_url") if oauth is not None else DEFAULT_OAUTH_URL
        self.clock: Clock = clock if clock is not None else _clock.now
        if (
            isinstance(rotation_grace, bool)
            or not isinstance(rotation_grace, (int, float))
            or not 1 <= rotation_grace <= 86400
        ):
            raise ApiValueError(
                f"rotation_grace must be a number of seconds from 1 to 86400, got {rotation_grace!r}"
            )
        self.rotation_grace: float = float(rotation_grace)
        # The redirect URI each recent authorization URL was made with, by state, when it
        # was not the client's: the code that comes back must be sent with the same one.
        self._redirect_uris: OrderedDict[str, str] = OrderedDict()
        self._redirect_uris_lock = threading.Lock()

        if configuration is not None:
            transport_settings = copy.deepcopy(configuration)
            transport_settings.host = self.oauth_url
        else:
            # Explicit values, so that the API's environment (KENAR_BASE_URL...) plays no part.
            transport_settings = Configuration(host=self.oauth_url, api_key={}, access_token="")
        transport_settings.timeout = DEFAULT_OAUTH_TIMEOUT if timeout is None else timeout
        self._timeout, budget = to_timeout(transport_settings.timeout)
        # A code exchange is sent once: it may take one connect and one read, no more.
        self._exchange_budget: float = budget if budget is not None else sum(DEFAULT_OAUTH_TIMEOUT)
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
        self._transport_settings = transport_settings

    def __repr__(self) -> str:
        return (
            f"OAuthClient(client_id={self.client_id!r}, redirect_uri={self.redirect_uri!r}, "
            f"oauth_url={self.oauth_url!r})"
        )

    def __enter__(self) -> OAuthClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def async_configuration(self) -> Configuration:
        """The settings token requests go with (TLS, proxy, timeouts), for an ``AsyncApiClient``
        whose transport sends :meth:`refresh_async`'s requests; answers capped as here (64 KiB)."""
        settings = copy.deepcopy(self._transport_settings)
        settings.max_response_bytes = MAX_TOKEN_ANSWER_BYTES
        # The API's credentials have no business at the token endpoint: none to send, or to leak.
        settings.api_key, settings.access_token = {}, ""
        return settings

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
        authorization: :meth:`complete_authorization` of this client then sends it with the
        code (the last 1,024 such are remembered, in this process; another process must pass
        the same ``redirect_uri`` to :meth:`exchange_code` or ``complete_authorization``).
        """
        requested = scope_list(scopes)
        if offline and Scope.OFFLINE_ACCESS.value not in requested:
            requested.append(Scope.OFFLINE_ACCESS.value)
        if state is None:
            state = secrets.token_urlsafe(32)
        elif not isinstance(state, str) or not state or not state.isascii() or not state.isprintable():
            raise ApiValueError("state must be a non-empty string of printable ASCII")
        chosen_redirect_uri = self._redirect_uri(redirect_uri)
        query = urlencode(
            [
                ("response_type", "code"),
                ("client_id", self._require(self.client_id, "client_id", ENV_APP_SLUG)),
                ("redirect_uri", chosen_redirect_uri),
                ("scope", " ".join(requested)),
                ("state", state),
            ],
            quote_via=quote,
        )
        if chosen_redirect_uri != self.redirect_uri:
            self._remember_redirect_uri(state, chosen_redirect_uri)
        return AuthorizationRequest(f"{self.oauth_url}{AUTHORIZE_PATH}?{query}", state)

    def redirect_uri_for(self, state: str) -> str:
        """The redirect URI to send with the code of the authorization made with ``state``.

        The one :meth:`authorization_url` was given for it, if this client made that URL
        (recently, in this process); else the client's own.
        """
        with self._redirect_uris_lock:
            remembered = self._redirect_uris.get(state)
        if remembered is not None:
            return remembered
        return self._require(self.redirect_uri, "redirect_uri", ENV_REDIRECT_URI)

    def _remember_redirect_uri(self, state: str, redirect_uri: str) -> None:
        with self._redirect_uris_lock:
            self._redirect_uris[state] = redirect_uri
            self._redirect_uris.move_to_end(state)
            while len(self._redirect_uris) > _REMEMBERED_AUTHORIZATIONS:
                self._redirect_uris.popitem(last=False)

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
        form = _TokenForm(
            "authorization_code",
            self._redirect_uri(redirect_uri),
            code=Hidden(code),
            client_id=self._require(self.client_id, "client_id", ENV_APP_SLUG),
            client_secret=self._secret(),
        )
        del code  # held only as Hidden from here on
        return self._token_request(form, time.monotonic() + self._exchange_budget)

    def complete_authorization(
        self, redirect: str, expected_state: str, *, redirect_uri: Optional[str] = None
    ) -> OAuthToken:
        """:meth:`parse_redirect` then :meth:`exchange_code`: the redirect back, turned into tokens.

        The code is sent with ``redirect_uri``, else the one the authorization URL of
        ``expected_state`` was made with (:meth:`redirect_uri_for`).
        """
        code = self.parse_redirect(redirect, expected_state)
        return self.exchange_code(code, redirect_uri=redirect_uri or self.redirect_uri_for(expected_state))

    # -- step 5: refresh --------------------------------------------------------------------

    def refresh_steps(self, token: OAuthToken, *, timeout: Optional[float] = None) -> TokenFlow[OAuthToken]:
        """:meth:`refresh` as steps (``TokenPost``, ``Sleep``) for a driver to perform: checked at once.

        What :meth:`refresh` and :meth:`refresh_async` share: the request and its retries.
        """
        if not isinstance(token, OAuthToken):
            raise ApiValueError(f"refresh() needs an OAuthToken, not {type(token).__name__}")
        if token.refresh_token is None:
            raise ApiValueError(
                "this token has no refresh token: the user did not grant offline_access, "
                "so they must authorize the app again"
            )
        window = resend_window(self.rotation_grace)
        if timeout is None:
            timeout = min(REFRESH_RETRY_WINDOW, window)
        elif isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= window:
            raise ApiValueError(f"timeout must be a number of seconds from 0 to {window:g}, got {timeout!r}")
        form = _TokenForm(
            "refresh_token",
            token.redirect_uri or self._require(self.redirect_uri, "redirect_uri", ENV_REDIRECT_URI),
            refresh_token=Hidden(token.refresh_token),
            code=Hidden(token.access_token),
            client_id=self._require(self.client_id, "client_id", ENV_APP_SLUG),
            client_secret=self._secret(),
        )
        return self._refresh_attempts(form, time.monotonic() + timeout, token)

    def refresh(self, token: OAuthToken, *, timeout: Optional[float] = None) -> OAuthToken:
        """A new token pair for ``token`` (both tokens rotate; the old pair dies two minutes later).

        Sends Kenar's fields: the refresh token, the current access token as ``code``, and
        ``redirect_uri`` (the token's own, else this client's). A lost or refused-for-now
        answer (no answer, a 5xx, a 429, ``server_error``, ``temporarily_unavailable``, a 2xx
        that cannot be read) is retried with the same refresh token, which Kenar still
        accepts within its grace period, honouring ``Retry-After`` (up to 30 s). ``timeout``
        bounds the whole refresh, retries included (default: a minute, and always well
        inside the grace period). ``InvalidGrantError`` means the user must consent again.
        """
        return self.run_steps(self.refresh_steps(token, timeout=timeout))

    async def refresh_async(
        self, token: OAuthToken, *, transport: AsyncTransport, timeout: Optional[float] = None
    ) -> OAuthToken:
        """:meth:`refresh` on the running event loop, sent through ``transport`` (an ``AsyncApiClient``'s).

        The same request, retries and errors; nothing blocks the loop but the CPU work. Give
        it the transport of ``AsyncApiClient(oauth.async_configuration())``, so that the
        token requests keep this client's TLS, proxy and answer-size settings.
        """
        return await self.run_steps_async(self.refresh_steps(token, timeout=timeout), transport)

    def run_steps(self, flow: TokenFlow[T]) -> T:
        """Drive ``flow`` (:meth:`refresh_steps`, or a flow around it) in this thread, over urllib3."""
        value: Any = None
        try:
            step = next(flow)
            while True:
                if isinstance(step, Sleep):
                    time.sleep(step.seconds)
                    value = None
                else:
                    try:
                        value = self._token_request(step.form, step.deadline, previous=step.previous)
                    except ApiException as error:
                        step = flow.throw(error)
                        continue
                step = flow.send(value)
        except StopIteration as done:
            result: T = done.value
            return result
        finally:
            flow.close()  # interrupted: the flow's own clean-up (a lease) runs now

    async def run_steps_async(self, flow: TokenFlow[T], transport: AsyncTransport) -> T:
        """Drive ``flow`` on the running event loop, its requests sent through ``transport``."""
        import asyncio

        value: Any = None
        try:
            step = next(flow)
            while True:
                if isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                    value = None
                else:
                    try:
                        value = await self._token_request_async(step, transport)
                    except ApiException as error:
                        step = flow.throw(error)
                        continue
                step = flow.send(value)
        except StopIteration as done:
            result: T = done.value
            return result
        finally:
            flow.close()  # cancelled: the flow's own clean-up (a lease) runs now, in this task

    @staticmethod
    def _refresh_attempts(form: _TokenForm, deadline: float, token: OAuthToken) -> TokenFlow[OAuthToken]:
        attempt = 1
        while True:
            try:
                refreshed: OAuthToken = yield TokenPost(form, deadline, token)
                return refreshed
            except ApiException as error:
                failure = error
            delay = refresh_retry_delay(failure, attempt, deadline - time.monotonic())
            if delay is None:
                raise failure
            logger.warning("token refresh failed (%s); retrying in %.1f s", _one_line(failure), delay)
            yield Sleep(delay)
            attempt += 1

    # -- the token endpoint -----------------------------------------------------------------

    def _token_request(
        self, form: _TokenForm, deadline: float, previous: Optional[OAuthToken] = None
    ) -> OAuthToken:
        """One POST to the token endpoint, answer read by ``deadline`` (``time.monotonic()``).

        No frame of an error raised from here holds a secret in a local variable: the form
        is encoded straight into the call, and the transport's own frames (which hold the
        body) are cut off the error, which is not chained to the urllib3 error either.
        """
        url = self.oauth_url + TOKEN_PATH
        started = time.monotonic()
        try:
            answer = self._post(url, form, deadline)
        except ApiException as error:
            failure: Optional[ApiException] = error
        else:
            failure = None
        if failure is not None:
            raise _detached(failure)
        return self._token_from(answer, form, url, started, previous)

    async def _token_request_async(self, step: TokenPost, transport: AsyncTransport) -> OAuthToken:
        """``_token_request`` through an async transport: the whole exchange bounded by the deadline."""
        import asyncio

        from kenar_api_client._request import Request

        url = self.oauth_url + TOKEN_PATH
        started = time.monotonic()
        connect, read = _within(self._timeout, step.deadline)
        try:
            # The form is encoded straight into the request: no local variable holds it.
            sent = await asyncio.wait_for(
                transport.send(
                    Request(
                        "POST",
                        url,
                        dict(_TOKEN_HEADERS),
                        step.form.encode(),
                        Timeout(connect=connect, read=read),
                        connect,
                    )
                ),
                max(0.05, step.deadline - started),
            )
        except asyncio.TimeoutError:
            failure: Optional[ApiException] = ApiTimeoutError(
                f"POST {url}: no whole answer by the deadline; cut off"
            )
        except ApiException as error:
            failure = error
        else:
            failure = None
        if failure is not None:
            raise _detached(failure)
        body = sent.data if sent.data is not None else b""
        if len(body) > MAX_TOKEN_ANSWER_BYTES:
            raise ApiException(
                status=sent.status,
                reason=f"the token answer is larger than {MAX_TOKEN_ANSWER_BYTES} bytes; it was not read",
            )
        answer = _Answer(sent.status, sent.reason or "", dict(sent.getheaders().items()), body)
        return self._token_from(answer, step.form, url, started, step.previous)

    def _token_from(
        self, answer: _Answer, form: _TokenForm, url: str, started: float, previous: Optional[OAuthToken]
    ) -> OAuthToken:
        """The token a read answer gives (or the typed error it means), logged without its body."""
        received_at = self.clock()
        logger.info(
            "POST %s grant_type=%s -> %d in %.0f ms",
            url,
            form.grant_type,
            answer.status,
            (time.monotonic() - started) * 1000,
            extra={"kenar_step": "token-answer"},
        )
        return interpret_token_answer(
            answer.status,
            answer.reason,
            answer.headers,
            answer.body,
            received_at=received_at,
            secrets=form.secrets(),
            redirect_uri=form.redirect_uri,
            previous=previous,
        )

    def _post(self, url: str, form: _TokenForm, deadline: float) -> _Answer:
        response = self._transport.request(
            "POST",
            url,
            headers=dict(_TOKEN_HEADERS),
            body=form.encode(),
            _request_timeout=_within(self._timeout, deadline),
            _preload_content=False,
        )
        body = _read_within(response, deadline, url)
        return _Answer(response.status, response.reason or "", dict(response.getheaders().items()), body)

    def _secret(self) -> Hidden:
        if self._client_secret is None:
            raise ApiValueError(
                f"OAuthClient has no client_secret: pass client_secret= or set {ENV_CLIENT_SECRET}"
            )
        return self._client_secret

    def _redirect_uri(self, override: Optional[str]) -> str:
        if override is not None:
            return _checked_redirect_uri(override)
        return self._require(self.redirect_uri, "redirect_uri", ENV_REDIRECT_URI)

    @staticmethod
    def _require(value: Optional[str], name: str, env: str) -> str:
        if value is None:
            raise ApiValueError(f"OAuthClient has no {name}: pass {name}= or set {env}")
        return value


def _within(timeout: Timeout, deadline: float) -> Tuple[float, float]:
    """(connect, read) seconds of ``timeout`` with no single wait longer than the time left."""
    left = max(0.05, deadline - time.monotonic())

    def capped(value: Any) -> float:
        return min(float(value), left) if isinstance(value, (int, float)) and math.isfinite(value) else left

    if timeout.total is not None:
        return capped(timeout.total), capped(timeout.total)
    return capped(timeout.connect_timeout), capped(timeout.read_timeout)


def _read_within(response: rest.RESTResponse, deadline: float, url: str) -> bytes:
    """The answer's body, read by ``deadline``: a trickling answer is cut off there.

    Each ``read1`` waits for one arrival of bytes (never for a whole buffer), so the deadline
    is checked as they trickle in.
    """
    raw = response.response
    chunks: List[bytes] = []
    size = 0
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raw.close()
                raise ApiTimeoutError(f"POST {url}: the answer was still arriving at the deadline; cut off")
            connection = getattr(raw, "connection", None)
            sock = getattr(connection, "sock", None)
            if sock is not None:
                sock.settimeout(min(left, sock.gettimeout() or left))
            chunk = raw.read1(8192)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_TOKEN_ANSWER_BYTES:
                raw.close()
                raise ApiException(
                    status=response.status,
                    reason=f"the token answer is larger than {MAX_TOKEN_ANSWER_BYTES} bytes; it was not read",
                )
    except _READ_ERRORS as error:
        raw.close()
        if time.monotonic() >= deadline:  # the wait was cut to the time left, and it ran out
            raise ApiTimeoutError(
                f"POST {url}: the answer was still arriving at the deadline; cut off"
            ) from None
        raise rest.transport_exception(error, "reading the answer of POST", url) from None
    finally:
        raw.release_conn()
    return b"".join(chunks)


def _detached(error: ApiException) -> ApiException:
    """``error`` cut off from the frames and errors below it, which hold the request's secrets."""
    error.__cause__ = None
    error.__context__ = None
    error.__suppress_context__ = True
    return error.with_traceback(None)


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
