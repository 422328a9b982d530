"""The token book: authorization codes, access and refresh tokens, their lifetimes and chains.

Every token issued by the OAuth endpoints descends from one authorization (one consent of
one user to one client): the code, the first pair, and every pair a refresh made from it.
Kenar's OAuth server is Ory Hydra, and the rules here are Hydra's defaults as Kenar
documents them: both tokens rotate on refresh, the old pair keeps working for
``ROTATION_GRACE`` seconds (``rotation_grace`` of a book, to rehearse a shorter one), and a
rotated refresh token used after that revokes the whole chain, as does a second use of a
code. Every such reuse is recorded as a :class:`TokenReuse`, so a test can check that an
app never replayed a spent refresh token after its grace.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, FrozenSet, Iterable, List, NamedTuple, Optional, Tuple

from kenar_api_client.sandbox._clock import SandboxClock, as_utc
from kenar_api_client.sandbox._oauth_errors import invalid_grant
from kenar_api_client.sandbox._scopes import OFFLINE_ACCESS

ACCESS_TOKEN_LIFETIME = 3600
REFRESH_TOKEN_LIFETIME = 30 * 24 * 3600
ROTATION_GRACE = 120
CODE_LIFETIME = 600

# Hydra's description of invalid_grant; the specific reason follows it, as in Hydra.
_INVALID_GRANT = (
    "The provided authorization grant (e.g., authorization code, resource owner credentials) or "
    "refresh token is invalid, expired, revoked, does not match the redirection URI used in the "
    "authorization request, or was issued to another client."
)


class AccessToken:
    """What an access token stands for: its user, the OAuth scopes granted, the user's posts."""

    __slots__ = ("posts", "scopes", "user_id")

    def __init__(self, user_id: str, scopes: Iterable[str] = (), posts: Iterable[str] = ()) -> None:
        if isinstance(scopes, str) or isinstance(posts, str):
            raise TypeError("scopes and posts must be collections of strings, not one string")
        self.user_id: str = user_id
        self.scopes: FrozenSet[str] = frozenset(scopes)
        self.posts: FrozenSet[str] = frozenset(posts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AccessToken):
            return NotImplemented
        return (self.user_id, self.scopes, self.posts) == (other.user_id, other.scopes, other.posts)

    def __hash__(self) -> int:
        return hash((self.user_id, self.scopes, self.posts))

    def __repr__(self) -> str:
        return (
            f"AccessToken(user_id={self.user_id!r}, scopes={sorted(self.scopes)}, posts={sorted(self.posts)})"
        )


@dataclass(frozen=True)
class TokenReuse:
    """A refresh token or code used again after it was spent (never the token itself).

    ``kind`` is ``"refresh_token"`` or ``"code"``; ``first_used_at`` when it was spent
    (rotated, or redeemed), ``at`` when it came again. ``within_grace``: a refresh token
    back within the rotation grace, which Kenar accepts (a retried refresh); otherwise
    ``revoked_chain`` is True: every token of the user's authorization was revoked.
    """

    kind: str
    client_id: str
    user_id: str
    first_used_at: datetime
    at: datetime
    within_grace: bool
    revoked_chain: bool

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "kind": self.kind,
            "client_id": self.client_id,
            "user_id": self.user_id,
            "first_used_at": self.first_used_at.isoformat(),
            "at": self.at.isoformat(),
            "within_grace": self.within_grace,
            "revoked_chain": self.revoked_chain,
        }


class TokenStatus(NamedTuple):
    """What an access token stands for right now."""

    grant: Optional[AccessToken]  # set only while the token is valid
    problem: Optional[str]  # why it is not valid
    valid_until: Optional[float]  # epoch seconds it stops being valid; None: never
    revoked: bool


@dataclass(eq=False)
class _Authorization:
    """One consent of a user to a client; every token made from it forms one chain."""

    client_id: str
    redirect_uri: str
    grant: AccessToken
    scopes: Tuple[str, ...]
    revoked: bool = False
    access_tokens: List[str] = field(default_factory=list)


@dataclass(eq=False)
class _Access:
    grant: AccessToken
    expires_at: Optional[float]
    authorization: Optional[_Authorization] = None
    grace_ends: Optional[float] = None  # set when its refresh token is rotated
    revoked: bool = False

    @property
    def is_revoked(self) -> bool:
        return self.revoked or (self.authorization is not None and self.authorization.revoked)

    @property
    def valid_until(self) -> Optional[float]:
        ends = [t for t in (self.expires_at, self.grace_ends) if t is not None]
        return min(ends) if ends else None


@dataclass(eq=False)
class _Refresh:
    authorization: _Authorization
    access_token: str  # the one issued beside it
    expires_at: float
    rotated_at: Optional[float] = None


@dataclass(eq=False)
class _Code:
    client_id: str
    redirect_uri: str
    grant: AccessToken
    scopes: Tuple[str, ...]
    issued_at: float
    redeemed: Optional[_Authorization] = None
    redeemed_at: float = 0.0


class TokenBook:
    """Issues, checks, rotates and revokes tokens at ``clock`` time; safe from several threads."""

    def __init__(self, clock: SandboxClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._access: Dict[str, _Access] = {}
        self._refresh: Dict[str, _Refresh] = {}
        self._codes: Dict[str, _Code] = {}
        self._reuses: List[TokenReuse] = []
        #: Seconds a rotated refresh token (and its access token) keeps working: Kenar's 120.
        self.rotation_grace: float = float(ROTATION_GRACE)

    def reuses(self) -> List[TokenReuse]:
        """Every spent refresh token or code used again, oldest first (a copy)."""
        with self._lock:
            return list(self._reuses)

    def clear_reuses(self) -> None:
        """Forget the recorded reuses."""
        with self._lock:
            self._reuses = []

    # -- tokens configured by hand ----------------------------------------------------------

    def add_access_token(self, token: str, grant: AccessToken, expires_at: Optional[float] = None) -> None:
        """Accept ``token`` for ``grant`` until ``expires_at`` (None: forever), replacing what it was."""
        with self._lock:
            self._access[token] = _Access(grant, expires_at)

    def revoke_access_token(self, token: str) -> None:
        """Stop accepting ``token``."""
        with self._lock:
            entry = self._access.get(token)
            if entry is not None:
                entry.revoked = True

    def status(self, token: str) -> TokenStatus:
        """Whether ``token`` is valid now, what it stands for, and until when."""
        with self._lock:
            entry = self._access.get(token)
            now = self._clock.now()
            if entry is None:
                return TokenStatus(None, "the access token is not valid", None, False)
            if entry.is_revoked:
                return TokenStatus(None, "the access token has been revoked", None, True)
            until = entry.valid_until
            if until is None or now < until:
                return TokenStatus(entry.grant, None, until, False)
            if entry.expires_at is not None and entry.expires_at <= until:
                return TokenStatus(None, "the access token has expired", until, False)
            return TokenStatus(
                None,
                "the access token was replaced by a token refresh more than "
                f"{self.rotation_grace:g} seconds ago",
                until,
                False,
            )

    def first_grant(self) -> Optional[AccessToken]:
        """What the access token added or issued first stands for, if any."""
        with self._lock:
            return next((entry.grant for entry in self._access.values()), None)

    # -- the authorization-code grant -------------------------------------------------------

    def issue_code(
        self, client_id: str, redirect_uri: str, scopes: Tuple[str, ...], grant: AccessToken
    ) -> str:
        """A new single-use code for a consent, valid for ``CODE_LIFETIME`` seconds."""
        code = "ory_ac_" + secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = _Code(client_id, redirect_uri, grant, scopes, self._clock.now())
        return code

    def redeem_code(self, client_id: str, code: str, redirect_uri: Optional[str]) -> Dict[str, Any]:
        """The token answer for ``code``; raises ``OAuthError`` (a reused code revokes its tokens)."""
        with self._lock:
            entry = self._codes.get(code)
            if entry is None:
                raise invalid_grant(f"{_INVALID_GRANT} The authorization code is not known.")
            if entry.redeemed is not None:
                entry.redeemed.revoked = True
                self._reuses.append(
                    TokenReuse(
                        "code",
                        client_id,
                        entry.grant.user_id,
                        as_utc(entry.redeemed_at),
                        as_utc(self._clock.now()),
                        within_grace=False,
                        revoked_chain=True,
                    )
                )
                raise invalid_grant(
                    f"{_INVALID_GRANT} The authorization code has already been used; "
                    "the tokens issued for it have been revoked."
                )
            if entry.client_id != client_id:
                raise invalid_grant(f"{_INVALID_GRANT} The authorization code was issued to another client.")
            if self._clock.now() >= entry.issued_at + CODE_LIFETIME:
                raise invalid_grant(
                    f"{_INVALID_GRANT} The authorization code has expired "
                    f"(codes are valid for {CODE_LIFETIME} seconds)."
                )
            if redirect_uri != entry.redirect_uri:
                raise invalid_grant(
                    f"{_INVALID_GRANT} The redirect_uri does not match the one of the authorization request."
                )
            authorization = _Authorization(client_id, entry.redirect_uri, entry.grant, entry.scopes)
            entry.redeemed = authorization
            entry.redeemed_at = self._clock.now()
            return self._issue_pair(authorization, ACCESS_TOKEN_LIFETIME)

    def issue(
        self,
        client_id: str,
        redirect_uri: str,
        scopes: Tuple[str, ...],
        grant: AccessToken,
        expires_in: int = ACCESS_TOKEN_LIFETIME,
    ) -> Dict[str, Any]:
        """The token answer of a code exchange for a consent, without the code."""
        with self._lock:
            return self._issue_pair(_Authorization(client_id, redirect_uri, grant, scopes), expires_in)

    # -- the refresh-token grant ------------------------------------------------------------

    def refresh(
        self, client_id: str, refresh_token: str, redirect_uri: Optional[str], access_token: str
    ) -> Dict[str, Any]:
        """A new pair for ``refresh_token``; raises ``OAuthError``.

        ``access_token`` is the ``code`` field Kenar requires: an access token of the same
        chain. A rotated refresh token used after the grace period revokes the chain.
        """
        with self._lock:
            now = self._clock.now()
            entry = self._refresh.get(refresh_token)
            if entry is None:
                raise invalid_grant(f"{_INVALID_GRANT} The refresh token is not known.")
            authorization = entry.authorization
            if authorization.revoked:
                raise invalid_grant(f"{_INVALID_GRANT} The refresh token has been revoked.")
            if authorization.client_id != client_id:
                raise invalid_grant(f"{_INVALID_GRANT} The refresh token was issued to another client.")
            if entry.rotated_at is not None:
                within_grace = now < entry.rotated_at + self.rotation_grace
                self._reuses.append(
                    TokenReuse(
                        "refresh_token",
                        client_id,
                        authorization.grant.user_id,
                        as_utc(entry.rotated_at),
                        as_utc(now),
                        within_grace=within_grace,
                        revoked_chain=not within_grace,
                    )
                )
                if not within_grace:
                    authorization.revoked = True
                    raise invalid_grant(
                        f"{_INVALID_GRANT} The refresh token was already used more than "
                        f"{self.rotation_grace:g} seconds ago; every token of its authorization "
                        "has been revoked."
                    )
            if now >= entry.expires_at:
                raise invalid_grant(
                    f"{_INVALID_GRANT} The refresh token has expired (refresh tokens are valid for "
                    f"{REFRESH_TOKEN_LIFETIME // 86400} days); the user must consent again."
                )
            if redirect_uri != authorization.redirect_uri:
                raise invalid_grant(
                    f"{_INVALID_GRANT} The redirect_uri does not match the one the token was obtained with."
                )
            if access_token not in authorization.access_tokens:
                raise invalid_grant(
                    f"{_INVALID_GRANT} The code is not an access token issued with this refresh token's "
                    "authorization."
                )
            if entry.rotated_at is None:
                entry.rotated_at = now
                self._access[entry.access_token].grace_ends = now + self.rotation_grace
            return self._issue_pair(authorization, ACCESS_TOKEN_LIFETIME)

    # -- revocation -------------------------------------------------------------------------

    def revoke_user(self, user_id: str) -> List[AccessToken]:
        """Revoke every code, access and refresh token of ``user_id``; the grants that were in force."""
        revoked: List[AccessToken] = []
        with self._lock:
            self._codes = {
                code: entry
                for code, entry in self._codes.items()
                if entry.grant.user_id != user_id or entry.redeemed is not None
            }
            for entry in self._access.values():
                if entry.grant.user_id == user_id and not entry.is_revoked:
                    entry.revoked = True
                    revoked.append(entry.grant)
            for refresh in self._refresh.values():
                authorization = refresh.authorization
                if authorization.grant.user_id == user_id and not authorization.revoked:
                    authorization.revoked = True
                    revoked.append(authorization.grant)
        return revoked

    # -- issuing ----------------------------------------------------------------------------

    def _issue_pair(self, authorization: _Authorization, expires_in: int) -> Dict[str, Any]:
        """Issue an access token (and a refresh token with ``offline_access``); the token answer."""
        now = self._clock.now()
        access_token = "ory_at_" + secrets.token_urlsafe(32)
        self._access[access_token] = _Access(authorization.grant, now + expires_in, authorization)
        authorization.access_tokens.append(access_token)
        answer: Dict[str, Any] = {
            "access_token": access_token,
            "expires_in": expires_in,
            "scope": " ".join(authorization.scopes),
            "token_type": "bearer",
        }
        if OFFLINE_ACCESS in authorization.scopes:
            refresh_token = "ory_rt_" + secrets.token_urlsafe(32)
            self._refresh[refresh_token] = _Refresh(authorization, access_token, now + REFRESH_TOKEN_LIFETIME)
            answer["refresh_token"] = refresh_token
        return answer
