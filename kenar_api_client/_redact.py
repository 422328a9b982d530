"""Keeping credentials out of reprs, logs and exception messages."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Set

if TYPE_CHECKING:
    from kenar_api_client.configuration import Configuration

REDACTED = "[REDACTED]"

#: Headers whose values are credentials; compared lowercase. ``WWW-Authenticate`` and
#: ``Proxy-Authenticate`` are left out: they carry a server's challenge (scheme, realm, an
#: error), never the client's credentials, and they are what explains a 401 or a 407.
SENSITIVE_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization", "cookie", "set-cookie"})

# Secrets shorter than this are not scrubbed: replacing every "ab" would garble the text.
_MIN_SECRET_LENGTH = 4


class RedactedDict(Dict[str, Any]):
    """A dict of secrets whose ``repr`` shows the keys but never the values."""

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {REDACTED!r}" for k in self) + "}"

    __str__ = __repr__

    def copy(self) -> RedactedDict:
        """A shallow copy that keeps hiding its values."""
        return RedactedDict(self)


def redact_headers(headers: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """A copy of ``headers`` with every credential header's value replaced by REDACTED."""
    return {
        name: REDACTED if name.lower() in SENSITIVE_HEADERS else value
        for name, value in (headers or {}).items()
    }


def credentials_in(headers: Optional[Mapping[str, Any]]) -> List[str]:
    """The credentials carried by request ``headers``.

    Each credential header's whole value, its last word (the token of ``Bearer <token>``,
    the key of ``<prefix> <key>``) and, for ``Cookie``, each cookie's value.
    """
    found: List[str] = []
    for name, value in (headers or {}).items():
        lowered = name.lower()
        if lowered not in SENSITIVE_HEADERS or not isinstance(value, str):
            continue
        found += [value, value.rsplit(" ", 1)[-1]]
        if lowered == "cookie":
            found += [part.partition("=")[2].strip() for part in value.split(";")]
    return found


def secret_list(values: Iterable[Any]) -> List[str]:
    """The strings to scrub for ``values``: each as it is and as JSON escapes it, longest first.

    A server that echoes a credential inside a JSON string may escape it (``\\/``, ``\\u…``);
    longest first, so that a secret containing another is replaced whole.
    """
    found: Set[str] = set()
    for value in values:
        if isinstance(value, str) and len(value) >= _MIN_SECRET_LENGTH:
            escaped = json.dumps(value)[1:-1]
            found.update((value, escaped, escaped.replace("/", "\\/")))
    return sorted(found, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[Optional[str]]) -> str:
    """``text`` with every occurrence of each (non-trivial) secret replaced by REDACTED."""
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET_LENGTH and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def scrub_data(value: Any, secrets: List[str]) -> Any:
    """Parsed JSON ``value`` with every string (keys included) scrubbed of ``secrets``."""
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, list):
        return [scrub_data(item, secrets) for item in value]
    if isinstance(value, dict):
        return {scrub(key, secrets): scrub_data(item, secrets) for key, item in value.items()}
    return value


def scrub_headers(headers: Any, secrets: List[str]) -> Any:
    """A copy of ``headers`` (an ``HTTPHeaderDict`` or a mapping) with each value scrubbed."""
    if not headers or not secrets:
        return headers

    def cleaned(value: Any) -> Any:
        return scrub(value, secrets) if isinstance(value, str) else value

    if hasattr(headers, "add"):  # urllib3's HTTPHeaderDict, where a header may repeat
        copy = type(headers)()
        for name, value in headers.items():
            copy.add(name, cleaned(value))
        return copy
    return {name: cleaned(value) for name, value in headers.items()}


def call_secrets(
    configuration: Configuration, proxy_secrets: Iterable[str], request_headers: Optional[Mapping[str, Any]]
) -> List[str]:
    """What an exception or a log line of one call must not show, wherever it appears (a server
    may echo it back): the credentials the request was sent with, the configured ones (they may
    have changed since) and the proxy's."""
    return secret_list(
        [
            *configuration.api_key.values(),
            configuration.access_token,
            *credentials_in(request_headers),
            *proxy_secrets,
        ]
    )


class SecretHeaders(Dict[str, str]):
    """Request headers whose ``repr`` hides the credentials: safe in a traceback's local variables."""

    def __repr__(self) -> str:
        return repr(redact_headers(self))

    __str__ = __repr__
