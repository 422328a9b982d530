"""Keeping credentials out of reprs, logs and exception messages."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Optional

REDACTED = "[REDACTED]"

#: Headers whose values are credentials; compared lowercase.
SENSITIVE_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization", "cookie"})


class RedactedDict(Dict[str, Any]):
    """A dict of secrets whose ``repr`` shows the keys but never the values."""

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {REDACTED!r}" for k in self) + "}"

    __str__ = __repr__


def redact_headers(headers: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """A copy of ``headers`` with every credential header's value replaced by REDACTED."""
    return {
        name: REDACTED if name.lower() in SENSITIVE_HEADERS else value
        for name, value in (headers or {}).items()
    }


def scrub(text: str, secrets: Iterable[Optional[str]]) -> str:
    """``text`` with every occurrence of each (non-trivial) secret replaced by REDACTED."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, REDACTED)
    return text
