"""Playing the user's browser against a sandbox: open the authorization URL, consent, come back."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from kenar_api_client.sandbox._errors import SandboxError


def consent(authorization_url: str, timeout: float = 10.0) -> str:
    """Open ``authorization_url`` on a sandbox as the user's browser would; return the redirect back.

    The sandbox consents at once (as the user set by ``Sandbox.set_consent``), so a test
    or an offline example can hand the returned URL, which carries ``code`` and ``state``
    (or ``error``), to the app's redirect handler. Nothing is sent to the redirect URI.
    """
    parts = urlsplit(authorization_url)
    if parts.scheme != "http" or not parts.hostname:
        raise SandboxError(f"not a sandbox authorization URL: {authorization_url[:200]!r}")
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", f"{parts.path}?{parts.query}")
        answer = connection.getresponse()
        answer.read()
    except (OSError, http.client.HTTPException) as exc:
        raise SandboxError(f"the sandbox at {parts.hostname}:{parts.port} did not answer: {exc}") from exc
    finally:
        connection.close()
    location = answer.getheader("Location")
    if answer.status not in (302, 303) or not location:
        raise SandboxError(f"the sandbox answered {answer.status} instead of redirecting back")
    return location
