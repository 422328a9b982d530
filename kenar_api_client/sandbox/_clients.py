"""``RegisteredClient``: an app registered with the sandbox's authorization server, and its redirect URIs."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass, field
from typing import Iterable, Tuple
from urllib.parse import urlsplit

from kenar_api_client._hosts import is_loopback_ip
from kenar_api_client.sandbox._errors import SandboxError

# A URI as it may travel in a Location header: visible ASCII only (RFC 3986). urlsplit()
# silently drops tabs and line breaks, so they must be refused before it sees the URI.
_URI = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True, init=False)
class RegisteredClient:
    """An OAuth client: the app's ``client_id`` (its slug in the Kenar panel), its
    ``client_secret`` (left out of the repr) and the ``redirect_uris`` it registered.

    A redirect URI must be an absolute ``http``/``https`` URI without query or fragment,
    written in visible ASCII (no spaces, tabs or line breaks). A registered loopback URI
    (``http://127.0.0.1/...``, ``http://[::1]/...``) matches the same URI with any port
    (RFC 8252, section 7.3); any other must match exactly.
    """

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uris: Tuple[str, ...]

    def __init__(self, client_id: str, client_secret: str, redirect_uris: Iterable[str]) -> None:
        if not isinstance(client_id, str) or not client_id.strip() or client_id != client_id.strip():
            raise SandboxError("the client_id must be a non-empty string without surrounding whitespace")
        if not isinstance(client_secret, str) or not client_secret:
            raise SandboxError("the client secret must be a non-empty string")
        if isinstance(redirect_uris, str):
            raise SandboxError("redirect_uris must be a collection of URIs, not one string")
        uris = tuple(redirect_uris)
        for uri in uris:
            _check_redirect_uri(uri)
        object.__setattr__(self, "client_id", client_id)
        object.__setattr__(self, "client_secret", client_secret)
        object.__setattr__(self, "redirect_uris", uris)

    def secret_matches(self, secret: str) -> bool:
        """Whether ``secret`` is this client's secret (compared in constant time)."""
        return hmac.compare_digest(secret.encode("utf-8"), self.client_secret.encode("utf-8"))

    def accepts_redirect_uri(self, uri: str) -> bool:
        """Whether ``uri`` is one of the registered redirect URIs (loopback ones on any port).

        A URI with a character a header cannot carry as is (a line break, a tab, a space,
        anything outside ASCII) matches nothing, whatever urlsplit() would make of it.
        """
        if not isinstance(uri, str) or not _URI.fullmatch(uri):
            return False
        return any(
            uri == registered or _same_loopback_uri(uri, registered) for registered in self.redirect_uris
        )


def _check_redirect_uri(uri: object) -> None:
    if not isinstance(uri, str):
        raise SandboxError(f"a redirect URI must be a string, got {type(uri).__name__}")
    if not _URI.fullmatch(uri):
        raise SandboxError(
            f"the redirect URI {uri!r} must be visible ASCII: no spaces, tabs or line breaks "
            "(percent-encode anything else)"
        )
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SandboxError(f"the redirect URI {uri!r} must be an absolute http:// or https:// URI")
    if parts.query or parts.fragment or "?" in uri or "#" in uri:
        raise SandboxError(f"the redirect URI {uri!r} must carry no query and no fragment")


def _same_loopback_uri(requested: str, registered: str) -> bool:
    """RFC 8252, section 7.3: a loopback redirect URI matches whatever port the app listens on."""
    asked, known = urlsplit(requested), urlsplit(registered)
    if asked.scheme != "http" or known.scheme != "http" or not is_loopback_ip(asked.hostname or ""):
        return False
    try:
        asked.port  # noqa: B018 - a malformed port raises ValueError
    except ValueError:
        return False
    return (
        asked.hostname == known.hostname
        and asked.username is None
        and (asked.path, asked.query, asked.fragment) == (known.path, known.query, known.fragment)
        and "?" not in requested
        and "#" not in requested
    )
