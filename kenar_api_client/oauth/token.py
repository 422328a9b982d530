"""``OAuthToken``: an access token, its refresh token, its scopes and when it expires."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional

from kenar_api_client._redact import REDACTED
from kenar_api_client._times import LATEST_TIME
from kenar_api_client.exceptions import ApiValueError

# How much of a token a repr may show: the ``ory_at_`` kind, never the random part.
_SHOWN_PREFIX = 7
#: The lifetime assumed when a token answer carries no ``expires_in`` (RFC 6749 leaves the
#: default to the server; Kenar's access tokens live an hour).
DEFAULT_EXPIRES_IN = 3600


@dataclass(frozen=True)
class OAuthToken:
    """A user's tokens as Kenar's token endpoint issued them.

    ``expires_at`` is absolute (seconds since the Unix epoch), computed from
    ``expires_in`` when the answer arrived; ``refresh_token`` is None unless the user
    granted ``offline_access``. ``redirect_uri`` is the one the tokens were obtained with:
    Kenar wants the same one on every refresh. ``repr`` and ``str`` never show either token.
    """

    access_token: str = field(repr=False)
    refresh_token: Optional[str] = field(repr=False)
    expires_at: float
    scopes: List[str]
    token_type: str = "bearer"  # noqa: S105 - the token kind
    obtained_at: float = 0.0
    redirect_uri: Optional[str] = None

    def __post_init__(self) -> None:
        # Refused here, where a time enters, rather than when a repr or a store trips on it.
        for name in ("expires_at", "obtained_at"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or not 0 <= value <= LATEST_TIME
            ):
                raise ApiValueError(
                    f"{name} must be epoch seconds between 1970 and the year 9999, got {value!r}"
                )

    @classmethod
    def from_response(
        cls,
        document: Mapping[str, Any],
        received_at: float,
        redirect_uri: Optional[str] = None,
        previous: Optional[OAuthToken] = None,
    ) -> OAuthToken:
        """The token in a token endpoint answer received at ``received_at``; ApiValueError if malformed.

        What RFC 6749 lets a refresh answer leave out is taken from ``previous``, the token
        refreshed: no ``refresh_token`` keeps its refresh token (section 6), no ``scope`` its
        scopes (section 5.1). No ``expires_in`` means ``DEFAULT_EXPIRES_IN`` (an hour).
        """
        access_token = document.get("access_token")
        if not isinstance(access_token, str) or not _is_header_safe(access_token):
            raise ApiValueError("the token answer has no usable access_token")
        refresh_token = document.get("refresh_token")
        if refresh_token is None and previous is not None:
            refresh_token = previous.refresh_token
        if refresh_token is not None and (not isinstance(refresh_token, str) or not refresh_token):
            raise ApiValueError("the token answer's refresh_token is not a string")
        expires_in = document.get("expires_in", DEFAULT_EXPIRES_IN)
        if isinstance(expires_in, str) and expires_in.isascii() and expires_in.isdigit():
            expires_in = int(expires_in)
        if (
            isinstance(expires_in, bool)
            or not isinstance(expires_in, (int, float))
            or not (0 < expires_in < 10 * 365 * 86400)
        ):
            raise ApiValueError(f"the token answer's expires_in is not a positive number: {expires_in!r}")
        scope = document.get("scope")
        if not isinstance(scope, (str, type(None))):
            raise ApiValueError("the token answer's scope is not a string")
        scopes = scope.split() if scope is not None else list(previous.scopes) if previous is not None else []
        token_type = document.get("token_type") or "bearer"
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise ApiValueError(f"the token answer's token_type is {token_type!r}, not bearer")
        return cls(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_at=received_at + float(expires_in),
            scopes=scopes,
            token_type=token_type.lower(),
            obtained_at=received_at,
            redirect_uri=redirect_uri,
        )

    # -- lifetime ---------------------------------------------------------------------------

    def expires_in(self, now: Optional[float] = None) -> float:
        """Seconds until the access token expires (negative once it has)."""
        return self.expires_at - (time.time() if now is None else now)

    def is_expired(self, leeway: float = 0.0, now: Optional[float] = None) -> bool:
        """Whether it has expired, or will within ``leeway`` seconds."""
        return self.expires_in(now) <= leeway

    @property
    def expires_at_datetime(self) -> datetime:
        """``expires_at`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.expires_at, timezone.utc)

    @property
    def refreshable(self) -> bool:
        """Whether a refresh token came with it (the user granted ``offline_access``)."""
        return self.refresh_token is not None

    def has_scope(self, scope: str) -> bool:
        """Whether ``scope`` (``NAME`` or ``NAME.<resource id>``) was granted."""
        return str(scope) in self.scopes

    @property
    def fingerprint(self) -> str:
        """A short one-way digest of the access token: tells tokens apart without holding one."""
        return hashlib.sha256(self.access_token.encode("utf-8")).hexdigest()[:16]

    # -- storage ----------------------------------------------------------------------------

    def to_dict(self) -> Dict[str, Any]:
        """Everything, tokens included, as JSON-ready data: for token stores only."""
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
            "scopes": list(self.scopes),
            "token_type": self.token_type,
            "obtained_at": self.obtained_at,
            "redirect_uri": self.redirect_uri,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OAuthToken:
        """The token ``to_dict`` wrote."""
        try:
            token = cls(
                access_token=str(data["access_token"]),
                refresh_token=None if data.get("refresh_token") is None else str(data["refresh_token"]),
                expires_at=float(data["expires_at"]),
                scopes=[str(s) for s in data.get("scopes") or []],
                token_type=str(data.get("token_type") or "bearer"),
                obtained_at=float(data.get("obtained_at") or 0.0),
                redirect_uri=None if data.get("redirect_uri") is None else str(data["redirect_uri"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiValueError(f"not a stored OAuth token ({type(exc).__name__})") from None
        if not _is_header_safe(token.access_token):
            raise ApiValueError("not a stored OAuth token (bad access_token)")
        return token

    def __repr__(self) -> str:
        shown = self.access_token[:_SHOWN_PREFIX] if self.access_token.startswith("ory_") else ""
        return (
            f"OAuthToken(access_token='{shown}{REDACTED}', "
            f"refresh_token={REDACTED if self.refresh_token else None!r}, "
            f"expires_at={self.expires_at_datetime.isoformat(timespec='seconds')!r}, scopes={self.scopes!r})"
        )

    __str__ = __repr__


def _is_header_safe(value: str) -> bool:
    """Non-empty visible ASCII: a token that can go in ``Authorization: Bearer`` as it is."""
    return bool(value) and value.isascii() and value.isprintable() and " " not in value
