"""RFC 6749 error answers of the OAuth endpoints: ``OAuthError`` and its JSON body."""

from __future__ import annotations

import json
from typing import Dict, Optional


class OAuthError(Exception):
    """An OAuth error: its RFC 6749 ``error`` code, a description that names the problem,
    the HTTP status (400, or 401 for ``invalid_client``) and extra headers."""

    def __init__(
        self, error: str, description: str, status: int = 400, headers: Optional[Dict[str, str]] = None
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.headers: Dict[str, str] = dict(headers or {})

    def body(self) -> bytes:
        """The RFC 6749 section 5.2 JSON body."""
        return json.dumps({"error": self.error, "error_description": self.description}).encode("utf-8")


def invalid_grant(description: str) -> OAuthError:
    """The grant (code or refresh token) is invalid, expired, revoked or not this client's."""
    return OAuthError("invalid_grant", description)


def invalid_request(description: str) -> OAuthError:
    """A parameter is missing, repeated or malformed."""
    return OAuthError("invalid_request", description)
